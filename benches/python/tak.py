"""The Takeuchi function (benches/tak.sx). run() -> 7"""


def tak(x, y, z):
    if y < x:
        return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
    return z


def run():
    return tak(18, 12, 6)
