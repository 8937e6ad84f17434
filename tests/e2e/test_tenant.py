"""A tenant in a real browser (Debian's chromium) against a real web server and qcluster worker over
the simulator: alice checkpoints a Gold VM (the replace warning, the live progress bar, the new
checkpoint without reloading), restores it with the confirmation; carol sees none of Contoso's VMs
and gets a 404 for their URLs. Screenshots of My VMs and the VM page at 1400 and 390 px."""
import os
from pathlib import Path

import pytest

from ops.bench._worker_site import BASE_DIR

from tests.e2e.live_site import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCS = Path(BASE_DIR) / "docs"
TENANCY = """
import io
from ops.inventory.sync import sync_connection
from ops.models import ServerConnection
from portal.management.commands.demo import Command
cmd = Command(stdout=io.StringIO())
cmd._users()
assert sync_connection(ServerConnection.objects.get(name="vmm01")).ok
cmd._tenancy()
"""


@pytest.fixture
def site():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    # a checkpoint job of the demo takes 2 s at this scale: the bar is seen moving
    with live_site(time_scale=0.5, artifacts_prefix="e2e-tenant-", bound=4, setup=TENANCY) as s:
        yield s


def login(browser, site, username, width=1400, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{site.base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"slipway-{username}")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base_url}/vms/")
    return page


def vm_id(site, name):
    return site.query("select vmm_id from ops_virtualmachine where name = ?", name)[0][0]


def _uuid(raw):
    import uuid

    return str(uuid.UUID(raw))


def shoot(page, name, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


def test_alice_checkpoints_and_restores_carol_sees_none_of_it(site):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    app01 = _uuid(vm_id(site, "app01"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = login(browser, site, "alice")
            assert page.locator("table.vms >> text=app01").count() == 1
            assert page.locator("table.vms >> text=web02").count() == 0  # Fabrikam's
            page.wait_for_function("() => document.querySelector('[data-live-status]').textContent === 'status: live'",
                                   timeout=30_000)
            for width in (1400, 390):
                shoot(page, "tenant-my-vms", width)
            page.set_viewport_size({"width": 1400, "height": 900})

            page.click("table.vms >> text=app01")
            page.wait_for_url(f"**/vms/{app01}/")
            page.click("text=New checkpoint…")
            notice = page.inner_text("[data-plan-notice]")
            assert notice.startswith("This replaces checkpoint 'before-patch-09' made ") and \
                notice.endswith("a restore to it will no longer be possible."), notice
            page.fill("input[name=name]", "before the upgrade")
            page.fill("textarea[name=description]", "alice, from the browser")
            page.click("button:has-text('Replace and create checkpoint')")
            page.wait_for_url(f"**/vms/{app01}/")
            page.evaluate("window.__noReload = 'same document'")
            page.evaluate("""() => { window.__widths = [];
                new MutationObserver(() => window.__widths.push(parseInt(document.querySelector('[data-run-bar]').style.width, 10)))
                  .observe(document.querySelector('[data-run-bar]'), {attributes: true}); }""")
            page.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                                   timeout=120_000)
            # the new checkpoint replaces the old one in the list, without a reload
            page.wait_for_function("() => { const t = document.querySelector('[data-checkpoint-list]').innerText;"
                                   " return t.includes('before the upgrade') && !t.includes('before-patch-09'); }",
                                   timeout=30_000)
            assert page.evaluate("window.__noReload") == "same document"
            widths = page.evaluate("window.__widths")
            assert any(0 < w < 100 for w in widths) and widths[-1] == 100, widths
            assert "replaced 'before-patch-09'" in page.inner_text("[data-run-message]")
            for width in (1400, 390):
                shoot(page, "tenant-vm", width)
            page.set_viewport_size({"width": 1400, "height": 900})
            if os.environ.get("SLIPWAY_DOCS_SCREENSHOTS"):  # refresh the README's picture on purpose only
                page.screenshot(path=str(DOCS / "tenant-vm.png"), full_page=True)

            # restore, through the confirmation page
            page.click("[data-checkpoint-list] >> text=Restore…")
            warning = page.inner_text("[data-restore-warning]")
            assert "is lost" in warning and "restart" in warning
            assert page.inner_text("[data-restore-name]") == "before the upgrade"
            page.click("button:has-text('Restore to')")
            page.wait_for_url(f"**/vms/{app01}/")
            page.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                                   timeout=120_000)
            assert "app01 restored to 'before the upgrade'." in page.inner_text("[data-run-message]")

            carol = login(browser, site, "carol")
            assert carol.locator("table.vms >> text=web02").count() == 1
            assert carol.locator("table.vms >> text=app01").count() == 0
            for path in (f"/vms/{app01}/", f"/vms/{app01}/checkpoint/", f"/vms/{app01}/restore/"):
                assert carol.goto(site.base_url + path).status == 404, path
        finally:
            browser.close()
