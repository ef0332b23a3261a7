"""A live QE Fleet for the client's tests, never a mock of its API.

The server runs from the server's own virtualenv (QEFLEET_SERVER_PYTHON,
default <repo>/.venv/bin/python) in a subprocess under gunicorn, on a free
port, with a temporary SQLite database; the tests' own environment has no
Django. `proxy` puts a TCP proxy the test controls between the client and
the server, to drop a connection or answer 429 on cue.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from live_server import LiveServer

pytest_plugins = ["pytester"]
AGENTS = ("py-agent", "py-offline", "py-flaky", "py-async", "py-memory", "mcp-agent", "py-pytest", "py-abtest",
          "py-shadow")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("server"))
    live.tokens = live.setup(AGENTS)
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
        # Budgets a loaded CI machine cannot exhaust, unless the test sets its own bound.
        patient = {"timeout": 60.0, "fallback_after": 120.0, "report_budget": 120.0, "call_budget": 120.0}
        client = Client(url or server.url, server.tokens[agent], agent, state_dir=tmp_path / "state",
                        **{**patient, **options})  # fmt: skip
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
