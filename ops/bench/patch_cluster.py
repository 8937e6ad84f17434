"""Rolling patch of one cluster through the real path, makespan against the ideal.

Starts a simulator with one cluster of N nodes and V highly available VMs spread over them (every
node needs this month's updates, a ConfigMgr site deploys them), a throw-away SQLite site and a
real ``manage.py worker``, starts ``patch-cluster`` through the CLI and waits for it.

``ideal_s`` is the sum, node after node, of the simulator's own durations of each node's work, read
from its job records and its patching model after the run: the drain job (its migrations), the
collection refresh that takes the node in (the one that lets it go runs beside the moves back: not
counted), the installs of the updates it needed, the restart job
and the reboot, the resume job, and the move-back jobs (in waves of the VMM server's concurrency
bound). ``makespan_s`` is from the run's creation to its end; what is between the two is the
engine's overhead (polls, junctions, SCOM and ConfigMgr calls). ``by_stage`` says where: for each
stage of a node (ops/runbooks/patch_cluster.py, STAGES), summed over the nodes, the seconds the
run spent in it (from the end of the stage before) and the simulator's own share of them.
"""
import os

from .batch_checkpoint import _parse

JOB_STAGE = {"Disable-SCVMHost": "drain", "Restart-SCVMHost": "reboot", "Enable-SCVMHost": "resume",
             "Move-SCVirtualMachine": "return", "Start-SCVirtualMachine": "return"}


def add_arguments(parser):
    parser.add_argument("--nodes", type=int, default=8, help="nodes in the cluster")
    parser.add_argument("--vms", type=int, default=160, help="VMs over the nodes (all highly available)")
    parser.add_argument("--concurrency", type=int, default=8, help="max_concurrent_jobs of the VMM server")
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="simulator time scale (1 = real durations: install 240 s + 45 s, reboot 90 s)")
    parser.add_argument("--poll", type=float, default=0.2, help="SLIPWAY_PATCH_POLL_SECONDS for the run")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the temporary site (database, worker logs)")
    parser.add_argument("--debug-log", action="store_true", help="the worker logs at DEBUG (with --keep: to read)")


def scenario_data(nodes: int, vms: int) -> dict:
    from ops.simulator import scenario

    data = scenario.scale_scenario(vms)
    hosts = [f"hv{i:04d}.contoso.com" for i in range(1, nodes + 1)]
    data["clusters"] = [{"name": "CLU001", "hosts": [{"name": h, "memory_mb": 262144} for h in hosts]}]
    data["hosts"] = []
    for i, vm in enumerate(data["vms"]):
        vm["host"], vm["highly_available"] = hosts[i % nodes], True
    data.update(scenario.scale_patching(data["clusters"]))
    return data


def ideal_by_stage(fabric, nodes: list, installs: dict, bound: int) -> dict:
    """The simulator's own seconds per stage, summed over the nodes (see the module's docstring)."""
    w, scale = fabric.patching, fabric.time_scale
    out = {"enrol": w.refresh_s * scale * len(nodes), "install": sum(installs.values()),
           "back": sum(hp.reboot_s * scale for hp in w.hosts.values() if hp.host.lower() in {x.lower() for x in nodes})}
    moves = []

    def flush():
        ordered = sorted(moves, reverse=True)
        out["return"] = out.get("return", 0.0) + sum(ordered[k] for k in range(0, len(ordered), bound))  # each wave's longest
        moves.clear()

    for job in (fabric.jobs.jobs[i] for i in fabric.jobs.order):
        stage = JOB_STAGE.get(job.cmdlet)
        if stage == "return":
            moves.append(job.total)
            continue
        flush()
        if stage:
            out[stage] = out.get(stage, 0.0) + job.total
    flush()
    return out


def actual_by_stage(site, run_id: int) -> dict:
    """Seconds from the end of each stage's previous phase to the end of its last step, summed over the nodes."""
    rows = site.query('select phase, started_at, finished_at from ops_step where run_id = ? order by "index"', run_id)
    spans = {}
    for phase, start, end in rows:
        s, e = (_parse(x) if x else None for x in (start, end))
        lo, hi = spans.get(phase, (s, e))
        spans[phase] = (min(filter(None, (lo, s)), default=None), max(filter(None, (hi, e)), default=None))
    prev = _parse(site.query("select created_at from ops_run where id = ?", run_id)[0][0])
    out = {}
    for phase, (s, e) in spans.items():
        if e is None:
            continue
        stage = phase.split("@")[0]
        out[stage] = out.get(stage, 0.0) + (e - prev).total_seconds()
        prev = e
    return out


def run(options) -> dict:
    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine
    from ops.simulator.server import start_simulator

    from ._worker_site import WorkerSite

    n, bound, scale = options["nodes"], options["concurrency"], options["time_scale"]
    data = scenario_data(n, options["vms"])
    engine = SimEngine(scenario.from_data(data, scale))
    f = engine.fabric
    needed = {h.name: sum(f.patching.updates[kb].install_s for kb in f.patching.host_state(h).pending) * scale
              for h in f.hosts.values()}
    server = start_simulator(engine, port=0)
    site = None
    os.environ["SLIPWAY_PATCH_POLL_SECONDS"] = str(options["poll"])
    os.environ["SLIPWAY_PATCH_TIMEOUT_SCALE"] = str(scale)
    try:
        site = WorkerSite(engine, server, bound=bound, workers=2, keep=options["keep"],
                           debug_log=options["debug_log"])
        site.start_cluster()
        site.wait_ready(site.clusters[-1])
        run_id = site.start_run("patch-cluster", cluster="CLU001")
        row = site.wait_final(run_id, options["timeout"])
        makespan = (_parse(row["finished_at"]) - _parse(row["created_at"])).total_seconds()
        ideal = ideal_by_stage(f, sorted(needed), needed, bound)
        actual = actual_by_stage(site, run_id)
        total = sum(ideal.values())
        steps = site.query("select count(*) from ops_step where run_id = ?", run_id)[0][0]
        return {"nodes": n, "vms": len(f.vms), "concurrency": bound, "time_scale": scale, "run": run_id,
                "state": row["state"], "makespan_s": round(makespan, 2), "ideal_s": round(total, 2),
                "ratio": round(makespan / total, 3) if total else None, "steps": steps,
                "by_stage": {k: {"run_s": round(v, 2), "sim_s": round(ideal.get(k, 0.0), 2)} for k, v in actual.items()},
                **({"message": row["message"]} if row["state"] != "succeeded" else {})}
    finally:
        if site is not None:
            site.close()
        server.stop()
