"""Beacon v2 genomic-variant queries: parsing and normalising the request parameters.

Beacon v2 (framework v2.1.1, genomicVariations `requestParameters`): coordinates are
0-based (`start` of the VCF variant at 17:43044295 is 43044294), `end` exclusive.
- sequence query: referenceName, start, referenceBases, alternateBases;
- range query: referenceName, start, end (variants that overlap [start, end)), optional
  variantType, referenceBases, alternateBases;
- bracket query: referenceName, start = [min, max], end = [min, max] (variants whose start
  and end fall in the brackets), optional variantType.
`assemblyId` restricts to files of that assembly. GET gives arrays comma-separated or
repeated; POST gives them as JSON arrays in `query.requestParameters`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from discovery.variants.normalise import (
    DEL,
    INDEL,
    INS,
    MNP,
    SNP,
    chrom_code,
    normalise,
    stored_allele,
)

MAX_POSITION = 2**31 - 2
# Range queries also find a deletion that starts up to this many bases before the range.
RANGE_LOOKBACK_BASES = 1000
MAX_RANGE_BASES = 10_000_000
VARIANT_TYPES: dict[str, frozenset[int]] = {
    "SNP": frozenset({SNP}),
    "SNV": frozenset({SNP}),
    "MNP": frozenset({MNP}),
    "INDEL": frozenset({INS, DEL, INDEL}),
    "INS": frozenset({INS}),
    "DEL": frozenset({DEL}),
    # Sequence Ontology terms for the same kinds.
    "SO:0001483": frozenset({SNP}),
    "SO:0002007": frozenset({MNP}),
    "SO:1000032": frozenset({INS, DEL, INDEL}),
    "SO:0000667": frozenset({INS}),
    "SO:0000159": frozenset({DEL}),
}
ASSEMBLIES = {"grch37": "GRCh37", "hg19": "GRCh37", "grch38": "GRCh38", "hg38": "GRCh38"}
_BASES = re.compile(r"^[ACGTacgt]+$")
PARAMETERS = frozenset(
    {
        "referenceName",
        "start",
        "end",
        "referenceBases",
        "alternateBases",
        "variantType",
        "assemblyId",
    }
)


class BeaconQueryError(ValueError):
    """The request cannot be answered as given (Beacon error 400; the message says why)."""


@dataclass(frozen=True)
class VariantQuery:
    kind: str  # "sequence" | "range" | "bracket"
    chrom: int
    # Bounds on the variant's 0-based start and exclusive end.
    start_min: int
    start_max: int
    end_min: int | None = None
    end_max: int | None = None
    ref: str | None = None  # stored (normalised) form
    alt: str | None = None
    variant_types: frozenset[int] | None = None
    variant_type_name: str = ""
    assembly: str = ""
    echo: dict[str, object] = field(default_factory=dict, compare=False)

    def key(self) -> str:
        """The normalised query: equal for two spellings of one question (it keys the
        stored disclosure answers)."""
        parts = [
            self.assembly or "*",
            str(self.chrom),
            self.kind,
            f"{self.start_min}-{self.start_max}",
            f"{self.end_min}-{self.end_max}",
            f"{self.ref or '*'}>{self.alt or '*'}",
            self.variant_type_name or "*",
        ]
        return ":".join(parts)


def _ints(value: object, name: str) -> list[int]:
    items: list[object]
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [v for v in str(value).split(",") if v.strip()]
    try:
        numbers = [int(str(v).strip()) for v in items]
    except ValueError as exc:
        raise BeaconQueryError(f"`{name}` must be an integer or two integers.") from exc
    if not 1 <= len(numbers) <= 2 or any(not 0 <= n <= MAX_POSITION for n in numbers):
        raise BeaconQueryError(f"`{name}` must be one or two 0-based positions.")
    return numbers


def _bases(value: object, name: str) -> str:
    """Upper-cased bases; raises BeaconQueryError for anything but A, C, G, T.

    Beacon v2 lets `N` stand for any base (and IUPAC codes for sets of bases); the index
    holds each allele's exact bases, so a wildcard would silently match nothing and, on a
    rare site, cost budget for an answer that says nothing: it is refused instead."""
    text = str(value).strip()
    if not _BASES.match(text):
        if re.fullmatch(r"[A-Za-z]+", text):
            raise BeaconQueryError(
                f"`{name}` must be exact bases (A, C, G, T): wildcards such as N and other "
                "IUPAC codes are not supported; ask for each base, or use a range query."
            )
        raise BeaconQueryError(f"`{name}` must be bases (A, C, G, T).")
    return text.upper()


def parse(parameters: Mapping[str, object]) -> VariantQuery:
    """A VariantQuery from Beacon request parameters, flat or (as the framework's
    requestParameters has it) under "g_variant"; raises BeaconQueryError."""
    nested = parameters.get("g_variant")
    if isinstance(nested, Mapping):
        parameters = nested
    given = {k: v for k, v in parameters.items() if k in PARAMETERS and v not in ("", None)}
    if "referenceName" not in given or "start" not in given:
        raise BeaconQueryError(
            "g_variants needs `referenceName` and `start` (0-based), with `referenceBases` "
            "and `alternateBases` (sequence query) or `end` (range or bracket query)."
        )
    chrom = chrom_code(str(given["referenceName"]))
    if chrom is None:
        raise BeaconQueryError("`referenceName` must be a chromosome: 1-22, X, Y or MT.")
    assembly = ""
    if "assemblyId" in given:
        raw = str(given["assemblyId"]).strip()
        assembly = ASSEMBLIES.get(raw.lower(), raw)
    variant_types: frozenset[int] | None = None
    type_name = ""
    if "variantType" in given:
        type_name = str(given["variantType"]).strip().upper()
        if type_name not in VARIANT_TYPES:
            raise BeaconQueryError(
                f"`variantType` must be one of {', '.join(sorted(VARIANT_TYPES))}."
            )
        variant_types = VARIANT_TYPES[type_name]
    starts = _ints(given["start"], "start")
    ends = _ints(given["end"], "end") if "end" in given else []
    ref = _bases(given["referenceBases"], "referenceBases") if "referenceBases" in given else None
    alt = _bases(given["alternateBases"], "alternateBases") if "alternateBases" in given else None
    echo: dict[str, object] = {k: str(given[k]) for k in sorted(given)}
    echo.update(start=starts, **({"end": ends} if ends else {}))
    # Echoed as the framework's receivedRequestSummary wants: per entry type, in the
    # default model's types (genomicVariations/requestParameters.json: arrays of ints).
    common = {"chrom": chrom, "assembly": assembly, "echo": {"g_variant": echo}}
    if len(starts) == 2 or len(ends) == 2:
        if len(starts) != 2 or len(ends) != 2:
            raise BeaconQueryError("A bracket query gives two values for both start and end.")
        if starts[0] > starts[1] or ends[0] > ends[1]:
            raise BeaconQueryError("Brackets are [min, max].")
        return VariantQuery(
            kind="bracket",
            start_min=starts[0],
            start_max=starts[1],
            end_min=ends[0],
            end_max=ends[1],
            variant_types=variant_types,
            variant_type_name=type_name,
            **common,  # type: ignore[arg-type]
        )
    if ends:
        start, end = starts[0], ends[0]
        if end <= start or end - start > MAX_RANGE_BASES:
            raise BeaconQueryError(
                f"A range query needs start < end, at most {MAX_RANGE_BASES} bases apart."
            )
        return VariantQuery(
            kind="range",
            start_min=start,
            start_max=end - 1,
            end_min=start + 1,
            end_max=None,
            ref=stored_allele(ref) if ref else None,
            alt=stored_allele(alt) if alt else None,
            variant_types=variant_types,
            variant_type_name=type_name,
            **common,  # type: ignore[arg-type]
        )
    if ref is None or alt is None:
        raise BeaconQueryError(
            "A sequence query needs `referenceBases` and `alternateBases` "
            "(or give `end` for a range query)."
        )
    allele = normalise(str(given["referenceName"]), starts[0] + 1, ref, alt)
    if allele is None:
        raise BeaconQueryError("`referenceBases` and `alternateBases` must differ.")
    return VariantQuery(
        kind="sequence",
        start_min=allele.pos - 1,
        start_max=allele.pos - 1,
        ref=allele.ref,
        alt=allele.alt,
        variant_types=variant_types,
        variant_type_name=type_name,
        **common,  # type: ignore[arg-type]
    )
