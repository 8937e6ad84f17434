"""Crash takeover: the worker cluster driving a batch run is SIGKILLed; seconds until another takes the run over.

Two ``manage.py qcluster`` over one throw-away site, the production lease
(``SLIPWAY_LEASE_SECONDS``, 8 s, renewed by a heartbeat while a task lives)
and reaper loop (every ``SLIPWAY_REAPER_SECONDS``, 2 s, in every worker).
``takeover_s`` is from the kill to the run's "lease expired ... takes it over"
event. Goal: under 15 s.
"""
import time

TAKEN_OVER = "%lease expired%"


def add_arguments(parser):
    parser.add_argument("--lease", type=float, default=8.0, help="SLIPWAY_LEASE_SECONDS")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulator time scale")
    parser.add_argument("--timeout", type=float, default=600)


def run(options) -> dict:
    from ops.simulator.engine import SimEngine
    from ops.simulator.server import start_simulator

    from ._worker_site import WorkerSite

    engine = SimEngine.from_scenario("demo", time_scale=options["time_scale"])
    server = start_simulator(engine, port=0)
    site = None
    try:
        site = WorkerSite(engine, server, bound=2, workers=2, lease_seconds=options["lease"], debug_log=True)
        first = site.start_cluster()
        site.wait_ready(first)
        run_id = site.start_run("batch-checkpoint", batch="3")
        site.wait_for(lambda: site.query("select count(*) from ops_step where run_id = ? and action = 'stop-vm' "
                                         "and state = 'succeeded'", run_id)[0][0] >= 1, timeout=120, interval=0.02)
        site.kill_driver_with_spare(run_id)
        killed = time.monotonic()
        site.wait_for(lambda: site.query("select count(*) from ops_runevent where run_id = ? and message like ?",
                                         run_id, TAKEN_OVER)[0][0], options["timeout"], interval=0.05)
        takeover = time.monotonic() - killed
        row = site.wait_final(run_id, options["timeout"])
        return {"lease_s": options["lease"], "takeover_s": round(takeover, 2), "state": row["state"],
                **({"message": row["message"]} if row["state"] != "succeeded" else {})}
    finally:
        if site is not None:
            site.close()
        server.stop()
