"""A small process supervisor for `make run`: start the processes of the system, prefix
their output, stop them all on Ctrl-C, and stop them all if one dies.

Each child gets its own session (process group) so a signal reaches its whole tree
(runserver, celery's pool processes) and nothing is left behind; the terminal's Ctrl-C
goes to this process only, which then stops the children in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# celery warm shutdown takes ~8 s on the filesystem broker (its 1 s polling), ~4 s on Redis.
STOP_GRACE_S = 15.0
_PALETTE = ("36", "33", "35", "32", "34", "31")


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes]
    colour: str
    threads: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(self, *, cwd: Path, env: dict[str, str], out: IO[str] = sys.stdout) -> None:
        self.cwd = cwd
        self.env = env
        self.out = out
        self.children: list[Child] = []
        self._lock = threading.Lock()
        self._colour = sys.stdout.isatty()

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        process = subprocess.Popen(  # noqa: S603 - argv is built by the run command
            list(argv),
            cwd=self.cwd,
            env=env or self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, argv, process, _PALETTE[len(self.children) % len(_PALETTE)])
        reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        reader.start()
        child.threads.append(reader)
        self.children.append(child)
        return child

    def say(self, line: str, name: str = "run", colour: str = "1") -> None:
        prefix = f"{name:>7} | "
        if self._colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            self.say(raw.decode(errors="replace"), child.name, child.colour)

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait(self) -> int:
        """Block until Ctrl-C/SIGTERM (exit 0) or until a child dies (exit 1)."""
        stop = threading.Event()

        def _on_signal(signum: int, _frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while not stop.wait(0.5):
            dead = self.first_exited()
            if dead is not None:
                self.say(f"{dead.name} exited with code {dead.process.returncode}; stopping all")
                return 1
        return 0

    def stop_all(self) -> None:
        """SIGTERM every child in reverse start order, then SIGKILL what is left of its group.

        Only the leader gets SIGTERM: celery's main process then shuts its pool down warmly
        (tasks finish or go back to the queue) instead of each pool process dying mid-task.
        """
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
            # The leader may have exited while its children (pool processes) linger.
            self._signal_group(child, signal.SIGKILL)
            child.process.wait()
        for child in self.children:
            for thread in child.threads:
                thread.join(timeout=1)

    @staticmethod
    def _signal_group(child: Child, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)
