"""Durations in a fixed log-spaced histogram, and percentiles read back from it.

Pure (numpy, no Django). Every worker bins its samples the same way, so
histograms of any workers and minutes add up bin by bin, and p50/p95/p99 of
the sum are read off the summed counts.

Bins: 8 per decade from 0.01 ms to 10 s (48 bins, each 1.33x wider than the
one before), plus one for everything under 0.01 ms and one for 10 s and
over. A percentile is interpolated geometrically inside its bin, so it is
never further from the exact value than the bin is wide (33 %), and much
closer on smooth distributions.
"""

import math

import numpy as np

LOWEST_MS = 0.01
BINS_PER_DECADE = 8
DECADES = 6
BINS = BINS_PER_DECADE * DECADES + 2
# The 49 boundaries between the inner bins: 0.01 ms ... 10,000 ms.
EDGES_MS = LOWEST_MS * 10 ** (np.arange(BINS - 1) / BINS_PER_DECADE)
LOWER_MS = np.concatenate([[0.0], EDGES_MS])
UPPER_MS = np.concatenate([EDGES_MS, [math.inf]])


def bin_index(ms):
    """The bin of one duration: 0 under 0.01 ms, BINS - 1 at 10 s and over."""
    if ms < LOWEST_MS:
        return 0
    return min(BINS - 1, 1 + int(math.log10(ms / LOWEST_MS) * BINS_PER_DECADE))


def histogram(samples_ms):
    """Bin counts of `samples_ms` (an array of BINS integers)."""
    return np.bincount([bin_index(ms) for ms in samples_ms], minlength=BINS)


def percentiles(counts, qs=(50, 95, 99)):
    """The `qs` percentiles (each in (0, 100]) of a histogram's durations in
    ms, or None when it is empty. One in the top bin (10 s and over) is inf:
    its value is unknown beyond that."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return None
    cumulative = np.cumsum(counts)
    values = []
    for q in qs:
        rank = q / 100 * total
        index = min(int(np.searchsorted(cumulative, rank, side="left")), BINS - 1)
        fraction = (rank - (cumulative[index] - counts[index])) / counts[index]
        lower, upper = LOWER_MS[index], UPPER_MS[index]
        if index == 0:
            values.append(float(upper * fraction))
        elif math.isinf(upper):
            values.append(math.inf)
        else:
            values.append(float(lower * (upper / lower) ** fraction))
    return values
