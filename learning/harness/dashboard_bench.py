"""The dashboard's benchmark: page server time, queries and chart sizes on a
long history (learning.harness.history: 90 days, 1,000,000 events, 200,000
performance samples for 17 agents), and the admin lists of the big tables.

Pages are requested in-process with Django's test client, so the time is
the server's (middleware, view, queries, template), not the network's. On a
shared machine the wall time follows the others' load, so each page's CPU
time (this process's, SQLite's included) is recorded beside it, with the
load average and the CPU reference before and after.
"""

import os
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
from .bench import cpu_reference_ms, percentiles

FIGURE = re.compile(r'<script type="application/json" id="[^"]+">(.*?)</script>', re.S)
ADMIN_TABLES = {"events": Event, "performance_metrics": PerformanceMetric, "executions": Execution,
                "decisions": Decision, "snapshots": Snapshot, "alerts": Alert}


def pages():
    """(name, path) of every dashboard page, the busiest instances picked."""
    test = ABTest.objects.order_by("-pk").first()
    return [
        ("fleet", reverse("dash-fleet")),
        ("fleet, 90 days", reverse("dash-fleet") + "?range=90d"),
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
    """(durations ms, CPU ms, queries of the last request, bytes of all its chart JSON)."""
    durations, cpu, queries, charts = [], [], 0, 0
    for _ in range(samples):
        with CaptureQueriesContext(connection) as captured:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            durations.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        queries = len(captured.captured_queries)
        charts = sum(len(body.encode()) for body in FIGURE.findall(response.content.decode()))
    return durations, cpu, queries, charts


def run(samples, say, days=90, events=1_000_000, metrics=200_000):
    started = time.perf_counter()
    counts = history.generate(days, events, metrics, seed=1, replace=False, say=say)
    say(f"History generated in {time.perf_counter() - started:.0f} s.")
    user = User.objects.create_superuser("bench-admin", password="unused-bench-password")
    client = Client()
    client.force_login(user)
    figures = {"history": {name: value for name, value in counts.items() if name != "seconds"}, "pages": {},
               "admin": {}, "cpu_reference_ms": {"before": cpu_reference_ms()},
               "load_average": {"before": os.getloadavg()}}
    for name, path in pages():
        client.get(path)  # warm the template and query caches once
        durations, cpu, queries, charts = measure(client, path, samples)
        figures["pages"][name] = {"path": path, "ms": percentiles(durations), "cpu_ms": percentiles(cpu),
                                  "queries": queries, "chart_json_bytes": charts}
    for name, model in ADMIN_TABLES.items():
        path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        client.get(path)
        durations, _, queries, _ = measure(client, path, max(3, samples // 4))
        figures["admin"][name] = {"path": path, "ms": percentiles(durations), "queries": queries,
                                  "rows": model._default_manager.count()}
    figures["cpu_reference_ms"]["after"] = cpu_reference_ms()
    figures["load_average"]["after"] = os.getloadavg()
    return figures


def table(figures):
    cpu, load = figures["cpu_reference_ms"], figures["load_average"]
    rows = [("CPU reference, before / after (lower is faster)", f"{cpu['before']:.0f} / {cpu['after']:.0f} ms",
             "this machine's speed at the time"),
            ("load average (1 min), before / after", f"{load['before'][0]:.1f} / {load['after'][0]:.1f}",
             f"on {os.cpu_count()} cores")]
    rows += [(f"page: {name} (p95)", f"{page['ms']['p95']:.0f} ms", "<= 300 ms") for name, page in
             figures["pages"].items()]
    rows += [(f"page: {name} CPU (p50 / p95)", f"{page['cpu_ms']['p50']:.0f} / {page['cpu_ms']['p95']:.0f} ms",
              "the server's own work") for name, page in figures["pages"].items()]
    rows += [(f"page: {name} queries", f"{page['queries']}", "<= 25") for name, page in figures["pages"].items()]
    rows += [(f"page: {name} chart JSON", f"{page['chart_json_bytes'] / 1024:.0f} KB", "<= 300 KB")
             for name, page in figures["pages"].items() if page["chart_json_bytes"]]
    rows += [(f"admin list: {name}, {entry['rows']:,} rows (p50)", f"{entry['ms']['p50']:.0f} ms", "<= 1000 ms")
             for name, entry in figures["admin"].items()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'figure'.ljust(width)}  {'measured':>12}  target", "-" * (width + 30)]
    lines += [f"{name.ljust(width)}  {value:>12}  {target}" for name, value, target in rows]
    return "\n".join(lines)
