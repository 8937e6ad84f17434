"""Settings for the test suite: the production settings with plain HTTP on
loopback and fast password hashing. Subprocesses started by tests (worker,
ASGI server) use this module too."""
import os

os.environ.setdefault("SECRET_KEY", "slipway-test-suite-key-not-secret")
os.environ.setdefault("SLIPWAY_PLAIN_HTTP", "1")

from .settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SLIPWAY_TEST = True
