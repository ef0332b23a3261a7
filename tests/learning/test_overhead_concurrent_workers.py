"""Workers writing the same minute rows at the same time lose no sample,
the rows' creation included."""

import pytest

from learning import overhead
from tests.helpers import run_in_threads
from tests.learning.overhead_helpers import NOON, rows_by_stage

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 6
WRITES_EACH = 5


def test_concurrent_workers_add_every_sample():
    def work(index):
        worker = overhead.OverheadBuffer()
        written = []
        for write in range(WRITES_EACH):
            worker.add([("report", 1.0 + index), ("commit", 0.2)], NOON + write)
            written.append(worker.flush(NOON + write))
        return written

    assert all(all(batch) for batch in run_in_threads(WORKERS, work))
    rows = rows_by_stage()
    assert rows["report"][0] == rows["commit"][0] == WORKERS * WRITES_EACH
    assert rows["report"][1] == pytest.approx(WRITES_EACH * sum(1.0 + index for index in range(WORKERS)))
