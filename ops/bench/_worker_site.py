"""A throw-away Slipway site for benches and worker tests: a temporary SQLite
database (migrated), a simulator in this process, connection rows pointing at
it, an operator, and real ``manage.py worker`` processes (each in its own
process group, so it can be killed whole, like a crashed machine).

Nothing here touches the database the calling process is configured with:
everything that writes runs in child processes with ``SQLITE_PATH`` set; the
parent only reads the file with ``sqlite3``.
"""
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..simproc import free_port, stop_process, wait_for_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SETUP = """
import json
from django.contrib.auth import get_user_model
from ops.models import ServerConnection
from ops import roles
cfg = json.loads(%r)
for name, kind in (("vmm01", "vmm"), ("scom01", "scom"), ("cm01", "configmgr")):   # one simulator serves all three
    c = ServerConnection(name=name, kind=kind, host=cfg["host"], port=cfg["port"], use_https=False, auth="basic",
                         cert_validation=False, username=cfg["username"], operation_timeout=30,
                         max_concurrent_jobs=cfg["bound"])
    c.set_password(cfg["password"])
    c.save()
u = get_user_model().objects.create_user("bench-operator", password=None)
roles.grant(u, "operator")
"""


class WorkerSite:
    def __init__(self, engine, server, *, bound=8, workers=2, lease_seconds=8, keep=False, debug_log=False):
        self.engine, self.server = engine, server
        self.tmp = tempfile.mkdtemp(prefix="slipway-site-")
        self.db = os.path.join(self.tmp, "slipway.sqlite3")
        self.keep = keep
        self.clusters = []
        self.web, self.base_url = None, ""
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "SQLITE_PATH": self.db, "SLIPWAY_DATA_DIR": self.tmp, "SLIPWAY_WORKERS": str(workers),
            "SLIPWAY_LEASE_SECONDS": str(lease_seconds), "DJANGO_SETTINGS_MODULE": "portal.settings",
            "SLIPWAY_LOG_LEVEL": "DEBUG" if debug_log else "INFO",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40), "PYTHONUNBUFFERED": "1",
        }
        self.manage(["migrate", "--noinput"])
        cfg = {"host": server.host, "port": server.port, "username": server.username, "password": server.password,
               "bound": bound}
        self.manage(["shell", "-c", SETUP % json.dumps(cfg)])

    def manage(self, args, check=True, timeout=300):
        proc = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=self.env, cwd=BASE_DIR,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc

    def start_run(self, kind, **params):
        args = ["runbook", "start", kind, *(f"{k}={v}" for k, v in params.items()), "--user", "bench-operator"]
        out = self.manage(args).stdout
        return int(re.search(r"^run (\d+) queued: ", out, re.M).group(1))   # after a preflight, if the runbook has one

    def start_cluster(self):
        log = open(os.path.join(self.tmp, f"qcluster-{len(self.clusters)}.log"), "w")
        proc = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "worker"], env=self.env, cwd=BASE_DIR,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.clusters.append(proc)
        return proc

    def kill_cluster(self, proc, sig=signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def wait_ready(self, proc, timeout=60):
        """Until the cluster's workers are up (each starts its reaper loop, ops/engine/reaper.py)."""
        log = Path(self.tmp) / f"qcluster-{self.clusters.index(proc)}.log"
        self.wait_for(lambda: log.exists() and "reaper loop started" in log.read_text(), timeout)

    def driving_cluster(self, run_id):
        """The cluster whose worker runs the run's current task: the newest "run N: task ... runs in
        worker process PID" line of the clusters' logs (the site logs at DEBUG, ops/engine/executor.py)."""
        newest = ("", None)
        for proc in self.clusters:
            log = Path(self.tmp) / f"qcluster-{self.clusters.index(proc)}.log"
            for line in log.read_text().splitlines() if log.exists() else []:
                if f" run {run_id}: task " in line and line[:23] > newest[0]:
                    newest = (line[:23], proc)   # "2026-12-02 19:40:01,123" sorts as text
        if newest[1] is None:
            raise LookupError(f"no cluster has run a task of run {run_id}")
        return newest[1]

    def kill_driver_with_spare(self, run_id):
        """Start a spare cluster, wait until it is ready, then SIGKILL the cluster driving the run.
        Returns (killed, spare) once the kill is done."""
        spare = self.start_cluster()
        self.wait_ready(spare)
        driving = self.driving_cluster(run_id)
        self.kill_cluster(driving)
        return driving, next(p for p in self.clusters if p is not driving)

    def query(self, sql, *args):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def run_row(self, run_id):
        rows = self.query("select state, message, created_at, started_at, finished_at from ops_run where id = ?", run_id)
        return dict(zip(("state", "message", "created_at", "started_at", "finished_at"), rows[0]))

    def wait_for(self, predicate, timeout, interval=0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError("condition not met in time")

    def wait_final(self, run_id, timeout):
        return self.wait_for(lambda: (r := self.run_row(run_id))["state"] in ("succeeded", "failed", "cancelled") and r,
                             timeout)

    def start_web(self) -> str:
        """A real ASGI server (daphne, through ``manage.py runserver``) on a free loopback port, over
        plain HTTP (the secure-cookie settings off); its base URL. ``close`` stops it."""
        port = free_port()
        env = {**self.env, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
               "CSRF_COOKIE_SECURE": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        log = open(os.path.join(self.tmp, "daphne.log"), "w")  # noqa: SIM115 - the server's, closed with it
        self.web = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}",
                                     "--noreload", "--insecure"], env=env, cwd=BASE_DIR, stdout=log,
                                    stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", port, 60, self.web)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop_web(self):
        if self.web is not None:
            stop_process(self.web)
            self.web = None

    def close(self):
        self.stop_web()
        for proc in self.clusters:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=8)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill_cluster(proc)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
