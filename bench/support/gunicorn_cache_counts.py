"""gunicorn configuration for bench/load.py: each worker, as it exits, writes the catalogue
result cache's hit and miss counts (`marketplace.web.results_cache.COUNTS`) to
`$VAR_DIR/cache-counts-<pid>.json`, where the benchmark adds them up."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def worker_exit(server: Any, worker: Any) -> None:
    from marketplace.web.results_cache import COUNTS

    path = Path(os.environ["VAR_DIR"]) / f"cache-counts-{os.getpid()}.json"
    path.write_text(json.dumps(COUNTS.snapshot()))
