"""Non-tail recursion 100 000 deep, 10 times (benches/deep-recursion.sx). run() -> 1000000

CPython needs a raised recursion limit and, to be safe, a thread with a large
stack for this depth."""

import sys
import threading

DEPTH = 100000


def depth(n):
    if n == 0:
        return 0
    return 1 + depth(n - 1)


def _repeat(out):
    acc = 0
    for _ in range(10):
        acc += depth(DEPTH)
    out.append(acc)


def run():
    sys.setrecursionlimit(max(sys.getrecursionlimit(), DEPTH + 1000))
    old = threading.stack_size(512 * 1024 * 1024)
    try:
        out = []
        t = threading.Thread(target=_repeat, args=(out,))
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
    if not out:
        raise RuntimeError("deep recursion thread failed")
    return out[0]
