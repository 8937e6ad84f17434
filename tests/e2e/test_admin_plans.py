"""An admin in a real browser (Debian's chromium) against a live server over the simulator: creates
a plan, gives it a subscription with a new VMM user role, changes the plan's checkpoint permission
and follows the plan update run to its end; a bad name is refused on the form. Screenshots of the
plans list, a plan, the subscriptions list and a subscription at 1400 and 390 px (README)."""
import os
import re

import pytest

from tests.e2e.live_site import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_site
from tests.e2e.test_tenant import TENANCY, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def site():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    with live_site(time_scale=0.05, artifacts_prefix="e2e-admin-", setup=TENANCY) as s:
        yield s


def test_admin_makes_a_plan_and_a_subscription_and_pushes_a_change(site):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            problems = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{site.base_url}/login/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "slipway-admin")
            page.click("button[type=submit]")
            page.wait_for_function("() => !location.pathname.startsWith('/login/')", timeout=60_000)

            page.click("nav >> text=Plans")
            expect(page.locator("table a", has_text="Contoso Gold")).to_be_visible()
            for width in (1400, 390):
                shoot(page, "admin-plans", width)
            page.set_viewport_size({"width": 1400, "height": 900})

            # a name that hides text is refused on the form, naming the field, and nothing is made
            page.goto(f"{site.base_url}/ops/plans/new/")
            page.fill("input[name=name]", "Bronze\u202e")
            page.check("label:has-text('Dev (vmm01)') >> input")
            page.click("button:has-text('Create plan')")
            expect(page.locator(".has-error, .form-errors").first).to_contain_text("hide or reorder text")
            assert site.query("select count(*) from ops_plan where name like 'Bronze%'")[0][0] == 0

            page.fill("input[name=name]", "Bronze")
            page.fill("textarea[name=description]", "Small VMs: restore only")
            page.select_option("select[name=checkpoint_permission]", "view_restore")
            page.fill("input[name=checkpoints_kept]", "3")
            page.fill("input[name=checkpoint_max_age_days]", "14")
            page.click("button:has-text('Create plan')")
            errors = page.locator(".errorlist, .form-errors").all_inner_texts()
            assert errors == [], errors
            expect(page.locator("body")).to_contain_text("Plan Bronze created")

            # a subscription with a new VMM user role, alice in it
            page.click("text=New subscription on this plan")
            page.fill("input[name=name]", "Tailspin")
            page.fill("textarea[name=members]", "alice TAILSPIN\\alice")
            page.click("button[type=submit].primary")
            expect(page.locator("body")).to_contain_text("TAILSPIN\\alice")
            role = next(r for r in site.engine.state()["user_roles"] if r["name"] == "Tailspin")
            assert role["members"] == ["TAILSPIN\\alice"] and role["clouds"] == ["Dev"]
            for width in (1400, 390):
                shoot(page, "admin-subscription", width)
            page.set_viewport_size({"width": 1400, "height": 900})
            sub_push = site.query("select max(id) from ops_run where kind = 'plan-update'")[0][0]
            site.wait_final(sub_push, 120)

            # the permission widens: a plan update run, linked from the message, that VMM is read to carry
            page.click("nav >> text=Plans")
            page.click("table >> text=Bronze")
            page.select_option("select[name=checkpoint_permission]", "create_view_restore")
            page.click("button:has-text('Save plan')")
            expect(page.locator("body")).to_contain_text("Pushing to VMM")
            link = page.locator("a", has_text=re.compile(r"^run #\d+$")).first
            run_id = int(re.search(r"\d+", link.inner_text()).group(0))
            for width in (1400, 390):
                shoot(page, "admin-plan", width)
            page.set_viewport_size({"width": 1400, "height": 900})
            link.click()
            page.wait_for_function("() => document.querySelector('[data-run-state]').textContent.trim() === 'Succeeded'",
                                   timeout=120_000)  # live, without a reload
            assert site.run_row(run_id)["state"] == "succeeded"
            role = next(r for r in site.engine.state()["user_roles"] if r["name"] == "Tailspin")
            assert role["permissions"]["Dev"] == ["Checkpoint"], role

            page.click("nav >> text=Plans")
            page.goto(f"{site.base_url}/ops/subscriptions/")
            expect(page.locator("table a", has_text="Tailspin")).to_be_visible()
            for width in (1400, 390):
                shoot(page, "admin-subscriptions", width)
            assert problems == [], problems
        finally:
            browser.close()
