"""A live QE Fleet for the client's tests, never a mock of its API.

The server runs from the server's own virtualenv (QEFLEET_SERVER_PYTHON,
default <repo>/.venv/bin/python) in a subprocess under gunicorn, on a free
port, with a temporary SQLite database; the tests' own environment has no
Django. `proxy` puts a TCP proxy the test controls between the client and
the server, to drop a connection or answer 429 on cue.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest_plugins = ["pytester"]

REPO = Path(os.environ.get("QEFLEET_SERVER_DIR") or Path(__file__).resolve().parents[3])
SERVER_PYTHON = os.environ.get("QEFLEET_SERVER_PYTHON") or str(REPO / ".venv" / "bin" / "python")
AGENTS = ("py-agent", "py-offline", "py-flaky", "py-async", "py-memory", "mcp-agent", "py-pytest")

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

    def setup(self) -> dict[str, str]:
        self.manage("migrate", "--noinput")
        printed = self.manage("shell", "--no-imports", "-c", REGISTER.format(agents=AGENTS))
        return dict(line.split() for line in printed.splitlines() if line.startswith(AGENTS))

    def start(self) -> None:
        gunicorn = ["-m", "gunicorn", "qefleet.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                    "--workers", "1", "--threads", "4", "--worker-class", "gthread"]  # fmt: skip
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([SERVER_PYTHON, *gunicorn], cwd=REPO, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("server"))
    live.tokens = live.setup()
    live.start()
    yield live
    live.stop()


@pytest.fixture
def running_server(server):
    """The server, started again after a test that stopped it."""
    yield server
    if server.process is None:
        server.start()


class Proxy:
    """A TCP proxy that reads each request whole and then, by its plan for
    that request path, forwards it, forwards it and drops the connection
    before the answer ("drop"), or answers 429 with Retry-After ("429")."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.plan: dict[str, list[str]] = {}
        self.seen: list[tuple[float, str, dict]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _read_request(client) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += client.recv(65536)
        return head + b"\r\n\r\n" + body

    def _handle(self, client):
        with client:
            request = self._read_request(client)
            if not request:
                return
            head = request.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
            self.seen.append((time.monotonic(), f"{method} {path}", headers))
            todo = next((steps for prefix, steps in self.plan.items() if path.endswith(prefix) and steps), None)
            action = todo.pop(0) if todo else "forward"
            if action == "429":
                body = b'{"error": "rate_limited", "message": "later"}'
                client.sendall(
                    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                return
            # One request per upstream connection: "Connection: close" makes the server end the answer with EOF.
            lines = [
                line
                for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")
                if not line.lower().startswith(b"connection:")
            ]
            body = request.split(b"\r\n\r\n", 1)[1]
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body)
                response = b""
                while chunk := upstream.recv(65536):
                    response += chunk
            if action == "drop":
                return  # the server has answered; the client never hears it
            client.sendall(response)


@pytest.fixture
def proxy(server):
    live = Proxy(server.port)
    yield live
    live.close()


@pytest.fixture
def make_client(server, tmp_path):
    """A client for one of the registered agents, with its own state directory."""
    from qefleet_client import Client

    made = []

    def make(agent, url=None, **options):
        client = Client(url or server.url, server.tokens[agent], agent, state_dir=tmp_path / "state", **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
