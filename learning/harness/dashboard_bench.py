"""The dashboard's benchmark: page server time, queries and chart sizes on a
long history (learning.harness.history: 90 days, 1,000,000 events, 200,000
performance samples for 17 agents), and the admin lists of the big tables.

Pages are requested in-process with Django's test client, so the time is
the server's (middleware, view, queries, template), not the network's.
"""

import re
import time

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from learning.models import ABTest, Alert, Decision, Execution, Snapshot
from qefleet.memory.models import Event, PerformanceMetric

from . import history
from .bench import percentiles

FIGURE = re.compile(r'<script type="application/json" id="[^"]+">(.*?)</script>', re.S)
ADMIN_TABLES = {"events": Event, "performance_metrics": PerformanceMetric, "executions": Execution,
                "decisions": Decision, "snapshots": Snapshot, "alerts": Alert}


def pages():
    """(name, path) of every dashboard page, the busiest instances picked."""
    test = ABTest.objects.order_by("-pk").first()
    return [
        ("fleet", reverse("dash-fleet")),
        ("agent", reverse("dash-agent", args=["test-generator"])),
        ("agent, 90 days", reverse("dash-agent", args=["test-generator"]) + "?range=90d"),
        ("alerts", reverse("dash-alerts")),
        ("A/B tests", reverse("dash-abtests")),
        ("A/B test", reverse("dash-abtest", args=[test.pk])),
        ("patterns", reverse("dash-patterns")),
        ("report, fleet", reverse("dash-report")),
        ("report, agent", reverse("dash-agent-report", args=["test-generator"])),
        ("overhead", reverse("dash-overhead")),
        ("timeline", reverse("dash-timeline")),
        ("timeline, 30 days", reverse("dash-timeline") + "?days=30"),
        ("compare", reverse("dash-compare") + "?agent=test-generator&agent=quality-gate&agent=test-executor"),
    ]


def measure(client, path, samples):
    """(durations ms, queries of the last request, bytes of all its chart JSON)."""
    durations, queries, charts = [], 0, 0
    for _ in range(samples):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(path)
            durations.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        queries = len(captured.captured_queries)
        charts = sum(len(body.encode()) for body in FIGURE.findall(response.content.decode()))
    return durations, queries, charts


def run(samples, say, days=90, events=1_000_000, metrics=200_000):
    started = time.perf_counter()
    counts = history.generate(days, events, metrics, seed=1, replace=False, say=say)
    say(f"History generated in {time.perf_counter() - started:.0f} s.")
    user = User.objects.create_superuser("bench-admin", password="unused-bench-password")
    client = Client()
    client.force_login(user)
    figures = {"history": {name: value for name, value in counts.items() if name != "seconds"}, "pages": {},
               "admin": {}}
    for name, path in pages():
        client.get(path)  # warm the template and query caches once
        durations, queries, charts = measure(client, path, samples)
        figures["pages"][name] = {"path": path, "ms": percentiles(durations), "queries": queries,
                                  "chart_json_bytes": charts}
    for name, model in ADMIN_TABLES.items():
        path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        client.get(path)
        durations, queries, _ = measure(client, path, max(3, samples // 4))
        figures["admin"][name] = {"path": path, "ms": percentiles(durations), "queries": queries,
                                  "rows": model._default_manager.count()}
    return figures


def table(figures):
    rows = [(f"page: {name} (p95)", f"{page['ms']['p95']:.0f} ms", "<= 300 ms") for name, page in
            figures["pages"].items()]
    rows += [(f"page: {name} queries", f"{page['queries']}", "<= 25") for name, page in figures["pages"].items()]
    rows += [(f"page: {name} chart JSON", f"{page['chart_json_bytes'] / 1024:.0f} KB", "<= 300 KB")
             for name, page in figures["pages"].items() if page["chart_json_bytes"]]
    rows += [(f"admin list: {name}, {entry['rows']:,} rows (p50)", f"{entry['ms']['p50']:.0f} ms", "<= 1000 ms")
             for name, entry in figures["admin"].items()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'figure'.ljust(width)}  {'measured':>12}  target", "-" * (width + 30)]
    lines += [f"{name.ljust(width)}  {value:>12}  {target}" for name, value, target in rows]
    return "\n".join(lines)
