"""Start the fabric simulator as a separate process (demo, benches, e2e tests)."""
from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD_ENV = "SLIPWAY_SIM_PASSWORD"   # read by ops/management/commands/simulator.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


@dataclasses.dataclass
class SimProcess:
    proc: subprocess.Popen
    host: str
    port: int
    username: str
    password: str
    https: bool = False
    ca_file: str | None = None   # the CA that signed the listener's certificate (HTTPS)
    https_port: int | None = None  # a second listener, HTTPS, on the same fabric

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}/wsman"

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, 10 s to end, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def spawn(scenario: str = "demo", *, host: str = "127.0.0.1", port: int | None = None, username: str = "slipway",
          password: str | None = None, time_scale: float | None = None, vms: int | None = None,
          state_file: str | None = None, quiet: bool = True, https: bool = False,
          https_port: int | None = None, tls_dir: str | None = None) -> SimProcess:
    """Start ``manage.py simulator``. The password goes through the environment (SLIPWAY_SIM_PASSWORD),
    never the command line. With ``https`` (the listener on ``port``) or ``https_port`` (a second one)
    the HTTPS listener's CA is written to ``tls_dir``."""
    port = port or free_port()
    password = password or secrets.token_urlsafe(12)
    cmd = [sys.executable, str(BASE_DIR / "manage.py"), "simulator", "--host", host, "--port", str(port),
           "--scenario", scenario, "--username", username]
    ca_file = None
    if https and https_port:
        raise ValueError("give https (the one listener is HTTPS) or https_port (a second, HTTPS listener), not both")
    if https or https_port:
        if not tls_dir:
            raise ValueError("an HTTPS simulator needs tls_dir, where its certificate and CA are written")
        cmd += ["--https"] if https else ["--https-port", str(https_port)]
        cmd += ["--tls-dir", tls_dir]
        ca_file = str(Path(tls_dir) / "listener-ca.pem")
        Path(ca_file).unlink(missing_ok=True)   # the one found after the start is this listener's
    if time_scale is not None:
        cmd += ["--time-scale", str(time_scale)]
    if vms is not None:
        cmd += ["--vms", str(vms)]
    if state_file:
        cmd += ["--state", state_file]
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(cmd, cwd=BASE_DIR, stdout=out, stderr=None if not quiet else subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", PASSWORD_ENV: password})
    try:
        wait_for_port(host, port, 60, proc)
        if https_port:
            wait_for_port(host, https_port, 60, proc)
    except RuntimeError as exc:
        err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr and proc.poll() is not None else ""
        proc.kill()
        raise RuntimeError(f"simulator did not start: {exc}\n{err}") from exc
    return SimProcess(proc, host, port, username, password, https, ca_file, https_port)
