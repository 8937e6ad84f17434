"""A tenant's checkpoint through the API, end to end: accept latency and the time until the tenant sees it.

Starts the demo simulator, a throw-away site (ops/bench/_worker_site.py) with a real ASGI server and
a worker, a Gold plan (create, view and restore; 1 kept, so each action makes a checkpoint, confirms
it in VMM and removes the old one) with a subscription adopting the simulator's "Contoso Gold" user
role, and a tenant in it. Then, ``--actions`` times on a different VM of the subscription, one after
another: ``POST /api/v1/vms/{id}/checkpoint/`` with the tenant's token (``accept``: until the 202),
then ``GET /api/v1/vms/{id}/`` until the new checkpoint is listed and the old one is gone (``seen``:
from the POST). An action's ideal is the simulator's own duration of its VMM jobs: the create, and
the merge of the old checkpoint when the VM had one. Prints ``accept_ms``, ``seen_s``, ``ideal_s``
and ``overhead_s`` (seen minus ideal, per action), each as median and p95, and ``ratio`` (the
median of seen / ideal).
"""
import json
import re
import statistics
import time
import uuid

import requests

from ..simulator.engine import SimEngine
from ..simulator.server import start_simulator
from ._worker_site import WorkerSite

ROLE = "Contoso Gold"
SETUP = """
import json
from django.contrib.auth import get_user_model
from ops import roles
from ops.inventory.sync import sync_connection
from ops.models import ServerConnection
from ops.services import plans, subscriptions
cfg = json.loads(%r)
User = get_user_model()
admin = User.objects.create_user("bench-admin", password=None)
roles.grant(admin, "admin")
tenant = User.objects.create_user("bench-tenant", password=None)
roles.grant(tenant, "tenant")
conn = ServerConnection.objects.get(name="vmm01")
assert sync_connection(conn).ok
plan = plans.create_plan(admin, name="Bench Gold", connection=conn, clouds=["Gold"],
                         checkpoint_permission="create_view_restore", checkpoints_kept=1)
subscriptions.create_subscription(admin, plan, cfg["role"], [(tenant, cfg["vmm_user"])], adopt_user_role=cfg["role"])
"""


def add_arguments(parser):
    parser.add_argument("--actions", type=int, default=10, help="checkpoints, one VM each, one after another (at most 20)")
    parser.add_argument("--time-scale", type=float, default=0.25,
                        help="simulator time scale (1 = the simulator's own job durations)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each action")
    parser.add_argument("--keep", action="store_true", help="keep the temporary site (database, logs)")


def _stats(values, digits):
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"median": round(statistics.median(values), digits), "p95": round(p95, digits)}


def _member(engine) -> str:
    """An account the simulator's role has as a member (VMM checks -OnBehalfOfUser against it)."""
    roles_ = {r["name"]: r for r in engine.state()["user_roles"]}
    return roles_[ROLE]["members"][0]


def _wait_seen(api, url, new_name, old_ids, timeout) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm = api.get(url, timeout=30).json()
        names = {cp["name"] for cp in vm["checkpoints"]}
        ids = {cp["id"] for cp in vm["checkpoints"]}
        if new_name in names and not ids & old_ids:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{vm['name']}: checkpoint {new_name!r} not seen within {timeout:.0f} s: {vm['checkpoints']}")


def run(options) -> dict:
    engine = SimEngine.from_scenario("demo", time_scale=options["time_scale"])
    server = start_simulator(engine, port=0)
    site = None
    try:
        site = WorkerSite(engine, server, bound=8, workers=2, keep=options["keep"])
        site.manage(["shell", "-c", SETUP % json.dumps({"role": ROLE, "vmm_user": _member(engine)})])
        token = re.search(r"Generated token (\w+) for user bench-tenant",
                          site.manage(["drf_create_token", "bench-tenant"]).stdout).group(1)
        base = site.start_web()
        site.start_cluster()
        api = requests.Session()
        api.headers["Authorization"] = f"Token {token}"
        vms = sorted(api.get(f"{base}/api/v1/vms/", params={"page_size": 200}, timeout=60).json()["results"],
                     key=lambda vm: vm["name"])[: max(1, min(options["actions"], 20))]
        f = engine.fabric
        accept, seen, ideal = [], [], []
        for vm in vms:
            url = f"{base}/api/v1/vms/{vm['id']}/"
            old = {cp["id"] for cp in vm["checkpoints"]}
            name = f"bench {uuid.uuid4().hex[:8]}"
            started = time.perf_counter()
            resp = api.post(f"{url}checkpoint/", json={"name": name}, timeout=60)
            accept.append((time.perf_counter() - started) * 1000)
            if resp.status_code != 202:
                raise RuntimeError(f"{vm['name']}: the checkpoint was refused ({resp.status_code}): {resp.text[:500]}")
            _wait_seen(api, url, name, old, options["timeout"])
            seen.append(time.perf_counter() - started)
            ideal.append(f.duration("checkpoint") + (f.duration("remove_checkpoint") if old else 0.0))
        return {"actions": len(vms), "time_scale": options["time_scale"], "accept_ms": _stats(accept, 1),
                "seen_s": _stats(seen, 2), "ideal_s": _stats(ideal, 2),
                "overhead_s": _stats([s - i for s, i in zip(seen, ideal)], 2),
                "ratio": round(statistics.median(s / i for s, i in zip(seen, ideal)), 3)}
    finally:
        if site is not None:
            site.close()
        server.stop()
