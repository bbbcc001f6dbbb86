"""What an inspector reports: never a sample name, read name or genotype."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Inspection:
    format: str
    format_version: str = ""
    compression: str = "none"
    reference_build: str | None = None
    samples: int | None = None
    records: int = 0
    record_kind: str = "records"
    contigs: list[str] = field(default_factory=list)
    # Declared lengths (VCF ##contig length, BAM @SQ LN) of the public contigs: what a
    # region tier's regions are checked against (marketplace.services.tiers).
    contig_lengths: dict[str, int] = field(default_factory=dict)
    # A file read out of a container (a ZIP holding one file): "zip", and the SHA-256 and
    # size of the file inside, which is what is published as the plaintext checksum.
    container: str = ""
    content_sha256: str = ""
    content_size: int | None = None

    @property
    def metadata(self) -> dict[str, object]:
        container = {"container": self.container} if self.container else {}
        lengths = {"contig_lengths": self.contig_lengths} if self.contig_lengths else {}
        return (
            container
            | lengths
            | {
                "format": self.format,
                "format_version": self.format_version,
                "compression": self.compression,
                "reference_build": self.reference_build,
                "samples": self.samples,
                "records": self.records,
                "record_kind": self.record_kind,
                "contigs": self.contigs,
            }
        )
