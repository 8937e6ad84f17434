"""Slipway settings: everything that differs between the embedded default and a
scaled-out deployment comes from the environment (see README, "Scaling out")."""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured  # noqa: F401

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SLIPWAY_DATA_DIR", BASE_DIR / "data"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "django-insecure-slipway-development-only-key-do-not-use-in-production"
    else:
        # The embedded default keeps a generated key beside its database, so
        # sessions and stored connection passwords survive a restart. A
        # scaled-out deployment sets SECRET_KEY (the same on every machine).
        _key_file = DATA_DIR / "secret_key"
        try:
            SECRET_KEY = _key_file.read_text().strip()
        except FileNotFoundError:
            import secrets as _secrets

            DATA_DIR.mkdir(parents=True, exist_ok=True)
            SECRET_KEY = _secrets.token_urlsafe(50)
            _key_file.write_text(SECRET_KEY)
            _key_file.chmod(0o600)
        if not SECRET_KEY:
            raise ImproperlyConfigured(f"{_key_file} is empty; set SECRET_KEY in the environment")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "channels",
    "django_q",
    "ops",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.errorpages.MethodNotAllowedPage",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires: turns a lockout into portal/signin.py's page
]
CSRF_FAILURE_VIEW = "portal.errorpages.csrf_failure"

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.roles_and_permissions",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(DATA_DIR / "slipway.sqlite3")),
            "OPTIONS": {
                # WAL lets the web server read while the worker writes; IMMEDIATE
                # takes the write lock at BEGIN so two writers queue on the busy
                # timeout instead of failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            },
            "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
        }
    }
IS_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- channels -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py gives every connection a 5 s socket timeout, as long as
            # channels-redis's blocking receive: an idle websocket would die.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                       "prefix": os.environ.get("SLIPWAY_REDIS_PREFIX", "slipway")},
        }
    }
else:
    # In-process only: a worker in another process cannot reach it, so the
    # live-event consumers also tail the event table on a short timer.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How often a websocket consumer re-reads the event table even without a poke.
SLIPWAY_EVENT_POLL_SECONDS = float(os.environ.get("SLIPWAY_EVENT_POLL_SECONDS", "0.25" if not REDIS_URL else "1.0"))

# --- task queue (django-q2) -----------------------------------------------
# A run advances one step per task, and every task takes a lease on its run
# (compare-and-set), so a task running twice can do no harm; still, django-q2
# must never hand a task to a second worker while the first still runs it:
#   timeout  - a task is killed after this many seconds;
#   retry    - a task not acknowledged after this many seconds is handed out
#              again. retry > timeout, so a live task is never duplicated;
#   max_attempts - bounded redelivery of a task whose worker died.
# A run whose worker died is resumed once its lease expires (SLIPWAY_LEASE_SECONDS, renewed by a heartbeat
# while its task lives) by the reaper loop every worker runs (SLIPWAY_REAPER_SECONDS; ops/engine/reaper.py).
Q_CLUSTER = {
    "name": "slipway",
    "workers": int(os.environ.get("SLIPWAY_WORKERS", "4")),
    "recycle": 500,
    "timeout": 120,
    "retry": 180,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,  # a missed schedule slot does not pile up runs
    "poll": 0.05,
    "save_limit": 1000,
    "label": "Tasks",
}
if REDIS_URL and env_bool("SLIPWAY_REDIS_BROKER", True):
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
SLIPWAY_LEASE_SECONDS = float(os.environ.get("SLIPWAY_LEASE_SECONDS", "8"))
SLIPWAY_REAPER_SECONDS = float(os.environ.get("SLIPWAY_REAPER_SECONDS", "2"))
# Patch runs (ops/runbooks/patch_steps.py): how often a waiting step looks again (a host back after its
# reboot, a deployment's state), and a factor on their minutes (the simulator's time scale in tests and demos).
SLIPWAY_PATCH_POLL_SECONDS = float(os.environ.get("SLIPWAY_PATCH_POLL_SECONDS", "5"))
SLIPWAY_PATCH_TIMEOUT_SCALE = float(os.environ.get("SLIPWAY_PATCH_TIMEOUT_SCALE", "1"))
# A task keeps its run's lease for up to this long, advancing it in small
# committed increments, then hands it to the next task (see ops/engine/executor.py).
SLIPWAY_ENGINE_SLICE_SECONDS = float(os.environ.get("SLIPWAY_ENGINE_SLICE_SECONDS", "8"))
SLIPWAY_ENGINE_POLL_SECONDS = float(os.environ.get("SLIPWAY_ENGINE_POLL_SECONDS", "0.05"))
# A run paused by an unreachable VMM server is tried again after this long.
SLIPWAY_ENGINE_PAUSE_SECONDS = float(os.environ.get("SLIPWAY_ENGINE_PAUSE_SECONDS", "10"))

# --- auth -----------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out user name or address before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes; portal/signin.py): after SLIPWAY_LOGIN_FAILURE_LIMIT
# failed sign-ins for one user name, or from one client address, that user name (or
# address) is refused for SLIPWAY_LOGIN_COOLOFF_MINUTES after the last failure. The
# counts are rows in the database, so every ASGI process sees the same ones (SQLite
# or PostgreSQL). Behind a proxy, run daphne with --proxy-headers so the address is
# the client's. An admin lifts a lockout early with `manage.py axes_reset_username NAME`.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = int(os.environ.get("SLIPWAY_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("SLIPWAY_LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the wait shown is the wait there is
# not axes' own reset on success: it forgets every failure from the address, other user names'
# included; SignInView forgets only the signed-in user's own failures from that address
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "portal.signin.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in Slipway's own audit log
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", DATA_DIR / "staticfiles"))
# The embedded default serves /static/ from the ASGI process itself; behind a
# proxy, set SLIPWAY_SERVE_STATIC=0, run collectstatic and let the proxy do it.
SLIPWAY_SERVE_STATIC = env_bool("SLIPWAY_SERVE_STATIC", True)

# Key for fabric connection passwords at rest (Fernet, derived from SECRET_KEY
# unless SLIPWAY_FERNET_KEY is set).
SLIPWAY_FERNET_KEY = os.environ.get("SLIPWAY_FERNET_KEY", "")

# --- production hardening (manage.py check --deploy) -----------------------
# Production (the default) assumes HTTPS in front; the demo and the tests run
# plain HTTP on loopback and say so with SLIPWAY_PLAIN_HTTP=1.
PLAIN_HTTP = env_bool("SLIPWAY_PLAIN_HTTP", DEBUG)
if not PLAIN_HTTP:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp): scripts only from our own static files, so
# a name from VMM or from another user can never run as script, and no inline
# event handlers (confirmations are data-confirm attributes, static/js/slipway.js).
# htmx is told not to inject its indicator <style> nor to eval (the htmx-config
# meta tag in templates/base.html). style attributes stay allowed (progress bar
# widths); <style> elements do not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "script-src-attr": [NONE],
        "style-src": [SELF],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],  # fetch and the run page's websocket (same origin)
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # a refused request is one line ("Forbidden (...): /path"), not a traceback: it is a user's mistake
    "filters": {"refusals_in_one_line": {"()": "portal.logfilters.RefusalsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["refusals_in_one_line"]}},
    "loggers": {
        "slipway": {"handlers": ["console"], "level": os.environ.get("SLIPWAY_LOG_LEVEL", "INFO")},
        "django-q": {"handlers": ["console"], "level": "WARNING", "propagate": False},  # django-q2 logs as "django-q"
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "axes": {"handlers": ["console"], "level": "ERROR", "propagate": False},  # sign-ins are in the audit log
    },
}

# --- REST API (ops/api/; docs/api.md) ---------------------------------------
# Kept in one block: the API's apps, authentication and schema settings.
INSTALLED_APPS += [
    "rest_framework",
    "rest_framework.authtoken",   # Authorization: Token <key>; manage.py drf_create_token <user>
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",    # Swagger UI's files, served from our own /static/
]
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with "WWW-Authenticate: Token". A session
    # (a signed-in browser) works too, and then every unsafe request needs the CSRF token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "ops.api.pagination.Pages",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ops.api.errors.exception_handler",
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_METADATA_CLASS": None,   # OPTIONS is 405: the schema describes the endpoints
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Slipway API",
    "DESCRIPTION": "Tenant VMs and their checkpoints, runs and runbooks, hosting plans and subscriptions of Slipway. How to authenticate and samples: docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"RunState": "ops.models.runs.Run.State", "StepState": "ops.models.runs.Step.State",
                            "PlanState": "ops.models.plans.Plan.State",
                            "SubscriptionState": "ops.models.plans.Subscription.State",
                            "CheckpointPermission": "ops.models.plans.CheckpointPermission",
                            "PowerAction": "ops.models.plans.PowerAction"},
}
