"""Start real service processes for tests on free loopback ports, and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def spawn(
    argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own group so `stop` reaches its whole tree."""
    handle = log.open("ab")
    return subprocess.Popen(
        list(argv),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def stop(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout_s: float = 10.0
) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def wait_until(predicate: object, *, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            log=self.tmp / "redis.log",
        )
        wait_until(lambda: port_open(self.port), timeout_s=10, what="redis-server")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


class AnvilNode:
    """A private anvil on a free port (binary pinned in package.json).

    With `state_path`, anvil saves its chain there when stopped (SIGTERM) and loads it
    when started again; `crash` (SIGKILL) saves nothing, so what the chain did since the
    last save is lost, as on a node that dies without flushing.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        block_time_s: float | None = None,
        port: int | None = None,
        state_path: Path | None = None,
    ) -> None:
        from ledger.localchain import anvil_argv

        self.port = port or free_port()
        self.tmp = tmp
        self.argv = anvil_argv(port=self.port, block_time_s=block_time_s, state_path=state_path)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from ledger.localchain import wait_for_rpc

        self.process = spawn(self.argv, log=self.tmp / f"anvil-{self.port}.log")
        wait_for_rpc(self.url, timeout_s=30)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def crash(self) -> None:
        if self.process is not None:
            stop(self.process, sig=signal.SIGKILL)
            self.process = None


def process_table() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process, read from /proc."""
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        rows.append((int(entry.name), parent, cmdline))
    return rows


def descendants(pid: int) -> list[tuple[int, int, str]]:
    """Every process below `pid`, with its parent and command line."""
    table = process_table()
    found, frontier = [], {pid}
    while frontier:
        level = [row for row in table if row[1] in frontier]
        found += level
        frontier = {row[0] for row in level}
    return found
