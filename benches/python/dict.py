"""Dict insertion and lookup of 100 000 keys (benches/dict.sx). run() -> 5000050000"""


def run():
    d = {}
    n = 100000
    for i in range(n):
        d["k" + str(i)] = i
    acc = 0
    for i in range(n):
        acc += d["k" + str(i)]
    return len(d) + acc
