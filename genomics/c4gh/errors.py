"""Errors of the Crypt4GH engine; each message is meant for a person."""


class Crypt4GHError(ValueError):
    pass


class InvalidKey(Crypt4GHError):
    """A public or secret key that is malformed or unusable."""


class HeaderError(Crypt4GHError):
    """A header that is malformed, truncated, forged, or not for the given key."""


class SegmentError(Crypt4GHError):
    """A payload segment that fails authentication, or a payload cut short."""
