"""Tests wait for what they assert: poll a condition until it holds, with a deadline
generous enough for a loaded shared machine, instead of sleeping a guessed time and
asserting. How fast something happens is measured by `manage.py bench ...`, not here."""
import time

DEADLINE = 60.0


def wait_until(predicate, timeout: float = DEADLINE, message: str = "", interval: float = 0.02):
    """Return the first truthy value of ``predicate()``; fail naming ``message`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {message or predicate} (last seen: {value!r})")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.5)
