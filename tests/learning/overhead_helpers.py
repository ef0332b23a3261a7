"""What the live learning overhead's minute rows hold, in tests (the
`overhead_buffer` fixture is in tests/conftest.py)."""

from datetime import UTC, datetime

from learning.core import latency
from learning.models import OVERHEAD_BINS, OverheadMinute

# A moment (seconds since the epoch) at the start of a minute, for buffers
# fed their own clock.
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()


def rows_by_stage():
    """{stage: (count, total ms, bin counts)} summed over the minutes."""
    return {row["stage"]: (row["samples"], row["sum_ms"], [row[f"sum_{name}"] for name in OVERHEAD_BINS])
            for row in OverheadMinute.objects.summed("stage")}


def bins_of(*samples_ms):
    return list(latency.histogram(samples_ms))
