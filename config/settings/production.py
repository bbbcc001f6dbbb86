"""Production profile: every secret from the environment, HTTPS only, JSON logs.

`python manage.py check --deploy` prints no warnings with this profile (tested).
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    DISCLOSURE_ENABLED,
    FAILPOINTS,
    LOG_LEVEL,
    SECRET_KEY,
    VAR_DIR,
    env,
    logging_config,
)

PROFILE = "production"
DEBUG = False

if not SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set (50+ random characters) in production; generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
    )

if FAILPOINTS:
    raise ImproperlyConfigured(
        f"FAILPOINTS ({', '.join(sorted(FAILPOINTS))}) pause workers for fault tests; "
        "unset it in production."
    )

if not DISCLOSURE_ENABLED:
    raise ImproperlyConfigured(
        "DISCLOSURE_ENABLED=false answers Beacon queries without budget, suppression or noise "
        "(bench/beacon_privacy.py measures that); unset it in production."
    )

# The worker's row MAC key must be provisioned, never created on first use (ledger/integrity.py).
WORKER_MAC_KEY_REQUIRED = env.bool("WORKER_MAC_KEY_REQUIRED", default=True)

# HTTPS everywhere. Behind a TLS-terminating proxy, the proxy sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"

STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))

LOGGING = logging_config(env.str("LOG_FORMAT", default="json"), LOG_LEVEL)
