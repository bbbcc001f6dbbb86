"""Every setting, read from the environment with its embedded default in one place.

The embedded defaults (SQLite, a filesystem Celery broker, filesystem storage, a local anvil)
let `make run` work on a fresh machine with nothing configured; production sets the
environment instead (see README "Configuration"). Profiles in this package change only
what differs.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Writable state of the embedded defaults (SQLite file, broker folders, uploads, keys).
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# --- Profile -------------------------------------------------------------------------------
# Which profile is running, for code that must behave differently (e.g. JSON logs).
PROFILE = "base"
DEBUG = env.bool("DEBUG", default=False)


def local_secret_key(path: Path) -> str:
    """Read the signing key kept beside the embedded SQLite database, creating it once.

    Generated rather than shipped so that no two installations share a key; kept in a
    0600 file so sessions survive a restart. Production must set SECRET_KEY instead.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


# Profiles decide what an empty SECRET_KEY means: dev and test generate a local one,
# production refuses to start.
SECRET_KEY = env.str("SECRET_KEY", default="")
SECRET_KEY_FILE = VAR_DIR / "secret_key"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications --------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_guid",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "marketplace",
    "genomics",
    "ledger",
    "disclosure",
    "discovery",
]

MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): staff pages and the admin need a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.PrivateCacheControlMiddleware",
    "core.middleware.DomainErrorPageMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the backend into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "marketplace.web.context_processors.navigation",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'genemarket.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Reuse connections but check them first, so a restarted PostgreSQL costs one failed
    # request at most instead of a process restart (RELIABILITY.md item 13).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
else:
    # SQLite: wait for the writer lock instead of failing at once when worker and web
    # write together in the embedded run, and take it at BEGIN so a read-then-write
    # transaction (nonce allocation) cannot interleave with another: SQLite has no
    # SELECT ... FOR UPDATE. Write-ahead logging: a commit appends to the log and syncs it
    # once (synchronous=FULL keeps every commit durable) instead of the rollback journal's
    # several syncs, and readers do not wait for a writer (an htsget ticket's audit entry,
    # README "htsget"; web and worker sharing the file).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ------------------------------------------------------------------------------
AUTH_USER_MODEL = "marketplace.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username/IP before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"

# Login rate limiting (django-axes): lock a username+IP pair after AXES_FAILURE_LIMIT
# failures for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60.0
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# Behind a proxy the client address comes from X-Forwarded-For; set the count of proxies.
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files and storage --------------------------------------------------------------
STATIC_URL = "/static/"
# Only production collects static files (`collectstatic`); elsewhere whitenoise serves
# them straight from the apps' folders.
STATIC_ROOT: Path | None = None
# Serve from the finders without collectstatic except in production, where
# `collectstatic` builds the hashed, compressed set.
WHITENOISE_USE_FINDERS = True

STORAGE = env.str("STORAGE", default="filesystem")
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "storage")))
if STORAGE == "filesystem":
    DEFAULT_STORAGE: dict[str, object] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "file_permissions_mode": 0o600},
    }
elif STORAGE == "s3":
    # Any S3-compatible store through django-storages; credentials come from the usual
    # AWS_* variables, read by django-storages itself.
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET", default="genemarket"),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default="") or None,
            "default_acl": "private",
            "querystring_auth": True,
        },
    }
else:
    raise ImproperlyConfigured(f"STORAGE must be 'filesystem' or 's3', not {STORAGE!r}")
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Genomics vault -------------------------------------------------------------------------
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=50 * 1024**3)
UPLOAD_QUOTA_BYTES = env.int("UPLOAD_QUOTA_BYTES", default=200 * 1024**3)
# An unfinished upload with no progress for this long expires (tus expiration extension):
# HEAD and PATCH answer 410 and the worker deletes its bytes on its next sweep.
UPLOAD_EXPIRES_AFTER_S = env.int("UPLOAD_EXPIRES_AFTER_S", default=7 * 86400)
UPLOAD_EXPIRY_SWEEP_S = env.float("UPLOAD_EXPIRY_SWEEP_S", default=3600.0)
# Worker-only: the archive's Crypt4GH secret key file (passphrase-protected, c4gh-v1) and
# the file holding its passphrase (or ARCHIVE_KEY_PASSPHRASE in the worker's environment).
ARCHIVE_SECRET_KEY_FILE = env.str(
    "ARCHIVE_SECRET_KEY_FILE", default=str(VAR_DIR / "keys" / "archive.sec")
)
ARCHIVE_KEY_PASSPHRASE_FILE = env.str(
    "ARCHIVE_KEY_PASSPHRASE_FILE", default=str(VAR_DIR / "keys" / "archive.passphrase")
)

# --- Marketplace ----------------------------------------------------------------------------
# How long an approved request's voucher can be paid, and how long after that the buyer
# may take back an escrow the platform never released.
VOUCHER_VALID_S = env.int("VOUCHER_VALID_S", default=2 * 86400)
REFUND_GRACE_S = env.int("REFUND_GRACE_S", default=7 * 86400)
LIFECYCLE_INTERVAL_S = env.float("LIFECYCLE_INTERVAL_S", default=60.0)
ANCHOR_INTERVAL_S = env.float("ANCHOR_INTERVAL_S", default=3600.0)

# --- Celery --------------------------------------------------------------------------------
# Without CELERY_BROKER_URL the embedded run uses kombu's filesystem transport: a real
# broker shared by separate web, worker and beat processes through a folder, with no
# server to install (eager mode would hide every concurrency bug).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    # The transport needs its folders to exist in every process that publishes or consumes.
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        # Longer than any task's time limit or ETA, or Redis redelivers a running task
        # (kombu #337, RELIABILITY.md item 12).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=6 * 3600),
    }
)
# Hard limit for any task; the visibility timeout above must stay longer.
TASK_TIME_LIMIT_S = env.int("TASK_TIME_LIMIT_S", default=2 * 3600)
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT_S
CELERY_TASK_SOFT_TIME_LIMIT = max(TASK_TIME_LIMIT_S - 60, 1)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat asks a worker to record that it is alive this often; /health shows when it last did.
HEARTBEAT_INTERVAL_S = env.float("HEARTBEAT_INTERVAL_S", default=30.0)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "worker-heartbeat": {
        "task": "core.tasks.heartbeat",
        "schedule": HEARTBEAT_INTERVAL_S,
        "options": {"expires": HEARTBEAT_INTERVAL_S},
    },
}

# --- Chain ---------------------------------------------------------------------------------
CHAIN_RPC_URL = env.str("CHAIN_RPC_URL", default="http://127.0.0.1:8545")
# The RPC URL handed to browsers' wallets. Never defaults to CHAIN_RPC_URL, which may carry
# a provider's API key; empty means "use your wallet's own node for this chain id".
CHAIN_PUBLIC_RPC_URL = env.str("CHAIN_PUBLIC_RPC_URL", default="")
CHAIN_TIMEOUT_S = env.float("CHAIN_TIMEOUT_S", default=5.0)
CONFIRMATIONS = env.int("CONFIRMATIONS", default=2)
# Largest block range of one eth_getLogs call (providers cap it; smaller ranges are safer).
INDEXER_MAX_BLOCK_RANGE = env.int("INDEXER_MAX_BLOCK_RANGE", default=2000)
INDEXER_INTERVAL_S = env.float("INDEXER_INTERVAL_S", default=2.0)
# Operator transactions: replaced with higher fees when not mined within this time.
SENDER_STUCK_AFTER_S = env.float("SENDER_STUCK_AFTER_S", default=60.0)
SENDER_FEE_BUMP_PERCENT = env.int("SENDER_FEE_BUMP_PERCENT", default=15)
# No operator transaction pays more than this per gas (max fee); reaching it is logged and
# shown on the staff chain page instead of bumping on.
SENDER_MAX_FEE_GWEI = env.float("SENDER_MAX_FEE_GWEI", default=200.0)
SENDER_POLL_INTERVAL_S = env.float("SENDER_POLL_INTERVAL_S", default=2.0)
# Mined operator transactions are checked for a lost block this many blocks deep.
SENDER_RECHECK_BLOCKS = env.int("SENDER_RECHECK_BLOCKS", default=64)
# Worker-only key of the MACs over vouchers and operator-transaction intents
# (ledger/integrity.py); created on first use unless WORKER_MAC_KEY_REQUIRED.
WORKER_MAC_KEY_FILE = env.str(
    "WORKER_MAC_KEY_FILE", default=str(VAR_DIR / "keys" / "worker-mac.key")
)
WORKER_MAC_KEY_REQUIRED = env.bool("WORKER_MAC_KEY_REQUIRED", default=False)
# The market the worker acts on, pinned in its own configuration (ledger/pinned.py): the
# worker refuses to start when the database names another. Empty: read once per process
# from the deployment record (local runs, which deploy at start); required in production.
MARKET_ADDRESS = env.str("MARKET_ADDRESS", default="")
# No grant (no delivery on chain) when less than this is left before the buyer could
# reclaim the escrow alone: the delivery must land well before the reclaim opens.
GRANT_REFUND_MARGIN_S = env.int("GRANT_REFUND_MARGIN_S", default=6 * 3600)
# The grant task looks at the escrow again this long after sending `deliver` (about one
# block), so the grant follows the delivery's block without waiting for the sender's poll.
DELIVERY_CHECK_AFTER_S = env.float("DELIVERY_CHECK_AFTER_S", default=1.0)
# A reverted deliver/release/refund/cancel is tried again under a new attempt key after
# SETTLEMENT_RETRY_BASE_S, doubling; after SETTLEMENT_MAX_ATTEMPTS admins are told.
SETTLEMENT_RETRY_BASE_S = env.float("SETTLEMENT_RETRY_BASE_S", default=60.0)
SETTLEMENT_MAX_ATTEMPTS = env.int("SETTLEMENT_MAX_ATTEMPTS", default=6)
# Worker-only key material is never in settings: only where to find it (core.worker_secrets).
# OPERATOR_PRIVATE_KEY, if used instead of a file, is read from the worker's own environment.
OPERATOR_KEY_FILE = env.str("OPERATOR_KEY_FILE", default="")
CELERY_BEAT_SCHEDULE["anchor"] = {
    "task": "marketplace.tasks.anchor",
    "schedule": ANCHOR_INTERVAL_S,
    "options": {"expires": ANCHOR_INTERVAL_S},
}
# Work that waited this long in the database without a task in the queue is sent again
# (core/queue.py, marketplace/services/reconcile.py).
RECONCILE_AFTER_S = env.float("RECONCILE_AFTER_S", default=300.0)
RECONCILE_INTERVAL_S = env.float("RECONCILE_INTERVAL_S", default=60.0)
CELERY_BEAT_SCHEDULE["reconcile"] = {
    "task": "marketplace.tasks.reconcile",
    "schedule": RECONCILE_INTERVAL_S,
    "options": {"expires": RECONCILE_INTERVAL_S},
}
# An archive key rotation (genomics/services/archive_keys.py) goes on by itself after a
# crash, and moves uploads that were still receiving bytes once they complete.
ARCHIVE_KEY_ROTATION_INTERVAL_S = env.float("ARCHIVE_KEY_ROTATION_INTERVAL_S", default=60.0)
CELERY_BEAT_SCHEDULE["rotate-archive-key"] = {
    "task": "genomics.tasks.rotate_archive_key",
    "schedule": ARCHIVE_KEY_ROTATION_INTERVAL_S,
    "options": {"expires": ARCHIVE_KEY_ROTATION_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["expire-uploads"] = {
    "task": "genomics.tasks.expire_uploads",
    "schedule": UPLOAD_EXPIRY_SWEEP_S,
    "options": {"expires": UPLOAD_EXPIRY_SWEEP_S},
}
# Storing a VCF bgzipped (README "Storing a VCF bgzipped"): the payload it replaced is kept
# this long, so downloads that started before the switch finish; then beat deletes it.
RECOMPRESS_REPLACED_PAYLOAD_KEEP_S = env.int("RECOMPRESS_REPLACED_PAYLOAD_KEEP_S", default=86400)
RECOMPRESS_PURGE_SWEEP_S = env.float("RECOMPRESS_PURGE_SWEEP_S", default=3600.0)
CELERY_BEAT_SCHEDULE["purge-replaced-payloads"] = {
    "task": "genomics.tasks.purge_replaced_payloads",
    "schedule": RECOMPRESS_PURGE_SWEEP_S,
    "options": {"expires": RECOMPRESS_PURGE_SWEEP_S},
}
CELERY_BEAT_SCHEDULE["lapse-and-expire"] = {
    "task": "marketplace.tasks.lapse_and_expire",
    "schedule": LIFECYCLE_INTERVAL_S,
    "options": {"expires": LIFECYCLE_INTERVAL_S},
}
# --- GA4GH Passport visas (README "Passports") ----------------------------------------------
# The market's public URL: a visa's `iss` and `source`, and the base of its `value` (the
# dataset's page) and `jku` (our JWKS). No trailing slash.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Worker-only: the visa signing key (EC P-256 private key, PKCS#8 PEM, mode 0600), made by
# `manage.py create_visa_key` (run by `make run`); VISA_SIGNING_KEY in the worker's
# environment instead of the file, if you prefer.
VISA_SIGNING_KEY_FILE = env.str(
    "VISA_SIGNING_KEY_FILE", default=str(VAR_DIR / "keys" / "visa-signing.pem")
)
# Other services cannot learn of a revocation before a visa's `exp`: visas live this long
# at most (never past the grant's end) and the worker re-issues them while the grant lives.
VISA_LIFETIME_S = env.int("VISA_LIFETIME_S", default=86400)
# How often the worker re-issues visas (those with less than half their lifetime left).
VISA_REFRESH_INTERVAL_S = env.float("VISA_REFRESH_INTERVAL_S", default=900.0)
CELERY_BEAT_SCHEDULE["refresh-visas"] = {
    "task": "marketplace.tasks.refresh_visas",
    "schedule": VISA_REFRESH_INTERVAL_S,
    "options": {"expires": VISA_REFRESH_INTERVAL_S},
}
# Periodic chain work; a run that waited longer than its interval in the queue is dropped
# (the next one does the same work), so a stopped worker does not come back to a flood.
CELERY_BEAT_SCHEDULE.update(
    {
        "index-chain": {
            "task": "ledger.tasks.index_chain",
            "schedule": INDEXER_INTERVAL_S,
            "options": {"expires": INDEXER_INTERVAL_S},
        },
        "poll-operator-transactions": {
            "task": "ledger.tasks.poll_operator_transactions",
            "schedule": SENDER_POLL_INTERVAL_S,
            "options": {"expires": SENDER_POLL_INTERVAL_S},
        },
    }
)
# --- Request attachments (marketplace/services/attachments.py) ----------------------------
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
# How long opening an attachment waits for the worker's one-time header.
ATTACHMENT_OPEN_WAIT_S = env.float("ATTACHMENT_OPEN_WAIT_S", default=10.0)
# --- Renewals (marketplace/services/renewals.py) -------------------------------------------
# A researcher is told this many days before a grant ends that it can be renewed.
RENEWAL_REMINDER_DAYS = env.int("RENEWAL_REMINDER_DAYS", default=14)
RENEWAL_REMINDER_INTERVAL_S = env.float("RENEWAL_REMINDER_INTERVAL_S", default=3600.0)
CELERY_BEAT_SCHEDULE["remind-renewals"] = {
    "task": "marketplace.tasks.remind_renewals",
    "schedule": RENEWAL_REMINDER_INTERVAL_S,
    "options": {"expires": RENEWAL_REMINDER_INTERVAL_S},
}
# The chain's id; asked of the node (once per process) when not set.
CHAIN_ID = env.int("CHAIN_ID", default=0) or None
# The domain Sign-In with Ethereum messages name; the request's host when empty.
SIWE_DOMAIN = env.str("SIWE_DOMAIN", default="")

# --- Failpoints (core/failpoints.py): for fault tests only; empty in production ---------
FAILPOINTS = frozenset(env.list("FAILPOINTS", default=[]))
FAILPOINT_DIR = Path(env.str("FAILPOINT_DIR", default=str(VAR_DIR / "failpoints")))
FAILPOINT_PAUSE_S = env.float("FAILPOINT_PAUSE_S", default=120.0)

# --- REST API ------------------------------------------------------------------------------
# --- GA4GH DRS 1.4 ---------------------------------------------------------------------------
# How long a DRS access URL (`/objects/{id}/access/{access_id}`) stays valid: long enough to
# start a download (a started download runs to its end), short enough that a leaked URL dies.
DRS_ACCESS_URL_TTL_S = env.int("DRS_ACCESS_URL_TTL_S", default=300)
# Paths whose errors outside DRF's views (unknown URL, crash, CSRF, lockout) answer JSON, and
# the builder of each one's error body: API.md's shape for the REST API, DRS 1.4's for DRS.
JSON_ERROR_SHAPES = {
    "/api/": "core.api.exception_handler.api_error_shape",
    "/ga4gh/drs/": "marketplace.ga4gh.drs.drs_error_shape",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "core.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.api.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    # `?format=` is the catalogue's file-format filter (API.md), not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    # Atomic fixed-window counters (core/api/throttling.py), not DRF's racy ones.
    "DEFAULT_THROTTLE_CLASSES": [
        "core.api.throttling.AnonThrottle",
        "core.api.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/minute"),
        "user": env.str("THROTTLE_USER", default="600/minute"),
        "register": env.str("THROTTLE_REGISTER", default="10/hour"),
        "wallet": env.str("THROTTLE_WALLET", default="30/hour"),
        "upload": env.str("THROTTLE_UPLOAD", default="3000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Genomic data access marketplace API",
    "DESCRIPTION": (
        "Donors list Crypt4GH-encrypted genomic datasets, researchers pay for access on chain, "
        "a data access committee reviews requests. Errors: every 4xx has the body "
        '`{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: there is no CDN to load it from.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
    ],
}

# Throttling and health checks share a cache; the embedded default is per-process memory,
# production should point CACHE_URL at Redis so limits hold across processes.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# How long a rendered catalogue result list is kept (marketplace/web/results_cache.py);
# a listing change makes it stale at once. 0 turns the cache off.
CATALOGUE_CACHE_S = env.int("CATALOGUE_CACHE_S", default=30)

# --- Mail ----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="GeneMarket <noreply@localhost>")
# SITE_URL (above, with the visas) is also the base of the links in emails.

# --- Security headers that hold in every profile -------------------------------------------
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "core.views.csrf_failure"
# Content Security Policy (django-csp): scripts only from our own static files, never
# inline (templates pass data through <script type="application/json">). Inline styles
# stay allowed for the Django admin, Swagger UI and htmx's indicator style; no style can
# run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads it to send X-CSRFToken
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE_S", default=8 * 3600)

# --- Logging -------------------------------------------------------------------------------
# Plain lines for people at a terminal; JSON lines (one object per line) when LOG_FORMAT is
# json, as production sets it, so a log shipper can index request ids and task ids.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "VALIDATE_GUID": True,
    # Carries the request id into the tasks a request enqueues, and gives beat's tasks one.
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}


def logging_config(log_format: str, level: str) -> dict[str, object]:
    """Build LOGGING for a format, so each profile can pick one without copying the rest."""
    formatters: dict[str, dict[str, object]] = {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s task=%(task_id)s] "
            "%(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "django_guid.log_filters.CorrelationId",
                "correlation_id_field": "request_id",
            },
            "task_id": {"()": "core.logging.CeleryTaskFilter"},
        },
        "formatters": formatters,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "task_id"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "django_guid": {"level": "WARNING"},
            "axes": {"level": "WARNING"},
            "web3": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)

# --- Demo and first admin (used by `make run`) ---------------------------------------------
ADMIN_USER = env.str("ADMIN_USER", default="admin")
ADMIN_PASSWORD_DEFAULT = "admin-change-me"  # noqa: S105 - published default, printed by make run
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default=ADMIN_PASSWORD_DEFAULT)
ADMIN_EMAIL = env.str("ADMIN_EMAIL", default="admin@localhost")

# Web UI (issue 16 §11, §9): password-reset requests per client address and per email
# address asked for (core.ratelimit, atomic counters in CACHE_URL).
THROTTLE_PASSWORD_RESET = env.str("THROTTLE_PASSWORD_RESET", default="5/hour")
# The Django admin never shows a TOTP device's key or its QR code (django-otp).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# --- GA4GH htsget 1.3 (README "htsget") ----------------------------------------------------
# The worker-side ticket service's Unix socket (genomics/ticketer.py): the web asks it for
# each ticket; it holds the archive key, the web does not.
HTSGET_TICKETER_SOCKET = env.str(
    "HTSGET_TICKETER_SOCKET", default=str(VAR_DIR / "htsget-ticketer.sock")
)
HTSGET_TICKETER_TIMEOUT_S = env.float("HTSGET_TICKETER_TIMEOUT_S", default=10.0)
# How long the URLs of a ticket (their `headers` carry a signed token) stay valid.
HTSGET_URL_TTL_S = env.int("HTSGET_URL_TTL_S", default=600)
JSON_ERROR_SHAPES["/ga4gh/htsget/"] = "marketplace.ga4gh.htsget.htsget_error_shape"
# --- Disclosure control of discovery answers (README "Disclosure control") -----------------
# An allele is rare in a dataset when AC/AN < DISCLOSURE_RARE_AF or AC < DISCLOSURE_RARE_MIN_AC
# (the count floor keeps a small dataset's few carriers rare however high their frequency).
DISCLOSURE_RARE_AF = env.float("DISCLOSURE_RARE_AF", default=0.01)
DISCLOSURE_RARE_MIN_AC = env.int("DISCLOSURE_RARE_MIN_AC", default=20)
# Answers near or below that threshold come from AC plus discrete Laplace noise of this scale
# (OpenDP), drawn once per dataset and query: one draw decides whether the query costs budget
# (free from the threshold minus DISCLOSURE_GATE_MARGIN_SCALES scales; the true answer from
# the threshold plus 3 scales), the other what a charged answer says; a noisy AC below
# DISCLOSURE_SUPPRESS_BELOW is suppressed (absent and rare alike), a released noisy count is
# rounded to DISCLOSURE_COUNT_ROUNDING. Alleles far above the threshold are answered exactly.
DISCLOSURE_NOISE_SCALE = env.float("DISCLOSURE_NOISE_SCALE", default=3.0)
DISCLOSURE_GATE_MARGIN_SCALES = env.float("DISCLOSURE_GATE_MARGIN_SCALES", default=1.0)
DISCLOSURE_SUPPRESS_BELOW = env.int("DISCLOSURE_SUPPRESS_BELOW", default=15)
DISCLOSURE_COUNT_ROUNDING = env.int("DISCLOSURE_COUNT_ROUNDING", default=5)
# Distinct rare-allele queries per dataset per window, per account and per network prefix
# (IPv4 /24, IPv6 /64; all accounts and anonymous callers of one prefix share its budget).
DISCLOSURE_USER_BUDGET = env.int("DISCLOSURE_USER_BUDGET", default=5)
DISCLOSURE_NETWORK_BUDGET = env.int("DISCLOSURE_NETWORK_BUDGET", default=5)
DISCLOSURE_BUDGET_WINDOW_S = env.int("DISCLOSURE_BUDGET_WINDOW_S", default=30 * 86400)
# Off only to measure the attack against a bare Beacon (bench/beacon_privacy.py); production
# refuses to start with it off.
DISCLOSURE_ENABLED = env.bool("DISCLOSURE_ENABLED", default=True)
