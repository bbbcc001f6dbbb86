"""The Crypt4GH engine against the reference `crypt4gh` package, both ways."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crypt4gh import lib as reference

from genomics import c4gh

SIZES = [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 7]
CLI = str(Path(sys.executable).with_name("crypt4gh"))


def ours(data: bytes, recipient_public: bytes) -> bytes:
    key = c4gh.new_data_key()
    return c4gh.build_header(key, recipient_public) + c4gh.encrypt_segments(key, data)


def reference_decrypt(blob: bytes, secret: bytes) -> bytes:
    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(blob), out)
    return out.getvalue()


def our_decrypt(blob: bytes, secret: bytes, chunk: int = 100_000) -> bytes:
    header, payload = c4gh.split_header(blob)
    decrypted = c4gh.decrypt_header(header, secret)
    chunks = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    return b"".join(c4gh.decrypt_stream(decrypted.data_keys, chunks, edit_list=decrypted.edit_list))


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    return {name: c4gh.generate_keypair() for name in ("archive", "donor", "alice", "bob")}


@pytest.mark.parametrize("size", SIZES)
def test_reference_decrypts_what_we_write(keys, size: int) -> None:
    data = os.urandom(size)
    assert reference_decrypt(ours(data, keys["archive"][1]), keys["archive"][0]) == data


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_what_the_reference_writes(keys, size: int) -> None:
    data = os.urandom(size)
    encrypted = io.BytesIO()
    reference.encrypt([(0, keys["donor"][0], keys["archive"][1])], io.BytesIO(data), encrypted)
    assert our_decrypt(encrypted.getvalue(), keys["archive"][0]) == data


def test_we_honour_a_reference_edit_list(keys) -> None:
    data = os.urandom(200_000)
    encrypted = io.BytesIO()
    reference.encrypt(
        [(0, keys["donor"][0], keys["archive"][1])],
        io.BytesIO(data),
        encrypted,
        offset=70_000,
        span=100_000,
    )
    assert our_decrypt(encrypted.getvalue(), keys["archive"][0]) == data[70_000:170_000]


def test_the_reference_cli_decrypts_our_file(keys, tmp_path: Path) -> None:
    secret, public = keys["alice"]
    c4gh.write_secret_key_file(tmp_path / "alice.sec", secret, "pass phrase")
    data = os.urandom(150_000)
    (tmp_path / "f.c4gh").write_bytes(ours(data, public))
    result = subprocess.run(
        [CLI, "decrypt", "--sk", str(tmp_path / "alice.sec")],
        stdin=(tmp_path / "f.c4gh").open("rb"),
        capture_output=True,
        check=False,
        env={**os.environ, "C4GH_PASSPHRASE": "pass phrase"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_a_grant_header_opens_for_its_recipient_only(keys) -> None:
    data = os.urandom(100_000)
    blob = ours(data, keys["archive"][1])
    header, payload = c4gh.split_header(blob)
    grant = c4gh.reencrypt_header(header, keys["archive"][0], keys["alice"][1])
    assert len(grant) < 200
    assert reference_decrypt(grant + payload, keys["alice"][0]) == data
    with pytest.raises(c4gh.HeaderError, match="another recipient"):
        c4gh.decrypt_header(grant, keys["bob"][0])
    with pytest.raises(ValueError):
        reference_decrypt(grant + payload, keys["bob"][0])


def test_a_grant_names_the_archive_as_writer(keys) -> None:
    header, payload = c4gh.split_header(ours(b"x" * 10, keys["archive"][1]))
    grant = c4gh.reencrypt_header(header, keys["archive"][0], keys["alice"][1])
    out = io.BytesIO()
    reference.decrypt(
        [(0, keys["alice"][0], None)],
        io.BytesIO(grant + payload),
        out,
        sender_pubkey=keys["archive"][1],
    )
    assert out.getvalue() == b"x" * 10


def test_a_flipped_byte_fails_authentication(keys) -> None:
    data = os.urandom(200_000)
    blob = bytearray(ours(data, keys["archive"][1]))
    blob[-70_000] ^= 1
    with pytest.raises(c4gh.SegmentError, match="failed authentication"):
        our_decrypt(bytes(blob), keys["archive"][0])


def test_a_dropped_segment_is_refused_when_the_size_is_known(keys) -> None:
    data = os.urandom(3 * 65536)
    header, payload = c4gh.split_header(ours(data, keys["archive"][1]))
    dropped = payload[: c4gh.CIPHER_SEGMENT_SIZE] + payload[2 * c4gh.CIPHER_SEGMENT_SIZE :]
    key = c4gh.decrypt_header(header, keys["archive"][0]).data_keys
    with pytest.raises(c4gh.SegmentError, match="segments were dropped"):
        b"".join(c4gh.decrypt_stream(key, [dropped], expected_size=len(data)))


def test_a_truncated_segment_is_refused(keys) -> None:
    header, payload = c4gh.split_header(ours(os.urandom(100_000), keys["archive"][1]))
    key = c4gh.decrypt_header(header, keys["archive"][0]).data_keys
    with pytest.raises(c4gh.SegmentError):
        b"".join(c4gh.decrypt_stream(key, [payload[:-10]]))
    with pytest.raises(c4gh.SegmentError, match="truncated"):
        b"".join(c4gh.decrypt_stream(key, [payload[: c4gh.CIPHER_SEGMENT_SIZE + 20]]))


@pytest.mark.parametrize(
    "damage",
    [
        lambda h: h[:20],
        lambda h: b"crypt4gX" + h[8:],
        lambda h: h[:8] + b"\x02\x00\x00\x00" + h[12:],
        lambda h: h[:-1] + bytes([h[-1] ^ 1]),
    ],
)
def test_forged_or_truncated_headers_are_refused(keys, damage) -> None:
    header, _ = c4gh.split_header(ours(b"data", keys["archive"][1]))
    with pytest.raises(c4gh.HeaderError):
        c4gh.decrypt_header(damage(header), keys["archive"][0])


def test_streaming_in_any_chunk_size_gives_the_same_bytes(keys) -> None:
    import random

    rng = random.Random(7)
    data = os.urandom(400_000)
    blob = ours(data, keys["archive"][1])
    for _ in range(20):
        assert our_decrypt(blob, keys["archive"][0], chunk=rng.randint(1, 200_000)) == data


def test_public_keys_parse_in_both_formats(keys) -> None:
    public = keys["alice"][1]
    assert c4gh.parse_public_key(c4gh.public_key_text(public)) == public
    assert c4gh.parse_public_key(base64.b64encode(public).decode()) == public
    assert c4gh.parse_public_key(public) == public


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not base64!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(bytes(32)).decode(),
        "-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAA\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        base64.b64encode(bytes([1] + [0] * 31)).decode(),
    ],
)
def test_bad_public_keys_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(c4gh.InvalidKey):
        c4gh.parse_public_key(bad)


def test_secret_key_file_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    secret, _ = c4gh.generate_keypair()
    path = tmp_path / "k.sec"
    c4gh.write_secret_key_file(path, secret, "right")
    assert path.stat().st_mode & 0o777 == 0o600
    assert c4gh.read_secret_key_file(path.read_bytes(), "right") == secret
    with pytest.raises(c4gh.InvalidKey, match="Wrong passphrase"):
        c4gh.read_secret_key_file(path.read_bytes(), "wrong")
    with pytest.raises(c4gh.InvalidKey):
        c4gh.write_secret_key_file(path, secret, "")
