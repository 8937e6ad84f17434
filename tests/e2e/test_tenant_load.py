"""Issue 7 §6 under load: 200 checkpoint requests for 50 VMs at once, half through the API (tokens),
half through the web form (signed-in sessions with CSRF), from the tenants who own the VMs (alice:
Contoso Gold, carol: Fabrikam Dev) and from an operator, against a live server over the simulator.

Runs stay queued while the requests land (the worker starts after them), so every VM is held by
the first run that got it: exactly one request per VM is accepted, every other is a 409 naming that
run, nothing answers 5xx. Then the worker runs them all, and each VM has exactly one new checkpoint
in VMM (the simulator), the one the accepted request asked for."""
import collections
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.live_site import live_site
from tests.e2e.test_tenant import TENANCY

pytestmark = [pytest.mark.slow]

PER_VM = 4  # API and web, the VM's tenant and the operator
TENANTS = {"Contoso Gold": "alice", "Fabrikam Dev": "carol"}


@pytest.fixture(scope="module")
def site():
    with live_site(time_scale=0.05, artifacts_prefix="load-", bound=8, setup=TENANCY, workers=False) as s:
        s.tokens = {}
        for user in ("operator", "alice", "carol"):
            out = s.manage(["drf_create_token", user]).stdout
            s.tokens[user] = re.search(rf"Generated token (\w+) for user {user}", out).group(1)
        yield s


def web_session(site, username):
    web = requests.Session()
    web.get(f"{site.base_url}/login/", timeout=60)
    resp = web.post(f"{site.base_url}/login/", data={"username": username, "password": f"slipway-{username}",
                                                     "csrfmiddlewaretoken": web.cookies["csrftoken"]},
                    allow_redirects=False, timeout=60)
    assert resp.status_code == 302, resp.text[:500]
    return web.cookies.get_dict()


def chosen_vms(site):
    """50 VMs: Contoso Gold's and Fabrikam's (their tenants may checkpoint them), then others by name."""
    rows = site.query("select vmm_id, name, user_role_name from ops_virtualmachine order by "
                      "case when user_role_name in ('Contoso Gold', 'Fabrikam Dev') then 0 else 1 end, name")
    assert len(rows) >= 50, rows
    return [{"id": str(uuid.UUID(r[0])), "name": r[1], "tenant": TENANTS.get(r[2] or "", "operator")}
            for r in rows[:50]]


def test_200_concurrent_checkpoints_for_50_vms_one_run_each(site):
    vms = chosen_vms(site)
    before = {vm["name"]: set(vm["checkpoints"]) for vm in site.engine.state()["vms"]}
    cookies = {user: web_session(site, user) for user in ("operator", "alice", "carol")}
    requests_ = []  # (vm, via, user, checkpoint name)
    for vm in vms:
        for i, (via, user) in enumerate((("api", vm["tenant"]), ("web", vm["tenant"]), ("api", "operator"),
                                         ("web", "operator"))):
            requests_.append((vm, via, user, f"load-{vm['name']}-{i}"))
    assert len(requests_) == 50 * PER_VM == 200
    barrier = threading.Barrier(len(requests_), timeout=120)

    def send(item):
        vm, via, user, name = item
        http = requests.Session()
        if via == "api":
            http.headers["Authorization"] = f"Token {site.tokens[user]}"
            url, kw = f"{site.base_url}/api/v1/vms/{vm['id']}/checkpoint/", {"json": {"name": name}}
        else:
            http.cookies.update(cookies[user])
            url = f"{site.base_url}/vms/{vm['id']}/checkpoint/"
            kw = {"data": {"name": name, "description": "", "csrfmiddlewaretoken": cookies[user]["csrftoken"]}}
        barrier.wait()
        resp = http.post(url, allow_redirects=False, timeout=180, **kw)
        return item, resp.status_code, resp.text

    with ThreadPoolExecutor(max_workers=len(requests_)) as pool:
        answers = list(pool.map(send, requests_))

    statuses = collections.Counter(code for _, code, _ in answers)
    assert not [a for a in answers if a[1] >= 500], [(a[0][1:], a[1], a[2][:300]) for a in answers if a[1] >= 500]
    accepted = collections.defaultdict(list)
    for (vm, via, user, name), code, body in answers:
        if (via, code) in (("api", 202), ("web", 302)):
            accepted[vm["name"]].append(name)
        else:
            assert code == 409, (vm["name"], via, user, code, body[:500])
            held = re.search(r"run (\d+) \(Checkpoint", body)
            assert held, (via, body[:500])  # the refusal names the run that holds the VM
            assert vm["name"] in site.query("select title from ops_run where id = ?", int(held.group(1)))[0][0]
    assert {name: len(names) for name, names in accepted.items()} == {vm["name"]: 1 for vm in vms}, statuses
    assert statuses[409] == 150
    runs = site.query("select id, title from ops_run")
    assert len(runs) == 50, runs

    site.start_cluster()
    site.wait_for(lambda: site.query("select count(*) from ops_run where state in ('succeeded', 'failed', 'cancelled')")
                  [0][0] == 50, timeout=600, interval=0.5)
    failed = site.query("select id, title, state, message from ops_run where state != 'succeeded'")
    assert failed == [], failed
    after = {vm["name"]: set(vm["checkpoints"]) for vm in site.engine.state()["vms"]}
    for vm in vms:
        new = after[vm["name"]] - before[vm["name"]]
        assert new == set(accepted[vm["name"]]), (vm["name"], new)  # one new checkpoint: the accepted one
    untouched = {name for name in before if name not in accepted}
    assert all(after[name] == before[name] for name in untouched)
