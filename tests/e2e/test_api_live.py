"""docs/api.md cannot rot: its Python samples run as written against a live server (daphne,
a qcluster worker, the simulator, the demo's plans and subscriptions), with tokens made by
``manage.py drf_create_token``: an operator's, a tenant's (alice, Contoso) and another tenant's
(carol, Fabrikam); and /api/v1/docs/ works in Chromium under its own CSP (no inline script),
signed in by session."""
import os
import re
import subprocess
import sys

import pytest

from ops.bench._worker_site import BASE_DIR

from .live_site import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_site
from .test_tenant import TENANCY

pytestmark = [pytest.mark.slow]

DOC = BASE_DIR / "docs" / "api.md"
PASSWORD = "e2e-Operator-pw-1"
USER = """
from django.contrib.auth import get_user_model
from portal import roles
u = get_user_model().objects.create_user("olga", password=%r)
roles.grant(u, "operator")
"""


def samples() -> dict[str, str]:
    """The named Python samples of docs/api.md: ``<!-- sample: NAME -->`` then a python block."""
    text = DOC.read_text()
    found = dict(re.findall(r"<!-- sample: ([\w-]+) -->\n```python\n(.*?)\n```", text, re.S))
    assert set(found) == {"list-my-vms", "checkpoint-and-wait", "restore", "start-and-follow", "list-runs"}, sorted(found)
    return found


@pytest.fixture(scope="module")
def site():
    with live_site(time_scale=0.05, artifacts_prefix="api-live-", setup=TENANCY + USER % PASSWORD) as s:
        s.tokens = {}
        for user in ("bench-operator", "alice", "carol"):
            out = s.manage(["drf_create_token", user]).stdout
            s.tokens[user] = re.search(rf"Generated token (\w+) for user {user}", out).group(1)
        s.token = s.tokens["bench-operator"]
        yield s


def run_sample(site, name, timeout=240, user="bench-operator", args=()):
    env = {**os.environ, "SLIPWAY_URL": site.base_url, "SLIPWAY_TOKEN": site.tokens[user]}
    return subprocess.run([sys.executable, "-c", samples()[name], *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=site.tmp)


def checkpoint_names(site, vm):
    return sorted(r[0] for r in site.query("select c.name from ops_checkpoint c join ops_virtualmachine v "
                                           "on v.id = c.vm_id where v.name = ?", vm))


def test_the_tenant_samples_run_as_written(site):
    listed = run_sample(site, "list-my-vms", user="alice", timeout=60)
    assert listed.returncode == 0, listed.stderr[-3000:]
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "app01" in rows and "web01" in rows and "web02" not in rows  # Contoso's, not Fabrikam's
    assert re.match(r"app01\s+\w+\s+Contoso Gold\s+create_view_restore\s+1 kept, newest: ", rows["app01"]), rows
    assert "view_restore" in rows["web01"] and "create_view_restore" not in rows["web01"]

    made = run_sample(site, "checkpoint-and-wait", user="alice", args=["app01"])
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert re.search(r"^run \d+ succeeded: ", made.stdout, re.M), made.stdout
    # one kept: the new checkpoint replaced the old one, in VMM and in what the API answers
    assert re.search(r"^checkpoints now: before upgrade \(\d{4}-\d\d-\d\dT\d\d:\d\d\)$", made.stdout, re.M), made.stdout
    assert checkpoint_names(site, "app01") == ["before upgrade"]

    restored = run_sample(site, "restore", user="alice", args=["app01"])
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    assert "restoring app01 to 'before upgrade' made " in restored.stdout
    assert re.search(r"^run \d+ succeeded: ", restored.stdout, re.M), restored.stdout

    # the plan refuses: Silver is view and restore; carol does not see Contoso's VMs at all
    silver = run_sample(site, "checkpoint-and-wait", user="alice", args=["web01"], timeout=60)
    assert silver.returncode == 2 and "refused (403): " in silver.stderr and "does not allow" in silver.stderr, silver.stderr
    other = run_sample(site, "checkpoint-and-wait", user="carol", args=["app01"], timeout=60)
    assert other.returncode == 1 and "no VM named app01 that you may see" in other.stderr, other.stderr
    assert checkpoint_names(site, "app01") == ["before upgrade"]


def test_the_docs_samples_run_as_written(site):
    follow = run_sample(site, "start-and-follow")
    assert follow.returncode == 0, follow.stdout[-3000:] + follow.stderr[-3000:]
    run_id = int(re.search(r"^run (\d+) queued; watch it live at http://127\.0\.0\.1:\d+/ops/runs/\1/$",
                           follow.stdout, re.M).group(1))
    row = site.run_row(run_id)
    assert row["state"] == "succeeded", row
    lines = follow.stdout.splitlines()
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d SUCCESS sql01 checkpointed", line) for line in lines), lines
    assert lines[-1] == f"run {run_id} succeeded (100%): {row['message']}"
    events = site.query("select count(*) from ops_runevent where run_id = ? and level != 'debug'", run_id)[0][0]
    assert len([line for line in lines if re.match(r"\d\d:\d\d:\d\d ", line)]) >= events - 1

    listed = run_sample(site, "list-runs", timeout=60)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert re.search(rf"^\s+{run_id}  succeeded  100%  \d{{4}}-\d\d-\d\dT\d\d:\d\d  Batch checkpoint: batch 3",
                     listed.stdout, re.M), listed.stdout

    # a second start of the same batch while none runs is fine; a refusal exits 2 naming the field
    bad = subprocess.run([sys.executable, "-c", samples()["start-and-follow"].replace('"batch": "3"', '"batch": "99"')],
                         env={**os.environ, "SLIPWAY_URL": site.base_url, "SLIPWAY_TOKEN": site.tokens["bench-operator"]},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "refused (400): Refused, nothing was changed: params.batch:" in bad.stderr


def test_the_docs_page_works_under_its_csp_signed_in(site):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            problems = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{site.base_url}/login/")
            page.fill("input[name=username]", "olga")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_function("() => !location.pathname.startsWith('/login/')", timeout=60_000)
            page.goto(f"{site.base_url}/api/v1/docs/")
            page.wait_for_selector("#operations-runs-runs_list", timeout=30_000)
            assert page.locator(".opblock").count() >= 9
            page.click("#operations-runs-runs_list .opblock-summary")
            page.click("#operations-runs-runs_list button.try-out__btn")
            page.click("#operations-runs-runs_list button.execute")
            code = page.wait_for_selector("#operations-runs-runs_list .live-responses-table tbody .response-col_status",
                                          timeout=30_000)
            assert code.inner_text().strip() == "200"  # "Try it out" acts through the signed-in session
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
            assert problems == [], problems  # no CSP violation, no script error
        finally:
            browser.close()
