"""8 queens, counting solutions with boards as lists (benches/nqueens.sx). run() -> 92"""


def safe(row, placed):
    # placed: rows of the previous columns, nearest column first
    dist = 1
    for q in placed:
        if q == row or q == row + dist or q == row - dist:
            return False
        dist += 1
    return True


def count_solutions(n, col, placed, rows):
    if col == n:
        return 1
    return sum(
        map(
            lambda row: count_solutions(n, col + 1, [row] + placed, rows),
            filter(lambda row: safe(row, placed), rows),
        )
    )


def run():
    return count_solutions(8, 0, [], list(range(8)))
