"""A real django-q2 cluster, on whichever broker the settings select (the
database on the default path, Redis on the scale path), runs the work the
web process queues: here an alert's signed webhook notification."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.conf import settings
from django.db import connection
from django_q.brokers import get_broker
from django_q.models import Task

from learning import alerts
from learning.models import Severity

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "cluster-test-secret"


@pytest.fixture
def webhook():
    """A local receiver that keeps each POST's body and signature header."""
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["X-QEFleet-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    with HTTPServer(("127.0.0.1", 0), Receiver) as server:  # closes its socket at the end
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        yield f"http://127.0.0.1:{server.server_port}/hook", received
        server.shutdown()
        serving.join()


def database_url():
    """The test database, as a URL the cluster process can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_cluster(webhook):
    processes = []

    def start():
        env = {**os.environ, "DATABASE_URL": database_url(), "ALERT_WEBHOOK_URL": webhook[0],
               "ALERT_WEBHOOK_SECRET": SECRET, "ALERT_EMAILS": "", "Q_WORKERS": "1"}
        process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        # The whole group (sentinel, pusher, workers, monitor): nothing is
        # left to finish once the test has seen its result.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_it_delivers_a_queued_alert_notification(settings, webhook, start_cluster):
    # Redis is not rolled back with the test database: other tests' queued
    # notifications would be delivered here too.
    get_broker().purge_queue()
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = webhook[0], SECRET
    alert, _ = alerts.raise_alert("safeguard:degraded", Severity.HIGH, "test-executor degraded", {"score": 0.4})
    start_cluster()
    url, received = webhook
    assert wait_for(lambda: received), "the cluster never called the webhook"
    body, signature = received[0]
    assert json.loads(body)["id"] == alert.pk
    assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    done = Task.objects.filter(func="learning.alerts.notify", success=True)
    assert wait_for(lambda: done.exists())
    assert [(task.args, task.result) for task in done] == [((alert.pk,), "sent")]
