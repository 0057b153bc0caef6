"""n self-referencing closures, none kept (benches/closure-memory.sx). run(n) -> n(n-1)/2"""


def make_countdown(start):
    def count_down(k):
        return start if k == 0 else count_down(k - 1)

    return count_down


def run(n=100000):
    acc = 0
    for i in range(n):
        acc += make_countdown(i)(2)
    return acc
