"""Slow, obviously correct reference implementations the kernels are checked against."""


def digits(r: int) -> list[int]:
    """Balanced-ternary digits of r, least significant first, no trailing zeros."""
    out = []
    while r != 0:
        d = ((r + 1) % 3) - 1
        out.append(d)
        r = (r - d) // 3
    return out


def value(ds: list[int]) -> int:
    return sum(d * 3**k for k, d in enumerate(ds))


def num_digits(max_abs: int) -> int:
    k = 0
    while (3**k - 1) // 2 < max_abs:
        k += 1
    return k


def med(a: int, b: int, c: int) -> int:
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c
