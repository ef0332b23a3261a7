"""A live QE Fleet in a subprocess: gunicorn from the server's own virtualenv
(QEFLEET_SERVER_PYTHON, default <repo>/.venv/bin/python) on a free port, with
a temporary SQLite database. The client tests and `make agent-demo` use it."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(os.environ.get("QEFLEET_SERVER_DIR") or Path(__file__).resolve().parents[3])
SERVER_PYTHON = os.environ.get("QEFLEET_SERVER_PYTHON") or str(REPO / ".venv" / "bin" / "python")

REGISTER = """
from qefleet.memory.fleet import register_agent, issue_token
for agent_id in {agents!r}:
    agent, _ = register_agent(agent_id, "test-executor", team="clients", swarm="clients")
    print(agent_id, issue_token(agent, label="client tests")[1])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, directory: Path):
        self.database = directory / "qefleet.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.log = directory / "server.log"
        # Explicit, so the CI's PostgreSQL and Redis settings never reach this server.
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "SECRET_KEY": "client-tests-only",
            "DEBUG": "0",
            "HTTPS": "0",
            "QUEUE_BROKER": "orm",
            "RATE_LIMIT_BACKEND": "database",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
        }

    def manage(self, *args) -> str:
        return subprocess.run(
            [SERVER_PYTHON, "manage.py", *args], cwd=REPO, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def setup(self, agents: tuple[str, ...]) -> dict[str, str]:
        """Migrate and register `agents`; their tokens."""
        self.manage("migrate", "--noinput")
        printed = self.manage("shell", "--no-imports", "-c", REGISTER.format(agents=agents))
        return dict(line.split() for line in printed.splitlines() if line.startswith(agents))

    def start(self) -> None:
        gunicorn = ["-m", "gunicorn", "qefleet.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                    "--workers", "1", "--threads", "4", "--worker-class", "gthread"]  # fmt: skip
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([SERVER_PYTHON, *gunicorn], cwd=REPO, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 120  # a loaded CI machine starts Django slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"The server did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def executions(self, idempotency_key: str) -> list[tuple]:
        """The server's own rows for one report, read from its database."""
        with sqlite3.connect(self.database) as db:
            return db.execute(
                "SELECT id, success FROM learning_execution WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchall()

    def count(self, table: str, **where) -> int:
        clause = " AND ".join(f"{column} = ?" for column in where) or "1"
        with sqlite3.connect(self.database) as db:
            return db.execute(f"SELECT count(*) FROM {table} WHERE {clause}", tuple(where.values())).fetchone()[0]
