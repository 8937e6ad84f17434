"""A live Slipway for the browser and API tests: a temporary SQLite database, the simulator
in this process, a real ASGI server (daphne, through ``manage.py runserver``) and a real
qcluster worker. ``with live_site() as site:`` gives ``site.base_url`` and ``site.manage``.
Every browser and live-API test starts its site here (tests/e2e/conftest.py, test_tenant.py,
test_api_live.py); ``setup`` is Python run with ``manage.py shell`` before the worker starts."""
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ops.bench._worker_site import BASE_DIR, WorkerSite
from ops.simproc import free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(BASE_DIR) / "test-artifacts"


@contextlib.contextmanager
def live_site(time_scale: float, artifacts_prefix: str = "e2e-", bound: int = 2, setup: str = "", workers: bool = True):
    from tests.conftest import start_sim

    engine, server = start_sim(time_scale=time_scale)
    s = WorkerSite(engine, server, bound=bound, workers=2, keep=bool(os.environ.get("E2E_KEEP")))
    web = None
    try:
        if setup:
            s.manage(["shell", "-c", setup])
        port = free_port()
        env = {**s.env, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
               "CSRF_COOKIE_SECURE": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        log = open(os.path.join(s.tmp, "daphne.log"), "w")  # noqa: SIM115
        web = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}",
                                "--noreload", "--insecure"], env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", port, 60, web)
        if workers:  # without: runs stay queued until the test calls s.start_cluster()
            s.start_cluster()
        s.base_url = f"http://127.0.0.1:{port}"
        yield s
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        for name in os.listdir(s.tmp):
            if name.endswith(".log"):
                shutil.copy(os.path.join(s.tmp, name), ARTIFACTS / f"{artifacts_prefix}{name}")
        if web is not None:
            web.terminate()
            try:
                web.wait(10)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait(5)
        s.close()
        server.stop()
