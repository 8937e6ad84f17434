"""A real site for the browser tests (Debian's chromium, never a downloaded one): a
real ASGI server and a real qcluster worker over a temporary SQLite database and
the simulator, with one user per role."""
import os
import shutil
import subprocess
import sys

import pytest

from ops.bench._worker_site import BASE_DIR, WorkerSite
from ops.simproc import free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = BASE_DIR / "test-artifacts"
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
    from tests.conftest import start_sim

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    engine, server = start_sim(time_scale=0.15)  # a batch run of the demo takes several seconds
    s = WorkerSite(engine, server, bound=2, workers=2, keep=bool(os.environ.get("E2E_KEEP")))
    web = None
    try:
        s.manage(["shell", "-c", CREATE_USERS % (USERS, PASSWORD)])
        port = free_port()
        env = {**s.env, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
               "CSRF_COOKIE_SECURE": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        log = open(os.path.join(s.tmp, "daphne.log"), "w")  # noqa: SIM115
        web = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}",
                                "--noreload", "--insecure"], env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", port, 60, web)
        s.start_cluster()
        s.base_url = f"http://127.0.0.1:{port}"
        yield s
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        for name in os.listdir(s.tmp):
            if name.endswith(".log"):
                shutil.copy(os.path.join(s.tmp, name), ARTIFACTS / f"e2e-{name}")
        if web is not None:
            web.terminate()
            try:
                web.wait(10)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait(5)
        s.close()
        server.stop()


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
