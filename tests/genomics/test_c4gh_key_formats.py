"""Every Crypt4GH key and file the field's tools write works here (issue 15).

- A researcher's SSH ed25519 key, made here by `ssh-keygen`, is registered through the
  API, shown with the fingerprint `ssh-keygen -l` prints, and a grant made for it is
  decrypted by the reference CLI with the OpenSSH secret key.
- Archive secret keys are recognised by their `c4gh-v1` magic under every PEM label the
  implementations write (Python, Go, Rust), with each key derivation and unprotected.
- The Go implementation's own published test keys and file (fixtures/neicnordic-crypt4gh,
  SOURCE.md there) read to the values its own tests expect.

ssh-keygen comes from Debian's openssh-client (scripts/ensure-ssh-keygen.sh, run by make).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crypt4gh.keys import c4gh as reference_c4gh
from crypt4gh.keys import kdf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from django.http import StreamingHttpResponse
from django.test import Client, RequestFactory

from genomics import c4gh
from genomics.downloads import grant_download_response
from genomics.services.grants import grant_create
from marketplace.models import Role
from tests.genomics import samples
from tests.genomics.test_ingest_grants_downloads import ingested

CLI = str(Path(sys.executable).with_name("crypt4gh"))
GO = Path(__file__).parent / "fixtures" / "neicnordic-crypt4gh"
LABELS = [
    "CRYPT4GH PRIVATE KEY",  # Python reference (crypt4gh-keygen)
    "CRYPT4GH ENCRYPTED PRIVATE KEY",  # Go (neicnordic/crypt4gh)
    "ENCRYPTED PRIVATE KEY",  # Rust (EGA-archive/crypt4gh-rust)
]
SSH_PASSPHRASE = "ssh pass phrase"


def ssh_keygen(path: Path, passphrase: str, key_type: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-C", "me@lab", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def ssh_fingerprint(public: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public)], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]  # "256 SHA256:... comment (ED25519)"


@pytest.fixture
def ssh_key(tmp_path: Path) -> tuple[Path, Path]:
    secret = ssh_keygen(tmp_path / "id_ed25519", SSH_PASSPHRASE)
    return secret, Path(f"{secret}.pub")


@pytest.mark.django_db
def test_an_ssh_ed25519_key_is_registered_and_shown_by_its_ssh_fingerprint(
    client_for, ssh_key
) -> None:
    _, public = ssh_key
    client, user = client_for(Role.RESEARCHER)

    answer = client.put(
        "/api/v1/me/crypt4gh-key", {"public_key": public.read_text()}, format="json"
    )

    assert answer.status_code == 200, answer.json()
    expected = ssh_fingerprint(public)
    assert answer.json()["crypt4gh_key_type"] == "OpenSSH ed25519 key (used as X25519)"
    assert answer.json()["crypt4gh_key_fingerprint"] == expected
    assert client.get("/api/v1/me").json()["crypt4gh_key_fingerprint"] == expected
    browser = Client()
    browser.force_login(user)
    page = browser.get("/profile/").content.decode()
    assert expected in page and "OpenSSH ed25519 key" in page and "me@lab" in page


@pytest.mark.django_db
def test_a_grant_for_an_ssh_key_decrypts_with_the_reference_cli_and_the_ssh_secret_key(
    client_for, donor_client, archive_key, worker, ssh_key, tmp_path: Path
) -> None:
    secret, public = ssh_key
    client, user = client_for(Role.RESEARCHER)
    client.put("/api/v1/me/crypt4gh-key", {"public_key": public.read_text()}, format="json")
    plaintext = samples.write_variants(tmp_path / "x.vcf", "w", records=2000).read_bytes()
    stored = ingested(donor_client[0], plaintext, "ssh.vcf")
    user.refresh_from_db()

    grant = grant_create(file=stored, recipient_public_key=bytes(user.crypt4gh_public_key))
    response = grant_download_response(
        RequestFactory().get("/download"), grant=grant, filename=stored.filename
    )
    assert isinstance(response, StreamingHttpResponse)
    (tmp_path / "f.c4gh").write_bytes(b"".join(response.streaming_content))  # type: ignore[arg-type]
    decrypted = subprocess.run(
        [CLI, "decrypt", "--sk", str(secret)],
        stdin=(tmp_path / "f.c4gh").open("rb"),
        capture_output=True,
        check=False,
        env={**os.environ, "C4GH_PASSPHRASE": SSH_PASSPHRASE},
    )

    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == plaintext


@pytest.mark.parametrize(("key_type", "word"), [("rsa", r"\(RSA\)"), ("ecdsa", r"\(ECDSA\)")])
def test_ssh_keys_that_cannot_be_x25519_are_refused_saying_which_work(
    tmp_path: Path, key_type: str, word: str
) -> None:
    public = Path(f"{ssh_keygen(tmp_path / 'k', '', key_type)}.pub").read_text()
    with pytest.raises(c4gh.InvalidKey, match=word) as refused:
        c4gh.parse_public_key(public)
    assert "ssh-keygen -t ed25519" in str(refused.value)


def test_a_secret_key_pasted_as_the_public_key_is_refused_as_secret(ssh_key) -> None:
    secret, _ = ssh_key
    with pytest.raises(c4gh.InvalidKey, match="secret"):
        c4gh.parse_public_key(secret.read_text())


def test_the_openssh_secret_key_reads_to_the_x25519_half_of_its_public_key(ssh_key) -> None:
    secret, public = ssh_key
    key = c4gh.read_secret_key_file(secret.read_bytes(), SSH_PASSPHRASE)
    assert c4gh.public_key_of(key) == c4gh.parse_public_key(public.read_text())
    with pytest.raises(c4gh.InvalidKey, match="Wrong passphrase"):
        c4gh.read_secret_key_file(secret.read_bytes(), "not it")


def c4gh_v1(secret: bytes, kdf_name: bytes, passphrase: str, rounds: int) -> bytes:
    """A c4gh-v1 blob with the given key derivation, built field by field as the format
    says (the reference writer only uses scrypt); rounds as the tools write them."""

    def string(value: bytes) -> bytes:
        return len(value).to_bytes(2, "big") + value

    if kdf_name == b"none":
        return reference_c4gh.encode_private_key(secret, None, None)
    salt = os.urandom(16)
    derived = kdf.derive_key(kdf_name, passphrase.encode(), salt, rounds)
    nonce = os.urandom(12)
    sealed = nonce + ChaCha20Poly1305(derived).encrypt(nonce, secret, None)
    return (
        reference_c4gh.MAGIC_WORD
        + string(kdf_name)
        + string(rounds.to_bytes(4, "big") + salt)
        + string(b"chacha20_poly1305")
        + string(sealed)
    )


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize(
    ("kdf_name", "rounds"),
    [(b"scrypt", 0), (b"bcrypt", 16), (b"pbkdf2_hmac_sha256", 1000), (b"none", 0)],
)
def test_archive_keys_are_read_under_every_label_and_key_derivation(
    label: str, kdf_name: bytes, rounds: int
) -> None:
    secret, _ = c4gh.generate_keypair()
    blob = c4gh_v1(secret, kdf_name, "pass", rounds)
    text = f"-----BEGIN {label}-----\n{base64.b64encode(blob).decode()}\n-----END {label}-----\n"
    assert c4gh.read_secret_key_file(text.encode(), "pass") == secret


def test_the_reference_cli_reads_what_we_write_under_each_label(tmp_path: Path) -> None:
    secret, public = c4gh.generate_keypair()
    for label in LABELS:
        path = tmp_path / "k.sec"
        path.write_text(c4gh.secret_key_file_text(secret, "pw", label=label))
        blob = c4gh.build_header(c4gh.new_data_key(), public)
        done = subprocess.run(
            [CLI, "decrypt", "--sk", str(path)],
            input=blob,
            capture_output=True,
            check=False,
            env={**os.environ, "C4GH_PASSPHRASE": "pw"},
        )
        assert done.returncode == 0, (label, done.stderr)


@pytest.mark.parametrize("kind", ["x25519", "ed25519"])
def test_openssl_pkcs8_keys_are_read(kind: str) -> None:
    key = X25519PrivateKey.generate() if kind == "x25519" else Ed25519PrivateKey.generate()
    der = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert b"ENCRYPTED PRIVATE KEY" in der  # the label Rust's c4gh keys share
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = c4gh.read_secret_key_file(der, "pw")
    assert c4gh.public_key_of(secret) == c4gh.parse_public_key(public)


def test_the_go_implementations_published_keys_read_to_its_own_expected_values() -> None:
    # Expected values: neicnordic/crypt4gh keys/keys_test.go (TestReadKey).
    def read(name: str, passphrase: str = "") -> str:
        return c4gh.read_secret_key_file((GO / name).read_bytes(), passphrase).hex()

    def public(name: str) -> str:
        return c4gh.parse_public_key((GO / name).read_text()).hex()

    assert read("crypt4gh-x25519-enc.sec.pem", "password").startswith("23917aa32d702944")
    assert public("crypt4gh-x25519-enc.pub.pem").startswith("cbaeec90614aa983")
    assert read("ssh-ed25519-enc.sec.pem", "123123").startswith("604929f2b7340fbc")
    assert public("ssh-ed25519.pub").startswith("0fcfc907b2c7c236")
    assert read("ssl-x25519.sec.pem").startswith("602aa38d474f6c89")
    assert public("ssl-x25519.pub.pem").startswith("e64dbe1ea253efce")


def test_the_go_implementations_published_file_decrypts_to_its_plaintext() -> None:
    secret = c4gh.read_secret_key_file(
        (GO / "crypt4gh-x25519-enc.sec.pem").read_bytes(), "password"
    )
    header, payload = c4gh.split_header((GO / "sample.txt.enc").read_bytes())
    decrypted = c4gh.decrypt_header(header, secret)
    plaintext = b"".join(c4gh.decrypt_stream(decrypted.data_keys, [payload]))
    assert plaintext == (GO / "sample.txt").read_bytes()


def test_unprotected_secret_keys_read_whatever_the_passphrase(tmp_path: Path) -> None:
    secret = ssh_keygen(tmp_path / "plain", "")
    public = c4gh.parse_public_key(Path(f"{secret}.pub").read_text())
    for passphrase in ("", "the archive's passphrase"):
        assert c4gh.public_key_of(c4gh.read_secret_key_file(secret.read_bytes(), passphrase)) == (
            public
        )
    with pytest.raises(c4gh.InvalidKey, match="give its passphrase"):
        c4gh.read_secret_key_file((GO / "ssh-ed25519-enc.sec.pem").read_bytes(), "")


@pytest.mark.django_db
def test_an_archive_imports_the_go_tools_key_and_its_worker_uses_it(
    settings, tmp_path: Path, monkeypatch, worker
) -> None:
    from django.core.management import call_command

    from genomics.archive_secret import archive_secret_key
    from genomics.models import ArchiveKey

    settings.ARCHIVE_SECRET_KEY_FILE = str(tmp_path / "keys" / "archive.sec")
    settings.ARCHIVE_KEY_PASSPHRASE_FILE = str(tmp_path / "keys" / "missing")
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "password")

    call_command("create_archive_key", "--import", str(GO / "crypt4gh-x25519-enc.sec.pem"))

    key = ArchiveKey.objects.get(active=True)
    assert bytes(key.public_key).hex().startswith("cbaeec90614aa983")
    assert archive_secret_key(key).hex().startswith("23917aa32d702944")
    written = Path(settings.ARCHIVE_SECRET_KEY_FILE)
    assert written.stat().st_mode & 0o777 == 0o600
    assert written.read_text().startswith("-----BEGIN CRYPT4GH PRIVATE KEY-----")


@pytest.mark.django_db
def test_the_how_to_and_profile_pages_say_which_key_types_work(make_user) -> None:
    from django.urls import reverse

    browser = Client()
    browser.force_login(make_user(Role.RESEARCHER))
    keys = browser.get(reverse("web:howto-keys")).content.decode()
    assert "crypt4gh-keygen" in keys and "ssh-keygen -t ed25519" in keys and "RSA" in keys
    decrypt = browser.get(reverse("web:howto-decrypt")).content.decode()
    assert "--sk ~/.ssh/id_ed25519" in decrypt
    profile = browser.get(reverse("web:profile")).content.decode()
    assert "ssh-ed25519" in profile and "RSA and ECDSA" in profile
