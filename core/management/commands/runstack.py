"""`make run`: the whole system on embedded defaults, stopped cleanly by Ctrl-C.

Migrates, creates the archive key and the visa signing key, the admin and demo data, starts
a local anvil (unless CHAIN_RPC_URL points elsewhere) and deploys the contracts to it, then a
Celery worker and beat, and the web server; prints the URLs.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.supervisor import Supervisor
from ledger import chain
from ledger.localchain import LOCAL_CHAIN_ID, anvil_accounts, anvil_argv, rpc_answers, wait_for_rpc
from marketplace.services.demo import DEMO_ACCOUNTS, DEMO_PASSWORD

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class Command(BaseCommand):
    help = "Run web, worker, beat and a local anvil chain with demo data (Ctrl-C stops all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def handle(self, *args: Any, **options: Any) -> None:
        port: int = options["port"]
        host: str = options["host"]
        call_command("migrate", interactive=False, verbosity=0)
        call_command("create_archive_key", if_missing=True)
        call_command("create_visa_key", if_missing=True)
        call_command("ensure_admin")
        call_command("seed_demo")

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        supervisor = Supervisor(cwd=settings.BASE_DIR, env=env)
        python = sys.executable
        exit_code = 1
        try:
            worker_env = dict(env)
            if self._start_chain(supervisor):
                call_command("deploy_contracts")
                # anvil's account 1 is the local operator; only the worker gets its key.
                worker_env["OPERATOR_PRIVATE_KEY"] = anvil_accounts()[1].key.hex()
                # The worker pins the market it just deployed (ledger/pinned.py).
                worker_env.setdefault("MARKET_ADDRESS", _deployed_market())
            supervisor.start(
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    os.environ.get("WORKER_CONCURRENCY", "2"),
                ],
                env=worker_env,
            )
            # htsget tickets are made where the archive key is (genomics/ticketer.py).
            supervisor.start(
                "ticketer",
                [python, "manage.py", "htsget_ticketer", "--skip-checks"],
                env=worker_env,
            )
            supervisor.start(
                "beat",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    settings.CELERY_BEAT_SCHEDULE_FILENAME,
                ],
            )
            supervisor.start(
                "web",
                [python, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"],
            )
            self._announce(supervisor, host, port)
            exit_code = supervisor.wait()
        finally:
            supervisor.say("stopping…")
            supervisor.stop_all()
            supervisor.say("all processes stopped")
        if exit_code:
            raise CommandError("a process of the system exited; see its output above")

    def _start_chain(self, supervisor: Supervisor) -> bool:
        """Start anvil unless CHAIN_RPC_URL points elsewhere; True for a local chain."""
        url = urllib.parse.urlparse(settings.CHAIN_RPC_URL)
        if url.hostname not in LOCAL_HOSTS:
            supervisor.say(f"using the chain at {settings.CHAIN_RPC_URL}")
            return False
        if rpc_answers(settings.CHAIN_RPC_URL):
            supervisor.say(f"a chain node already answers at {settings.CHAIN_RPC_URL}; using it")
        else:
            state = settings.VAR_DIR / "anvil-state.json"
            supervisor.start("anvil", anvil_argv(port=url.port or 8545, state_path=state))
            wait_for_rpc(settings.CHAIN_RPC_URL)
            supervisor.say(f"local anvil chain at {settings.CHAIN_RPC_URL} (state in {state})")
        return chain.chain_id() == LOCAL_CHAIN_ID

    def _announce(self, supervisor: Supervisor, host: str, port: int) -> None:
        # Print the admin password only while it is the published default: a chosen one is
        # a secret and stays out of logs.
        password = (
            f"password {settings.ADMIN_PASSWORD!r}"
            if settings.ADMIN_PASSWORD == settings.ADMIN_PASSWORD_DEFAULT
            else "password from ADMIN_PASSWORD"
        )
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        lines = [
            "",
            f"GeneMarket is starting at {base}/",
            f"  web UI      {base}/",
            f"  API docs    {base}/api/docs/",
            f"  health      {base}/health",
            f"  chain       {base}/api/v1/chain  (anvil at {settings.CHAIN_RPC_URL})",
            f"  admin       {base}/admin/  (user {settings.ADMIN_USER!r}, {password})",
            "  demo users  "
            + ", ".join(name for name, _, _ in DEMO_ACCOUNTS)
            + f" (password {DEMO_PASSWORD!r})",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        for line in lines:
            supervisor.say(line)


def _deployed_market() -> str:
    from ledger.selectors.deployments import MARKET, deployment_get

    return deployment_get(name=MARKET).address
