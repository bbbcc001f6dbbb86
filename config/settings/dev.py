"""Developer profile, used by `make run`: DEBUG on, mail to the console, a generated key."""

from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY, SECRET_KEY_FILE, env, local_secret_key

PROFILE = "dev"
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or local_secret_key(SECRET_KEY_FILE)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
