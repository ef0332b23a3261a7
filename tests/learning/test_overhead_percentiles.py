"""learning.core.latency: durations binned 8 per decade, percentiles read back
from summed histograms."""

import math

import numpy as np
import pytest

from learning.core import latency


def test_it_bins_durations_eight_per_decade_from_a_hundredth_of_a_ms_to_ten_seconds():
    assert latency.BINS == 50
    assert latency.EDGES_MS[0] == pytest.approx(0.01) and latency.EDGES_MS[-1] == pytest.approx(1e4)
    assert latency.bin_index(0.004) == 0
    assert latency.bin_index(0.0101) == 1
    assert latency.bin_index(1.01) == 17  # two decades above 0.01 ms
    assert latency.bin_index(1.2) == 17 and latency.bin_index(1.4) == 18  # the next edge is 10 ** (1/8) = 1.334
    assert latency.bin_index(9_999) == 48 and latency.bin_index(10_000) == 49 and latency.bin_index(1e9) == 49


def test_it_interpolates_geometrically_inside_a_bin():
    counts = np.zeros(latency.BINS)
    counts[17] = 100  # [1, 1.334) ms
    p50, p99 = latency.percentiles(counts, (50, 99))
    assert p50 == pytest.approx(10 ** (0.5 / 8)) and p99 == pytest.approx(10 ** (0.99 / 8))


def test_it_reads_percentiles_within_the_bin_of_the_exact_value():
    samples = np.random.default_rng(7).lognormal(mean=1.0, sigma=0.8, size=20_000)
    estimates = latency.percentiles(latency.histogram(samples), (50, 95, 99))
    for q, estimate in zip((50, 95, 99), estimates):
        exact = np.percentile(samples, q)
        index = latency.bin_index(exact)
        assert latency.LOWER_MS[index] <= estimate <= latency.UPPER_MS[index]
        assert estimate == pytest.approx(exact, rel=0.05)


def test_histograms_of_several_workers_add_up_to_the_histogram_of_all_their_samples():
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(0.5, 1.0, size=n) for n in (500, 1200, 37)]
    summed = sum(latency.histogram(part) for part in parts)
    assert list(summed) == list(latency.histogram(np.concatenate(parts)))
    assert latency.percentiles(summed) == latency.percentiles(latency.histogram(np.concatenate(parts)))


def test_it_has_no_percentiles_without_samples_and_an_unknown_value_beyond_ten_seconds():
    assert latency.percentiles(np.zeros(latency.BINS)) is None
    p50, p99 = latency.percentiles(latency.histogram([1.0] * 98 + [20_000.0] * 2), (50, 99))
    assert p50 == pytest.approx(1.0, rel=0.34) and math.isinf(p99)
    (tiny,) = latency.percentiles(latency.histogram([0.001] * 10), (50,))
    assert 0 < tiny < 0.01
