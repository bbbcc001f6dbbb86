"""factory_boy factories for the models tests need."""

from __future__ import annotations

import factory

from marketplace.models import Role, User

TEST_PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    role = Role.RESEARCHER
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805
        if create:
            obj.save()

    @factory.post_generation
    def payout_wallet(obj: User, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805
        """`UserFactory(role=Role.DONOR, payout_wallet=True)`: a donor who can list (listing
        needs a linked payout wallet)."""
        if create and extracted is True:
            payout_wallet(obj)


def ready_file(
    owner: User,
    *,
    filename: str = "cohort.vcf.gz",
    fmt: str = "VCF",
    build: str = "GRCh38",
    size: int = 1000,
):
    """A stored file that finished ingest (for marketplace tests that need no bytes)."""
    import secrets

    from genomics.models import GenomicFile

    return GenomicFile.objects.create(
        owner=owner,
        filename=filename,
        upload_length=size,
        upload_offset=size,
        state=GenomicFile.State.READY,
        source=GenomicFile.Source.PLAINTEXT,
        format=fmt,
        plaintext_size=size,
        plaintext_sha256="ab" * 32,
        payload_key=secrets.token_hex(16),
        metadata={
            "format": fmt,
            "format_version": "VCFv4.2",
            "reference_build": build,
            "samples": 2,
            "records": 10,
            "record_kind": "variants",
            "contigs": ["chr1"],
        },
    )


def payout_wallet(user: User) -> str:
    """Link a fresh address to `user` as SIWE would (listing needs the donor's payout
    wallet); returns the checksummed address."""
    from eth_account import Account

    from ledger.models import WalletLink

    address = Account.create().address
    WalletLink.objects.create(user=user, address=address)
    return address


def committee_request(
    *, researcher: User | None = None, donor: User | None = None, **fields: object
):
    """An access request (default state "submitted") for a committee-reviewed dataset of
    one ready file (DUO:0000042, price 1000, 30 days) listed by `donor` (a new donor with a
    payout wallet when None), by `researcher` (a new one when None). `fields` set other
    AccessRequest fields (state, expires_at, ...)."""
    from typing import cast

    from marketplace.models import AccessRequest
    from marketplace.services.datasets import dataset_create

    donor = donor or cast(User, UserFactory(role=Role.DONOR, payout_wallet=True))
    dataset = dataset_create(
        donor=donor,
        title="Exomes",
        description="",
        files=[ready_file(donor).pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="committee",
    )
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher or cast(User, UserFactory(role=Role.RESEARCHER)),
        statement="Research.",
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        amount=dataset.price,
        duo_match={"fits": True, "reasons": []},
        **fields,
    )
