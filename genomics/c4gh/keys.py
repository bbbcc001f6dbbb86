"""X25519 keys as Crypt4GH uses them (GA4GH Crypt4GH §3.2), in every format the field's
tools write (README "Key formats").

Public keys (a researcher's, pasted in a browser):
- `crypt4gh-keygen`'s `CRYPT4GH PUBLIC KEY` block (Python, Go and Rust tools alike), the
  base64 of the 32 bytes, or the 32 raw bytes;
- an OpenSSH `ssh-ed25519 AAAA... comment` line, converted to X25519 as the reference
  Python and Rust tools do (libsodium's crypto_sign_ed25519_pk_to_curve25519), so that
  `crypt4gh decrypt --sk ~/.ssh/id_ed25519` opens what is made for it;
- an OpenSSL `PUBLIC KEY` block (X25519, or Ed25519 converted), which the Go tool writes.

Secret keys (the archive's):
- `c4gh-v1` files, recognised by their magic bytes and not by their PEM label: the Python
  reference writes `CRYPT4GH PRIVATE KEY`, the Go tool `CRYPT4GH ENCRYPTED PRIVATE KEY`,
  the Rust tool `ENCRYPTED PRIVATE KEY`; protected by scrypt, bcrypt or PBKDF2, or not
  at all (`crypt4gh-keygen --nocrypt`);
- OpenSSH ed25519 private keys (`openssh-key-v1`), and OpenSSL PKCS#8 X25519/Ed25519 keys.

Every parser here fails with `InvalidKey` only, and no message quotes the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from crypt4gh.keys import c4gh as reference_c4gh
from crypt4gh.keys import kdf
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genomics.c4gh.errors import InvalidKey, typed_errors

KEY_BYTES = 32
PUBLIC_BEGIN = "-----BEGIN CRYPT4GH PUBLIC KEY-----"
PUBLIC_END = "-----END CRYPT4GH PUBLIC KEY-----"
SECRET_BEGIN = "-----BEGIN CRYPT4GH PRIVATE KEY-----"  # noqa: S105 - a PEM label
SECRET_END = "-----END CRYPT4GH PRIVATE KEY-----"  # noqa: S105 - a PEM label
C4GH_MAGIC = reference_c4gh.MAGIC_WORD  # b"c4gh-v1"
OPENSSH_MAGIC = b"openssh-key-v1\x00"
SEALED_NONCE = 12
SEALED_MAC = 16
# Upper bounds on the work a key file may ask for, so a damaged or hostile file cannot
# hang the worker (measured: bcrypt 100 rounds 1.2 s, PBKDF2 1,000,000 rounds 0.8 s); well
# above what the tools write (ssh-keygen bcrypt 16, crypt4gh bcrypt 100, PBKDF2 100,000).
MAX_BCRYPT_ROUNDS = 400
MAX_PBKDF2_ROUNDS = 5_000_000
# A fixed scalar to probe keys with: X25519 with a low-order point yields all zeros.
_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_NOT_X25519 = (
    "Crypt4GH needs an X25519 key: make one with `crypt4gh-keygen`, or use an ed25519 SSH "
    "key (`ssh-keygen -t ed25519`)."
)

_SSH_TYPES = [
    ("ssh-rsa", " (RSA)"),
    ("ssh-dss", " (DSA)"),
    ("ecdsa-", " (ECDSA)"),
    ("sk-ssh-ed25519", " (ed25519 on a security key, whose secret never leaves the device)"),
    ("sk-ecdsa-", " (ECDSA on a security key)"),
]
KIND_CRYPT4GH = "crypt4gh-x25519"
KIND_SSH_ED25519 = "ssh-ed25519"
KIND_OPENSSL_X25519 = "openssl-x25519"
KIND_OPENSSL_ED25519 = "openssl-ed25519"
KIND_LABELS = {
    KIND_CRYPT4GH: "Crypt4GH X25519 key",
    KIND_SSH_ED25519: "OpenSSH ed25519 key (used as X25519)",
    KIND_OPENSSL_X25519: "OpenSSL X25519 key",
    KIND_OPENSSL_ED25519: "OpenSSL Ed25519 key (used as X25519)",
}


@dataclass(frozen=True)
class PublicKeyInfo:
    """A parsed public key: the X25519 bytes grants are made for, and what the person gave.

    `fingerprint` is "SHA256:" and the unpadded base64 of SHA-256 over the key as its tool
    identifies it: for an SSH key the wire blob, exactly as `ssh-keygen -l` prints it; for
    the others the 32 X25519 bytes (the Crypt4GH tools print no fingerprint of their own).
    """

    key: bytes
    kind: str
    fingerprint: str
    comment: str = ""

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


def fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _checked_x25519(raw: bytes) -> bytes:
    if len(raw) != KEY_BYTES:
        raise InvalidKey(f"A Crypt4GH public key has 32 bytes; this one has {len(raw)}.")
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        raise InvalidKey(
            "This public key is a weak (low-order) point and cannot be used."
        ) from None
    return raw


def _ed25519_public_to_x25519(ed25519_public: bytes) -> bytes:
    """The reference tools' conversion (libsodium crypto_sign_ed25519_pk_to_curve25519)."""
    try:
        return bytes(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise InvalidKey("This ed25519 key is not a valid curve point.") from None


def _ed25519_secret_to_x25519(key: Ed25519PrivateKey) -> bytes:
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes_raw()
    return bytes(nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(seed + public))


def _ssh_public(line: str) -> PublicKeyInfo:
    parts = line.split(None, 2)
    key_type = parts[0]
    if key_type != KIND_SSH_ED25519:
        # Named from a fixed list, never echoed: the line is the person's input.
        kind = next((name for prefix, name in _SSH_TYPES if key_type.startswith(prefix)), "")
        raise InvalidKey(f"An SSH key of this type{kind} cannot be used. {_NOT_X25519}")
    if len(parts) < 2:
        raise InvalidKey("The SSH public key line has no key after `ssh-ed25519`.")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        loaded = serialization.load_ssh_public_key(f"{key_type} {parts[1]}".encode())
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise InvalidKey("The SSH public key is damaged (its base64 does not decode).") from None
    if not isinstance(loaded, Ed25519PublicKey):  # the blob names another type
        raise InvalidKey(f"The SSH key's content is not ed25519. {_NOT_X25519}")
    raw = _checked_x25519(_ed25519_public_to_x25519(loaded.public_bytes_raw()))
    comment = parts[2].strip()[:100] if len(parts) > 2 else ""
    return PublicKeyInfo(raw, KIND_SSH_ED25519, fingerprint(blob), comment)


def _pem_public(label: str, body: str) -> PublicKeyInfo:
    if label == "CRYPT4GH PUBLIC KEY":
        raw = _checked_x25519(_base64(body, "public key"))
        return PublicKeyInfo(raw, KIND_CRYPT4GH, fingerprint(raw))
    if label == "PUBLIC KEY":  # SubjectPublicKeyInfo, as OpenSSL and the Go tool write it
        try:
            loaded = serialization.load_der_public_key(_base64(body, "public key"))
        except (ValueError, UnsupportedAlgorithm):
            raise InvalidKey("The PUBLIC KEY block is not a key OpenSSL can read.") from None
        if isinstance(loaded, X25519PublicKey):
            raw = _checked_x25519(loaded.public_bytes_raw())
            return PublicKeyInfo(raw, KIND_OPENSSL_X25519, fingerprint(raw))
        if isinstance(loaded, Ed25519PublicKey):
            raw = _checked_x25519(_ed25519_public_to_x25519(loaded.public_bytes_raw()))
            return PublicKeyInfo(raw, KIND_OPENSSL_ED25519, fingerprint(raw))
        raise InvalidKey(f"This PUBLIC KEY block holds another kind of key. {_NOT_X25519}")
    if "PRIVATE" in label:
        raise InvalidKey(
            "This is a secret (private) key: never share it. Give the public key, the "
            ".pub file written next to it."
        )
    raise InvalidKey(f"This is not a Crypt4GH public key (a different PEM block). {_NOT_X25519}")


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey(f"The {what} is not valid base64.") from None


@typed_errors(InvalidKey, "This public key cannot be read.")
def describe_public_key(value: str | bytes) -> PublicKeyInfo:
    """Parse a public key in any accepted format (module docstring) into its X25519 bytes,
    kind and fingerprint.

    Raises InvalidKey, saying which format was seen and what to give instead.
    """
    if isinstance(value, bytes) and len(value) == KEY_BYTES:
        raw = _checked_x25519(value)
        return PublicKeyInfo(raw, KIND_CRYPT4GH, fingerprint(raw))
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if text.startswith(("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")):
        return _ssh_public(text)
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        raise InvalidKey(
            "This SSH key is in the RFC 4716 (SSH2) format: convert it to the OpenSSH one "
            "with `ssh-keygen -i -f key.pub` and give that line."
        )
    if text.startswith("-----BEGIN"):
        match = _PEM.match(text)
        if match is None:
            raise InvalidKey("The public key block is incomplete: it needs its END line.")
        return _pem_public(match.group(1), match.group(2))
    raw = _checked_x25519(_base64(text, "public key"))
    return PublicKeyInfo(raw, KIND_CRYPT4GH, fingerprint(raw))


def parse_public_key(value: str | bytes) -> bytes:
    """The 32 X25519 bytes of a public key in any accepted format (`describe_public_key`)."""
    return describe_public_key(value).key


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


def secret_key_file_text(
    secret_key: bytes, passphrase: str, comment: str = "", label: str = "CRYPT4GH PRIVATE KEY"
) -> str:
    """A passphrase-protected `c4gh-v1` key file's text (scrypt, as `crypt4gh-keygen`).

    `label` is the PEM label; the other tools' labels are accepted for tests and exports.
    """
    if not passphrase:
        raise InvalidKey("The archive's secret key needs a passphrase.")
    blob = reference_c4gh.encode_private_key(  # starts with the c4gh-v1 magic word
        secret_key, passphrase.encode(), comment.encode() if comment else None
    )
    return f"-----BEGIN {label}-----\n{base64.b64encode(blob).decode()}\n-----END {label}-----\n"


def write_secret_key_file(
    path: Path, secret_key: bytes, passphrase: str, comment: str = ""
) -> None:
    """Write `secret_key` as a passphrase-protected `c4gh-v1` file (mode 0600), as
    `crypt4gh-keygen` does, so the reference tools can use it too.

    The file appears whole or not at all: written to a temporary file in the same folder,
    then renamed over the target.
    """
    text = secret_key_file_text(secret_key, passphrase, comment)
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
    """One length-prefixed (u16 big-endian) string of a c4gh-v1 key."""
    size = int.from_bytes(stream.read(2), "big")
    data = stream.read(size)
    if len(data) != size:
        raise InvalidKey("The secret key file is truncated or damaged.")
    return data


def _c4gh_secret(blob: bytes, passphrase: str) -> bytes:
    """The key of a c4gh-v1 blob (the reference's format: magic | kdf name | [kdf options:
    rounds u32 BE | salt] | cipher name | [nonce 12 | sealed key + MAC 16] | comment)."""
    stream = io.BytesIO(blob[len(C4GH_MAGIC) :])
    kdf_name = _string(stream)
    if kdf_name == b"none":
        if _string(stream) != b"none":
            raise InvalidKey("The secret key file is damaged (unprotected, yet a cipher is named).")
        key = _string(stream)
        if len(key) != KEY_BYTES:
            raise InvalidKey("The secret key file is damaged (the key has the wrong length).")
        return key
    if kdf_name not in kdf.KDFS:
        # Never quote the name read: after a damaged length it runs into the salt.
        raise InvalidKey(
            "The secret key file names a key derivation this archive does not know "
            "(scrypt, bcrypt and pbkdf2_hmac_sha256 are known), or it is damaged."
        )
    options = _string(stream)
    if len(options) < 4 + 1:
        raise InvalidKey("The secret key file is damaged (no salt).")
    rounds, salt = int.from_bytes(options[:4], "big"), options[4:]
    if (kdf_name == b"bcrypt" and not 0 < rounds <= MAX_BCRYPT_ROUNDS) or (
        kdf_name == b"pbkdf2_hmac_sha256" and not 0 < rounds <= MAX_PBKDF2_ROUNDS
    ):
        raise InvalidKey("The secret key file asks for an unreasonable number of rounds.")
    if _string(stream) != b"chacha20_poly1305":
        raise InvalidKey("The secret key file names an unsupported cipher, or it is damaged.")
    sealed = _string(stream)
    if len(sealed) != SEALED_NONCE + KEY_BYTES + SEALED_MAC:
        raise InvalidKey("The secret key file is damaged (the sealed key has the wrong length).")
    try:
        derived = kdf.derive_key(kdf_name, passphrase.encode(), salt, rounds)
    except Exception:  # the KDF libraries' messages may quote the salt
        raise InvalidKey("The secret key file's key derivation failed; it is damaged.") from None
    try:
        return ChaCha20Poly1305(derived).decrypt(sealed[:SEALED_NONCE], sealed[SEALED_NONCE:], None)
    except InvalidTag:
        raise InvalidKey(
            "Wrong passphrase for the secret key (or the key file is damaged)."
        ) from None


def _loaded_secret(key: object) -> bytes:
    if isinstance(key, X25519PrivateKey):
        return key.private_bytes_raw()
    if isinstance(key, Ed25519PrivateKey):
        return _ed25519_secret_to_x25519(key)
    raise InvalidKey(f"This secret key is of another kind. {_NOT_X25519}")


def _load_protected(
    load: Callable[[bytes, bytes | None], object], data: bytes, passphrase: str, what: str
) -> object:
    """`load(data, password)` of `cryptography`; an unprotected key is read whatever the
    passphrase (as a c4gh-v1 key with kdf none is), so one passphrase serves every file."""
    password = passphrase.encode() or None
    try:
        return load(data, password)
    except TypeError:
        if password is None:
            raise InvalidKey(f"This {what} secret key is protected: give its passphrase.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKey(
            f"Wrong passphrase for the {what} secret key (or the key file is damaged)."
        ) from None
    try:
        return load(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKey(f"The {what} secret key file is damaged.") from None


def _openssh_bcrypt_rounds(blob: bytes) -> int:
    """The bcrypt rounds an `openssh-key-v1` blob asks for (0 if unprotected): magic |
    cipher name | kdf name | kdf options (salt | rounds u32), strings u32-length-prefixed
    (OpenSSH PROTOCOL.key)."""
    stream = io.BytesIO(blob[len(OPENSSH_MAGIC) :])

    def string() -> bytes:
        size = int.from_bytes(stream.read(4), "big")
        data = stream.read(size)
        if len(data) != size:
            raise InvalidKey("The OpenSSH secret key file is truncated or damaged.")
        return data

    string()  # cipher name
    if string() != b"bcrypt":
        return 0
    options = io.BytesIO(string())
    salt_size = int.from_bytes(options.read(4), "big")
    options.read(salt_size)
    return int.from_bytes(options.read(4), "big")


def _openssh_secret(text: bytes, blob: bytes, passphrase: str) -> bytes:
    if _openssh_bcrypt_rounds(blob) > MAX_BCRYPT_ROUNDS:
        raise InvalidKey("The OpenSSH secret key asks for an unreasonable number of rounds.")
    return _loaded_secret(
        _load_protected(serialization.load_ssh_private_key, text, passphrase, "OpenSSH")
    )


def _pkcs8_secret(der: bytes, passphrase: str) -> bytes:
    return _loaded_secret(
        _load_protected(serialization.load_der_private_key, der, passphrase, "PKCS#8")
    )


@typed_errors(InvalidKey, "The secret key file is damaged.")
def read_secret_key_file(content: bytes, passphrase: str) -> bytes:
    """The 32-byte X25519 secret key from a key file's content, in any accepted format
    (module docstring), told apart by the magic bytes of its body, not by its PEM label.

    Parsed here, not by the reference package, whose parser exits the process on a wrong
    passphrase; the key derivation is the reference's own (`crypt4gh.keys.kdf`).
    Raises InvalidKey (never quoting the file: its salt and sealed key stay out of logs).
    """
    text = content.decode("ascii", "replace").strip()
    match = _PEM.match(text)
    if match is None:
        raise InvalidKey(
            "Not a secret key file: expected a PEM block (-----BEGIN ...----- to "
            "-----END ...-----) as crypt4gh-keygen, ssh-keygen or openssl write it."
        )
    label = match.group(1)
    blob = _base64(match.group(2), "secret key file")
    if blob.startswith(C4GH_MAGIC):
        key = _c4gh_secret(blob, passphrase)
    elif blob.startswith(OPENSSH_MAGIC):
        key = _openssh_secret(text.encode(), blob, passphrase)
    elif label in ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        key = _pkcs8_secret(blob, passphrase)
    else:
        raise InvalidKey(
            "Not a Crypt4GH secret key: the block is neither c4gh-v1 (crypt4gh-keygen), "
            f"OpenSSH nor PKCS#8. {_NOT_X25519}"
        )
    if len(key) != KEY_BYTES:
        raise InvalidKey("The secret key has the wrong length.")
    return key
