"""Who may do what through the API: every endpoint, by every kind of caller, on their own or
someone else's object. An object the caller may not see answers 404, exactly as an id
that does not exist; an action the caller's role may never take answers 403."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from genomics import c4gh
from genomics.models import GenomicFile
from marketplace.models import AccessRequest, Dataset, Role, User
from tests.factories import UserFactory, ready_file
from tests.genomics.conftest import archive_key  # noqa: F401 - uploads need the archive key

pytestmark = pytest.mark.django_db

CALLERS = (
    "anonymous",
    "donor",
    "other_donor",
    "researcher",
    "other_researcher",
    "reviewer",
    "admin",
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

    def client(self, caller: str) -> APIClient:
        client = APIClient()
        if caller != "anonymous":
            token, _ = Token.objects.get_or_create(user=self.users[caller])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client


@pytest.fixture
def world(archive_key: object) -> World:  # noqa: F811
    roles = {
        "donor": Role.DONOR,
        "other_donor": Role.DONOR,
        "researcher": Role.RESEARCHER,
        "other_researcher": Role.RESEARCHER,
        "reviewer": Role.REVIEWER,
        "admin": Role.ADMIN,
    }
    users = {name: cast(User, UserFactory(role=role)) for name, role in roles.items()}
    for name in ("researcher", "other_researcher"):
        users[name].crypt4gh_public_key = c4gh.generate_keypair()[1]
        users[name].save()
    donor = users["donor"]
    stored = ready_file(donor)
    upload = GenomicFile.objects.create(
        owner=donor,
        filename="half.vcf",
        upload_length=100,
        upload_offset=0,
        state=GenomicFile.State.RECEIVING,
        source=GenomicFile.Source.PLAINTEXT,
        payload_key="cd" * 16,
    )
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


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[APIClient, World], Any]
    expect: dict[str, int]
    setup: Callable[[World], None] | None = None


def everyone(status: int, **others: int) -> dict[str, int]:
    return {caller: others.get(caller, status) for caller in CALLERS}


def users_only(status: int, **others: int) -> dict[str, int]:
    return everyone(status, anonymous=401, **others)


def owner_only(status: int, owner: str, **others: int) -> dict[str, int]:
    return everyone(404, anonymous=401, **{owner: status}, **others)


def granted(world: World) -> None:
    AccessRequest.objects.filter(pk=world.request.pk).update(state=AccessRequest.State.GRANTED)


def _req(w: World, tail: str = "") -> str:
    return f"/api/v1/access-requests/{w.request.pk}{tail}"


TUS: dict[str, Any] = {"HTTP_TUS_RESUMABLE": "1.0.0"}
ROLE_ONLY_403 = {"donor": 403, "other_donor": 403, "reviewer": 403, "admin": 403}

CASES = [
    Case("me", lambda c, w: c.get("/api/v1/me"), users_only(200)),
    Case("notifications", lambda c, w: c.get("/api/v1/notifications"), users_only(200)),
    Case(
        "crypt4gh key",
        lambda c, w: c.put(
            "/api/v1/me/crypt4gh-key",
            {"public_key": __import__("base64").b64encode(c4gh.generate_keypair()[1]).decode()},
            format="json",
        ),
        users_only(200),
    ),
    Case(
        "wallet challenge",
        lambda c, w: c.post(
            "/api/v1/me/wallet/challenge",
            {"address": "0x" + "11" * 20},
            format="json",
        ),
        users_only(201),
    ),
    Case("catalogue", lambda c, w: c.get("/api/v1/datasets"), everyone(200)),
    Case("dataset", lambda c, w: c.get(f"/api/v1/datasets/{w.dataset.pk}"), everyone(200)),
    Case(
        "list a dataset with the donor's file",
        lambda c, w: c.post(
            "/api/v1/datasets",
            {
                "title": "t",
                "files": [str(w.file.pk)],
                "duo_codes": ["DUO:0000042"],
                "price": "1",
                "access_days": 1,
                "review": "auto",
            },
            format="json",
        ),
        everyone(403, anonymous=401, donor=201, other_donor=400),
    ),
    Case(
        "earnings",
        lambda c, w: c.get(f"/api/v1/datasets/{w.dataset.pk}/earnings"),
        owner_only(200, "donor", reviewer=200, admin=200),
    ),
    Case(
        "withdraw consent",
        lambda c, w: c.post(f"/api/v1/datasets/{w.dataset.pk}/withdraw"),
        everyone(403, anonymous=401, donor=200),
    ),
    Case("requests", lambda c, w: c.get("/api/v1/access-requests"), users_only(200)),
    Case(
        "request",
        lambda c, w: c.get(_req(w)),
        owner_only(200, "researcher", donor=200, reviewer=200, admin=200),
    ),
    Case(
        "submit a request",
        lambda c, w: c.post(
            "/api/v1/access-requests",
            {
                "dataset": str(w.dataset.pk),
                "purpose_codes": ["DUO:0000042"],
                "statement": "s",
                "accept_terms": True,
            },
            format="json",
        ),
        everyone(403, anonymous=401, researcher=201, other_researcher=201),
    ),
    Case(
        "approve",
        lambda c, w: c.post(_req(w, "/approve"), {"reason": "ok"}, format="json"),
        everyone(403, anonymous=401, reviewer=200, admin=200),
    ),
    Case(
        "reject",
        lambda c, w: c.post(_req(w, "/reject"), {"reason": "no"}, format="json"),
        everyone(403, anonymous=401, reviewer=200, admin=200),
    ),
    Case(
        "withdraw a request",
        lambda c, w: c.post(_req(w, "/withdraw")),
        everyone(403, anonymous=401, researcher=200, other_researcher=404),
    ),
    Case(
        "revoke",
        lambda c, w: c.post(_req(w, "/revoke"), {"reason": "r"}, format="json"),
        {
            "anonymous": 401,
            "donor": 200,
            "other_donor": 404,
            "researcher": 403,
            "other_researcher": 404,
            "reviewer": 403,
            "admin": 200,
        },
        setup=granted,
    ),
    Case(
        "download before the grant",
        lambda c, w: c.get(_req(w, f"/files/{w.file.pk}")),
        everyone(403, anonymous=401, researcher=403, other_researcher=404),
    ),
    Case("files", lambda c, w: c.get("/api/v1/files/"), users_only(200)),
    Case("file", lambda c, w: c.get(f"/api/v1/files/{w.file.pk}"), owner_only(200, "donor")),
    Case(
        "start an upload",
        lambda c, w: c.post(
            "/api/v1/uploads/",
            **TUS,
            HTTP_UPLOAD_LENGTH="10",
            HTTP_UPLOAD_METADATA="filename eC52Y2Y=",
        ),
        everyone(403, anonymous=401, donor=201, other_donor=201),
    ),
    Case(
        "upload offset",
        lambda c, w: c.head(f"/api/v1/uploads/{w.upload.pk}", **TUS),
        owner_only(200, "donor"),
    ),
    Case(
        "cancel an upload",
        lambda c, w: c.delete(f"/api/v1/uploads/{w.upload.pk}", **TUS),
        owner_only(204, "donor"),
    ),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_permission(case: Case, caller: str, world: World) -> None:
    if case.setup is not None:
        case.setup(world)
    response = case.call(world.client(caller), world)
    assert response.status_code == case.expect[caller], (
        case.name,
        caller,
        response.status_code,
        getattr(response, "data", None) or response.content[:300],
    )
    if response.status_code in (401, 403, 404) and response.content:
        assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    ("caller", "sees_request", "sees_file"),
    [
        ("donor", True, True),
        ("other_donor", False, False),
        ("researcher", True, False),
        ("other_researcher", False, False),
        ("reviewer", True, False),
        ("admin", True, False),
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
    foreign = client.get(_req(world))
    missing = client.get(f"/api/v1/access-requests/{uuid.uuid4()}")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
