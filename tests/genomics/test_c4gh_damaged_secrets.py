"""Damaged secret material fails with the module's typed error and never echoes itself
(issue 14.5).

The issue's example: one base64 character of an archive `c4gh-v1` key file changed, at
every position in turn, crashed at one position (`ValueError: Nonce must be 12 bytes`) and
at another repeated the salt and sealed key in the message. Further members of the kind:
every byte of a grant header, an unprotected OpenSSH key file and an SSH public key line,
the secret key given to the header functions, and a voucher's request id.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import subprocess
import traceback
from pathlib import Path

import pytest
from crypt4gh.keys import kdf

from genomics import c4gh
from ledger.vouchers import VoucherError, request_id_bytes

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def flipped(text: str, position: int) -> str:
    """`text` with the base64 digit at `position` changed in one bit (which bit varies
    with the position, so every bit of a 6-bit digit is exercised along the file)."""
    digit = ALPHABET.index(text[position]) ^ (1 << (position % 6))
    return text[:position] + ALPHABET[digit] + text[position + 1 :]


def leaks(secrets: list[bytes], text: str) -> list[str]:
    """Which secrets appear in `text`: any 6-byte run as hex or Python repr, or any 8
    base64 digits of the secret's encoding at each of the three byte alignments."""
    found = []
    lowered = text.lower()
    for secret in secrets:
        forms = []
        for start in range(len(secret) - 5):
            run = secret[start : start + 6]
            forms += [run.hex(), repr(run)[2:-1]]
        for shift in range(3):
            encoded = base64.b64encode(secret[shift:]).decode()
            forms += [encoded[i : i + 8] for i in range(0, len(encoded) - 8, 4)]
        hits = [form for form in forms if len(form) >= 8 and form.lower() in lowered]
        if hits:
            found.append(hits[0])
    return found


def exception_text(error: BaseException) -> str:
    """Everything a log line with the traceback would hold."""
    return "".join(traceback.format_exception(error))


def c4gh_fields(blob: bytes) -> dict[str, bytes]:
    """The salt and sealed key of a scrypt c4gh-v1 blob, read by the format."""
    stream = io.BytesIO(blob[len(b"c4gh-v1") :])

    def string() -> bytes:
        return stream.read(int.from_bytes(stream.read(2), "big"))

    string()
    options = string()
    string()
    return {"salt": options[4:], "sealed": string()}


@pytest.fixture
def memoised_scrypt(monkeypatch) -> None:
    """The real key derivation, remembered per input: a damaged salt still derives anew,
    but the ~100 positions outside the salt do not each pay 0.2 s of scrypt."""
    monkeypatch.setattr(kdf, "derive_key", functools.lru_cache(maxsize=None)(kdf.derive_key))


def test_every_changed_character_of_an_archive_key_file_fails_cleanly_and_quietly(
    tmp_path: Path, memoised_scrypt, caplog
) -> None:
    secret, _ = c4gh.generate_keypair()
    path = tmp_path / "archive.sec"
    c4gh.write_secret_key_file(path, secret, "pass phrase", comment="genemarket archive key")
    lines = path.read_text().splitlines()
    body = lines[1]
    fields = c4gh_fields(base64.b64decode(body))
    material = [fields["salt"], fields["sealed"], secret]
    caplog.set_level(logging.DEBUG)
    outcomes: dict[str, int] = {}
    problems: list[tuple[int, str, object]] = []
    for position in range(len(body.rstrip("="))):
        damaged = "\n".join([lines[0], flipped(body, position), lines[2]]) + "\n"
        try:
            key = c4gh.read_secret_key_file(damaged.encode(), "pass phrase")
        except c4gh.InvalidKey as error:
            outcomes[str(error)] = outcomes.get(str(error), 0) + 1
            if found := leaks(material, exception_text(error)):
                problems.append((position, "message leaks", found))
        except Exception as error:  # the point of the test
            problems.append((position, "untyped", type(error).__name__))
        else:
            if key != secret:  # a change in the comment or in unused bits is harmless
                problems.append((position, "wrong key returned", ""))
    assert not problems, problems
    assert not leaks(material, caplog.text)
    assert sum(outcomes.values()) > len(body) // 2, outcomes  # most changes are refused


def test_every_changed_byte_of_a_grant_header_fails_with_a_header_error() -> None:
    secret, public = c4gh.generate_keypair()
    data_key = c4gh.new_data_key()
    header = c4gh.build_header(data_key, public)
    for position in range(len(header)):
        for damaged in (
            header[:position] + bytes([header[position] ^ 0x80]) + header[position + 1 :],
            header[:position],
        ):
            try:
                c4gh.decrypt_header(damaged, secret)
            except c4gh.HeaderError as error:
                assert not leaks([data_key, secret], exception_text(error)), position
            except Exception as error:
                pytest.fail(f"byte {position}: {type(error).__name__}")


@pytest.mark.parametrize("bad_secret", [b"", b"short", bytes(33)])
def test_header_functions_refuse_a_malformed_secret_key_with_a_header_error(
    bad_secret: bytes,
) -> None:
    _, public = c4gh.generate_keypair()
    header = c4gh.build_header(c4gh.new_data_key(), public)
    with pytest.raises(c4gh.HeaderError):
        c4gh.decrypt_header(header, bad_secret)
    with pytest.raises(c4gh.HeaderError):
        c4gh.reencrypt_header(header, bad_secret, public)
    with pytest.raises(c4gh.HeaderError):
        c4gh.build_header(c4gh.new_data_key(), bad_secret)


def test_every_changed_character_of_an_openssh_key_fails_cleanly(tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    text = (tmp_path / "k").read_text()
    lines = text.splitlines()
    secret = c4gh.read_secret_key_file(text.encode(), "")
    for row in range(1, len(lines) - 1):
        for position in range(len(lines[row])):
            if lines[row][position] == "=":
                continue
            damaged = list(lines)
            damaged[row] = flipped(lines[row], position)
            try:
                key = c4gh.read_secret_key_file("\n".join(damaged).encode(), "")
            except c4gh.InvalidKey as error:
                assert not leaks([secret], exception_text(error))
            except Exception as error:
                pytest.fail(f"line {row} char {position}: {type(error).__name__}: {error}")
            else:
                assert len(key) == 32


def test_every_changed_character_of_an_ssh_public_key_fails_cleanly(tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    kind, blob, comment = (tmp_path / "k.pub").read_text().split()
    for position in range(len(blob.rstrip("="))):
        try:
            c4gh.parse_public_key(f"{kind} {flipped(blob, position)} {comment}")
        except c4gh.InvalidKey:
            pass
        except Exception as error:
            pytest.fail(f"char {position}: {type(error).__name__}: {error}")


@pytest.mark.parametrize("bad", ["0x1234", "0x" + "zz" * 32, "", "0x" + "ab" * 33])
def test_a_malformed_voucher_request_id_is_a_voucher_error_that_does_not_quote_it(
    bad: str,
) -> None:
    with pytest.raises(VoucherError) as refused:
        request_id_bytes(bad)
    assert bad.removeprefix("0x")[:8] not in str(refused.value) or not bad.removeprefix("0x")


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


SALT = bytes.fromhex("5a17" * 8)
SEALED = bytes.fromhex("5ea1ed" * 20)
C4GH_DAMAGED = {
    "sealed key shorter than its nonce": _string(b"scrypt")
    + _string(bytes(4) + SALT)
    + _string(b"chacha20_poly1305")
    + _string(SEALED[:8]),
    "no sealed key": _string(b"scrypt") + _string(bytes(4) + SALT) + _string(b"chacha20_poly1305"),
    "kdf options without a salt": _string(b"scrypt") + _string(b"\0\0"),
    "unknown kdf whose length runs into the salt": (12).to_bytes(2, "big")
    + b"scrypt"
    + _string(bytes(4) + SALT),
    "bcrypt with zero rounds": _string(b"bcrypt")
    + _string(bytes(4) + SALT)
    + _string(b"chacha20_poly1305")
    + _string(SEALED),
    "bcrypt with 2**32-1 rounds": _string(b"bcrypt")
    + _string(b"\xff\xff\xff\xff" + SALT)
    + _string(b"chacha20_poly1305")
    + _string(SEALED),
    "pbkdf2 with zero rounds": _string(b"pbkdf2_hmac_sha256")
    + _string(bytes(4) + SALT)
    + _string(b"chacha20_poly1305")
    + _string(SEALED),
    "unknown cipher": _string(b"scrypt")
    + _string(bytes(4) + SALT)
    + _string(b"aes256_gcm")
    + _string(SEALED),
    "unprotected key of 31 bytes": _string(b"none") + _string(b"none") + _string(SEALED[:31]),
    "nothing after the magic": b"",
}


@pytest.mark.parametrize("damage", sorted(C4GH_DAMAGED))
def test_structurally_damaged_c4gh_v1_keys_fail_cleanly_and_quietly(damage: str) -> None:
    blob = b"c4gh-v1" + C4GH_DAMAGED[damage]
    text = f"-----BEGIN CRYPT4GH PRIVATE KEY-----\n{base64.b64encode(blob).decode()}\n"
    text += "-----END CRYPT4GH PRIVATE KEY-----\n"
    with pytest.raises(c4gh.InvalidKey) as refused:
        c4gh.read_secret_key_file(text.encode(), "pass phrase")
    assert not leaks([SALT, SEALED[:8]], exception_text(refused.value))
