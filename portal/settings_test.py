"""Settings for the test suite: the production settings with plain HTTP on
loopback and fast password hashing. Subprocesses started by tests (worker,
ASGI server) inherit the environment set here, so they share the queue name
and the channel-layer prefix of the test process that started them, and
parallel test processes never see each other's tasks or pokes."""
import os

os.environ.setdefault("SECRET_KEY", "slipway-test-suite-key-not-secret")
os.environ.setdefault("SLIPWAY_PLAIN_HTTP", "1")
_ISOLATION = os.environ.setdefault("SLIPWAY_TEST_ISOLATION", f"t{os.getpid()}")
os.environ.setdefault("SLIPWAY_REDIS_PREFIX", f"slipway-{_ISOLATION}")

from .settings import *  # noqa: E402,F401,F403
from .settings import Q_CLUSTER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "name": f"slipway-{_ISOLATION}"}
SLIPWAY_TEST = True
