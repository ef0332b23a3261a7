"""The load test's server keeps what the application logs: a 5xx under load
leaves its traceback in the run's log (var/load/gunicorn-<vendor>.log), not
only a count in the table."""

import http.client

from learning.harness.load import Gunicorn, server_env


def test_it_keeps_the_traceback_of_a_server_error_in_the_runs_log(tmp_path):
    # A database without tables: the token lookup of an agent request fails with a 500.
    server = Gunicorn(server_env(f"sqlite:///{tmp_path / 'load.sqlite3'}", 0), 1, "sync", 1,
                      tmp_path / "gunicorn.log")
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/api/v1/agents/alice/recommendations", "{}",
                           {"Authorization": "Bearer qe_not_a_token", "Content-Type": "application/json"})
        status = connection.getresponse().status
        connection.close()
    finally:
        server.stop()
    assert status == 500
    assert "no such table" in (tmp_path / "gunicorn.log").read_text()
