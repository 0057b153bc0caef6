"""String building: 100 000 pieces joined (benches/strings.sx). run() -> 1088889"""


def run():
    pieces = []
    for i in range(100000):
        pieces.append("item-" + str(i))
    return len(",".join(reversed(pieces)))
