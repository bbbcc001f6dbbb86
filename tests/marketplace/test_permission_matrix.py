"""Who may do what through the API: every operation the URL configuration routes, by every
kind of caller, on their own or someone else's object. An object the caller may not see
answers 404, exactly as an id that does not exist; an action the caller's role may never
take answers 403.

The operations are not listed by hand: `test_every_routed_operation_has_a_case` reads them
from the URL configuration (and the OpenAPI schema), so a new route without a row here
fails. Object-scoped operations are called on objects owned by `donor` (dataset, file,
upload) and `researcher` (request), so `other_donor` and `other_researcher` are the same
kinds of caller on someone else's object; where a call has an effect, `check` looks at the
effect too (whose notifications were read, whose wallet was unlinked).

Committees (issue 19 §1): the dataset belongs to the platform's committee, on which
`reviewer` and `admin` sit; `outsider` is a reviewer who sits only on another committee, so
the request is, for them, an object they cannot see (404), as for a stranger."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import pytest
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import worker_secrets
from genomics import c4gh
from genomics.models import GenomicFile, Grant
from genomics.services.uploads import upload_create
from ledger.models import WalletLink
from ledger.selectors.chain_status import ChainStatus
from ledger.services.wallets import wallet_challenge_create
from marketplace.ga4gh.drs import ACCESS_ID
from marketplace.models import (
    AccessRequest,
    AuditEntry,
    DacMembership,
    DataAccessCommittee,
    Dataset,
    Notification,
    Role,
    User,
    Visa,
)
from marketplace.selectors.drs import drs_granted_file
from marketplace.services.agreements import agreement_publish
from marketplace.services.attachments import attachment_add
from marketplace.services.blocklist import researcher_block
from marketplace.services.drs import drs_access_token_create
from tests.factories import TEST_PASSWORD, UserFactory, ready_file
from tests.genomics.conftest import archive_key  # noqa: F401 - uploads need the archive key
from tests.support.routes import api_operations, schema_operations

pytestmark = pytest.mark.django_db

CALLERS = (
    "anonymous",
    "donor",
    "other_donor",
    "researcher",
    "other_researcher",
    "reviewer",
    "admin",
    "outsider",
)


@pytest.fixture(autouse=True)
def _chain_id(settings) -> None:
    settings.CHAIN_ID = 31337  # SIWE challenges name the chain; no node is asked


@dataclass
class World:
    users: dict[str, User]
    file: GenomicFile
    upload: GenomicFile
    dataset: Dataset
    request: AccessRequest
    challenge: str = ""  # a SIWE message issued to the researcher, when a case needs one
    token: str = "not-a-signed-token"  # a DRS access URL's token, when a case needs one
    block: str = "00000000-0000-0000-0000-000000000000"  # the dataset's block, when made
    attachment: str = "00000000-0000-0000-0000-000000000000"  # the request's, when made

    def client(self, caller: str) -> APIClient:
        client = APIClient()
        if caller != "anonymous":
            token, _ = Token.objects.get_or_create(user=self.users[caller])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    def ids(self) -> dict[str, object]:
        """The path parameters of every route, all naming objects of `donor`/`researcher`."""
        return {
            "dataset_id": self.dataset.pk,
            "request_id": self.request.pk,
            "file_id": self.file.pk,
            "upload_id": self.upload.pk,
            # GA4GH DRS: a file is a blob, the dataset a bundle (`Case.ids` picks which)
            "object_id": self.file.pk,
            "access_id": ACCESS_ID,
            "token": self.token,
            "block_id": self.block,
            "attachment_id": self.attachment,
            "dac_id": self.dataset.dac_id,
        }


@pytest.fixture
def world(archive_key: object) -> World:  # noqa: F811
    roles = {
        "donor": Role.DONOR,
        "other_donor": Role.DONOR,
        "researcher": Role.RESEARCHER,
        "other_researcher": Role.RESEARCHER,
        "reviewer": Role.REVIEWER,
        "admin": Role.ADMIN,
        "outsider": Role.REVIEWER,
    }
    users = {
        name: cast(User, UserFactory(role=role, payout_wallet=role == Role.DONOR))
        for name, role in roles.items()
    }
    # A new reviewer starts on the platform's committee: the outsider moves to another one.
    DacMembership.objects.filter(user=users["outsider"]).delete()
    other = DataAccessCommittee.objects.create(name="Another committee")
    DacMembership.objects.create(dac=other, user=users["outsider"], role="chair")
    for name in ("researcher", "other_researcher"):
        users[name].crypt4gh_public_key = c4gh.generate_keypair()[1]
        users[name].save()
    donor = users["donor"]
    stored = ready_file(donor)
    upload = upload_create(owner=donor, upload_length=100, filename="half.vcf")
    dataset = Dataset.objects.create(
        donor=donor,
        title="Matrix cohort",
        description="",
        price=1000,
        access_days=30,
        review=Dataset.Review.COMMITTEE,
        duo_codes=[{"code": "DUO:0000042", "value": ""}],
    )
    dataset.files.set([stored])
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=users["researcher"],
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        statement="s",
        amount=1000,
        duo_match={"fits": True, "reasons": []},
    )
    return World(users, stored, upload, dataset, request)


Expect = dict[str, int | frozenset[int]]


@dataclass(frozen=True)
class Case:
    """One call of one operation. `path` is the route as the URL configuration names it;
    its parameters are filled from `World.ids()`. `body(world, caller)` gives the JSON body;
    `raw` sends bytes instead. `setup` prepares the world, `check(world, caller, response)`
    asserts the call's effects once the status is right."""

    method: str
    path: str
    expect: Expect
    label: str = ""
    body: Callable[[World, str], dict[str, Any]] | None = None
    raw: tuple[str, bytes] | None = None  # (content type, bytes)
    headers: dict[str, str] = field(default_factory=dict)
    setup: Callable[[World, pytest.MonkeyPatch], None] | None = None
    check: Callable[[World, str, Any], None] | None = None
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> another World id

    @property
    def operation(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.label})" if self.label else "")

    @property
    def error_keys(self) -> set[str]:
        """GA4GH DRS answers errors in its own shape (DRS 1.4 `Error`), the API in API.md's."""
        if self.path.startswith(DRS):
            return {"msg", "status_code"}
        if self.path.startswith(HTSGET):
            return {"htsget"}  # htsget 1.3.0 "Error response"
        if self.path.startswith(BEACON):
            return {"meta", "error"}  # Beacon v2 beaconErrorResponse
        return {"error"}


def everyone(status: int | frozenset[int], **others: int) -> Expect:
    return {caller: others.get(caller, status) for caller in CALLERS}


def users_only(status: int, **others: int) -> Expect:
    return everyone(status, anonymous=401, **others)


def owner_only(status: int, owner: str, **others: int) -> Expect:
    return everyone(404, anonymous=401, **{owner: status}, **others)


def researchers_only(status: int, **others: int) -> Expect:
    """The researcher's own request; another researcher's answers 404, other roles 403."""
    return everyone(403, anonymous=401, researcher=status, other_researcher=404, **others)


# --- setups --------------------------------------------------------------------------------


def granted(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    AccessRequest.objects.filter(pk=world.request.pk).update(state=AccessRequest.State.GRANTED)


GRANT_HEADER = b"crypt4gh header for the researcher"


def granted_with_headers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live grant for the researcher's key, and a header for the other researcher's key
    on the same file too (as if they held a grant of their own): only the request's own
    researcher may download through it, whatever keys have headers."""
    granted(world, monkeypatch)
    for name, header in (("researcher", GRANT_HEADER), ("other_researcher", b"other header")):
        Grant.objects.create(
            file=world.file,
            recipient_public_key=bytes(world.users[name].crypt4gh_public_key or b""),
            header=header,
        )


def granted_with_access_url(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DRS access URL issued to the researcher for their granted file."""
    granted_with_headers(world, monkeypatch)
    researcher = world.users["researcher"]
    found = drs_granted_file(researcher=researcher, object_id=str(world.file.pk))
    assert found is not None
    world.token = drs_access_token_create(researcher=researcher, granted=found)


RESEARCHERS_VISA = "visa of the researcher's grant"


def granted_with_a_visa(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live grant with its visa (as the worker stores it; the token's content does not
    matter to who may see it)."""
    now = timezone.now()
    AccessRequest.objects.filter(pk=world.request.pk).update(
        state=AccessRequest.State.GRANTED, granted_at=now, expires_at=now + timedelta(days=1)
    )
    Visa.objects.create(
        request=world.request,
        kid="kid",
        token=RESEARCHERS_VISA,
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        grant_ends_at=now + timedelta(days=1),
        grant_mac="",
    )


def with_agreement(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    agreement_publish(
        dataset_id=world.dataset.pk, actor=world.users["donor"], title="DAA", text="Be good."
    )


def blocked(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other researcher is blocked from the donor's dataset."""
    block = researcher_block(
        actor=world.users["donor"],
        dataset_id=world.dataset.pk,
        researcher_id=world.users["other_researcher"].pk,
        reason="misuse",
    )
    world.block = str(block.pk)


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"
MULTIPART_PDF = (
    "multipart/form-data; boundary=matrix",
    b'--matrix\r\nContent-Disposition: form-data; name="document"; filename="e.pdf"\r\n'
    b"Content-Type: application/pdf\r\n\r\n" + PDF + b"\r\n--matrix--\r\n",
)


def attached(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PDF on the researcher's request; opening it runs the worker's task in-process."""
    world.attachment = str(
        attachment_add(
            researcher=world.users["researcher"],
            request_id=world.request.pk,
            filename="ethics.pdf",
            data=PDF,
        ).pk
    )

    def worker_runs(task: Any, *args: object, countdown: float = 0) -> bool:
        previous, worker_secrets._in_worker = worker_secrets._in_worker, True
        try:
            task(*args)
        finally:
            worker_secrets._in_worker = previous
        return True

    monkeypatch.setattr("marketplace.services.attachments.enqueue", worker_runs)


def bgzipped(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The world's file as a bgzipped VCF can be sold by region (README "Selling regions")."""
    GenomicFile.objects.filter(pk=world.file.pk).update(
        metadata={**world.file.metadata, "compression": "bgzf", "contigs": ["chr17"]}
    )


def the_donors_file_is_queued_for_bgzip(world: World) -> None:
    """Storing a VCF bgzipped (issue 17 §1): the donor's own file is queued, audited."""
    from genomics.models import Recompression

    assert Recompression.objects.get(file=world.file).state == Recompression.State.QUEUED
    entry = AuditEntry.objects.get(action="file.recompress_request")
    assert entry.actor_id == str(world.users["donor"].pk)


def payable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed voucher waiting for the researcher's payment."""
    AccessRequest.objects.filter(pk=world.request.pk).update(
        state=AccessRequest.State.PAYABLE,
        chain_request_id="0x" + "55" * 32,
        buyer="0x" + "33" * 20,
        payee="0x" + "44" * 20,
        voucher_valid_until=2**40,
        voucher_refund_after=2**41,
        voucher_signature="0x" + "11" * 65,
        voucher_chain_id=31337,
        voucher_market="0x" + "22" * 20,
    )


def returned(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    AccessRequest.objects.filter(pk=world.request.pk).update(
        state=AccessRequest.State.RETURNED, decision_reason="Name the comparison cohort."
    )


def only_an_admin_seats_members(world: World, caller: str, response: Any) -> None:
    seated = DacMembership.objects.filter(
        dac_id=world.dataset.dac_id, user=world.users["other_researcher"]
    ).exists()
    assert seated is (caller == "admin")


def only_an_admin_changes_the_policy(world: World, caller: str, response: Any) -> None:
    needed = DataAccessCommittee.objects.get(pk=world.dataset.dac_id).votes_needed
    assert needed == (1 if caller == "admin" else 0)


def notified(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    Notification.objects.create(
        user=world.users["researcher"], request=world.request, message="Approved."
    )


RESEARCHER_WALLET = Account.create()


def challenged(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIWE challenge issued to the researcher for their wallet (the case signs it)."""
    challenge = wallet_challenge_create(
        user=world.users["researcher"],
        address=RESEARCHER_WALLET.address,
        domain="testserver",
        uri="http://testserver/",
    )
    world.challenge = challenge.message


def linked(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    WalletLink.objects.create(user=world.users["researcher"], address=RESEARCHER_WALLET.address)


def chain_answers(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain status as a node would give it: who may ask is what is tested here."""
    status = ChainStatus(
        chain_id=31337,
        rpc_url="http://127.0.0.1:8545",
        token=None,
        market=None,
        head=7,
        confirmed_block=5,
        lag=2,
        confirmations=2,
        pending_operator_transactions=0,
    )
    monkeypatch.setattr("ledger.api.chain.chain_status", lambda: status)


# --- bodies and checks ---------------------------------------------------------------------


def signed_challenge(world: World, caller: str) -> dict[str, Any]:
    signature = RESEARCHER_WALLET.sign_message(encode_defunct(text=world.challenge)).signature
    return {"message": world.challenge, "signature": "0x" + signature.hex().removeprefix("0x")}


def only_the_researchers_wallet_links(world: World, caller: str, response: Any) -> None:
    # Donors come with payout wallets of their own; this checks who got the researcher's.
    links = set(
        WalletLink.objects.filter(address__iexact=RESEARCHER_WALLET.address).values_list(
            "user_id", flat=True
        )
    )
    assert links == ({world.users["researcher"].pk} if caller == "researcher" else set())


def the_researchers_wallet_stays_unless_they_unlink(
    world: World, caller: str, response: Any
) -> None:
    kept = WalletLink.objects.filter(user=world.users["researcher"]).exists()
    assert kept is (caller != "researcher")


def only_the_researcher_sees_their_notification(world: World, caller: str, response: Any) -> None:
    shown = {row["message"] for row in response.json()["results"]}
    assert ("Approved." in shown) is (caller == "researcher")


def only_the_researcher_reads_their_notification(world: World, caller: str, response: Any) -> None:
    assert response.json() == {"marked": 1 if caller == "researcher" else 0}
    unread = Notification.objects.filter(user=world.users["researcher"], read_at=None).exists()
    assert unread is (caller != "researcher")


def downloaded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from marketplace.services.audit import audit_append

    audit_append(
        action="request.download",
        actor=world.users["researcher"],
        object_type="access_request",
        object_id=world.request.pk,
        data={"file": str(world.file.pk), "range": "bytes=0-99"},
    )


def only_the_donor_sees_the_download(world: World, caller: str, response: Any) -> None:
    ranges = [row["byte_range"] for row in response.json()["disclosures"]]
    assert ranges == (["bytes=0-99"] if caller == "donor" else [])


def the_export_is_the_callers(world: World, caller: str, response: Any) -> None:
    assert response.json()["account"]["username"] == world.users[caller].username


def only_the_donor_erases_their_file(world: World, caller: str, response: Any) -> None:
    from marketplace.models import Erasure

    erasures = list(Erasure.objects.values_list("donor_id", "file_ids"))
    assert erasures == (
        [(world.users["donor"].pk, [str(world.file.pk)])] if caller == "donor" else []
    )
    world.dataset.refresh_from_db()
    assert (world.dataset.state == "withdrawn") is (caller == "donor")


def only_the_callers_institution_changes(world: World, caller: str, response: Any) -> None:
    assert response.json()["institution"] == f"Institute of {caller}"
    for name, user in world.users.items():
        user.refresh_from_db()
        assert (user.institution == f"Institute of {name}") is (name == caller)


def the_caller_is_who_they_are(world: World, caller: str, response: Any) -> None:
    assert response.json()["username"] == world.users[caller].username


NEW_KEY = c4gh.generate_keypair()[1]


def only_the_callers_key_changes(world: World, caller: str, response: Any) -> None:
    for name in ("researcher", "other_researcher"):
        world.users[name].refresh_from_db()
        assert (bytes(world.users[name].crypt4gh_public_key or b"") == NEW_KEY) is (caller == name)


def the_researcher_gets_their_own_header(world: World, caller: str, response: Any) -> None:
    body = b"".join(response.streaming_content)
    assert body == GRANT_HEADER  # the payload of a ready_file is empty
    assert AuditEntry.objects.filter(
        action="request.download", object_id=str(world.request.pk)
    ).exists()


def the_researchers_blob(world: World, caller: str, response: Any) -> None:
    assert response.json()["id"] == str(world.file.pk)


def the_researchers_bundle(world: World, caller: str, response: Any) -> None:
    assert [c["id"] for c in response.json()["contents"]] == [str(world.file.pk)]


def an_access_url_of_the_researchers_file(world: World, caller: str, response: Any) -> None:
    assert response.json()["url"].startswith(f"http://testserver{DRS}/download/")


def whoever_holds_the_url_gets_the_researchers_header(
    world: World, caller: str, response: Any
) -> None:
    """An access URL is a capability (as an object store's signed URL): whoever holds it
    gets the grantee's Crypt4GH stream, which only the grantee's secret key opens, and the
    download is audited as the grantee's."""
    assert b"".join(response.streaming_content) == GRANT_HEADER
    entry = AuditEntry.objects.get(action="request.download", object_id=str(world.request.pk))
    assert entry.actor_id == str(world.users["researcher"].pk)


def the_calldata_pays_the_vouchers_market(world: World, caller: str, response: Any) -> None:
    call = response.json()
    assert call["to"].lower() == "0x" + "22" * 20 and call["data"].startswith("0x")


def only_the_researcher_holds_their_visa(world: World, caller: str, response: Any) -> None:
    expected = [RESEARCHERS_VISA] if caller == "researcher" else []
    assert response.json() == {"ga4gh_passport_v1": expected}


def the_token_is_the_named_users(world: World, caller: str, response: Any) -> None:
    assert Token.objects.get(key=response.json()["token"]).user == world.users["researcher"]


REQ = "/api/v1/access-requests/{request_id}"
DRS = "/ga4gh/drs/v1"
UPLOAD = "/api/v1/uploads/{upload_id}"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
PUBLIC = everyone(200)

BEACON = "/api/beacon/v2"
HTSGET = "/ga4gh/htsget/v1"
# Beacon v2 and htsget answer in their own specs' shapes (and anyone may ask a Beacon:
# its answers go through the disclosure control, tests/disclosure).
GA4GH_CASES = [
    *(
        Case("GET", BEACON + endpoint, PUBLIC)
        for endpoint in (
            "/",
            "/info",
            "/service-info",
            "/configuration",
            "/map",
            "/entry_types",
            "/filtering_terms",
            "/datasets",
        )
    ),
    Case("POST", BEACON + "/datasets", PUBLIC, body=lambda w, c: {}),
    Case("GET", BEACON + "/g_variants", everyone(400), label="without a query"),
    Case("POST", BEACON + "/g_variants", everyone(400), body=lambda w, c: {}, label="empty"),
    Case("GET", "/api/v1/datasets/{dataset_id}/beacon", PUBLIC),
    Case(
        "PUT",
        "/api/v1/datasets/{dataset_id}/beacon",
        everyone(403, anonymous=401, donor=200),
        body=lambda w, c: {"granularity": "boolean"},
    ),
    Case("GET", HTSGET + "/reads/service-info", PUBLIC),
    Case("GET", HTSGET + "/variants/service-info", PUBLIC),
    *(
        Case(method, HTSGET + kind + "/{object_id}", everyone(404, anonymous=401))
        for method in ("GET", "POST")
        for kind in ("/reads", "/variants")
    ),
    Case("GET", HTSGET + "/blocks/{object_id}", everyone(401), label="without a ticket's token"),
]

CASES = [
    # accounts
    Case(
        "POST",
        "/api/v1/auth/register",
        everyone(201),
        body=lambda w, caller: {
            "username": f"new-{caller}",
            "password": "another-horse-battery-7",
            "email": f"new-{caller}@example.org",
            "role": "researcher",
        },
    ),
    Case(
        "POST",
        "/api/v1/auth/token",
        everyone(200),
        body=lambda w, caller: {
            "username": w.users["researcher"].username,
            "password": TEST_PASSWORD,
        },
        check=the_token_is_the_named_users,
    ),
    Case("GET", "/api/v1/me", users_only(200), check=the_caller_is_who_they_are),
    Case(
        "PATCH",
        "/api/v1/me",
        users_only(200),
        body=lambda w, caller: {"institution": f"Institute of {caller}"},
        check=only_the_callers_institution_changes,
    ),
    Case(
        "PUT",
        "/api/v1/me/crypt4gh-key",
        users_only(200),
        body=lambda w, caller: {"public_key": base64.b64encode(NEW_KEY).decode()},
        check=only_the_callers_key_changes,
    ),
    # GA4GH Passport: each caller's own visas; the keys that verify them are public
    Case(
        "GET",
        "/api/v1/me/passport",
        users_only(200),
        setup=granted_with_a_visa,
        check=only_the_researcher_holds_their_visa,
    ),
    Case("GET", "/.well-known/jwks.json", PUBLIC),
    # donors' rights (issue 19 §5): each caller's own records; erasure of one's own files
    Case(
        "GET",
        "/api/v1/me/disclosures",
        everyone(403, anonymous=401, donor=200, other_donor=200),
        setup=downloaded,
        check=only_the_donor_sees_the_download,
    ),
    Case("GET", "/api/v1/me/export", users_only(200), check=the_export_is_the_callers),
    Case("GET", "/api/v1/me/erase", everyone(403, anonymous=401, donor=200, other_donor=200)),
    Case(
        "POST",
        "/api/v1/me/erase",
        everyone(403, anonymous=401, donor=202, other_donor=404),
        body=lambda w, caller: {"files": [str(w.file.pk)], "confirm": True},
        check=only_the_donor_erases_their_file,
    ),
    # notifications: each caller's own only
    Case(
        "GET",
        "/api/v1/notifications",
        users_only(200),
        setup=notified,
        check=only_the_researcher_sees_their_notification,
    ),
    Case(
        "POST",
        "/api/v1/notifications/read",
        users_only(200),
        setup=notified,
        check=only_the_researcher_reads_their_notification,
    ),
    # wallets: a challenge is its user's; linking and unlinking touch the caller's own
    Case(
        "POST",
        "/api/v1/me/wallet/challenge",
        users_only(201),
        body=lambda w, caller: {"address": "0x" + "11" * 20},
    ),
    Case(
        "POST",
        "/api/v1/me/wallet",
        users_only(400, researcher=200),
        label="with the researcher's signed challenge",
        setup=challenged,
        body=signed_challenge,
        check=only_the_researchers_wallet_links,
    ),
    Case(
        "DELETE",
        "/api/v1/me/wallet",
        users_only(204),
        setup=linked,
        check=the_researchers_wallet_stays_unless_they_unlink,
    ),
    Case("GET", "/api/v1/chain", PUBLIC, setup=chain_answers),
    # datasets
    Case("GET", "/api/v1/datasets", PUBLIC),
    Case("GET", "/api/v1/datasets/{dataset_id}", PUBLIC),
    Case(
        "POST",
        "/api/v1/datasets",
        everyone(403, anonymous=401, donor=201, other_donor=400),
        label="with the donor's file",
        body=lambda w, caller: {
            "title": "t",
            "files": [str(w.file.pk)],
            "duo_codes": ["DUO:0000042"],
            "price": "1",
            "access_days": 1,
            "review": "auto",
        },
    ),
    # region tiers: anyone reads those for sale; only the dataset's donor offers one
    Case("GET", "/api/v1/datasets/{dataset_id}/tiers", PUBLIC),
    Case(
        "POST",
        "/api/v1/datasets/{dataset_id}/tiers",
        everyone(403, anonymous=401, donor=201),
        setup=bgzipped,
        body=lambda w, caller: {"name": "panel", "price": "1", "genes": ["BRCA1"]},
    ),
    Case(
        "GET",
        "/api/v1/datasets/{dataset_id}/earnings",
        owner_only(200, "donor", reviewer=200, admin=200, outsider=200),
    ),
    Case(
        "POST",
        "/api/v1/datasets/{dataset_id}/withdraw",
        everyone(403, anonymous=401, donor=200),
    ),
    Case("GET", "/api/v1/datasets/{dataset_id}/agreement", PUBLIC, setup=with_agreement),
    Case(
        "PUT",
        "/api/v1/datasets/{dataset_id}/agreement",
        everyone(403, anonymous=401, donor=200),
        body=lambda w, caller: {"title": "DAA", "text": "Use it well."},
    ),
    Case(
        "DELETE",
        "/api/v1/datasets/{dataset_id}/agreement",
        everyone(403, anonymous=401, donor=204),
        setup=with_agreement,
    ),
    Case(
        "GET",
        "/api/v1/datasets/{dataset_id}/blocks",
        everyone(403, anonymous=401, donor=200, admin=200),
        setup=blocked,
    ),
    Case(
        "POST",
        "/api/v1/datasets/{dataset_id}/blocks/{block_id}/lift",
        everyone(403, anonymous=401, donor=200, admin=200),
        setup=blocked,
    ),
    # access requests
    Case("GET", "/api/v1/access-requests", users_only(200)),
    Case("GET", REQ, owner_only(200, "researcher", donor=200, reviewer=200, admin=200)),
    Case(
        "POST",
        "/api/v1/access-requests",
        # The researcher already has an open request for the dataset: a second is refused.
        everyone(403, anonymous=401, researcher=409, other_researcher=201),
        body=lambda w, caller: {
            "dataset": str(w.dataset.pk),
            "purpose_codes": ["DUO:0000042"],
            "statement": "s",
            "accept_terms": True,
        },
    ),
    Case(
        "POST",
        REQ + "/approve",
        everyone(403, anonymous=401, reviewer=200, admin=200, outsider=404),
        body=lambda w, caller: {"reason": "ok"},
    ),
    Case(
        "POST",
        REQ + "/reject",
        everyone(403, anonymous=401, reviewer=200, admin=200, outsider=404),
        body=lambda w, caller: {"reason": "no"},
    ),
    # committees (issue 19): only the dataset's committee votes, returns and asks
    Case(
        "POST",
        REQ + "/votes",
        everyone(403, anonymous=401, reviewer=201, admin=201, outsider=404),
        body=lambda w, caller: {"vote": "approve", "comment": "fits"},
    ),
    Case(
        "POST",
        REQ + "/return",
        everyone(403, anonymous=401, reviewer=200, admin=200, outsider=404),
        body=lambda w, caller: {"reason": "Name the comparison cohort."},
    ),
    Case(
        "PATCH",
        REQ,
        researchers_only(200),
        label="a returned request",
        setup=returned,
        body=lambda w, caller: {"statement": "Blood pressure, with a named control cohort."},
    ),
    Case("POST", REQ + "/resubmit", researchers_only(200), setup=returned),
    Case(
        "GET",
        REQ + "/messages",
        owner_only(200, "researcher", donor=200, reviewer=200, admin=200),
    ),
    Case(
        "POST",
        REQ + "/messages",
        owner_only(201, "researcher", donor=403, reviewer=201, admin=201),
        body=lambda w, caller: {"body": "Which ethics board approved it?"},
    ),
    Case("GET", "/api/v1/dacs", PUBLIC),
    Case("GET", "/api/v1/dacs/{dac_id}", PUBLIC),
    Case(
        "PATCH",
        "/api/v1/dacs/{dac_id}",
        everyone(403, anonymous=401, admin=200),
        body=lambda w, caller: {"votes_needed": 1},
        check=only_an_admin_changes_the_policy,
    ),
    Case(
        "POST",
        "/api/v1/dacs",
        everyone(403, anonymous=401, admin=201),
        body=lambda w, caller: {"name": f"Committee of {caller}", "votes_needed": 2},
    ),
    Case(
        "POST",
        "/api/v1/dacs/{dac_id}/members",
        everyone(403, anonymous=401, admin=200),
        body=lambda w, caller: {"user": str(w.users["other_researcher"].pk), "role": "member"},
        check=only_an_admin_seats_members,
    ),
    Case("POST", REQ + "/withdraw", researchers_only(200)),
    Case(
        "GET",
        REQ + "/attachments",
        owner_only(200, "researcher", donor=200, reviewer=200, admin=200),
        setup=attached,
    ),
    Case("POST", REQ + "/attachments", researchers_only(201), raw=MULTIPART_PDF),
    Case(
        "GET",
        REQ + "/attachments/{attachment_id}",
        everyone(404, anonymous=401, reviewer=200, admin=200),
        setup=attached,
    ),
    Case("POST", REQ + "/renew", researchers_only(201), setup=granted, body=lambda w, c: {}),
    Case(
        "POST",
        REQ + "/revoke",
        everyone(404, anonymous=401, donor=200, admin=200, researcher=403, reviewer=403),
        setup=granted,
        body=lambda w, caller: {"reason": "r"},
    ),
    Case(
        "POST",
        REQ + "/permit-call",
        researchers_only(200),
        setup=payable,
        body=lambda w, caller: {"signature": "0x" + "ab" * 64 + "1b"},
        check=the_calldata_pays_the_vouchers_market,
    ),
    Case(
        "GET",
        REQ + "/files/{file_id}",
        researchers_only(403),
        label="before the grant",
    ),
    Case(
        "GET",
        REQ + "/files/{file_id}",
        researchers_only(200),
        label="after the grant",
        setup=granted_with_headers,
        check=the_researcher_gets_their_own_header,
    ),
    # files and uploads (a donor's own)
    Case("GET", "/api/v1/files/", users_only(200)),
    Case("GET", "/api/v1/files/{file_id}", owner_only(200, "donor")),
    Case(
        "POST",
        "/api/v1/files/{file_id}/recompress",
        everyone(403, anonymous=401, donor=202, other_donor=404),
        check=lambda w, caller, response: the_donors_file_is_queued_for_bgzip(w),
    ),
    Case("GET", "/api/v1/archive-key", PUBLIC),
    Case(
        "POST",
        "/api/v1/uploads/",
        everyone(403, anonymous=401, donor=201, other_donor=201),
        headers={**TUS, "HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": "filename eC52Y2Y="},
    ),
    Case("HEAD", UPLOAD, owner_only(200, "donor"), headers=TUS),
    Case(
        "PATCH",
        UPLOAD,
        owner_only(204, "donor"),
        raw=("application/offset+octet-stream", b"##fileform"),
        headers={**TUS, "HTTP_UPLOAD_OFFSET": "0"},
    ),
    Case("DELETE", UPLOAD, owner_only(204, "donor"), headers=TUS),
    # GA4GH DRS 1.4: objects exist only for their granted researcher (404 for everyone else,
    # as a missing id); the access URL's token is its own credential.
    Case("GET", DRS + "/service-info", PUBLIC),
    Case("GET", DRS + "/objects/{object_id}", users_only(404), label="before the grant"),
    Case(
        "GET",
        DRS + "/objects/{object_id}",
        users_only(404, researcher=200),
        label="a file, after the grant",
        setup=granted_with_headers,
        check=the_researchers_blob,
    ),
    Case(
        "GET",
        DRS + "/objects/{object_id}",
        users_only(404, researcher=200),
        label="the dataset, after the grant",
        setup=granted_with_headers,
        check=the_researchers_bundle,
        ids={"object_id": "dataset_id"},
    ),
    Case(
        "GET",
        DRS + "/objects/{object_id}/access/{access_id}",
        users_only(404),
        label="before the grant",
    ),
    Case(
        "GET",
        DRS + "/objects/{object_id}/access/{access_id}",
        users_only(404, researcher=200),
        label="after the grant",
        setup=granted_with_headers,
        check=an_access_url_of_the_researchers_file,
    ),
    Case(
        "GET",
        DRS + "/download/{token}",
        everyone(200),
        label="a URL issued to the researcher",
        setup=granted_with_access_url,
        check=whoever_holds_the_url_gets_the_researchers_header,
    ),
    Case("GET", DRS + "/download/{token}", everyone(403), label="a forged token"),
    # public infrastructure
    Case("GET", "/api/schema/", PUBLIC),
    Case("GET", "/api/docs/", PUBLIC),
    # /health tells load balancers whether the services answer: the same for everyone.
    Case("GET", "/health", everyone(frozenset({200, 503}))),
    *GA4GH_CASES,
]


def call(case: Case, world: World, caller: str) -> Any:
    ids = world.ids()
    url = case.path.format(**{**ids, **{name: ids[other] for name, other in case.ids.items()}})
    content_type, data = "application/json", b""
    if case.body is not None:
        data = json.dumps(case.body(world, caller)).encode()
    if case.raw is not None:
        content_type, data = case.raw
    # DRF's stubs type APIClient.generic as the request factory's; it returns a response.
    client: Any = world.client(caller)
    return client.generic(case.method, url, data, content_type=content_type, **case.headers)


def test_every_routed_operation_has_a_case() -> None:
    """The URL configuration decides what the matrix must hold: a route without a case
    (or a case for a route that no longer exists) fails here."""
    covered = {case.operation for case in CASES}
    routed = api_operations()
    assert sorted(routed - covered) == [], "operations without a row in the matrix"
    assert sorted(covered - routed) == [], "rows for operations nobody routes"


def test_every_documented_operation_is_routed_and_covered() -> None:
    documented = schema_operations()
    assert sorted(documented - api_operations()) == []
    assert sorted(documented - {case.operation for case in CASES}) == []


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_permission(case: Case, caller: str, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.setup is not None:
        case.setup(world, monkeypatch)
    response = call(case, world, caller)
    expected = case.expect[caller]
    allowed = expected if isinstance(expected, frozenset) else frozenset({expected})
    assert response.status_code in allowed, (
        case.id,
        caller,
        response.status_code,
        getattr(response, "data", None) or getattr(response, "content", b"")[:300],
    )
    if response.status_code in (401, 403, 404) and case.method != "HEAD":
        assert set(response.json()) == case.error_keys
    if case.check is not None and response.status_code < 300:
        case.check(world, caller, response)


@pytest.mark.parametrize(
    ("caller", "sees_request", "sees_file"),
    [
        ("donor", True, True),
        ("other_donor", False, False),
        ("researcher", True, False),
        ("other_researcher", False, False),
        ("reviewer", True, False),
        ("admin", True, False),
        ("outsider", False, False),
    ],
)
def test_lists_hold_only_what_the_caller_may_see(
    world: World, caller: str, sees_request: bool, sees_file: bool
) -> None:
    client = world.client(caller)
    requests = {row["id"] for row in client.get("/api/v1/access-requests").json()["results"]}
    assert (str(world.request.pk) in requests) is sees_request
    files = {row["id"] for row in client.get("/api/v1/files/").json()["results"]}
    assert (str(world.file.pk) in files) is sees_file


def test_a_random_id_and_a_foreign_id_answer_alike(world: World) -> None:
    import uuid

    client = world.client("other_researcher")
    foreign = client.get(REQ.format(request_id=world.request.pk))
    missing = client.get(f"/api/v1/access-requests/{uuid.uuid4()}")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
