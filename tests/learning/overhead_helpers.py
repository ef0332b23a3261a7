"""What the live learning overhead's minute rows hold, in tests (the
`overhead_buffer` fixture is in tests/conftest.py)."""

from learning.core import latency
from learning.models import OVERHEAD_BINS, OverheadMinute


def rows_by_stage():
    """{stage: (count, total ms, bin counts)} summed over the minutes."""
    return {row["stage"]: (row["samples"], row["sum_ms"], [row[f"sum_{name}"] for name in OVERHEAD_BINS])
            for row in OverheadMinute.objects.summed("stage")}


def bins_of(*samples_ms):
    return list(latency.histogram(samples_ms))
