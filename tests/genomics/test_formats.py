"""Format detection, validation and metadata, on real files of every supported format."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# Truncation (issue 14, item 1): every container that signals its end is refused without it,
# and what is published for a whole file is what htslib reads from it.


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("big")
    reference = samples.write_reference(folder / "ref.fa")
    paths = {
        "vcf.gz": samples.write_variants(folder / "a.vcf.gz", "wz", records=6000),
        "bcf": samples.write_variants(folder / "a.bcf", "wb", records=6000),
        "bam": samples.write_alignments(folder / "a.bam", "wb", reads=4000),
        "cram": samples.write_alignments(folder / "a.cram", "wc", reads=4000, reference=reference),
    }
    data = {name: Path(path).read_bytes() for name, path in paths.items()}
    data["fastq.bgz"] = samples.bgzf(samples.fastq(3000), folder / "r.fastq.gz")
    return data


@pytest.mark.parametrize(
    ("name", "kind", "records"),
    [("vcf.gz", "VCF", 6000), ("bcf", "BCF", 6000), ("bam", "BAM", 4000), ("cram", "CRAM", 4000)],
)
def test_a_whole_file_publishes_what_htslib_reads(
    big, tmp_path, name: str, kind: str, records: int
) -> None:
    import pysam

    path = tmp_path / f"whole.{name}"
    path.write_bytes(big[name])
    if kind in {"VCF", "BCF"}:
        with pysam.VariantFile(str(path)) as variants:
            htslib_count = sum(1 for _ in variants)
    else:
        with pysam.AlignmentFile(str(path), check_sq=False) as alignments:
            htslib_count = sum(1 for _ in alignments.fetch(until_eof=True))
    assert htslib_count == records
    assert (inspect(big[name]).format, inspect(big[name]).records) == (kind, htslib_count)


@pytest.mark.parametrize(
    ("name", "kind"), [("vcf.gz", "VCF"), ("bam", "BAM"), ("bcf", "BCF"), ("fastq.bgz", "FASTQ")]
)
def test_a_bgzf_file_cut_at_a_block_boundary_is_truncated(big, name: str, kind: str) -> None:
    cut = samples.cut_before_last_data_block(big[name])
    assert len(samples.bgzf_block_offsets(cut)) >= 2  # whole blocks only: a valid-looking file
    message = refused(cut)
    assert f"The {kind} file is truncated" in message and "BGZF end-of-file block" in message


def test_a_bgzf_file_without_only_its_eof_block_is_truncated(big) -> None:
    message = refused(big["vcf.gz"][:-28])
    assert "The VCF file is truncated" in message


def test_a_cram_without_its_eof_container_is_truncated(big) -> None:
    assert big["cram"][-38:] == formats.ends.CRAM_EOF[3]
    message = refused(big["cram"][:-38])
    assert "The CRAM file is truncated" in message and "end-of-file container" in message


def test_a_cram_2_1_needs_its_own_eof_container(tmp_path) -> None:
    reference = samples.write_reference(tmp_path / "ref.fa")
    whole = samples.write_alignments(
        tmp_path / "old.cram", "wc", reads=50, reference=reference, options=["version=2.1"]
    ).read_bytes()
    assert whole[4:6] == b"\x02\x01"
    assert inspect(whole).records == 50
    assert "The CRAM file is truncated" in refused(whole[:-30])


@pytest.mark.parametrize("name", ["bcf", "bam"])
def test_uncompressed_bcf_and_bam_are_refused_for_having_no_end(big, name: str) -> None:
    import gzip

    raw = gzip.decompress(big[name])  # what bcftools -Ou writes: no BGZF, no end marker
    message = refused(raw, f"a.{name}")
    assert f"uncompressed {name.upper()}" in message and "no end-of-file block" in message


def test_plain_gzip_without_its_trailer_is_truncated() -> None:
    whole = samples.gz(samples.twenty_three_and_me())
    assert inspect(whole).records == 50
    for cut in (8, 4, 1):  # the CRC32 and ISIZE trailer, RFC 1952 §2.3
        assert "The 23andMe file is truncated" in refused(whole[:-cut])


# Text saved on Windows (issue 14, item 3): one rule per format (genomics/formats/text.py).


def windows(data: bytes, *, bom: bool = True) -> bytes:
    """What Notepad's "UTF-8 with BOM" and Excel write: a BOM and CR+LF line ends."""
    return (b"\xef\xbb\xbf" if bom else b"") + data.replace(b"\n", b"\r\n")


@pytest.mark.parametrize(
    ("make", "kind", "records"),
    [
        (samples.twenty_three_and_me, "23andMe", 50),
        (samples.ancestry_dna, "AncestryDNA", 50),
        (samples.fastq, "FASTQ", 100),
        (samples.fasta, "FASTA", 3),
    ],
)
def test_bom_and_crlf_are_accepted_where_the_format_allows(make, kind: str, records: int) -> None:
    for data in (windows(make()), samples.gz(windows(make()))):
        for size in (7000, 1, 2):  # the BOM and CR+LF split across chunks
            result = formats.inspect(iter(chunks(data, size)))
            assert (result.format, result.records) == (kind, records)
    plain = inspect(make()).metadata
    assert inspect(windows(make())).metadata == plain | {"compression": "none"}


def test_consumer_files_accept_old_mac_line_ends() -> None:
    data = samples.twenty_three_and_me().replace(b"\n", b"\r")
    for size in (7000, 1):
        assert formats.inspect(iter(chunks(data, size))).records == 50


def test_a_vcf_with_crlf_is_read_as_htslib_reads_it(files) -> None:
    result = inspect(windows(files["vcf"], bom=False))
    assert (result.format, result.records, result.samples) == ("VCF", 300, 2)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_vcf_with_a_bom_is_refused_for_the_bom(files, compress: bool) -> None:
    data = b"\xef\xbb\xbf" + files["vcf"]
    message = refused(samples.gz(data) if compress else data)
    assert "byte-order mark" in message and "VCF 4.4" in message
    assert "fileformat" not in message.split("(")[0]  # not "##fileformat is missing"


def test_a_sam_with_a_bom_is_refused_for_the_bom(files) -> None:
    assert "byte-order mark" in refused(b"\xef\xbb\xbf" + files["sam"])


@pytest.mark.parametrize("size", [7000, 1])
def test_a_lone_cr_is_refused_in_a_vcf_naming_the_line(files, size: int) -> None:
    data = files["vcf"].replace(b"\n", b"\r")  # one huge "line": refused before reading it all
    with pytest.raises(formats.FormatError, match=r"^Line 1: a carriage return") as caught:
        formats.inspect(iter(chunks(data, size)))
    assert "VCF 4.4 §1.2" in str(caught.value)
    lines = files["vcf"].split(b"\n")
    lines[7] = lines[7].replace(b"\t", b"\r", 1)  # a CR inside a record, not at its end
    assert refused(b"\n".join(lines)).startswith("Line 8: a carriage return")


@pytest.mark.parametrize("size", [7000, 1])
def test_a_sam_with_old_mac_line_ends_is_refused_naming_the_line(files, size: int) -> None:
    lines = files["sam"].split(b"\n")
    lines[4] += b"\r"  # line 5 ends CR, LF-less: lines 5 and 6 run together
    data = b"\n".join(lines[:5]) + b"".join(lines[5:6]) + b"\n" + b"\n".join(lines[6:])
    with pytest.raises(formats.FormatError, match=r"^Line 5: a carriage return"):
        formats.inspect(iter(chunks(data, size)))
    assert inspect(windows(files["sam"], bom=False)).records == 200


def test_a_fastq_with_old_mac_line_ends_is_refused() -> None:
    assert refused(samples.fastq().replace(b"\n", b"\r")).startswith("Line 1: a carriage")


def test_utf16_text_is_named() -> None:
    data = samples.twenty_three_and_me().decode().encode("utf-16")  # Notepad's "Unicode"
    assert "UTF-16 text (save it as UTF-8" in refused(data, "genome.txt")


def zipped(*members: tuple[str, bytes], method: int = 8) -> bytes:
    """A ZIP as 23andMe ships raw data (one .txt, deflated), or with other members."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", method) as out:
        for name, data in members:
            out.writestr(name, data)
    return archive.getvalue()


@pytest.mark.parametrize("method", [8, 0], ids=["deflated", "stored"])
def test_a_23andme_zip_download_is_read_through_to_its_one_file(method: int) -> None:
    import hashlib

    raw = windows(samples.twenty_three_and_me())  # as downloaded: BOM and CR+LF too
    data = zipped(("genome_Jane_Doe_v5_Full_20240101.txt", raw), method=method)
    for size in (7000, 1):
        result = formats.inspect(iter(chunks(data, size)), filename="genome_Jane_Doe.zip")
        assert (result.format, result.records, result.container) == ("23andMe", 50, "zip")
        assert result.content_sha256 == hashlib.sha256(raw).hexdigest()
        assert result.content_size == len(raw)
        assert result.metadata["container"] == "zip"
        assert "Jane" not in json.dumps(result.metadata)


def test_a_zip_of_any_supported_format_is_read(files) -> None:
    result = inspect(zipped(("calls.vcf.gz", files["vcf.gz"])))
    assert (result.format, result.records, result.compression) == ("VCF", 300, "bgzf")


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ((("a.txt", b"x"), ("b.txt", b"y")), "more than one file: unzip it first"),
        ((("../../etc/genome.txt", b"x"),), "path outside the archive"),
        ((("/home/jane/genome.txt", b"x"),), "path outside the archive"),
        ((("genome/", b""),), "a folder, not a file"),
        ((), "unzip it first"),  # an empty archive
    ],
    ids=["two-files", "dot-dot", "absolute", "folder", "empty"],
)
def test_a_zip_that_is_not_one_file_says_unzip_it_first(members, expected: str) -> None:
    message = refused(zipped(*members))
    assert expected in message
    assert "jane" not in message.lower()


def test_a_zip_within_a_zip_says_unzip_it_first() -> None:
    inner = zipped(("genome.txt", samples.twenty_three_and_me()))
    assert "unzip it first" in refused(zipped(("genome.zip", inner)))


def test_a_truncated_zip_is_truncated() -> None:
    data = zipped(("genome.txt", samples.twenty_three_and_me(2000)))
    assert "The ZIP file is truncated" in refused(data[: len(data) // 2])


def test_a_password_protected_zip_is_refused() -> None:
    data = bytearray(zipped(("genome.txt", samples.twenty_three_and_me())))
    data[6] |= 1  # general purpose flag bit 0: encrypted (ZIP APPNOTE §4.4.4)
    assert "password-protected: unzip it first" in refused(bytes(data))


def test_a_zip_bomb_stops_at_the_size_limit() -> None:
    data = zipped(("genome.txt", samples.twenty_three_and_me(2000)))
    with pytest.raises(formats.FormatError, match="larger than 10,000 bytes"):
        formats.inspect(iter([data]), max_unzipped_bytes=10_000)


# Issue 16, item 9: what a file is called, and FASTQ as htslib reads it.


def test_alignment_files_are_labelled_by_their_container(files) -> None:
    assert inspect(files["bam"]).format_version == "BAM (SAM v1.6)"
    assert (
        inspect(files["cram"]).format_version == "CRAM 3.1 (SAM v1.6)"
    )  # pysam 0.24 writes CRAM 3.1
    assert inspect(files["sam"]).format_version == "SAM v1.6"


def test_multi_line_fastq_as_in_htslibs_tests() -> None:
    # htslib's test/fastq/multiline.fq: wrapped sequence and quality, and quality lines that
    # start with '@' and '+' (which a four-line reader takes for a new record).
    data = (
        b"@seq1\nNAAAAAAAAA\nCCCCCCCCCC\nGGGGGGGGGG\nTTTTTTTTN\n+\n"
        b"++++++++++\n@@@@@@@@@@\n##########\n........>\n"
        b"@seq2\nRAAAAAAAAA\nCCCCCCCCCC\nGGGGGGGGGG\nTTTTTTTTY\n+seq2\n"
        b"<<<<<<<<<<\n!!!!!!!!!!\n##########\n@@@@@@@@@\n"
    )
    assert inspect(data).records == 2
    assert inspect(windows(data)).records == 2
    too_long = data[:-1] + b"@\n"
    assert refused(too_long).startswith(
        "Line 20: the quality string of the read starting on line 11"
    )


# More members of the multi-line kind (issue 16 §9), each read as htslib (pysam's kseq)
# reads it: (FASTQ bytes, reads htslib counts).
MULTI_LINE_FASTQ = {
    "plus line repeats the name": (b"@r1\nACGT\n+r1\nIIII\n", 1),
    "wrapped, quality lines start with @": (b"@r1\nAC\nGT\n+\n@I\nII\n@r2\nA\n+\n@\n", 2),
    "a quality line starts with +": (b"@r1\nACGT\nAC\n+\n+III\nII\n", 1),
    "quality wrapped unlike the sequence": (b"@r1\nACGTACGT\n+\nI\nIIIIIII\n", 1),
    "quality lines all +": (b"@r1\nACGT\n+\n+\n+++\n", 1),
    "an @ quality line right before the next read": (b"@r1\nAC\n+\nII\n@\nA\n+\nI\n", 2),
    "blank lines between reads": (b"@r1\nAC\nGT\n+\nIIII\n\n\n@r2\nAC\n+\nII\n", 2),
    "no final line end": (b"@r1\nAC\nGT\n+\nII\nII", 1),
    "windows line ends": (b"@r1\r\nAC\r\nGT\r\n+\r\nII\r\nII\r\n", 1),
}


@pytest.mark.parametrize("name", MULTI_LINE_FASTQ)
def test_multi_line_fastq_reads_as_htslib_reads_it(name: str, tmp_path: Path) -> None:
    import pysam

    data, reads = MULTI_LINE_FASTQ[name]
    path = tmp_path / "reads.fq"
    path.write_bytes(data)
    with pysam.FastxFile(str(path)) as htslib:
        assert sum(1 for _ in htslib) == reads  # the reference reader agrees with the table
    assert inspect(data, "reads.fq").records == reads
    assert inspect(samples.gz(data), "reads.fq.gz").records == reads


def test_a_wrapped_quality_longer_than_its_wrapped_sequence_is_refused() -> None:
    # The sequence ends at the '+' line; its quality must be exactly as long, across lines.
    assert refused(b"@r1\nAC\nGT\n+\nII\nIII\n").startswith(
        "Line 6: the quality string of the read starting on line 1 has 5 characters"
    )
    assert "equally long" in refused(b"@r1\nAC\nGT\n+\nII\n")


def test_a_lone_cr_is_refused_without_reading_on(files) -> None:
    """A file of CR-only line ends is one "line" to an LF reader: it must be refused at its
    first CR, not held in memory to the end."""
    data = files["vcf"].replace(b"\n", b"\r")

    def endless() -> Iterator[bytes]:
        for _ in range(1000):
            yield data
        raise AssertionError("read to the end of the file")

    with pytest.raises(formats.FormatError, match=r"^Line 1: a carriage return"):
        formats.inspect(endless())


# Found by the htslib-test comparison (issue 14, item 2; test_htslib_conformance.py).


def test_vcf_position_zero_is_a_telomere(files) -> None:
    lines = files["vcf"].split(b"\n")
    first = next(i for i, line in enumerate(lines) if line and not line.startswith(b"#"))
    fields = lines[first].split(b"\t")
    lines[first] = b"\t".join([fields[0], b"0", *fields[2:]])
    assert inspect(b"\n".join(lines)).records == 300  # VCF 4.4 §1.6.1, as htslib reads it


def test_vcf_duplicate_samples_and_format_keys_are_refused(files) -> None:
    header = next(line for line in files["vcf"].split(b"\n") if line.startswith(b"#CHROM"))
    twice = files["vcf"].replace(header, header.replace(b"DONOR_SECRET_B", b"DONOR_SECRET_A"))
    message = refused(twice)
    assert "column 11 repeats the sample name of column 10" in message
    assert "DONOR_SECRET" not in message  # sample ids are never echoed
    lines = files["vcf"].split(b"\n")
    lines[8] = lines[8].replace(b"\tGT\t", b"\tGT:GT\t")
    assert refused(b"\n".join(lines)).startswith("Line 9: the FORMAT key GT appears twice")


def test_a_sam_without_a_header_is_read() -> None:
    # SAM v1 §1.3: the header is optional (htslib's test/ce#unmap.sam); unmapped reads.
    body = b"".join(b"r%d\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\n" % i for i in range(7))
    result = inspect(body, "reads.sam")
    assert (result.format, result.records) == ("SAM", 7)
    broken = body.replace(b"r4\t4\t*\t0", b"r4\t4\t*\tX")
    assert refused(broken).startswith("Line 5 (record 5): htslib could not read it")


def test_htslib_errors_name_the_record(files) -> None:
    lines = files["sam"].split(b"\n")
    header = sum(line.startswith(b"@") for line in lines)
    fields = lines[header + 2].split(b"\t")
    lines[header + 2] = b"\t".join([*fields[:3], b"notanumber", *fields[4:]])
    message = refused(b"\n".join(lines))
    assert message.startswith(f"Line {header + 3} (record 3): htslib could not read it")


def test_text_named_like_a_vcf_is_refused_at_its_line() -> None:
    assert refused(b"chr1\t100\n", "calls.vcf").startswith("Line 1: a VCF must start with")


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_line_end_rules_hold_across_chunk_boundaries(size: int) -> None:
    from genomics.formats import text

    crlf = b"a\r\nbb\r\n\r\nccc\r\n"
    assert list(text.lines(chunks(crlf, size), kind="VCF")) == [b"a", b"bb", b"", b"ccc"]
    assert b"".join(text.line_ends_checked(chunks(crlf, size), kind="SAM")) == crlf
    mac = b"a\nbb\rcc\n"
    for check in (
        lambda data: list(text.lines(data, kind="FASTQ")),
        lambda data: list(text.line_ends_checked(data, kind="SAM")),
    ):
        with pytest.raises(formats.FormatError, match=r"^Line 2: a carriage return"):
            check(chunks(mac, size))
    assert list(text.lines(chunks(mac, size), kind="23andMe")) == [b"a", b"bb", b"cc"]
    # where a lone CR ends a line, a CR+LF split across chunks is still one line end
    assert list(text.lines(chunks(crlf, size), kind="23andMe")) == [b"a", b"bb", b"", b"ccc"]


@pytest.mark.parametrize("name", ["bam", "bcf"])
def test_a_stream_error_under_htslib_is_reported_as_itself(tmp_path, name: str) -> None:
    """A Crypt4GH segment that fails to decrypt halfway through a BAM is that error, not
    "htslib could not read" what the short input then looked like."""
    from genomics import c4gh

    if name == "bam":
        data = samples.write_alignments(tmp_path / "a.bam", "wb", reads=40000).read_bytes()
    else:
        data = samples.write_variants(tmp_path / "a.bcf", "wb", records=60000).read_bytes()
    half = data[: len(data) // 2]
    assert len(half) > 65536  # past what the sniffer reads: htslib is reading it

    def failing() -> Iterator[bytes]:
        yield from chunks(half, 65536)
        raise c4gh.SegmentError("segment 4 failed to decrypt")

    with pytest.raises(c4gh.SegmentError, match="segment 4"):
        formats.inspect(failing())


ZIP_BASE = zipped(("genome.txt", samples.twenty_three_and_me(200)))


@pytest.mark.fuzz
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.integers(0, len(ZIP_BASE) - 1), st.integers(0, 255)), max_size=6),
    st.integers(4, len(ZIP_BASE)),
    st.integers(1, 600),
)
def test_a_damaged_zip_is_refused_cleanly(
    flips: list[tuple[int, int]], keep: int, size: int
) -> None:
    """Byte changes and cuts anywhere in a 23andMe ZIP: accepted or a FormatError, never
    another exception (stream-unzip's own errors are all translated)."""
    data = bytearray(ZIP_BASE)
    for at, value in flips:
        data[at] = value
    data = data[:keep]
    data[:4] = b"PK\x03\x04"
    with contextlib.suppress(formats.FormatError):
        formats.inspect(iter(chunks(bytes(data), size)), max_unzipped_bytes=10**6)
