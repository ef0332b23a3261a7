"""QE Fleet settings: one module, configured from the environment.

Every variable is read through a small helper that fails at start-up with a
clear message on a bad value, rather than later with a confusing one.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=None):
    value = os.environ.get(name, "")
    if value == "":
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1 or 0.")


def env_int(name, default, minimum=None):
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name, default, choices):
    value = os.environ.get(name, "") or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}.")
    return value


DEBUG = env_bool("DEBUG", False)
# A development key is only acceptable while DEBUG is on.
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# HTTPS only, unless told otherwise: redirect plain http, secure-only cookies
# and HSTS. Off by default while DEBUG (runserver speaks plain http); HTTPS=0
# serves plain http without DEBUG (a load test on 127.0.0.1, say).
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Load balancers probe over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy that sets this header (and strips it from
# clients), e.g. X-Forwarded-Proto; never set it without such a proxy.
if proxy_header := env_str("SECURE_PROXY_SSL_HEADER", ""):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + proxy_header.upper().replace("-", "_"), "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# How many proxies in front of the web processes append the peer they saw to
# X-Forwarded-For; the login lockout locks the address that many entries from
# the right (0: the peer's own address). Never more than really sit there, or
# a client could name any address it likes.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "ninja",
    "django_q",
    "axes",
    "qefleet.memory",
    "learning",
    "dashboard",
]

MIDDLEWARE = [
    # First, so the learning requests' overhead is timed from the start.
    "learning.overhead.OverheadMiddleware",
    "qefleet.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, building the configured policy's header once.
    "qefleet.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's user and message middleware, skipped for the agent API's
    # token-authenticated requests (qefleet/middleware.py).
    "qefleet.middleware.BrowserAuthenticationMiddleware",
    "qefleet.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "qefleet.urls"
WSGI_APPLICATION = "qefleet.wsgi.application"

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
            ],
        },
    },
]

# Database: a SQLite file by default; DATABASE_URL=postgres://... for scale.
SQLITE_PATH = BASE_DIR / "var" / "qefleet.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so a read-then-write transaction
    # waits on busy_timeout instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                "PRAGMA busy_timeout=5000;"
                "PRAGMA cache_size=-20000;"
                "PRAGMA temp_store=MEMORY;"
            ),
        }
    )
    # The operator's database size quota, in pages (4 KiB each by default);
    # a write past it fails as a full disk would, and the API answers 503.
    SQLITE_MAX_PAGE_COUNT = env_int("SQLITE_MAX_PAGE_COUNT", 0, minimum=0)
    if SQLITE_MAX_PAGE_COUNT:
        DATABASES["default"]["OPTIONS"]["init_command"] += f"PRAGMA max_page_count={SQLITE_MAX_PAGE_COUNT};"
    # Tests use a real file too, so WAL and the other PRAGMAs are what they
    # check; one per process, so two test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test_qefleet_{os.getpid()}.sqlite3")}
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif DATABASES["default"]["ENGINE"] not in (
    "django.db.backends.postgresql",
    "django.db.backends.postgresql_psycopg2",
):
    raise ImproperlyConfigured("DATABASE_URL must point at SQLite or PostgreSQL.")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Password guessing (django-axes, on both login pages): after
# LOGIN_FAILURE_LIMIT failures in a row for a user name or from an address,
# every attempt for either is refused, without checking the password, for
# LOGIN_LOCKOUT_MINUTES; a successful login resets the count. The axes
# backend comes first so a locked-out attempt never reaches the hashing.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Refused attempts neither extend the lockout nor grow its rows and the audit trail.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "qefleet.memory.logins.client_address"
AXES_HANDLER = "qefleet.memory.logins.AuditedLoginHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dash-fleet"
LOGOUT_REDIRECT_URL = "login"

# No inline script and no eval anywhere: chart figures travel as JSON in
# <script type="application/json"> and our static JS draws them. plotly.js
# injects <style> elements, so styles (only) may be inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# How often dashboard pages refresh their numbers and charts in place.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 20, minimum=1)

# The API checks each endpoint's own (smaller) body limit; this is the outer bound.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Background work (django-q2). The ORM broker keeps everything in the database;
# QUEUE_BROKER=redis moves the queue to REDIS_URL for multi-host deployments.
QUEUE_BROKER = env_choice("QUEUE_BROKER", "orm", ("orm", "redis"))
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Requests per agent per fixed minute (0: no limit), counted where every
# worker process sees the same number: Redis with the Redis broker, else the
# database.
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 3000, minimum=0)
# How long the audit trail keeps its rows (the daily prune_history job): agents'
# refused requests, which any agent can multiply, for less.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=1)
AUDIT_DENIAL_RETENTION_DAYS = env_int("AUDIT_DENIAL_RETENTION_DAYS", 30, minimum=1)
RATE_LIMIT_BACKEND = env_choice(
    "RATE_LIMIT_BACKEND", "redis" if QUEUE_BROKER == "redis" else "database", ("database", "redis")
)
Q_CLUSTER = {
    "name": "qefleet",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    # A task is killed after `timeout`; it is handed out again only after
    # `retry`, which must be longer, or a slow task would run twice.
    "timeout": env_int("Q_TIMEOUT", 300, minimum=1),
    "retry": env_int("Q_RETRY", 360, minimum=2),
    "max_attempts": 2,
    # Failed tasks are recorded (Failure rows) and not re-queued; the next
    # scheduled run is the retry, so a failure can never become a storm.
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    "queue_limit": 50,
    "sync": env_bool("Q_SYNC", False),
}
if QUEUE_BROKER == "orm":
    Q_CLUSTER.update({"orm": "default", "bulk": 1, "poll": 1})
else:
    redis_url = urlparse(REDIS_URL)
    Q_CLUSTER["redis"] = {
        "host": redis_url.hostname or "127.0.0.1",
        "port": redis_url.port or 6379,
        "db": int((redis_url.path or "/0").lstrip("/") or 0),
        "password": redis_url.password,
    }

# The improvement cycle's slot; shorter slots make demos move faster.
CYCLE_SLOT_SECONDS = env_int("CYCLE_SLOT_SECONDS", 3600, minimum=60)
# How long an operator may undo a rollback: the tasks the agent may report
# after it (learning.models.Rollback says why a task count, not a time).
ROLLBACK_UNDO_TASKS = env_int("ROLLBACK_UNDO_TASKS", 500, minimum=1)
# The smallest difference in success rate (points) the loop's A/B tests are
# sized to detect at 80 % power; larger effects need fewer tasks per arm.
ABTEST_MDE_POINTS = env_int("ABTEST_MDE_POINTS", 10, minimum=1)

# Shadow mode (README, "Shadow mode"): newly registered agents start in
# shadow when set; a shadow agent is promoted to active once the lower 95 %
# bound of (learned - own) success rate beats its own by this many points,
# over at least this many reported shadow decisions.
SHADOW_NEW_AGENTS = env_bool("SHADOW_NEW_AGENTS", False)
SHADOW_PROMOTE_MARGIN_POINTS = env_int("SHADOW_PROMOTE_MARGIN_POINTS", 2, minimum=0)
SHADOW_PROMOTE_MIN_DECISIONS = env_int("SHADOW_PROMOTE_MIN_DECISIONS", 200, minimum=1)

# The learning overhead a task may add on the server (the design's 100 ms);
# the dashboard's Overhead page compares the measured percentiles with it.
LEARNING_OVERHEAD_BUDGET_MS = env_int("LEARNING_OVERHEAD_BUDGET_MS", 100, minimum=1)

# How often the TTL sweeper runs, and how it paces itself.
SWEEP_INTERVAL_MINUTES = env_int("SWEEP_INTERVAL_MINUTES", 10, minimum=1)
SWEEP_BATCH_SIZE = env_int("SWEEP_BATCH_SIZE", 500, minimum=1)
SWEEP_PAUSE_MS = env_int("SWEEP_PAUSE_MS", 50, minimum=0)

# Alerts: email (console backend while DEBUG) and an optional signed webhook.
ALERT_EMAILS = env_list("ALERT_EMAILS", [])
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "qefleet@localhost")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_SECRET = env_str("ALERT_WEBHOOK_SECRET", "") if not ALERT_WEBHOOK_URL else env_str("ALERT_WEBHOOK_SECRET")
# A Slack incoming webhook (or anything that takes Slack's message body:
# Mattermost, Rocket.Chat, Discord's /slack endpoint); its URL is its secret.
ALERT_SLACK_WEBHOOK_URL = os.environ.get("ALERT_SLACK_WEBHOOK_URL", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"qefleet": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")}},
}
# ACCESS_LOG=path sends the development server's request lines (django.server)
# to that file instead of the terminal, where they buried everything else
# (`make run` sets var/log/access.log).
ACCESS_LOG = env_str("ACCESS_LOG", "")
if ACCESS_LOG:
    LOGGING["formatters"] = {"access": {"format": "%(asctime)s %(message)s"}}
    LOGGING["handlers"]["access_file"] = {"class": "logging.FileHandler", "filename": ACCESS_LOG, "delay": True,
                                          "formatter": "access"}
    LOGGING["loggers"]["django.server"] = {"handlers": ["access_file"], "level": "INFO", "propagate": False}
