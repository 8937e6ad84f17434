"""django-q2 task entry points (referenced by dotted path in the queue)."""
from ..services.schedules import fire
from . import executor, lease, reaper


def advance_run(run_id, token=None):
    """Advance a run for one slice under its lease (see ``executor``)."""
    if token is None:  # started by hand: only when nobody drives the run
        token = lease.new_token()
        if not lease.claim_free(run_id, token):
            return "not-leased"
    return executor.advance(int(run_id), token)


def reap_expired_leases():
    return reaper.reap()


def start_scheduled_run(schedule_id):
    return fire(int(schedule_id))
