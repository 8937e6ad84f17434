"""Telling watchers "look": the channel-layer poke after a run's events commit.

The database is the truth; a poke only wakes the consumers of a run's group so
they read RunEvent rows after the ``seq`` they already sent. Without Redis the
layer is in-process, so a poke from a worker process reaches nobody and the
consumers' timer does the work; a failed poke is logged, never raised.
"""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger("slipway.live")

POKE_TYPE = "run.poke"


def run_group(run_id: int) -> str:
    return f"run-{int(run_id)}"


RUNS_GROUP = "runs-all"  # the runs list page listens here for state changes


def poke_run(run_id: int, seq: int | None = None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": POKE_TYPE, "run_id": int(run_id), "seq": seq}
    try:
        async_to_sync(layer.group_send)(run_group(run_id), message)
    except Exception as exc:  # a poke is an optimisation; the consumers' timer is the safety net
        log.warning("poke for run %s not delivered: %s", run_id, exc)
