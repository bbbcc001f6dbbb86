"""The variant index: per ingested VCF/BCF, its variant sites with allele counts (AC) and
allele numbers (AN), never per-sample genotypes (issue 18 §1).

`VariantAllele` is the big table (10^8 rows and more), so it is kept compact: no surrogate
key (the composite primary key (chrom, pos, ref, alt, source) is unique per file and its
btree serves both position and range lookups), a smallint chromosome code, an int4
position, short upper-case alleles (longer ones stored as a digest, see
discovery.variants.normalise), and an int4 source instead of the file's UUID. Rows of one
file are written together, so a BRIN index on `source_id` finds them for erasure at a few
kilobytes of index.

Erasure: `VariantSource` cascades (Django) from the file; its alleles cascade in the
database (ON DELETE CASCADE, migration 0001) so that deleting a file with millions of
sites is one statement, not millions of Python objects.
"""

from __future__ import annotations

from django.db import models


class VariantSource(models.Model):
    """One indexed file (small table; its int id keeps the allele rows narrow)."""

    id = models.AutoField(primary_key=True)
    file = models.OneToOneField(
        "genomics.GenomicFile", on_delete=models.CASCADE, related_name="variant_source"
    )
    # GRCh37 / GRCh38 / ... as the format inspector recognised it; "" when unknown.
    assembly = models.CharField(max_length=32, blank=True)
    alleles = models.PositiveBigIntegerField(default=0)
    # Records whose contig has no chromosome code or whose ALT is symbolic (not indexed).
    skipped_records = models.PositiveBigIntegerField(default=0)
    indexed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"variants of {self.file_id}"


class VariantAllele(models.Model):
    """One normalised allele of one file: VCF POS (1-based) after trimming, AC and AN."""

    class Kind(models.IntegerChoices):
        SNP = 1
        MNP = 2
        INS = 3
        DEL = 4
        # A length change with different bases left after trimming (e.g. AT>G).
        INDEL = 5

    pk = models.CompositePrimaryKey("chrom", "pos", "ref", "alt", "source")
    chrom = models.SmallIntegerField()
    pos = models.IntegerField()
    # The database holds the cascade (see the module docstring); Django must not collect.
    source = models.ForeignKey(
        VariantSource,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    allele_count = models.IntegerField()
    allele_number = models.IntegerField()
    kind = models.SmallIntegerField(choices=Kind.choices)
    ref = models.TextField()
    alt = models.TextField()

    def __str__(self) -> str:
        return f"{self.chrom}:{self.pos} {self.ref}>{self.alt}"
