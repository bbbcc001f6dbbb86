"""Grant latency: re-encrypting a header for a new recipient, for a 1 MiB and a 4 GiB file.

    .venv/bin/python bench/grant_latency.py [--large-mib 4096] [--grants 200]

A grant touches only the header, so its time must not grow with the file
(target: ratio <= 1.5, median under 5 ms). Both files are really stored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.common import MIB, django_scratch, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-mib", type=int, default=4096)
    parser.add_argument("--grants", type=int, default=200)
    args = parser.parse_args()
    django_scratch()
    from bench.support.vault import stored_file
    from genomics import c4gh
    from genomics.services.grants import grant_create

    results = {}
    for label, size in (("1 MiB", MIB), (f"{args.large_mib} MiB", args.large_mib * MIB)):
        stored = stored_file(size, filename=f"{label}.vcf")
        grant_create(file=stored, recipient_public_key=c4gh.generate_keypair()[1])  # warm-up
        samples = []
        for _ in range(args.grants):
            recipient = c4gh.generate_keypair()[1]
            started = time.perf_counter()
            grant_create(file=stored, recipient_public_key=recipient)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        results[label] = (
            statistics.median(samples),
            samples[int(len(samples) * 0.95) - 1],
            stored.payload_size,
        )
    small, large = results.values()
    rows = [
        [label, f"{payload / MIB:,.0f} MiB", f"{median:.2f} ms", f"{p95:.2f} ms"]
        for label, (median, p95, payload) in results.items()
    ]
    rows.append(["ratio large / small", "", f"{large[0] / small[0]:.2f}", ""])
    table(
        f"Grant latency, {args.grants} grants each (targets: ratio <= 1.5, median < 5 ms)",
        ["file", "payload", "median", "p95"],
        rows,
    )


if __name__ == "__main__":
    main()
