"""A real django-q2 cluster killed with SIGKILL in the middle of a run (its
whole process group, like a crashed machine), then a new one started: the run
completes, no VM is left stopped, no checkpoint is made twice."""
import contextlib

import pytest

from ops.bench._worker_site import WorkerSite

pytestmark = pytest.mark.slow


def vms_of(engine, batch):
    return {vm["name"]: vm for vm in engine.control({"op": "state"})["vms"] if vm["custom1"] == str(batch)}


@contextlib.contextmanager
def run_under_way(until_checkpoints, time_scale=0.1):
    """A site with one cluster driving batch 3 (lease 3 s), once that many checkpoints are made."""
    from tests.conftest import start_sim

    engine, server = start_sim(time_scale=time_scale)  # at 0.1: shutdown 0.6 s, checkpoint 0.4 s, start 0.5 s
    site = WorkerSite(engine, server, bound=2, workers=2, lease_seconds=3, debug_log=True)
    try:
        before = vms_of(engine, 3)
        first = site.start_cluster()
        run_id = site.start_run("batch-checkpoint", batch="3")
        site.wait_for(lambda: site.query("select count(*) from ops_step where run_id = ? and action = 'new-checkpoint' "
                                         "and state = 'succeeded'", run_id)[0][0] >= until_checkpoints,
                      timeout=60, interval=0.02)
        yield site, engine, first, run_id, before
    finally:
        site.close()
        server.stop()


def assert_done_once(engine, before):
    after = vms_of(engine, 3)
    for name, vm in before.items():
        new = [c for c in after[name]["checkpoints"] if c not in vm["checkpoints"]]
        assert len(new) == 1, (name, after[name]["checkpoints"])  # exactly one: never made twice
        assert after[name]["status"] == vm["status"], name
    assert engine.control({"op": "state"})["scom_maintenance"] == []


def test_run_survives_a_killed_cluster():
    with run_under_way(2) as (site, engine, first, run_id, before):
        # kill it while VMs are stopped and checkpoints are being made
        site.kill_cluster(first)
        stopped = [n for n, vm in vms_of(engine, 3).items() if vm["status"] == "PowerOff" and before[n]["status"] == "Running"]
        assert stopped, "the cluster was killed before any VM was stopped"
        assert site.run_row(run_id)["state"] == "running"
        site.start_cluster()
        row = site.wait_final(run_id, timeout=120)
        assert row["state"] == "succeeded", row["message"]
        assert_done_once(engine, before)
        checkpoint_jobs = [j for j in engine.control({"op": "state"})["jobs"] if j["cmdlet"] == "New-SCVMCheckpoint"]
        assert len(checkpoint_jobs) == len(before)
        messages = [m for (m,) in site.query("select message from ops_runevent where run_id = ? order by seq", run_id)]
        assert any("lease expired" in m for m in messages)


def test_a_live_cluster_takes_over_the_run_of_a_killed_one():
    """Two clusters; the one driving the run is SIGKILLed and never restarted: the other one takes
    the run over (its reaper loop notices the expired lease) and finishes it, with no checkpoint
    made twice. How fast is measured by `manage.py bench takeover`, not here."""
    with run_under_way(1, time_scale=0.5) as (site, engine, first, run_id, before):   # a run of ~45 s
        killed, survivor = site.kill_driver_with_spare(run_id)
        row = site.wait_final(run_id, timeout=240)
        assert row["state"] == "succeeded", row["message"]
        assert survivor.poll() is None and killed.poll() is not None and len(site.clusters) == 2  # none restarted
        assert_done_once(engine, before)
        messages = [m for (m,) in site.query("select message from ops_runevent where run_id = ? order by seq", run_id)]
        assert any("lease expired" in m and "another worker takes it over" in m for m in messages), messages
