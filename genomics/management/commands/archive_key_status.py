"""Show the archive keys and the progress of a rotation (`create_archive_key --replace`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from genomics.selectors.archive_keys import archive_key_list, archive_key_rotation_progress


class Command(BaseCommand):
    help = "List the archive keys with their periods, and a rotation's progress."

    def handle(self, *args: Any, **options: Any) -> None:
        for key in archive_key_list():
            period = f"from {key.created_at:%Y-%m-%d %H:%M}"
            if key.replaced_at:
                period += f" to {key.replaced_at:%Y-%m-%d %H:%M}"
            self.stdout.write(f"{key.state:9} {bytes(key.public_key).hex()[:16]}  {period}")
        progress = archive_key_rotation_progress()
        if progress.done:
            self.stdout.write("No rotation in progress.")
            return
        total = progress.moved + progress.remaining
        self.stdout.write(
            f"Rotation: {progress.moved} of {total} files moved to the active key"
            + (
                f"; {progress.receiving} still uploading (moved once complete)"
                if progress.receiving
                else ""
            )
            + ". The worker goes on by itself (genomics.tasks.rotate_archive_key)."
        )
