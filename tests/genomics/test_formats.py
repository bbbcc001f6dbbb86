"""Format detection, validation and metadata, on real files of every supported format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genomics import formats
from tests.genomics import samples


def chunks(data: bytes, size: int = 7000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def inspect(data: bytes, filename: str = "") -> formats.Inspection:
    return formats.inspect(iter(chunks(data)), filename=filename)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("samples")
    reference = samples.write_reference(folder / "ref.fa")
    paths = {
        "vcf": samples.write_variants(folder / "a.vcf", "w"),
        "vcf.gz": samples.write_variants(folder / "a.vcf.gz", "wz"),
        "vcf37": samples.write_variants(folder / "b.vcf", "w", chr1_length=samples.GRCH37_CHR1),
        "bcf": samples.write_variants(folder / "a.bcf", "wb"),
        "bam": samples.write_alignments(folder / "a.bam", "wb"),
        "sam": samples.write_alignments(folder / "a.sam", "w"),
        "cram": samples.write_alignments(folder / "a.cram", "wc", reference=reference),
    }
    data = {name: Path(path).read_bytes() for name, path in paths.items()}
    reference.unlink()  # CRAM must be readable without its reference
    Path(f"{reference}.fai").unlink()
    return data


@pytest.mark.parametrize(
    ("name", "kind", "records", "compression"),
    [
        ("vcf", "VCF", 300, "none"),
        ("vcf.gz", "VCF", 300, "bgzf"),
        ("bcf", "BCF", 300, "bgzf"),
        ("bam", "BAM", 200, "bgzf"),
        ("sam", "SAM", 200, "none"),
        ("cram", "CRAM", 200, "cram"),
    ],
)
def test_htslib_and_vcf_formats(
    files, name: str, kind: str, records: int, compression: str
) -> None:
    result = inspect(files[name])
    assert (result.format, result.records, result.compression) == (kind, records, compression)
    assert result.reference_build == "GRCh38"
    assert "chr1" in result.contigs


def test_vcf_metadata(files) -> None:
    result = inspect(files["vcf"])
    assert result.format_version == "VCFv4.2"
    assert result.samples == 2
    assert result.contigs == ["chr1", "chr2"]


def test_reference_build_from_contig_lengths(files) -> None:
    assert inspect(files["vcf37"]).reference_build == "GRCh37"


def test_fastq_plain_and_gzip() -> None:
    for data, compression in ((samples.fastq(), "none"), (samples.gz(samples.fastq()), "gzip")):
        result = inspect(data)
        assert (result.format, result.records, result.compression) == ("FASTQ", 100, compression)


def test_fasta_counts_sequences_and_publishes_only_standard_names() -> None:
    result = inspect(samples.fasta())
    assert (result.format, result.records) == ("FASTA", 3)
    assert result.contigs == ["chr1", "chrM"]


def test_consumer_files() -> None:
    result = inspect(samples.twenty_three_and_me())
    assert (result.format, result.records, result.reference_build) == ("23andMe", 50, "GRCh37")
    assert result.samples == 1
    result = inspect(samples.ancestry_dna())
    assert (result.format, result.records, result.reference_build) == ("AncestryDNA", 50, "GRCh37")
    assert set(result.contigs) == {"1", "X"}


@pytest.mark.parametrize("name", ["vcf", "vcf.gz", "bcf", "bam", "sam", "cram"])
def test_sample_ids_and_read_names_are_never_in_metadata(files, name: str) -> None:
    published = json.dumps(inspect(files[name]).metadata)
    for secret in samples.SAMPLES:
        assert secret not in published


def test_consumer_genotypes_are_never_in_metadata() -> None:
    published = json.dumps(inspect(samples.twenty_three_and_me()).metadata)
    assert "rs1" not in published and "AG" not in published


def refused(data: bytes, filename: str = "", match: str | None = None) -> str:
    with pytest.raises(formats.FormatError, match=match) as caught:
        inspect(data, filename)
    return str(caught.value)


def test_empty_file() -> None:
    refused(b"", match="empty")


def test_binary_junk_named_vcf() -> None:
    message = refused(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "scan.vcf")
    assert "named like a VCF" in message and "PNG" in message


def test_truncated_gzip(files) -> None:
    refused(files["vcf.gz"][: len(files["vcf.gz"]) // 2], match="truncated")
    refused(samples.gz(samples.fastq())[:-30], match="truncated")


def test_vcf_with_a_broken_header(files) -> None:
    text = files["vcf"].replace(b"#CHROM\tPOS", b"#CHROM\tPOSITION")
    assert "header line must start" in refused(text)
    no_header = b"\n".join(
        line for line in files["vcf"].split(b"\n") if not line.startswith(b"#CHROM")
    )
    assert "Line" in refused(no_header)
    refused(b"##fileformat=VCFv9\n", match="Line 1")


def test_vcf_records_out_of_order(files) -> None:
    lines = files["vcf"].split(b"\n")
    first_record = next(i for i, line in enumerate(lines) if line and not line.startswith(b"#"))
    lines[first_record], lines[first_record + 1] = lines[first_record + 1], lines[first_record]
    assert "sorted by position" in refused(b"\n".join(lines))


def test_vcf_record_with_missing_columns(files) -> None:
    message = refused(files["vcf"] + b"chr2\t99999999\t.\tA\n")
    assert "columns" in message and "Line" in message


def test_bam_with_a_bad_magic(files) -> None:
    import gzip

    damaged = gzip.compress(b"BAX\x01" + gzip.decompress(files["bam"])[4:])
    message = refused(damaged, "a.bam")
    assert "BAM" in message


def test_truncated_bam(files) -> None:
    refused(files["bam"][: len(files["bam"]) // 2], "a.bam", match="BAM")


def test_fastq_quality_length_mismatch() -> None:
    message = refused(b"@r1\nACGT\n+\nIII\n")
    assert "Line 4" in message and "equally long" in message


def test_fastq_incomplete_record() -> None:
    refused(b"@r1\nACGT\n+\n", match="incomplete")


def test_streaming_through_single_byte_chunks(files) -> None:
    result = formats.inspect(iter([files["vcf"][i : i + 1] for i in range(len(files["vcf"]))]))
    assert result.records == 300
