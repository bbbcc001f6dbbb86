"""What the vault tells other apps (genomics never imports them: DESIGN "Layout").

Receivers of `file_recompressed` run inside the transaction that switches the file to its
BGZF payload, so what they record (the audit entry, the listings' new records) commits
with the switch or not at all; a receiver that raises undoes the switch, and the
recompression is recorded as failed with the file unchanged.
"""

from django.dispatch import Signal

# sender=Recompression class, recompression=Recompression (done), file=GenomicFile (switched).
file_recompressed = Signal()
# sender=Recompression class, recompression=Recompression (failed, `error` set), file=GenomicFile.
file_recompress_failed = Signal()
