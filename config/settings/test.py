"""Test profile: fast hashing, quiet logs, throttles the tests set themselves.

The database comes from DATABASE_URL like everywhere else; `make test` points it at
PostgreSQL so the integration tests run against the real thing.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK, SECRET_KEY, SECRET_KEY_FILE, local_secret_key

PROFILE = "test"
DEBUG = False
SECRET_KEY = SECRET_KEY or local_secret_key(SECRET_KEY_FILE)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only in tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "anon": "10000/minute",
        "user": "10000/minute",
        "register": "1000/minute",
        "wallet": "1000/minute",
        "upload": "100000/minute",
    },
}
