"""Benchmark profile: the test profile with the benchmark's download route."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.support.download_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False}
