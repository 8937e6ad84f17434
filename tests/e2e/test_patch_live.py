"""A patch run in a real browser (Debian's chromium) against a real daphne server, a real worker and
the simulator (demo fabric with ConfigMgr): the operator opens the preflight page of CLU-B, is refused
until each VM the drain will save is ticked, starts the patch, and watches the timeline grow node by
node to the end without reloading; a second browser opened mid-run sees the same timeline."""
import os

import pytest

from tests.e2e.conftest import ARTIFACTS, CHROMIUM, CREATE_USERS, PASSWORD, USERS, login, live_site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SAVED = ("web06", "app04")   # running on hv-b01 / hv-b02 and not highly available


@pytest.fixture
def patch_site(monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    monkeypatch.setenv("SLIPWAY_PATCH_POLL_SECONDS", "0.3")
    monkeypatch.setenv("SLIPWAY_PATCH_TIMEOUT_SCALE", "0.05")   # the simulator runs 20x faster: so do its minutes
    with live_site(time_scale=0.05, artifacts_prefix="e2e-patch-", setup=CREATE_USERS % (USERS, PASSWORD)) as s:
        yield s


def done_nodes(page) -> list[str]:
    """The nodes whose card says their last stage (verify every VM is home) succeeded."""
    return page.eval_on_selector_all(
        "[data-node-card].succeeded",
        "els => els.filter(e => e.textContent.includes('Verify every VM is home')).map(e => e.dataset.nodeCard)")


SEGMENTS = ("[...document.querySelector('svg.timeline').querySelectorAll('rect[data-state]')]"
            ".map(r => r.querySelector('title').textContent.split(' — ')[0] + ' ' + r.dataset.state)")


def segments(page) -> list[str]:
    """The timeline's segments as 'node: phase state', in document order."""
    return page.evaluate(f"() => {SEGMENTS}")


def cards(page) -> dict:
    return dict(page.eval_on_selector_all("[data-node-card]", "els => els.map(e => [e.dataset.nodeCard, e.className])"))


def test_operator_patches_clu_b_from_the_preflight_page_and_watches_it_live(patch_site, browser):
    page = login(browser, patch_site.base_url)
    page.goto(f"{patch_site.base_url}/ops/patch/?cluster=CLU-B")
    page.wait_for_selector("#preflight")
    page.click("details.more-options summary")
    assert page.locator("input[name=move_stopped_ha]").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"patch-preflight-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    for vm in SAVED:
        assert page.locator(f"[data-confirm-vm={vm}]").count() == 1, f"{vm} is named as a VM the drain saves"
    page.check(f"[data-confirm-vm={SAVED[0]}]")
    page.click("text=Start patching CLU-B")
    page.wait_for_selector("#preflight")
    assert "Confirm by name" in page.inner_text("main") and "/ops/patch/" in page.url, "one VM unticked: refused"
    assert patch_site.query("select count(*) from ops_run")[0][0] == 0
    for vm in SAVED:
        page.check(f"[data-confirm-vm={vm}]")
    page.click("text=Start patching CLU-B")
    page.wait_for_url("**/ops/runs/*/", timeout=60_000)
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.evaluate("window.__noReload = 'still the same document'")
    page.wait_for_function("() => document.querySelectorAll('[data-node-card]').length === 3", timeout=60_000)
    nodes = list(cards(page))
    second = None
    try:
        seen, grown = [], []
        for i in range(3):
            page.wait_for_function(f"() => [...document.querySelectorAll('[data-node-card].succeeded')]"
                                   f".filter(e => e.textContent.includes('Verify every VM is home')).length >= {i + 1}",
                                   timeout=240_000)
            now = done_nodes(page)
            seen.append(now)
            grown.append(page.eval_on_selector_all("svg.timeline rect[data-state]", "els => els.length"))
            if i == 0:
                second = login(browser, patch_site.base_url)
                second.goto(page.url)
                second.wait_for_selector("svg.timeline")
                assert done_nodes(second) == now or len(done_nodes(second)) >= len(now)
        page.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                               timeout=120_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "patch-live-timeout.png"), full_page=True)
        raise
    assert [len(s) for s in seen] == [1, 2, 3], f"one node at a time: {seen}"
    assert grown == sorted(set(grown)) and grown[0] >= 8, f"a segment per phase, more with each node: {grown}"
    assert sorted(seen[-1]) == sorted(nodes)
    assert page.evaluate("window.__noReload") == "still the same document"
    second.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                             timeout=120_000)
    # the run's state arrives by websocket, the timeline by its own fetch (static/js/run-timeline.js):
    # wait for the second browser's timeline to show every node's last stage, then for both to agree
    second.wait_for_function("() => [...document.querySelectorAll('[data-node-card].succeeded')]"
                             ".filter(e => e.textContent.includes('Verify every VM is home')).length === 3",
                             timeout=60_000)
    mine = segments(page)
    second.wait_for_function(f"mine => JSON.stringify({SEGMENTS}) === JSON.stringify(mine)", arg=mine, timeout=30_000)
    assert cards(second) == cards(page), "the second browser sees the same timeline"
    steps = patch_site.query("select count(*) from ops_step where run_id = ?", run_id)[0][0]
    assert page.inner_text("[data-steps-total]").strip() == str(steps), "the step count follows the steps that appear"
    state, message = patch_site.query("select state, message from ops_run where id = ?", run_id)[0]
    assert state == "succeeded" and "3 of 3 nodes patched" in message, message
    page.screenshot(path=str(ARTIFACTS / "patch-live-done.png"), full_page=True)
