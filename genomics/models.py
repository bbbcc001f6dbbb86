"""The vault's records. A stored file is a Crypt4GH header (here, in the database,
encrypted to the archive key) plus its payload of encrypted segments (in storage, as
ordered parts under a random key). Plaintext is never stored anywhere."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ArchiveKey(models.Model):
    """The archive's Crypt4GH public key. Its secret key lives in a passphrase-protected
    file that only the worker can read; the database holds the public half only.

    States: active (new files are encrypted to it; one at a time), retiring (a rotation
    moves its files' headers to the active key; still usable until the last has moved),
    retired (no header uses it; its secret key file is deleted; listed for `--sender_pk`).
    """

    public_key = models.BinaryField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)
    # Set when a newer key replaced it; its files are then moved in batches (rotation).
    replaced_at = models.DateTimeField(null=True, blank=True)
    # Files that used this key when the rotation started (progress = moved / this).
    rotation_files = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=models.Q(active=True), name="one_active_archive_key"
            )
        ]

    def __str__(self) -> str:
        return f"archive key {bytes(self.public_key).hex()[:12]}…"

    @property
    def state(self) -> str:
        if self.active:
            return "active"
        return "retired" if self.retired_at else "retiring"


class GenomicFile(models.Model):
    class State(models.TextChoices):
        RECEIVING = "receiving", "Receiving"
        INGESTING = "ingesting", "Ingesting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        PLAINTEXT = "plaintext", "Encrypted by the server as it arrived"
        CRYPT4GH = "crypt4gh", "Encrypted by the donor to the archive key"
        REGION = "region", "A region slice of another file, re-encrypted by the worker"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="genomic_files"
    )
    filename = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVING)
    source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    # tus Upload-Length: the bytes the client sends (plaintext, or the whole Crypt4GH file).
    upload_length = models.PositiveBigIntegerField()
    upload_offset = models.PositiveBigIntegerField(default=0)
    progress = models.FloatField(default=0.0)
    # The Crypt4GH header, encrypted to the archive key (Crypt4GH §3.2).
    header = models.BinaryField(null=True, blank=True)
    archive_key = models.ForeignKey(ArchiveKey, on_delete=models.PROTECT, null=True, blank=True)
    # Random storage key of the payload parts; never derived from the filename.
    payload_key = models.CharField(max_length=64, unique=True)
    payload_size = models.PositiveBigIntegerField(default=0)
    payload_sha256 = models.CharField(max_length=64, blank=True)
    plaintext_size = models.PositiveBigIntegerField(null=True, blank=True)
    plaintext_sha256 = models.CharField(max_length=64, blank=True)
    format = models.CharField(max_length=32, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    # A region object (a region tier's slice: README "Selling regions") is its own Crypt4GH
    # object under its own data key, made from `parent` and erased with it.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="region_objects"
    )
    # [[contig, start, end], ...]: BED coordinates (0-based, end exclusive), sorted, merged.
    regions = models.JSONField(default=list, blank=True)
    regions_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "state"])]
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "regions_sha256"],
                condition=models.Q(parent__isnull=False),
                name="one_region_object_per_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.state})"


class PayloadPart(models.Model):
    """One stored piece of a payload. Parts concatenated in offset order are the payload;
    storage needs no append, so the same code serves the filesystem and S3."""

    file = models.ForeignKey(GenomicFile, on_delete=models.CASCADE, related_name="parts")
    payload_offset = models.PositiveBigIntegerField()
    size = models.PositiveBigIntegerField()
    storage_name = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["file", "payload_offset"], name="payload_part_once")
        ]
        ordering = ["payload_offset"]

    def __str__(self) -> str:
        return f"{self.storage_name} ({self.size} bytes)"


class UploadState(models.Model):
    """What a plaintext upload needs between two PATCH requests, all of it encrypted:

    - the file's data key, wrapped with a key derived from SECRET_KEY (the web process
      encrypts as bytes arrive, so it must hold the data key while the upload is open);
    - the plaintext bytes of an unfinished 64 KiB segment, encrypted with the data key.

    Deleted when the upload completes or is terminated; after that only the archive key
    (worker-only) can recover the data key from the header.
    """

    file = models.OneToOneField(
        GenomicFile, on_delete=models.CASCADE, primary_key=True, related_name="upload_state"
    )
    wrapped_data_key = models.BinaryField(blank=True)
    pending = models.BinaryField(default=bytes, blank=True)

    def __str__(self) -> str:
        return f"upload state of {self.file_id}"


class Grant(models.Model):
    """A header re-encrypted for one recipient key: a grant is this plus the shared payload.

    Unique per (file, recipient key) so granting twice returns the first header.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.ForeignKey(GenomicFile, on_delete=models.PROTECT, related_name="grants")
    recipient_public_key = models.BinaryField(max_length=32)
    header = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["file", "recipient_public_key"], name="grant_once_per_recipient"
            )
        ]

    def __str__(self) -> str:
        return f"grant {self.id} of {self.file_id}"


class RecipientKeyOrigin(models.Model):
    """What a recipient's X25519 key was given as, so the person can recognise it: an
    OpenSSH ed25519 key is stored converted to X25519, and its SSH fingerprint (the one
    `ssh-keygen -l` prints) cannot be computed back from the conversion.

    One row per X25519 key; keys given in the Crypt4GH format need none (their fingerprint
    is of the X25519 bytes themselves).
    """

    public_key = models.BinaryField(max_length=32, unique=True)
    kind = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=64)
    comment = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.fingerprint}"


class FileIndex(models.Model):
    """The standard index of a sliceable file (BAI for BAM, TBI or CSI for bgzipped VCF, CSI
    for BCF, CRAI for CRAM), built by the worker at ingest, plus its block map: both kept
    encrypted at rest, as Crypt4GH to the archive key (Crypt4GH spec, "index files": an
    index can reveal, for instance, the donor's sex by the reads on chrY).

    Each object is stored as a Crypt4GH payload under a random storage key, its header (to
    the file's archive key, moved with the file's header by a key rotation) here. The block
    map is JSON: the references in index order, the virtual offset where the first record
    starts, and the compressed offset of every BGZF block (or CRAM container), so a ticket
    ends a chunk at its block's end without reading the payload.

    One row per file; deleted with the file (a donor's erasure reaches it by the foreign
    key and destroys both storage objects named here).
    """

    file = models.OneToOneField(GenomicFile, on_delete=models.CASCADE, related_name="index")
    index_format = models.CharField(max_length=8)  # BAI, TBI, CSI, CRAI
    index_storage_name = models.CharField(max_length=255)
    index_header = models.BinaryField()
    index_size = models.PositiveBigIntegerField()
    map_storage_name = models.CharField(max_length=255)
    map_header = models.BinaryField()
    map_size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.index_format} index of {self.file_id}"


class Recompression(models.Model):
    """A donor's request to store a VCF that is not bgzipped (plain, gzip, or in a ZIP) as
    BGZF, so htsget can serve regions of it (issue 17 §1; README "Storing a VCF
    bgzipped"); done by the worker (genomics.services.recompress). One row per file.

    States: queued (asked, no worker on it yet), working (an attempt runs: `attempt`,
    heartbeat in `updated_at`, `progress` 0..1), done (the file now holds the BGZF payload),
    failed (`error` says why; the file is unchanged, and asking again starts over).

    Both checksums are kept: the file's `plaintext_sha256` becomes the BGZF bytes' (what a
    grantee decrypts, what DRS names) and `uploaded_plaintext_sha256` keeps the upload's
    (what the donor sent). Storage keys end in `_payload_key` so erasure finds them
    (genomics.erasure): an attempt's objects until the switch, and the replaced payload,
    kept until `replaced_purge_after` for downloads in flight.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        WORKING = "working", "Working"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file = models.OneToOneField(
        GenomicFile, on_delete=models.CASCADE, primary_key=True, related_name="recompression"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    # The running attempt (random): only it may switch the file or record a failure.
    attempt = models.CharField(max_length=32, blank=True)
    # Where the running attempt stores its objects; recorded before it writes any.
    new_payload_key = models.CharField(max_length=64, blank=True)
    new_index_payload_key = models.CharField(max_length=64, blank=True)
    new_map_payload_key = models.CharField(max_length=64, blank=True)
    # The payload the switch replaced, deleted once downloads in flight have had time.
    replaced_payload_key = models.CharField(max_length=64, blank=True)
    replaced_purge_after = models.DateTimeField(null=True, blank=True)
    # What the donor uploaded, as ingest recorded it (set by the switch).
    uploaded_filename = models.CharField(max_length=255, blank=True)
    uploaded_plaintext_sha256 = models.CharField(max_length=64, blank=True)
    uploaded_plaintext_size = models.PositiveBigIntegerField(null=True, blank=True)
    uploaded_compression = models.CharField(max_length=16, blank=True)  # none, gzip, zip
    # The stored BGZF plaintext's, equal to the file's `plaintext_sha256` once done.
    bgzipped_plaintext_sha256 = models.CharField(max_length=64, blank=True)
    grants_reissued = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"recompression of {self.file_id} ({self.state})"
