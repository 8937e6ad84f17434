"""A live Slipway for the browser and API tests: a temporary SQLite database, the simulator
in this process, a real ASGI server (daphne, through ``manage.py runserver``) and a real
qcluster worker. ``with live_site() as site:`` gives ``site.base_url`` and ``site.manage``.
Every browser and live-API test starts its site here (tests/e2e/conftest.py, test_tenant.py,
test_api_live.py); ``setup`` is Python run with ``manage.py shell`` before the worker starts."""
import contextlib
import os
import shutil
from pathlib import Path

from ops.bench._worker_site import BASE_DIR, WorkerSite

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(BASE_DIR) / "test-artifacts"


@contextlib.contextmanager
def live_site(time_scale: float, artifacts_prefix: str = "e2e-", bound: int = 2, setup: str = "", workers: bool = True):
    from tests.conftest import start_sim

    engine, server = start_sim(time_scale=time_scale)
    s = WorkerSite(engine, server, bound=bound, workers=2, keep=bool(os.environ.get("E2E_KEEP")))
    try:
        if setup:
            s.manage(["shell", "-c", setup])
        s.start_web()
        if workers:  # without: runs stay queued until the test calls s.start_cluster()
            s.start_cluster()
        yield s
    finally:
        s.stop_web()  # its log is complete once it has stopped
        ARTIFACTS.mkdir(exist_ok=True)
        for name in os.listdir(s.tmp):
            if name.endswith(".log"):
                shutil.copy(os.path.join(s.tmp, name), ARTIFACTS / f"{artifacts_prefix}{name}")
        s.close()
        server.stop()
