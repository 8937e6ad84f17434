"""Batch checkpoint of N VMs through the real path, makespan against the ideal.

Starts a simulator with the ``scale`` scenario (every VM in one batch), a
throw-away SQLite site and a real ``manage.py qcluster``, starts
``batch-checkpoint`` through the CLI and waits for it. ``ideal_s`` is the
critical path of the run's VMM jobs given the simulator's job durations and
the VMM server's concurrency bound N: ceil(R/N)*shutdown + ceil(V/N)*checkpoint
+ ceil(R/N)*start, for V VMs of which R were running (the SCOM calls and the
discovery have no job and count as overhead). ``makespan_s`` is from the run's
creation to its end.
"""
import datetime as dt
import math
import time

BATCH = "7"


def add_arguments(parser):
    parser.add_argument("--vms", type=int, default=500, help="VMs in the batch")
    parser.add_argument("--concurrency", type=int, default=50, help="max_concurrent_jobs of the VMM server")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="simulator time scale (1 = the simulator's own job durations: checkpoint 4 s, shutdown 6 s, start 5 s)")
    parser.add_argument("--workers", type=int, default=2, help="django-q2 workers")
    parser.add_argument("--no-scom", action="store_true", help="no SCOM connection (no maintenance steps)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the temporary site (database, worker logs)")


def _parse(ts):
    value = dt.datetime.fromisoformat(ts)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def where_time_went(table, bound: int, created, finished) -> dict:
    """Where the makespan beyond the ideal went, from the simulator's own job records:
    ``before_first_job`` (discovery, SCOM, the first submission), ``refill`` (per phase: the
    sum over waves of the delay between a slot freeing and its next job starting, i.e. the
    engine noticing the end and submitting the next job), ``junctions`` (last job of a phase
    to the first of the next) and ``after_last_job`` (the last judgement, SCOM, the summary)."""
    phases: dict[str, list] = {}
    for job in (table.jobs[i] for i in table.order):
        start = job.start_time
        end = start + dt.timedelta(seconds=job.total)
        phases.setdefault(job.cmdlet, []).append((start, end))
    out, last_end, first_start = {"refill": {}, "junctions": 0.0}, None, None
    for cmdlet, spans in phases.items():
        starts = sorted(a for a, _ in spans)
        ends = sorted(b for _, b in spans)
        # the i-th start past the first `bound` took the slot the (i-bound)-th end freed; waves of
        # a slot count once (the latest start of a wave is what delays the next)
        delays = [(starts[i] - ends[i - bound]).total_seconds() for i in range(bound, len(starts))]
        waves = [max(delays[k:k + bound]) for k in range(0, len(delays), bound)]
        out["refill"][cmdlet] = round(sum(waves) + (starts[min(bound, len(starts)) - 1] - starts[0]).total_seconds(), 2)
        if last_end is not None:
            out["junctions"] += (starts[0] - last_end).total_seconds()
        first_start = first_start or starts[0]
        last_end = ends[-1]
    if first_start is None:
        return {}
    out["junctions"] = round(out["junctions"], 2)
    out["before_first_job"] = round((first_start - created).total_seconds(), 2)
    out["after_last_job"] = round((finished - last_end).total_seconds(), 2)
    return out


def run(options) -> dict:
    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine
    from ops.simulator.server import start_simulator

    from ._worker_site import WorkerSite

    n, bound, scale = options["vms"], options["concurrency"], options["time_scale"]
    data = scenario.scale_scenario(n)
    for vm in data["vms"]:
        vm["custom1"] = BATCH
    engine = SimEngine(scenario.from_data(data, scale))
    server = start_simulator(engine, port=0)
    site = None
    try:
        site = WorkerSite(engine, server, bound=bound, workers=options["workers"], keep=options["keep"])
        if options["no_scom"]:
            site.manage(["shell", "-c", "from ops.models import ServerConnection as S; "
                                        "S.objects.filter(kind='scom').update(enabled=False)"])
        f = engine.fabric
        vms = list(f.vms.values())
        running = sum(1 for vm in vms if vm.status == "Running")
        ideal = (math.ceil(running / bound) * f.duration("shutdown") + math.ceil(len(vms) / bound) * f.duration("checkpoint")
                 + math.ceil(running / bound) * f.duration("start"))
        site.start_cluster()
        time.sleep(3)  # let the cluster's workers come up
        run_id = site.start_run("batch-checkpoint", batch=BATCH)
        row = site.wait_final(run_id, options["timeout"])
        makespan = (_parse(row["finished_at"]) - _parse(row["created_at"])).total_seconds()
        jobs = site.query("select count(*) from ops_step where run_id = ? and job_id != ''", run_id)[0][0]
        events = site.query("select count(*) from ops_runevent where run_id = ?", run_id)[0][0]
        return {"vms": len(vms), "running": running, "concurrency": bound, "time_scale": scale,
                "state": row["state"], "makespan_s": round(makespan, 2), "ideal_s": round(ideal, 2),
                "ratio": round(makespan / ideal, 3) if ideal else None, "vmm_jobs": jobs, "events": events,
                "lost_s": where_time_went(f.jobs, bound, _parse(row["created_at"]), _parse(row["finished_at"])),
                **({"message": row["message"]} if row["state"] != "succeeded" else {})}
    finally:
        if site is not None:
            site.close()
        server.stop()
