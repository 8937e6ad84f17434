"""`manage.py demo` started in the background (`demo &`: SIGINT ignored, as a shell does) stops
completely on `kill -INT` / `kill -TERM`: every child stops on its signal, none has to be killed
(how long it takes: `manage.py bench demo-stop`)."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waiting import wait_until

BASE = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _parent(pid) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _children(pid):
    """(pid, command line) of the processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent(entry.name) == pid:
            try:
                out.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
            except OSError:
                continue
    return out


def _processes_of(tmp_path):
    """PIDs of every process started for this demo (they carry its SLIPWAY_DATA_DIR)."""
    mark = f"SLIPWAY_DATA_DIR={tmp_path}".encode() + b"\0"
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@contextlib.contextmanager
def _running_demo(tmp_path):
    """A background demo (SIGINT ignored, as `demo &` gets it); whatever the test does, nothing of it
    is left running afterwards."""
    port, sim_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    # a child that ignores SIGTERM is killed (and named) after this grace; a slow one on a loaded machine is not
    env.update(SLIPWAY_DATA_DIR=str(tmp_path), SLIPWAY_WORKERS="1", SLIPWAY_DEMO_STOP_SECONDS="120")
    log = open(tmp_path / "demo.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--sim-port", str(sim_port), "--time-scale", "0.01"],
        cwd=BASE, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # what `demo &` gets from the shell
        start_new_session=True)
    try:
        wait_until(lambda: "Slipway is running" in _log(tmp_path) or proc.poll() is not None, timeout=120,
                   message="the demo says it is running")
        assert proc.poll() is None, "the demo did not start: " + _log(tmp_path)
        yield proc, port, sim_port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _processes_of(tmp_path):   # never leave a cluster running after the test
            os.kill(pid, signal.SIGKILL)
        log.close()


def _log(tmp_path) -> str:
    return (tmp_path / "demo.log").read_text()


def _assert_stopped_completely(tmp_path, port, sim_port):
    log = _log(tmp_path)
    assert "Stopped." in log
    assert "did not stop within" not in log, "a child ignored SIGTERM and was killed at the deadline: " + log
    assert not _listening(port) and not _listening(sim_port)
    wait_until(lambda: not _processes_of(tmp_path), message="every demo process ends with the demo")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_background_demo_stops_on_a_signal(tmp_path, sig):
    with _running_demo(tmp_path) as (proc, port, sim_port):
        proc.send_signal(sig)
        proc.wait(timeout=240)
        _assert_stopped_completely(tmp_path, port, sim_port)


def test_a_killed_worker_is_replaced_and_a_second_signal_does_not_abandon_the_children(tmp_path):
    with _running_demo(tmp_path) as (proc, port, sim_port):
        worker = next(pid for pid, cmd in _children(proc.pid) if "manage.py worker" in cmd)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: "starting a new one" in _log(tmp_path), message="the dead worker is replaced")
        wait_until(lambda: any("manage.py worker" in cmd for _, cmd in _children(proc.pid)), message="a new worker runs")
        wait_until(lambda: not [pid for pid in _processes_of(tmp_path) if pid != proc.pid and _parent(pid) == 1],
                   message="the killed worker's cluster ends (no orphaned process)")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "Stopping ..." in _log(tmp_path), message="the demo starts stopping")
        proc.send_signal(signal.SIGTERM)   # an impatient second stop
        proc.wait(timeout=240)
        _assert_stopped_completely(tmp_path, port, sim_port)
