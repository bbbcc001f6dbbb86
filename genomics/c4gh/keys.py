"""X25519 keys as Crypt4GH uses them (GA4GH Crypt4GH §3.2, and `crypt4gh-keygen`).

Public keys are parsed and validated here with our own errors, since they come from
researchers' browsers; the passphrase-protected secret-key file format (`c4gh-v1`) is read
and written by the reference package, which defines it.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import tempfile
from pathlib import Path

from crypt4gh.keys import c4gh as reference_c4gh
from crypt4gh.keys import kdf
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genomics.c4gh.errors import InvalidKey

KEY_BYTES = 32
PUBLIC_BEGIN = "-----BEGIN CRYPT4GH PUBLIC KEY-----"
PUBLIC_END = "-----END CRYPT4GH PUBLIC KEY-----"
SECRET_BEGIN = "-----BEGIN CRYPT4GH PRIVATE KEY-----"  # noqa: S105 - a PEM label
SECRET_END = "-----END CRYPT4GH PRIVATE KEY-----"  # noqa: S105 - a PEM label
# A fixed scalar to probe keys with: X25519 with a low-order point yields all zeros.
_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def parse_public_key(value: str | bytes) -> bytes:
    """The 32 key bytes from `crypt4gh-keygen`'s text, base64 of 32 bytes, or raw bytes."""
    if isinstance(value, bytes) and len(value) == KEY_BYTES:
        raw = value
    else:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        if text.startswith(PUBLIC_BEGIN):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines[-1] != PUBLIC_END or len(lines) < 3:
                raise InvalidKey("The public key block is incomplete: it needs its END line.")
            text = "".join(lines[1:-1])
        elif text.startswith("-----BEGIN"):
            raise InvalidKey("This is not a Crypt4GH public key (a different PEM block).")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidKey("The public key is not valid base64.") from exc
    if len(raw) != KEY_BYTES:
        raise InvalidKey(f"A Crypt4GH public key has 32 bytes; this one has {len(raw)}.")
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as exc:
        raise InvalidKey("This public key is a weak (low-order) point and cannot be used.") from exc
    return raw


def public_key_text(public_key: bytes) -> str:
    """The key as `crypt4gh-keygen` writes a `.pub` file."""
    return f"{PUBLIC_BEGIN}\n{base64.b64encode(public_key).decode()}\n{PUBLIC_END}\n"


def public_key_base64(public_key: bytes) -> str:
    return base64.b64encode(public_key).decode()


def public_key_of(secret_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret_key).public_key().public_bytes_raw()


def generate_keypair() -> tuple[bytes, bytes]:
    """(secret key, public key), 32 bytes each."""
    secret = X25519PrivateKey.generate()
    return secret.private_bytes_raw(), secret.public_key().public_bytes_raw()


def write_secret_key_file(
    path: Path, secret_key: bytes, passphrase: str, comment: str = ""
) -> None:
    """Write `secret_key` as a passphrase-protected `c4gh-v1` file (mode 0600), as
    `crypt4gh-keygen` does, so the reference tools can use it too.

    The file appears whole or not at all: written to a temporary file in the same folder,
    then renamed over the target.
    """
    if not passphrase:
        raise InvalidKey("The archive's secret key needs a passphrase.")
    blob = reference_c4gh.encode_private_key(  # starts with the c4gh-v1 magic word
        secret_key, passphrase.encode(), comment.encode() if comment else None
    )
    text = f"{SECRET_BEGIN}\n{base64.b64encode(blob).decode()}\n{SECRET_END}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, text.encode())
        os.fsync(handle)
    finally:
        os.close(handle)
    Path(temporary).replace(path)


def _string(stream: io.BytesIO) -> bytes:
    size = int.from_bytes(stream.read(2), "big")
    data = stream.read(size)
    if len(data) != size:
        raise InvalidKey("The secret key file is truncated.")
    return data


def read_secret_key_file(content: bytes, passphrase: str) -> bytes:
    """The 32-byte secret key from a `c4gh-v1` file's content.

    Parsed here, not by the reference package, whose parser exits the process on a wrong
    passphrase; the key derivation is the reference's own (`crypt4gh.keys.kdf`).
    """
    lines = [
        line.strip() for line in content.decode("ascii", "replace").splitlines() if line.strip()
    ]
    if len(lines) < 3 or lines[0] != SECRET_BEGIN or lines[-1] != SECRET_END:
        raise InvalidKey("Not a Crypt4GH secret key file.")
    try:
        stream = io.BytesIO(base64.b64decode("".join(lines[1:-1]), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey("The secret key file is not valid base64.") from exc
    if stream.read(len(reference_c4gh.MAGIC_WORD)) != reference_c4gh.MAGIC_WORD:
        raise InvalidKey("Not a c4gh-v1 secret key.")
    kdf_name = _string(stream)
    if kdf_name == b"none":
        raise InvalidKey("The secret key is not protected by a passphrase; refusing to use it.")
    if kdf_name not in kdf.KDFS:
        raise InvalidKey(f"Unknown key derivation {kdf_name!r}.")
    options = _string(stream)
    rounds, salt = int.from_bytes(options[:4], "big"), options[4:]
    if _string(stream) != b"chacha20_poly1305":
        raise InvalidKey("Unsupported secret key cipher.")
    sealed = _string(stream)
    derived = kdf.derive_key(kdf_name, passphrase.encode(), salt, rounds)
    try:
        key = ChaCha20Poly1305(derived).decrypt(sealed[:12], sealed[12:], None)
    except InvalidTag as exc:
        raise InvalidKey("Wrong passphrase for the secret key.") from exc
    if len(key) != KEY_BYTES:
        raise InvalidKey("The secret key has the wrong length.")
    return key
