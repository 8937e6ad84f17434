"""In a real browser (Debian's chromium, never a downloaded one), against a real
daphne server and a real qcluster worker over a temporary SQLite database and
the simulator: an operator starts a batch checkpoint from the UI and watches the
progress bar reach 100 % without reloading; a second browser opened mid-run
shows the whole log from seq 1."""
import os
import time

import pytest

from .live_site import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "e2e-Operator-pw-1"
USER = """
from django.contrib.auth import get_user_model
from ops import roles
u = get_user_model().objects.create_user("olga", password=%r)
roles.grant(u, "operator")
"""


@pytest.fixture
def site():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    with live_site(time_scale=0.15) as s:  # a batch run of the demo takes several seconds
        s.manage(["shell", "-c", USER % PASSWORD])
        yield s


def login(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/ops/runs/")
    return page


def bar_width(page) -> int:
    return int(page.eval_on_selector("[data-run-bar]", "el => parseInt(el.style.width, 10)"))


def logged_seqs(page) -> list[int]:
    return page.eval_on_selector_all("[data-log] li[data-seq]", "els => els.map(e => parseInt(e.dataset.seq, 10))")


def diagnose(site, run_id) -> str:
    row = site.query("select state, phase, progress, last_seq, lease_owner, lease_expires_at, message from ops_run "
                     "where id = ?", run_id)
    events = site.query("select seq, at, level, message from ops_runevent where run_id = ? order by seq desc limit 6", run_id)
    steps = site.query("select state, count(*) from ops_step where run_id = ? group by state", run_id)
    return f"site {site.tmp}; run {row}; steps {steps}; last events {events}"


def test_operator_watches_a_batch_run_reach_100_percent(site):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = login(browser, site.base_url)
            page.click("text=Start a run")
            page.click(".tabs >> text=Batch checkpoint")
            page.fill("input[name=batch]", "3")
            page.click("button:has-text('Start Batch checkpoint')")
            page.wait_for_url("**/ops/runs/*/")
            run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
            page.evaluate("window.__noReload = 'still the same document'")
            navigations = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

            # mid-run: the bar moved but the run is not over
            page.wait_for_function("() => { const w = parseInt(document.querySelector('[data-run-bar]').style.width, 10);"
                                   " return w > 0 && w < 100; }", timeout=60_000)
            assert site.run_row(run_id)["state"] in ("queued", "running"), "the run ended before mid-run was observed"
            page.screenshot(path=str(ARTIFACTS / "run-live-midrun.png"), full_page=True)

            late = login(browser, site.base_url)  # a second browser arrives mid-run
            late.goto(f"{site.base_url}/ops/runs/{run_id}/")

            try:
                page.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                                       timeout=120_000)
            except Exception as exc:
                page.screenshot(path=str(ARTIFACTS / "run-live-timeout.png"), full_page=True)
                raise AssertionError(f"run {run_id} not shown as succeeded: {diagnose(site, run_id)}") from exc
            page.wait_for_function("() => document.querySelector('[data-run-bar]').style.width === '100%'", timeout=10_000)
            assert page.evaluate("window.__noReload") == "still the same document"
            assert navigations == [], f"the page navigated: {navigations}"
            assert page.inner_text("[data-run-progress]").strip() == "100%"
            row = site.run_row(run_id)
            assert row["state"] == "succeeded", row["message"]

            final_seq = site.query("select max(seq) from ops_runevent where run_id = ?", run_id)[0][0]
            for p in (page, late):
                p.wait_for_function(f"() => window.slipwayRunLive && window.slipwayRunLive.lastSeq() >= {final_seq}",
                                    timeout=10_000)
                assert logged_seqs(p) == list(range(1, final_seq + 1))  # the full log, once each, in order
            messages = [m for (m,) in site.query("select message from ops_runevent where run_id = ? order by seq", run_id)]
            assert late.inner_text("[data-log]").count("\n") + 1 == len(messages)
            assert messages[-1] in late.inner_text("[data-log]")
            steps = site.query("select count(*) from ops_step where run_id = ?", run_id)[0][0]
            assert late.eval_on_selector_all("[data-steps] tr[data-step-id]", "els => els.length") == steps
            assert late.eval_on_selector_all("[data-steps] tr[data-state=succeeded]", "els => els.length") == steps
            page.wait_for_function("() => document.querySelector('[data-live-status]').textContent.startsWith('ended')",
                                   timeout=10_000)  # the watcher is told nothing more will come
            page.screenshot(path=str(ARTIFACTS / "run-live-done.png"), full_page=True)
        finally:
            browser.close()


def test_a_finished_runs_page_shows_its_whole_log_at_once(site):
    """The run page renders its log server-side: a watcher sees the events at once, before the socket is up."""
    from playwright.sync_api import sync_playwright

    run_id = site.start_run("batch-checkpoint", batch="3")
    site.wait_final(run_id, timeout=120)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = login(browser, site.base_url)
            started = time.monotonic()
            page.goto(f"{site.base_url}/ops/runs/{run_id}/", wait_until="domcontentloaded")
            assert logged_seqs(page)[0] == 1 and time.monotonic() - started < 5
            assert bar_width(page) == 100
            # the socket is up (the hello came) and says the run is over, not "live"
            page.wait_for_function("() => document.querySelector('[data-live-status]').textContent.startsWith('ended')")
        finally:
            browser.close()
