"""``update_rows``: what it writes is what Django would have written, and only there."""
import datetime as dt

import pytest

from ops.dbutil import update_rows
from ops.models import Run, Step

pytestmark = pytest.mark.django_db


def test_update_rows_writes_each_rows_own_values_and_nothing_else():
    run = Run.objects.create(kind="batch-checkpoint")
    steps = Step.objects.bulk_create([Step(run=run, index=i, phase="p", action="a", target=f"vm{i}", data={"n": i})
                                      for i in range(5)])
    when = dt.datetime(2026, 11, 22, 6, 30, 1, 123456, tzinfo=dt.timezone.utc)
    for i, s in enumerate(steps[:3]):
        s.state, s.result, s.error, s.finished_at = "failed", {"why": [i, "é", None]}, f"boom {i}", when
        s.target = "not written"
    assert update_rows(Step, steps[:3], ("state", "result", "error", "finished_at")) == 3
    got = {s.index: s for s in Step.objects.filter(run=run)}
    for i in range(3):
        assert (got[i].state, got[i].result, got[i].error, got[i].finished_at) == ("failed", {"why": [i, "é", None]},
                                                                                  f"boom {i}", when)
        assert got[i].target == f"vm{i}" and got[i].data == {"n": i}  # fields not named stay as stored
    for i in (3, 4):
        assert got[i].state == "pending" and got[i].result == {} and got[i].finished_at is None


def test_update_rows_with_nothing_to_do():
    assert update_rows(Step, [], ("state",)) == 0
