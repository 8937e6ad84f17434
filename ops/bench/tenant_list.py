"""My VMs as a tenant among N VMs: p95 of the page (and of GET /api/v1/vms/ once it exists) and their query counts.

Builds the inventory in the configured database inside one transaction that is rolled back at the end
(nothing is left behind): ``--vms`` VMs in subscriptions of ``--per-tenant`` VMs each, every other VM
with two checkpoints, and a tenant who is a member of one subscription. Then requests the page (and
the API's first page) ``--requests`` times through Django's test client, in process, signed in as that
tenant, and prints ``{"page": {"p95_ms", "queries"}, "api": {...} or null}``.
"""
import statistics
import time
import uuid

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import NoReverseMatch, reverse

API_URL_NAMES = ("api:vm-list", "api:vms", "api-vms")


def add_arguments(parser):
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--per-tenant", type=int, default=500, help="VMs per subscription")
    parser.add_argument("--requests", type=int, default=60, help="requests per URL (the first 5 warm up, not counted)")


class _Rollback(Exception):
    pass


def _build(n_vms: int, per_tenant: int):
    from django.contrib.auth import get_user_model

    from ops import roles
    from ops.models import Checkpoint, Cloud, Plan, ServerConnection, Subscription, SubscriptionMember, VirtualMachine

    conn = ServerConnection.objects.create(name=f"bench-tenant-{uuid.uuid4().hex[:6]}", kind="vmm", host="bench.invalid",
                                           username="bench")
    cloud = Cloud.objects.create(connection=conn, vmm_id=uuid.uuid4(), name="Bench")
    plan = Plan.objects.create(name=f"Bench {conn.name}", connection=conn, checkpoint_permission="create_view_restore")
    plan.clouds.add(cloud)
    tenant = get_user_model().objects.create_user(f"bench-tenant-{uuid.uuid4().hex[:6]}", password=None)
    roles.grant(tenant, roles.TENANT)
    role_ids = [str(uuid.uuid4()) for _ in range(max(1, -(-n_vms // per_tenant)))]
    for i, role_id in enumerate(role_ids):
        sub = Subscription.objects.create(plan=plan, name=f"Bench tenant {conn.name} {i}", user_role_id=role_id)
        if i == 0:
            SubscriptionMember.objects.create(subscription=sub, user=tenant, vmm_user=f"BENCH\\{tenant.username}")
    statuses = ("Running", "PowerOff", "Saved")
    vms = VirtualMachine.objects.bulk_create([
        VirtualMachine(connection=conn, vmm_id=uuid.uuid4(), name=f"vm{i:05d}", cloud=cloud, status=statuses[i % 3],
                       user_role_id=role_ids[i // per_tenant], memory_mb=2048, checkpoint_count=2 if i % 2 else 0)
        for i in range(n_vms)], batch_size=2000)
    Checkpoint.objects.bulk_create([Checkpoint(vm=vm, vmm_id=uuid.uuid4(), name=f"cp{k}", added_at=vm_time(k))
                                    for vm in vms[1::2] for k in (1, 2)], batch_size=2000)
    return tenant


def vm_time(k):
    from django.utils import timezone

    return timezone.now() - timezone.timedelta(days=k)


def _measure(client, url, requests):
    times, queries = [], None
    for i in range(requests):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            resp = client.get(url)
            elapsed = time.perf_counter() - started
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url} answered {resp.status_code}")
        if i >= 5:
            times.append(elapsed * 1000)
            queries = len(ctx.captured_queries)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p95_ms": round(p95, 1), "median_ms": round(statistics.median(times), 1), "queries": queries}


def _api_url():
    for name in API_URL_NAMES:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def run(options) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    out = {}
    try:
        with transaction.atomic(), override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            tenant = _build(options["vms"], options["per_tenant"])
            client = Client()
            client.force_login(tenant)
            out["page"] = _measure(client, reverse("my_vms"), max(6, options["requests"]))
            api = _api_url()
            out["api"] = _measure(client, api, max(6, options["requests"])) if api else None
            out["vms"], out["per_tenant"] = options["vms"], options["per_tenant"]
            raise _Rollback
    except _Rollback:
        pass
    return out
