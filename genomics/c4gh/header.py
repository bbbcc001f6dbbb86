"""The Crypt4GH header (GA4GH Crypt4GH v1 §3.2).

    magic "crypt4gh" | version u32 LE (1) | packet count u32 LE | packets
    packet = length u32 LE (itself included) | method u32 LE (0: X25519-ChaCha20-Poly1305)
             | writer public key (32) | nonce (12) | ChaCha20-Poly1305(content) (+16 MAC)
    content = type u32 LE, then for type 0 (data encryption parameters): method u32 LE
              (0: chacha20_ietf_poly1305) | data key (32); for type 1 (edit list):
              count u32 LE | count x length u64 LE.

The packet key is libsodium's crypto_kx session key (§3.2.1):
BLAKE2b-512(X25519(secret, peer public) | reader public | writer public), first half.

Every public function fails with HeaderError only (`typed_errors`), and no message quotes
a header's bytes or a decrypted packet's content (issue 14.5).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from genomics.c4gh.errors import HeaderError, typed_errors

MAGIC = b"crypt4gh"
VERSION = 1
PREAMBLE = struct.Struct("<8sII")
U32 = struct.Struct("<I")
HEADER_METHOD_X25519 = 0
PACKET_DATA_ENCRYPTION = 0
PACKET_EDIT_LIST = 1
DATA_METHOD_CHACHA20 = 0
NONCE = 12
MAC = 16
KEY = 32
# A packet is at least length, method, writer key, nonce and MAC; far fewer than 64 KiB.
MIN_PACKET = 4 + 4 + KEY + NONCE + MAC
MAX_PACKET = 65536
MAX_PACKETS = 256


@dataclass(frozen=True)
class DecryptedHeader:
    """What the packets addressed to one key say: data keys and an optional edit list."""

    data_keys: list[bytes]
    edit_list: list[int] | None = None
    packets: list[bytes] = field(default_factory=list, repr=False)


@typed_errors(HeaderError, "The Crypt4GH header is damaged.")
def header_size(prefix: bytes) -> int | None:
    """The header's total length, or None when `prefix` is too short to know yet.

    Raises HeaderError as soon as the prefix cannot start a valid header, so an upload of
    a file that only pretends to be Crypt4GH is refused early.
    """
    if len(prefix) < PREAMBLE.size:
        if not MAGIC.startswith(prefix[: len(MAGIC)]):
            raise HeaderError("Not a Crypt4GH file: the magic bytes are missing.")
        return None
    magic, version, count = PREAMBLE.unpack_from(prefix)
    if magic != MAGIC:
        raise HeaderError("Not a Crypt4GH file: the magic bytes are missing.")
    if version != VERSION:
        raise HeaderError(f"Crypt4GH version {version} is not supported (only version 1).")
    if not 0 < count <= MAX_PACKETS:
        raise HeaderError(f"A Crypt4GH header with {count} packets is not valid.")
    position = PREAMBLE.size
    for _ in range(count):
        if len(prefix) < position + 4:
            return None
        (length,) = U32.unpack_from(prefix, position)
        if not MIN_PACKET <= length <= MAX_PACKET:
            raise HeaderError(f"A Crypt4GH header packet of {length} bytes is not valid.")
        position += length
    return position if len(prefix) >= position else None


@typed_errors(HeaderError, "The Crypt4GH header is damaged.")
def split_header(data: bytes) -> tuple[bytes, bytes]:
    """(header, rest) of a whole Crypt4GH file's leading bytes."""
    size = header_size(data)
    if size is None:
        raise HeaderError("The Crypt4GH header is truncated.")
    return data[:size], data[size:]


def _packets(header: bytes) -> list[bytes]:
    size = header_size(header)
    if size is None or size != len(header):
        raise HeaderError("The Crypt4GH header is truncated or has trailing bytes.")
    _, _, count = PREAMBLE.unpack_from(header)
    position, packets = PREAMBLE.size, []
    for _ in range(count):
        (length,) = U32.unpack_from(header, position)
        packets.append(header[position + 4 : position + length])
        position += length
    return packets


def _session_key(
    secret: bytes, peer_public: bytes, reader_public: bytes, writer_public: bytes
) -> bytes:
    try:
        shared = X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError as exc:  # a low-order point gives an all-zero secret
        raise HeaderError("A header packet names an unusable writer key.") from exc
    digest = hashlib.blake2b(shared + reader_public + writer_public, digest_size=64).digest()
    return digest[:KEY]


def _sealer(writer_secret: bytes, reader_public: bytes) -> tuple[bytes, bytes]:
    """(writer public key, shared key) of packets from `writer_secret` to `reader_public`."""
    writer_public = (
        X25519PrivateKey.from_private_bytes(writer_secret).public_key().public_bytes_raw()
    )
    return writer_public, _session_key(writer_secret, reader_public, reader_public, writer_public)


def _seal_packet(content: bytes, writer_public: bytes, key: bytes) -> bytes:
    # A fresh random nonce per packet, so one shared key safely seals every packet of a
    # header (Crypt4GH §3.2.1: each packet names its writer key and nonce).
    nonce = os.urandom(NONCE)
    body = (
        U32.pack(HEADER_METHOD_X25519)
        + writer_public
        + nonce
        + ChaCha20Poly1305(key).encrypt(nonce, content, None)
    )
    return U32.pack(4 + len(body)) + body


def _open_packet(packet: bytes, reader_secret: bytes, reader_public: bytes) -> bytes | None:
    (method,) = U32.unpack_from(packet)
    if method != HEADER_METHOD_X25519:
        return None
    writer_public = packet[4 : 4 + KEY]
    nonce = packet[4 + KEY : 4 + KEY + NONCE]
    key = _session_key(reader_secret, writer_public, reader_public, writer_public)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, packet[4 + KEY + NONCE :], None)
    except InvalidTag:
        return None  # addressed to another key, or forged


def _assemble(packets: list[bytes]) -> bytes:
    return PREAMBLE.pack(MAGIC, VERSION, len(packets)) + b"".join(packets)


def data_encryption_packet(data_key: bytes) -> bytes:
    return U32.pack(PACKET_DATA_ENCRYPTION) + U32.pack(DATA_METHOD_CHACHA20) + data_key


def edit_list_packet(lengths: list[int]) -> bytes:
    """The content of a data edit list packet (§3.2.3): alternate skip and keep lengths,
    starting with a skip."""
    return struct.pack(f"<II{len(lengths)}Q", PACKET_EDIT_LIST, len(lengths), *lengths)


@typed_errors(HeaderError, "A header cannot be made for this key.")
def seal_header(contents: list[bytes], *, writer_secret: bytes, recipient_public: bytes) -> bytes:
    """A header whose packets hold `contents` (packet contents as `data_encryption_packet`
    and `edit_list_packet` make them), each sealed for `recipient_public` by the writer."""
    writer_public, key = _sealer(writer_secret, recipient_public)
    return _assemble([_seal_packet(c, writer_public, key) for c in contents])


@typed_errors(HeaderError, "A header cannot be made for this key.")
def build_header(
    data_key: bytes, recipient_public: bytes, writer_secret: bytes | None = None
) -> bytes:
    """A header giving `data_key` to `recipient_public` (an ephemeral writer by default)."""
    writer = writer_secret or X25519PrivateKey.generate().private_bytes_raw()
    writer_public, key = _sealer(writer, recipient_public)
    return _assemble([_seal_packet(data_encryption_packet(data_key), writer_public, key)])


@typed_errors(HeaderError, "The Crypt4GH header cannot be decrypted with this key.")
def decrypt_header(header: bytes, secret_key: bytes) -> DecryptedHeader:
    """The data keys and edit list in the packets addressed to `secret_key`."""
    reader_public = X25519PrivateKey.from_private_bytes(secret_key).public_key().public_bytes_raw()
    keys: list[bytes] = []
    edit_list: list[int] | None = None
    opened: list[bytes] = []
    for packet in _packets(header):
        content = _open_packet(packet, secret_key, reader_public)
        if content is None:
            continue
        opened.append(content)
        if len(content) < 4:
            raise HeaderError("A header packet is too short to say what it holds.")
        (kind,) = U32.unpack_from(content)
        if kind == PACKET_DATA_ENCRYPTION:
            if len(content) != 8 + KEY or U32.unpack_from(content, 4)[0] != DATA_METHOD_CHACHA20:
                raise HeaderError("Unsupported data encryption method in the header.")
            keys.append(content[8:])
        elif kind == PACKET_EDIT_LIST:
            if edit_list is not None:
                raise HeaderError("The header holds two edit lists.")
            edit_list = _edit_list(content)
        else:
            # The type is decrypted content: not quoted (issue 14.5).
            raise HeaderError("A header packet is of an unknown type.")
    if not keys:
        raise HeaderError(
            "No packet of this header is addressed to this key: the file was "
            "encrypted for another recipient, or the header is forged."
        )
    return DecryptedHeader(data_keys=keys, edit_list=edit_list, packets=opened)


def _edit_list(content: bytes) -> list[int]:
    if len(content) < 8:
        raise HeaderError("The edit list packet is truncated.")
    (count,) = U32.unpack_from(content, 4)
    if len(content) != 8 + 8 * count:
        raise HeaderError("The edit list packet has the wrong length.")
    return list(struct.unpack_from(f"<{count}Q", content, 8))


@typed_errors(HeaderError, "The Crypt4GH header cannot be re-encrypted for this key.")
def reencrypt_header(
    header: bytes,
    secret_key: bytes,
    recipient_public: bytes,
    writer_secret: bytes | None = None,
) -> bytes:
    """A new header holding the same packets, for `recipient_public` only (a grant, or
    the archive's own header moved to a new archive key in a rotation).

    The writer key is the archive's own (`secret_key`, or `writer_secret` when the reader
    and writer differ, as in a rotation), so a researcher can check with
    `crypt4gh decrypt --sender_pk archive.pub` that the header came from the archive.
    O(1) in the payload's size: the payload is shared and never touched.
    """
    decrypted = decrypt_header(header, secret_key)
    writer_public, key = _sealer(writer_secret or secret_key, recipient_public)
    return _assemble([_seal_packet(content, writer_public, key) for content in decrypted.packets])
