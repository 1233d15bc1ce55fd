"""Sheaf's one settings module, configured from the environment (see README, "Configuration").

Defaults suit one machine with no services: SQLite under var/, the django-q2 ORM broker, the
database cache and the offline extraction engine. Production fails closed: DEBUG is off unless
set, and then SECRET_KEY and ALLOWED_HOSTS are required and cookies are secure.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from batchsite.env import (
    email_settings,
    env_bool,
    env_choice,
    env_int,
    env_json_object,
    env_list,
    env_optional_int,
    env_str,
)

# Lets generic Django classes take type arguments at runtime (`ModelAdmin[Batch]`), as mypy wants.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SHEAF_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# /metrics sums what every web and worker process counted (batchsite/metrics.py): the client's
# multiprocess mode keeps those counts in files in this directory, which it reads from the
# environment when it is first imported, so it is set here, before any app imports it.
PROMETHEUS_MULTIPROC_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str((VAR_DIR / "prometheus").absolute()))
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# A Bearer token for Prometheus's scrapes of /metrics; without one, only staff see it.
SHEAF_METRICS_TOKEN = env_str("SHEAF_METRICS_TOKEN")
if SHEAF_METRICS_TOKEN and len(SHEAF_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "SHEAF_METRICS_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)"
    )


def _development_secret_key() -> str:
    """A random key kept in var/, so sessions survive restarts of `make run`."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set DEBUG=1 on your own machine "
            "(as `make run` does), or SECRET_KEY and ALLOWED_HOSTS in production"
        )
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is required when DEBUG is off: set DEBUG=1 on your own machine "
        "(as `make run` does), or ALLOWED_HOSTS in production, e.g. ALLOWED_HOSTS=sheaf.example.com"
    )

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    # First: its `runserver` (daphne's: HTTP and WebSocket on one port, through batchsite.asgi)
    # wins over Django's and whitenoise's; see batchsite/management/commands/runserver.py.
    "batchsite",
    "batchsite.admin_site.SheafAdminConfig",  # django.contrib.admin, with Sheaf's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "documents",
    "batches",
    "notifications",
    # After batches, whose `qcluster` command (the cluster that stops within seconds) takes the
    # place of django-q2's: the first app that has a command wins.
    "django_q",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "batchsite.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last, nearest the views: their errors under /api/v1/ as JSON even under DEBUG.
    "batchsite.api.ApiErrorsAsJson",
]

ROOT_URLCONF = "batchsite.urls"
WSGI_APPLICATION = "batchsite.wsgi.application"
ASGI_APPLICATION = "batchsite.asgi.application"

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
                "accounts.context_processors.plan",
                "batchsite.csp.csp_nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on the busy
    # timeout instead of one failing with "database is locked" half way through; WAL lets
    # readers go on while a worker writes.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASES: dict[str, dj_database_url.DBConfig]
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "sheaf.sqlite3"),
            "OPTIONS": SQLITE_OPTIONS,
            # A file (not :memory:) so worker processes started by tests share it; one per test
            # run so that runs side by side do not trample each other.
            "TEST": {"NAME": VAR_DIR / f"test-{os.getpid()}.sqlite3"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, throttles) ---------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "sheaf_cache",
            # Django's default of 300 entries would cull sign-in rate limits and API throttle
            # counters (live entries) once a few dozen users are active.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# --- Live events (notifications.live, /ws/events/) ------------------------------------------------

# With Redis, the process that records an event publishes it on Redis's pub/sub (one PUBLISH per
# event, whatever the number of clients) and every web process hands it to its connections. With
# no Redis, each web process reads the event log itself (notifications.live.Tail).
CHANNEL_LAYERS: dict[str, dict[str, Any]] = (
    {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "sheaf-live"},
        }
    }
    if REDIS_URL
    else {}
)

# --- Accounts -------------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "SHEAF_EMAIL_VERIFICATION", "optional", {"none", "optional", "mandatory"}
)
# Signing up with a registered address looks like any sign-up: "check your email", and the
# owner is mailed instead. allauth can only keep that promise when verification is mandatory;
# with `optional` or `none` the sign-up form says the address is taken (README, Configuration).
# allauth's default today, set here so that an upgrade that changed it could not quietly undo it.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Sheaf] "
ACCOUNT_FORMS = {"login": "accounts.forms.SignInForm"}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# Proxies of ours in front of the web processes (the TLS proxy: 1). Behind them every request
# comes from a proxy's address, so allauth's per-address limits (e.g. ten failed sign-ins a
# minute) would lock everyone out together; with the count it takes the client's address from
# X-Forwarded-For, the entry our outermost proxy appended, which a client cannot forge (entries
# further left are the client's own). 0 trusts no header: the right setting without a proxy,
# where anyone could send one. The per-account limits (five failures per email) stay as well.
SHEAF_TRUSTED_PROXY_COUNT = env_int("SHEAF_TRUSTED_PROXY_COUNT", 0, minimum=0)
ALLAUTH_TRUSTED_PROXY_COUNT = SHEAF_TRUSTED_PROXY_COUNT

globals().update(email_settings(env_str("EMAIL_URL")))
# A mail server that hangs must not hold a notification (or a worker) for long.
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Sheaf <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Files ----------------------------------------------------------------------------------------

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Uploaded files are private: no MEDIA_URL is routed, downloads go through an owner-checked view.
MEDIA_URL = "/media-not-served/"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Originals: the local MEDIA_ROOT, or any Django storage (e.g. django-storages' S3) that
    # every web and worker node reaches.
    "default": {
        "BACKEND": env_str("SHEAF_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env_json_object("SHEAF_STORAGE_OPTIONS"),
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# Every upload goes through Sheaf's size-limited handler: it spools to disk and stops keeping bytes
# once a file passes the largest plan's size, so a huge upload never fills memory or disk.
FILE_UPLOAD_HANDLERS = ["documents.uploads.SizeLimitedUploadHandler"]
# Above the largest plan's files per batch, so "one file too many" gets Sheaf's own message.
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

# --- Security -------------------------------------------------------------------------------------

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe /healthz over plain HTTP; a redirect would read as "down". Prometheus
# scrapes each web node's /metrics on its own address, behind the TLS proxy (a redirect would
# not keep the token from going out in the clear: the first request carries it).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Internationalisation -------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------------

LOG_FORMAT = env_choice("LOG_FORMAT", "text", {"text", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "batchsite.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- REST framework -------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # Bearer first: its `authenticate_header` is what turns an anonymous call into a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies with a bound on nesting (batchsite/parsers.py); forms and uploads as DRF's.
    "DEFAULT_PARSER_CLASSES": [
        "batchsite.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Requests per minute from the caller's plan, counted in CACHES["default"].
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api.throttling.PlanRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "batchsite.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "URL_FORMAT_OVERRIDE": None,  # the results endpoint owns ?format=csv|json|md|xlsx
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sheaf API",
    "DESCRIPTION": (
        "Batch document extraction. Authenticate with `Authorization: Bearer <api key>`; "
        'every error is `{"code": "...", "detail": "..."}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Request and response components apart, so the upload shows as multipart with binary files.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from installed static files: the docs work offline, with no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "batches.models.BatchStatus.choices",
        "DocumentStatusEnum": "documents.models.DocumentStatus.choices",
    },
}

# --- Workers (django-q2) --------------------------------------------------------------------------

SHEAF_WORKERS = env_int("SHEAF_WORKERS", 2, minimum=1)
SHEAF_CONCURRENCY = env_int("SHEAF_CONCURRENCY", 8, minimum=1)
# A drain stops taking new work after this many seconds, well below the task timeout below.
SHEAF_DRAIN_SECONDS = env_int("SHEAF_DRAIN_SECONDS", 120, minimum=1)
# A claimed document is leased for this long and the drain renews the lease every third of it;
# a lease that runs out (the worker died) sends the document back to the queue.
SHEAF_LEASE_SECONDS = env_int("SHEAF_LEASE_SECONDS", 60, minimum=2)
# When the cluster stops (SIGINT or SIGTERM to `qcluster`), a drain takes no more work and waits
# this long for the documents in flight; any still running stay under their leases, and the
# sweep requeues them once the leases expire. systemd's TimeoutStopSec must leave room for it.
SHEAF_STOP_GRACE_SECONDS = env_int("SHEAF_STOP_GRACE_SECONDS", 3, minimum=0)
SHEAF_MAX_ATTEMPTS = env_int("SHEAF_MAX_ATTEMPTS", 3, minimum=1)
# /healthz fails (503) when a due document has waited longer than this for a worker.
SHEAF_HEALTH_MAX_QUEUE_AGE = env_int("SHEAF_HEALTH_MAX_QUEUE_AGE", 900, minimum=1)
SHEAF_RETRY_BASE_SECONDS = env_int("SHEAF_RETRY_BASE_SECONDS", 5, minimum=0)
SHEAF_RETRY_MAX_SECONDS = env_int("SHEAF_RETRY_MAX_SECONDS", 300, minimum=1)
# A provider's 429 spends no attempt; a document its rate limit holds back this long fails.
SHEAF_RATE_LIMIT_GIVE_UP_SECONDS = env_int("SHEAF_RATE_LIMIT_GIVE_UP_SECONDS", 3600, minimum=1)

# The reader sandbox (documents/sandbox.py): every upload is read, and the offline engine runs,
# in a pool of child processes per worker process, each call under its operation's limits.
SHEAF_READER_PROCESSES = env_int("SHEAF_READER_PROCESSES", 2, minimum=1)
SHEAF_READER_CPU_SECONDS = env_int("SHEAF_READER_CPU_SECONDS", 30, minimum=1)
SHEAF_READER_MEMORY_MB = env_int("SHEAF_READER_MEMORY_MB", 1024, minimum=64)
# Below the lease, so a read that hangs is killed before its lease can run out.
SHEAF_READER_WALL_SECONDS = env_int("SHEAF_READER_WALL_SECONDS", 45, minimum=1)
# A child holding more than this after a call is replaced, so memory a file took goes back. A
# child that has read every format and run the offline engine holds about 55 MB.
SHEAF_READER_RECYCLE_MB = env_int("SHEAF_READER_RECYCLE_MB", 150, minimum=32)
SHEAF_MAX_TEXT_CHARS = env_int("SHEAF_MAX_TEXT_CHARS", 400_000, minimum=1000)
SHEAF_MAX_PDF_PAGES = env_int("SHEAF_MAX_PDF_PAGES", 2000, minimum=1)
SHEAF_XLSX_MAX_UNCOMPRESSED_MB = env_int("SHEAF_XLSX_MAX_UNCOMPRESSED_MB", 200, minimum=1)
# More than SHEAF_MAX_TEXT_CHARS can show (a filled cell is at least two characters of text), so
# only hostile or mostly empty workbooks reach them; each takes a child a few seconds of CPU.
SHEAF_XLSX_MAX_SHARED_STRINGS = env_int("SHEAF_XLSX_MAX_SHARED_STRINGS", 1_000_000, minimum=1)
SHEAF_XLSX_MAX_CELLS = env_int("SHEAF_XLSX_MAX_CELLS", 500_000, minimum=1)
# OCR (documents/ocr.py, in the same sandbox): scans and photos are read one page per call, each
# page under its own limits, so a long scan is not cut off by the limits of one text read.
# Tesseract's "Latin" model (Debian's tesseract-ocr-script-latn, which `make run` installs) reads
# every language Sheaf knows; the traineddata directory is where Debian puts it.
SHEAF_OCR_TESSDATA = env_str(
    "SHEAF_OCR_TESSDATA", os.environ.get("TESSDATA_PREFIX") or "/usr/share/tesseract-ocr/5/tessdata"
)
SHEAF_OCR_LANGUAGES = env_str("SHEAF_OCR_LANGUAGES", "Latin")
# CPU seconds and memory of one page (its wall clock allows three times the CPU time). A dense A4
# page takes about 0.6 s of CPU and 330 MB of address space, most of it the model.
SHEAF_OCR_PAGE_SECONDS = env_int("SHEAF_OCR_PAGE_SECONDS", 20, minimum=1)
SHEAF_OCR_MEMORY_MB = env_int("SHEAF_OCR_MEMORY_MB", 1024, minimum=256)
# A document with more pages to OCR is refused before any is read; all its pages together get
# this many seconds of wall clock, within what a drain leaves a document (see Q_CLUSTER).
SHEAF_OCR_MAX_PAGES = env_int("SHEAF_OCR_MAX_PAGES", 30, minimum=1)
SHEAF_OCR_DOCUMENT_SECONDS = env_int("SHEAF_OCR_DOCUMENT_SECONDS", 120, minimum=1)
# A document with an OCR-read page whose words' mean confidence (0-100) is below this goes to
# the review queue: its values may be right, but its letters were hard to read.
SHEAF_OCR_REVIEW_BELOW = env_int("SHEAF_OCR_REVIEW_BELOW", 80, minimum=0)
# A larger image is refused unread (a decompression bomb); a 48-megapixel photo passes.
SHEAF_OCR_MAX_MEGAPIXELS = env_int("SHEAF_OCR_MAX_MEGAPIXELS", 50, minimum=1)
# A child that OCRed holds the model (about 280 MB resident); keeping it for the next page saves
# reloading it (0.7 s) per page. Above this after an OCR call, it is replaced.
SHEAF_OCR_RECYCLE_MB = env_int("SHEAF_OCR_RECYCLE_MB", 450, minimum=32)
# CPU seconds the offline engine may spend on one document (its wall clock allows 1.5 times
# that); a 400,000-character text of real labels needs about one.
SHEAF_LOCAL_ENGINE_SECONDS = env_int("SHEAF_LOCAL_ENGINE_SECONDS", 10, minimum=1)
# An e-invoice's XML, uploaded or embedded in a PDF; a large one is thousands of lines in 2 MB.
SHEAF_XML_MAX_MB = env_int("SHEAF_XML_MAX_MB", 10, minimum=1)
Q_CLUSTER = {
    "name": "sheaf",
    "orm": "default",
    "workers": SHEAF_WORKERS,
    # A drain takes no new work after SHEAF_DRAIN_SECONDS, and the documents it holds then may
    # take a reader's wall-clock limit and an engine call more; the task may run `timeout`
    # seconds. django-q2 re-delivers any task not acknowledged within `retry`, healthy or not,
    # so retry keeps a wide margin above timeout (a repeated drain is harmless, just wasted).
    "timeout": SHEAF_DRAIN_SECONDS + 180,
    "retry": SHEAF_DRAIN_SECONDS + 300,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    # django-q2's monitor reads every stored result when it saves one, so keep few.
    "save_limit": 100,
    "poll": 0.5,
}

# --- Sheaf ----------------------------------------------------------------------------------------

SHEAF_PLAN_LIMITS = env_json_object("SHEAF_PLAN_LIMITS")
# {"name": "dotted.path.Engine"}: extra engines for benchmarks and end-to-end tests.
SHEAF_EXTRA_ENGINES = env_json_object("SHEAF_EXTRA_ENGINES")
SHEAF_EXTRACTION_ENGINE = env_choice(
    "SHEAF_EXTRACTION_ENGINE", "auto", {"auto", "local", "anthropic", *SHEAF_EXTRA_ENGINES}
)
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
SHEAF_ANTHROPIC_MODEL = env_str("SHEAF_ANTHROPIC_MODEL", "claude-haiku-4-5")
SHEAF_ANTHROPIC_TIMEOUT_SECONDS = env_int("SHEAF_ANTHROPIC_TIMEOUT_SECONDS", 120, minimum=1)
# Dollars per million tokens by model-name prefix; cache writes cost 1.25x input and cache reads
# 0.1x unless given; the Message Batches API halves everything. JSON in the environment
# replaces or adds models, e.g. {"claude-sonnet-4-5": {"input": "3", "output": "15"}}.
SHEAF_ANTHROPIC_PRICES = {
    "claude-haiku-4-5": {"input": "1.00", "output": "5.00"},
    "claude-sonnet-4-5": {"input": "3.00", "output": "15.00"},
    "claude-opus-4-5": {"input": "5.00", "output": "25.00"},
    **env_json_object("SHEAF_ANTHROPIC_PRICES"),
}
SHEAF_RETENTION_DAYS = env_optional_int("SHEAF_RETENTION_DAYS", minimum=1)
SHEAF_WEBHOOK_ALLOW_PRIVATE = env_bool("SHEAF_WEBHOOK_ALLOW_PRIVATE", False)

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_PRICE_PLUS = env_str("STRIPE_PRICE_PLUS")
STRIPE_PRICE_GROWTH = env_str("STRIPE_PRICE_GROWTH")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# A past_due subscription keeps its plan this long (with a banner) before falling back to Free.
SHEAF_PAST_DUE_GRACE_DAYS = env_int("SHEAF_PAST_DUE_GRACE_DAYS", 7, minimum=0)
