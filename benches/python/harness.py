#!/usr/bin/env python3
"""Time one Python benchmark the way `sx bench` times an SX one.

    python3 benches/python/harness.py NAME ITERATIONS WARMUP [ARG]

loads benches/python/NAME.py, calls its run() (run(ARG) when ARG is given,
ARG read as a Python literal) WARMUP times untimed, then ITERATIONS times
timed, and prints one JSON object:

    {"times": [seconds, ...], "result": "<str of the last result>", "peak_rss_kb": N}
"""

import ast
import importlib.util
import json
import os
import sys
import time


def load(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    if not os.path.exists(path):
        raise SystemExit(f"harness.py: no benchmark {path}")
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peak_rss_kb():
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KB on Linux


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    name, iterations, warmup = argv[1], int(argv[2]), int(argv[3])
    args = (ast.literal_eval(argv[4]),) if len(argv) == 5 else ()
    module = load(name)
    result = None
    for _ in range(warmup):
        result = module.run(*args)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = module.run(*args)
        times.append(time.perf_counter() - start)
    out = {"times": times, "result": str(result)}
    rss = peak_rss_kb()
    if rss is not None:
        out["peak_rss_kb"] = rss
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
