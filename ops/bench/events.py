"""Live-event delivery latency: event commit -> receipt by N websocket watchers.

For each configuration (embedded: SQLite + in-process channel layer; and, when
REDIS_URL is set, Redis: channels-redis + PostgreSQL when DATABASE_URL is set,
else SQLite) it
  1. creates a throw-away database (temp SQLite file / temp PostgreSQL database)
     and migrates it,
  2. starts a real daphne server (``portal.asgi``) on a free port,
  3. starts a writer process that creates an operator, a session and a run,
  4. opens N websocket clients (the ``websockets`` library) to ws/runs/<id>/,
  5. has the writer commit RunEvent rows one by one and poke the run's group,
     exactly as the engine does, noting each commit's wall-clock time,
  6. measures, per client and event, receipt time minus commit time.
Nothing here touches the database the command itself is configured with.
"""
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def add_arguments(parser):
    parser.add_argument("--watchers", type=int, default=200, help="websocket clients watching one run")
    parser.add_argument("--events", type=int, default=60, help="events the writer commits")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two event commits")
    parser.add_argument("--no-redis", action="store_true", help="measure the embedded configuration only")


# ---------------------------------------------------------------- the writer (child)
def _writer():
    """Child process: ``python -c 'from ops.bench.events import _writer; _writer()'``.

    stdin/stdout JSON lines: prints {"session", "run"} once ready; on
    {"emit": n, "interval": s} commits n events and prints {"commits": {seq: t}}.
    """
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.db.models import F

    from ops.live import poke_run
    from ops.models import Run, RunEvent
    from ops import roles

    user = get_user_model().objects.create_user("bench-operator", password=secrets.token_urlsafe(12))
    roles.grant(user, roles.OPERATOR)
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    run = Run.objects.create(kind="bench", title="Event delivery bench", created_by=user, state=Run.State.RUNNING)
    print(json.dumps({"session": store.session_key, "run": run.pk}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        commits = {}
        total = cmd["emit"]
        for i in range(total):
            with transaction.atomic():
                Run.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + 1, progress=int(100 * (i + 1) / total))
                seq = Run.objects.values_list("last_seq", flat=True).get(pk=run.pk)
                RunEvent.objects.create(run=run, seq=seq, message=f"bench event {seq}", progress=int(100 * (i + 1) / total))
            commits[seq] = time.time()  # committed; now say "look", as the engine does on commit
            poke_run(run.pk, seq)
            time.sleep(cmd["interval"])
        print(json.dumps({"commits": commits}), flush=True)


# ---------------------------------------------------------------- the orchestrator
def _env(config: str, tmp: Path, pg_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings", "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "0", "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SLIPWAY_DATA_DIR": str(tmp), "SLIPWAY_LOG_LEVEL": "WARNING",
        "SQLITE_PATH": str(tmp / "bench.sqlite3"),
    })
    if config == "redis":
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        env["SLIPWAY_REDIS_PREFIX"] = f"slipway-bench-{secrets.token_hex(4)}"
        if pg_url:
            env["DATABASE_URL"] = pg_url
    return env


def _pg_temp_database() -> tuple[str | None, callable]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None, lambda: None
    import psycopg

    name = f"slipway_bench_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path="/" + name)), drop


def _percentile(values, pct):
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _watch(port, run_id, session, received: dict, ready: asyncio.Event, started: list, target_seq: list, done: asyncio.Event):
    from websockets.asyncio.client import connect

    got = received.setdefault(len(received), [])
    async with connect(f"ws://127.0.0.1:{port}/ws/runs/{run_id}/?after=0", origin=f"http://127.0.0.1:{port}",
                       additional_headers={"Cookie": f"sessionid={session}"}, max_size=None, open_timeout=60) as ws:
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] == "hello":
                started.append(1)
                if len(started) >= ready.n:
                    ready.set()
            elif msg["type"] == "events":
                got.extend((e["seq"], now) for e in msg["events"])
                if target_seq and msg["last_seq"] >= target_seq[0]:
                    break
            elif msg["type"] == "error":
                raise RuntimeError(f"consumer refused the watcher: {msg['message']}")
    done.set()


async def _measure(port, run_id, session, writer, watchers, events, interval) -> dict:
    received: dict = {}
    ready = asyncio.Event()
    ready.n = watchers
    started, target = [], []
    done = asyncio.Event()
    sem = asyncio.Semaphore(50)

    async def one():
        async with sem:  # open in waves, like browsers arriving; each stays open after
            pass
        await _watch(port, run_id, session, received, ready, started, target, done)

    tasks = [asyncio.create_task(one()) for _ in range(watchers)]
    try:
        await asyncio.wait_for(ready.wait(), 120)
    except asyncio.TimeoutError:
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
        raise RuntimeError(f"only {len(started)} of {watchers} watchers connected")
    await asyncio.sleep(1.0)  # let the consumers settle (tail read, initial frames)
    loop = asyncio.get_running_loop()
    writer.stdin.write((json.dumps({"emit": events, "interval": interval}) + "\n").encode())
    writer.stdin.flush()
    line = await loop.run_in_executor(None, writer.stdout.readline)
    commits = {int(k): v for k, v in json.loads(line)["commits"].items()}
    target.append(max(commits))
    finished, pending = await asyncio.wait(tasks, timeout=15)
    for t in pending:
        t.cancel()
    for t in finished:
        if t.exception():
            raise t.exception()
    latencies, delivered, doubles = [], 0, 0
    for got in received.values():
        seqs = [s for s, _ in got]
        doubles += len(seqs) - len(set(seqs))
        for seq, at in got:
            if seq in commits:
                latencies.append((at - commits[seq]) * 1000)
                delivered += 1
    if not latencies:
        raise RuntimeError("no event reached any watcher")
    return {
        "p50_ms": round(statistics.median(latencies), 1), "p95_ms": round(_percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1), "delivered": delivered, "expected": watchers * len(commits),
        "doubles": doubles,
    }


def _measure_config(config: str, options) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"slipway-bench-{config}-"))
    pg_url, drop_pg = _pg_temp_database() if config == "redis" else (None, lambda: None)
    env = _env(config, tmp, pg_url)
    procs = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
        from ops.simproc import free_port, wait_for_port

        port = free_port()
        log = open(tmp / "daphne.log", "wb")  # noqa: SIM115 - closed with the process
        daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
                                  cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(daphne)
        wait_for_port("127.0.0.1", port, 60, daphne)
        writer = subprocess.Popen([sys.executable, "-c", "from ops.bench.events import _writer; _writer()"], cwd=BASE_DIR,
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(writer)
        hello = json.loads(writer.stdout.readline())
        try:
            result = asyncio.run(_measure(port, hello["run"], hello["session"], writer, options["watchers"],
                                          options["events"], options["interval"]))
        except Exception as exc:
            tail = (tmp / "daphne.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{config}: {exc}\n--- daphne log (tail) ---\n{tail}") from exc
        result["database"] = "postgresql" if pg_url else "sqlite"
        result["channel_layer"] = "redis" if config == "redis" else "in-memory"
        return result
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        drop_pg()
        shutil.rmtree(tmp, ignore_errors=True)


def run(options) -> dict:
    options = {"watchers": 200, "events": 60, "interval": 0.05, "no_redis": False, **options}
    out = {"watchers": options["watchers"], "events": options["events"]}
    embedded = _measure_config("embedded", options)
    out.update({"p50_ms": embedded["p50_ms"], "p95_ms": embedded["p95_ms"], "goal_p95_ms": 1000, "embedded": embedded})
    if os.environ.get("REDIS_URL") and not options["no_redis"]:
        redis = _measure_config("redis", options)
        out.update({"redis_p50_ms": redis["p50_ms"], "redis_p95_ms": redis["p95_ms"], "redis_goal_p95_ms": 100, "redis": redis})
    else:
        out["redis"] = "skipped: REDIS_URL is not set"
    return out
