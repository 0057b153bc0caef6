"""A closure-heavy loop (benches/closures.sx). run() -> 1000000"""


def make_adder(n):
    return lambda x: x + n


def compose(f, g):
    return lambda x: f(g(x))


def run():
    acc = 0
    for i in range(1000000):
        f = compose(make_adder(i), make_adder(1))
        acc = f(acc) - i
    return acc
