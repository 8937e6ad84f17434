"""The live-run websocket: what a watcher receives, and what it never receives twice."""
import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db.models import F

from ops.live import POKE_TYPE, run_group
from ops.models import Run, RunEvent, RunTarget, Step
from ops.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 3


def make_run(user, **kw):
    return Run.objects.create(kind="batch-checkpoint", title="Batch checkpoint 3", created_by=user, **kw)


def add_events(run, n, progress=None, step=None, level="info"):
    """Commit n events the way the engine does (seq from Run.last_seq), no poke."""
    Run.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + n)
    last = Run.objects.values_list("last_seq", flat=True).get(pk=run.pk)
    RunEvent.objects.bulk_create([
        RunEvent(run=run, seq=last - n + 1 + i, message=f"event {last - n + 1 + i}", level=level, progress=progress, step=step)
        for i in range(n)
    ])
    return last


def communicator(user, run_id, query=""):
    app = URLRouter(websocket_urlpatterns)
    comm = WebsocketCommunicator(app, f"/ws/runs/{run_id}/{query}")
    comm.scope["user"] = user
    return comm


async def frames_until(comm, predicate, timeout=TIMEOUT):
    """Collect frames until predicate(frames) is true."""
    frames = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate(frames):
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out; got {frames}")
        frames.append(json.loads(await comm.receive_from(timeout=remaining)))
    return frames


def seqs(frames):
    return [e["seq"] for f in frames if f["type"] == "events" for e in f["events"]]


def has_seq(n):
    return lambda frames: n in seqs(frames)


async def quiet(comm, seconds=0.6):
    """Nothing more arrives for a while (no doubles)."""
    assert await comm.receive_nothing(timeout=seconds), "unexpected extra frame"


def test_backlog_after_seq_then_live_events_in_order(operator):
    run = make_run(operator, state=Run.State.RUNNING)
    add_events(run, 5)

    async def scenario():
        comm = communicator(operator, run.pk, "?after=2")
        connected, _ = await comm.connect()
        assert connected
        frames = await frames_until(comm, lambda f: seqs(f) == [3, 4, 5] and any(x["type"] == "run" for x in f))
        assert frames[0] == {"type": "hello", "run": run.pk, "after": 2}
        run_frame = next(x for x in frames if x["type"] == "run")
        assert run_frame["run"]["state"] == "running"
        await database_sync_to_async(add_events)(run, 3)  # no poke: the timer finds them
        more = await frames_until(comm, has_seq(8))
        assert seqs(more) == [6, 7, 8]
        await quiet(comm)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_first_message_sets_the_cursor(operator):
    run = make_run(operator)
    add_events(run, 4)

    async def scenario():
        comm = communicator(operator, run.pk)
        assert (await comm.connect())[0]
        assert await comm.receive_nothing(timeout=0.4)  # waits to be told where the client is
        await comm.send_to(text_data=json.dumps({"after": 1}))
        frames = await frames_until(comm, has_seq(4))
        assert seqs(frames) == [2, 3, 4]
        await comm.send_to(text_data=json.dumps({"after": 0}))  # a second cursor changes nothing
        err = await frames_until(comm, lambda f: any(x["type"] == "error" for x in f))
        assert err[-1]["code"] == "already-streaming"
        await quiet(comm)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_reconnect_resumes_from_last_seq_nothing_missed_nothing_doubled(operator):
    run = make_run(operator, state=Run.State.RUNNING)
    add_events(run, 3)

    async def scenario():
        first = communicator(operator, run.pk, "?after=0")
        await first.connect()
        got = seqs(await frames_until(first, has_seq(3)))
        await first.disconnect()
        await database_sync_to_async(add_events)(run, 4)  # written while nobody watched
        second = communicator(operator, run.pk, f"?after={got[-1]}")
        await second.connect()
        got += seqs(await frames_until(second, has_seq(7)))
        await database_sync_to_async(add_events)(run, 1)
        got += seqs(await frames_until(second, has_seq(8)))
        await quiet(second)
        await second.disconnect()
        assert got == list(range(1, 9))

    async_to_sync(scenario)()


def test_poke_delivers_without_waiting_for_the_timer(operator, settings):
    settings.SLIPWAY_EVENT_POLL_SECONDS = 30  # the timer would be far too late
    run = make_run(operator, state=Run.State.RUNNING)

    async def scenario():
        comm = communicator(operator, run.pk, "?after=0")
        await comm.connect()
        await frames_until(comm, lambda f: any(x["type"] == "run" for x in f))
        await database_sync_to_async(add_events)(run, 2, progress=40)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await get_channel_layer().group_send(run_group(run.pk), {"type": POKE_TYPE, "run_id": run.pk, "seq": 2})
        frames = await frames_until(comm, has_seq(2), timeout=2)
        assert loop.time() - t0 < 1.0
        assert seqs(frames) == [1, 2] and frames[0]["events"][-1]["progress"] == 40
        await comm.disconnect()

    async_to_sync(scenario)()


def test_run_state_and_changed_steps_are_sent(operator):
    run = make_run(operator, state=Run.State.RUNNING, progress=10)
    s1 = Step.objects.create(run=run, index=0, phase="stop", action="stop-vm", target="vm-a")
    Step.objects.create(run=run, index=1, phase="stop", action="stop-vm", target="vm-b")

    def finish():
        Step.objects.filter(pk=s1.pk).update(state=Step.State.SUCCEEDED, progress=100)
        Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, progress=100)
        add_events(run, 1, progress=100, step=s1, level="success")

    async def scenario():
        comm = communicator(operator, run.pk, "?after=0")
        await comm.connect()
        frames = await frames_until(comm, lambda f: any(x["type"] == "steps" for x in f) and any(x["type"] == "run" for x in f))
        steps = next(x for x in frames if x["type"] == "steps")["steps"]
        assert [s["target"] for s in steps] == ["vm-a", "vm-b"]
        await database_sync_to_async(finish)()
        frames = await frames_until(comm, lambda f: any(x["type"] == "run" and x["run"]["state"] == "succeeded" for x in f))
        changed = [s for x in frames if x["type"] == "steps" for s in x["steps"]]
        assert [(s["target"], s["state"]) for s in changed] == [("vm-a", "succeeded")]  # only the row that changed
        final = next(x for x in frames if x["type"] == "run")["run"]
        assert final["progress"] == 100 and final["is_active"] is False
        assert seqs(frames) == [1]
        await comm.disconnect()

    async_to_sync(scenario)()


def test_many_watchers_each_get_every_event_once(operator):
    run = make_run(operator, state=Run.State.RUNNING)
    add_events(run, 2)

    async def scenario():
        comms = [communicator(operator, run.pk, f"?after={i % 3}") for i in range(6)]
        for c in comms:
            await c.connect()
        await database_sync_to_async(add_events)(run, 600)  # more than one frame's worth
        for i, c in enumerate(comms):
            got = seqs(await frames_until(c, has_seq(602), timeout=5))
            assert got == list(range(i % 3 + 1, 603))
            await quiet(c, 0.3)
            await c.disconnect()

    async_to_sync(scenario)()


def test_anonymous_is_closed_4401(operator):
    from django.contrib.auth.models import AnonymousUser

    run = make_run(operator)

    async def scenario():
        comm = communicator(AnonymousUser(), run.pk, "?after=0")
        await comm.connect()
        err = json.loads(await comm.receive_from())
        assert err["type"] == "error" and err["code"] == 4401
        assert (await comm.receive_output(timeout=1)) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_tenant_never_watches_another_tenants_run(tenant, other_tenant, operator, vm_a, vm_b):
    theirs = make_run(other_tenant)
    RunTarget.objects.create(run=theirs, vm=vm_b)
    add_events(theirs, 2)
    mine = make_run(operator)  # whoever started it: it acts on tina's VM
    RunTarget.objects.create(run=mine, vm=vm_a)
    ops_run = make_run(operator)

    async def scenario():
        for run_id in (theirs.pk, ops_run.pk, 999999):
            comm = communicator(tenant, run_id, "?after=0")
            await comm.connect()
            err = json.loads(await comm.receive_from())
            assert err["code"] == 4403, err
            assert (await comm.receive_output(timeout=1))["code"] == 4403
        comm = communicator(tenant, mine.pk, "?after=0")
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from())["type"] == "hello"
        await comm.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("query,message", [
    ("?after=abc", None),
    ("?after=-1", None),
    ("?after=%C2%B2", None),               # '²' is a digit to str.isdigit, not to int()
    ("?after=" + "9" * 5000, None),
    ("?after=4", None),                    # beyond the run's last event (3)
    ("", json.dumps({"after": "\u00b2"})),
    ("", json.dumps({"after": 10**30})),
    ("", "{not json"),
    ("", json.dumps({"after": "x"})),
    ("", json.dumps([1, 2])),
    ("", json.dumps({"type": "shout"})),
])
def test_bad_input_gets_an_error_frame_and_changes_nothing(operator, query, message):
    run = make_run(operator)
    add_events(run, 3)

    async def scenario():
        comm = communicator(operator, run.pk, query)
        assert (await comm.connect())[0]
        if message is not None:
            await comm.send_to(text_data=message)
        err = json.loads(await comm.receive_from())
        assert err["type"] == "error" and err["message"]
        assert await comm.receive_nothing(timeout=0.4)  # no events were sent
        await comm.send_to(text_data=json.dumps({"after": 1}))  # the socket still works
        assert seqs(await frames_until(comm, has_seq(3))) == [2, 3]
        await comm.disconnect()

    async_to_sync(scenario)()


def test_session_auth_through_the_real_asgi_stack(operator, client):
    """portal.asgi: AllowedHostsOriginValidator + AuthMiddlewareStack read the session cookie."""
    from portal.asgi import application

    run = make_run(operator)
    add_events(run, 1)
    client.force_login(operator)
    cookie = client.cookies["sessionid"].value

    async def scenario():
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", f"sessionid={cookie}".encode())]
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?after=0", headers=headers)
        assert (await comm.connect())[0]
        assert seqs(await frames_until(comm, has_seq(1))) == [1]
        await comm.disconnect()
        anon = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?after=0", headers=headers[:2])
        await anon.connect()
        assert json.loads(await anon.receive_from())["code"] == 4401

    async_to_sync(scenario)()


def test_tenant_removed_from_the_subscription_stops_receiving_and_is_closed_4403(tenant, operator, vm_a, subscription_a):
    run = make_run(operator, state=Run.State.RUNNING)  # an operator's run on tina's VM
    RunTarget.objects.create(run=run, vm=vm_a)
    add_events(run, 2)

    async def scenario():
        comm = communicator(tenant, run.pk, "?after=0")
        assert (await comm.connect())[0]
        await frames_until(comm, has_seq(2))
        await database_sync_to_async(subscription_a.members.remove)(tenant)
        frames = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not any(f.get("type") == "error" for f in frames):  # events keep coming until the re-check refuses
            assert loop.time() < deadline, f"never refused; got {frames}"
            await database_sync_to_async(add_events)(run, 1)  # so a frame always comes: an event or the refusal
            frames.append(json.loads(await comm.receive_from(timeout=30)))
        error = next(f for f in frames if f.get("type") == "error")
        assert error["code"] == 4403 and f"no longer watch run {run.pk}" in error["message"]
        assert frames[-1] is error, "an event was sent after the refusal"
        assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}

    async_to_sync(scenario)()
