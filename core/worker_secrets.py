"""Secrets that only the Celery worker may hold (DESIGN.md "Processes and trust boundaries").

The archive's Crypt4GH secret key and the operator's chain key are read here and nowhere
else, lazily, from a file (or, for the operator key, an environment variable that only the
worker's environment carries). Settings name paths, never key material, so the web
process can import every setting and still hold no key. A web process that asks anyway
gets `NotInWorker` instead of the key: a bug then fails loudly instead of widening the
trust boundary.
"""

from __future__ import annotations

import os
from pathlib import Path

_in_worker = False


class NotInWorker(RuntimeError):
    """Raised when code outside a Celery worker asks for a worker-only secret."""


class SecretMissing(RuntimeError):
    """The worker was not given a secret it needs; the message says how to give it."""


def mark_worker_process() -> None:
    """Called by the Celery worker at start-up (config/celery.py), and by nothing else."""
    global _in_worker
    _in_worker = True


def in_worker_process() -> bool:
    return _in_worker


def require_worker(what: str) -> None:
    if not _in_worker:
        raise NotInWorker(f"{what} is held by the worker only; the web process never loads it")


def read_secret(*, what: str, path: Path | None, env_var: str | None = None) -> bytes:
    """Read a worker-only secret from `env_var` if set, else from the file at `path`."""
    require_worker(what)
    if env_var and (value := os.environ.get(env_var)):
        return value.encode()
    if path is None:
        hint = f" or set {env_var}" if env_var else ""
        raise SecretMissing(f"{what}: no key file configured{hint}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecretMissing(f"{what}: cannot read {path} ({exc.strerror})") from exc
