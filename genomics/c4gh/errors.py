"""Errors of the Crypt4GH engine; each message is meant for a person.

Every parser of keys and headers raises only these (issue 14.5): `typed_errors` turns
whatever a library raises on damaged input (ValueError, IndexError, struct.error, a
libsodium or OpenSSL error...) into the module's error, with a fixed message and without
chaining the original, whose text or arguments may hold input bytes. No message of this
package ever quotes input bytes: a key file's salt or sealed key must not reach a log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar


class Crypt4GHError(ValueError):
    pass


class InvalidKey(Crypt4GHError):
    """A public or secret key that is malformed or unusable."""


class HeaderError(Crypt4GHError):
    """A header that is malformed, truncated, forged, or not for the given key."""


class SegmentError(Crypt4GHError):
    """A payload segment that fails authentication, or a payload cut short."""


P = ParamSpec("P")
R = TypeVar("R")


def typed_errors(
    error: type[Crypt4GHError], message: str
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a parser so that it fails only with `error` (or another Crypt4GHError).

    Raises: `error(message)` in place of any other exception, `from None` so that no
    traceback carries the library's message (which may repeat the input).
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except Crypt4GHError:
                raise
            except Exception:  # the point: nothing untyped leaves a parser
                raise error(message) from None

        return guarded

    return decorate
