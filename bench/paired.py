"""Paired per-round comparison for the benchmark reports (bench/engine.sh, bench/balancer.sh).

Each round runs ours and the peer back to back, so the two share the machine's state of the moment; on a
shared VM that state moves a proxy's req/s by 20-30% from one minute to the next. The ratio taken within
each round cancels most of that drift, where the ratio of each column's median does not. For the rounds'
ratios this gives their median and a distribution-free confidence interval for it: the order statistics
(x(k), x(n+1-k)) with the largest k whose coverage, 1 - 2 P(Binomial(n, 1/2) <= k-1), is at least 90%.
With 5 or 7 rounds that is the smallest and the largest ratio; with 9, the second smallest and the second
largest.

A goal counts as met only when the whole interval is on the right side of 1.0, not met when the whole
interval is on the wrong side, and level otherwise: the runs cannot tell the two apart.
"""

from math import comb
from statistics import median

COVERAGE = 0.90


def interval(values):
    """(median, low, high, coverage) of `values`; low/high bound the median at >= COVERAGE when the
    count allows it (n >= 5), else the smallest and largest value with the coverage they have."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0.0

    def cover(k):  # P(x(k) <= true median <= x(n+1-k))
        return 1 - 2 * sum(comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and cover(k + 1) >= COVERAGE:
        k += 1
    return median(xs), xs[k - 1], xs[n - k], cover(k)


def verdict(low, high, good_above=True):
    """'met', 'NOT met' or 'level' for an interval of ratios, against 1.0."""
    if good_above:
        return "met" if low >= 1.0 else ("NOT met" if high < 1.0 else "level")
    return "met" if high <= 1.0 else ("NOT met" if low > 1.0 else "level")


def describe(name, ratios, good_above=True):
    """One line: the rounds' ratios, their median, the interval and the verdict on it."""
    mid, low, high, cov = interval(ratios)
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    return (f"{name}: per-round {shown}; median {mid:.2f}x, {cov:.0%} interval {low:.2f}-{high:.2f}x: "
            f"{verdict(low, high, good_above)}"), verdict(low, high, good_above)


if __name__ == "__main__":  # a check of the interval rule, run by hand: python3 bench/paired.py
    for n, want in ((3, (1, 3)), (5, (1, 5)), (7, (1, 7)), (9, (2, 8)), (11, (3, 9))):
        _, lo, hi, cov = interval(list(range(1, n + 1)))
        assert (lo, hi) == want, (n, lo, hi)
        print(f"n={n}: x({lo}), x({hi}), coverage {cov:.3f}")
    assert verdict(1.01, 1.2) == "met" and verdict(0.9, 1.1) == "level" and verdict(0.8, 0.99) == "NOT met"
    assert verdict(0.8, 0.99, good_above=False) == "met" and verdict(1.01, 1.2, good_above=False) == "NOT met"
