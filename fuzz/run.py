"""Coverage-guided fuzzing with atheris for `make fuzz` (not in CI).

    .venv/bin/python fuzz/run.py formats  -max_total_time=300
    .venv/bin/python fuzz/run.py crypt4gh -max_total_time=300
    .venv/bin/python fuzz/run.py keyfile  -max_total_time=300 -dict=fuzz/keyfile.dict

Any exception other than the target's own refusal, or a hang (libFuzzer's -timeout),
stops the run with the input that caused it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import atheris

with atheris.instrument_imports():
    from fuzz.targets import TARGETS


def main() -> None:
    name = sys.argv.pop(1)
    target = TARGETS[name]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
