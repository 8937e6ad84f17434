"""A real site for the browser tests (Debian's chromium, never a downloaded one): a
real ASGI server and a real qcluster worker over a temporary SQLite database and
the simulator, with one user per role."""
import os

import pytest

from tests.e2e.live_site import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, live_site  # noqa: F401 - the tests import them from here
PASSWORD = "e2e-Role-pw-1"
USERS = {"olga": "operator", "adam": "admin", "tina": "tenant"}  # user name: role
CREATE_USERS = """
from django.contrib.auth import get_user_model
from portal import roles
for name, role in %r.items():
    roles.grant(get_user_model().objects.create_user(name, password=%r), role)
"""


@pytest.fixture
def site():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    with live_site(time_scale=0.15, setup=CREATE_USERS % (USERS, PASSWORD)) as s:  # a batch run takes several seconds
        yield s


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def login(browser, base_url, username="olga"):
    """A new browser context signed in as ``username``; returns its page, on the role's landing page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_function("() => !location.pathname.startsWith('/login/')", timeout=60_000)
    return page
