"""pytest-qefleet: a test run as a QE Fleet task.

Acts only when QEFLEET_URL is set (and not in an xdist worker). Before
collection it asks QE Fleet which strategy to run the session with and
applies it; after the run it reports the real outcome. A run never fails
because of it: every error of its own becomes a warning line.

From the strategy's catalog parameters to the run's knobs:
  parallelization p  -> pytest-xdist workers: round(p * CPUs), at least 1
                        and at most CPUs (parallel-execution, p=1: one per
                        CPU; adaptive-retry, p=0.5: half; resource-
                        optimization, p=0.3: one on <= 4 CPUs); p == 0 or
                        one worker runs in the pytest process itself (one
                        xdist worker does the same work after starting a
                        second Python and collecting again: 1-2 s more)
  retry_policy        -> pytest-rerunfailures: "adaptive" reruns a failed test
                        up to RERUNS times; the other policies rerun nothing
                        (a rerun hides a flaky test: only the strategy that
                        says so may pay that price)
Without pytest-xdist (or pytest-rerunfailures) installed, or with -n / --reruns
given on the command line, the run keeps its own setting and the report
says what actually ran.

Cheap when idle: pytest imports this module in every run of the environment
it is installed in, so the client (httpx) is imported only once the plugin
acts, and the package itself imports nothing eagerly.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter

import pytest

RERUNS = 2
TASK_TYPE = "test-suite"
# Seconds a finished run may wait for its report to be delivered; past it the report is queued on disk.
REPORT_BUDGET = "2"


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def free_share() -> float:
    """The share of the machine free for the run: of CPU (1-minute load) and of memory, the scarcer."""
    cpu = 1 - min(1.0, os.getloadavg()[0] / cpus()) if hasattr(os, "getloadavg") else 1.0
    try:
        with open("/proc/meminfo") as lines:
            meminfo = dict(line.split(":", 1) for line in lines)
        memory = int(meminfo["MemAvailable"].split()[0]) / int(meminfo["MemTotal"].split()[0])
    except (OSError, KeyError, ValueError):
        memory = 1.0
    return round(max(0.0, min(cpu, memory)), 3)


def knobs(parallelization: float, retry_policy: str, available_cpus: int) -> tuple[int, int]:
    """(xdist workers, reruns) for a strategy's parameters."""
    workers = 0 if parallelization <= 0 else min(available_cpus, max(1, round(parallelization * available_cpus)))
    return workers if workers > 1 else 0, RERUNS if retry_policy == "adaptive" else 0


def pytest_addoption(parser):
    group = parser.getgroup("qefleet", "QE Fleet (acts when QEFLEET_URL is set)")
    group.addoption("--qefleet-task-type", default=os.environ.get("QEFLEET_TASK_TYPE", TASK_TYPE),
                    help=f"The task type this suite's runs learn under (default {TASK_TYPE}).")  # fmt: skip
    group.addoption("--no-qefleet", action="store_true", help="Run without asking QE Fleet.")


def pytest_configure(config):
    if not os.environ.get("QEFLEET_URL") or config.getoption("no_qefleet") or hasattr(config, "workerinput"):
        return
    if config.getoption("collectonly", False):
        return
    run = FleetRun(config)
    try:
        run.start()
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the plugin must never cost the run
        print(f"qefleet: not started, the run goes on without it: {type(error).__name__}: {error}")
        return
    config.pluginmanager.register(run, "qefleet-run")


ERROR_PROPERTY = "qefleet_error_type"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The failing exception's class, kept on the report where the test ran:
    user_properties travel from an xdist worker to the controller."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and os.environ.get("QEFLEET_URL"):
        report.user_properties.append((ERROR_PROPERTY, call.excinfo.typename[:100]))


class XdistCollection:
    """Registered only with pytest-xdist, whose hook this is."""

    def __init__(self, run):
        self.run = run

    def pytest_xdist_node_collection_finished(self, node, ids):
        self.run.collected = max(self.run.collected, len(ids))


class FleetRun:
    def __init__(self, config):
        self.config = config
        self.started = time.monotonic()
        self.collected = 0
        self.failures: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.lines: list[str] = []
        self.wall_ms = None
        self.exitstatus = None

    def warn(self, message: str) -> None:
        self.lines.append(f"qefleet: {message}")

    def _cache(self):
        cache = getattr(self.config, "cache", None)
        return cache.get("qefleet/run", {}) if cache else {}, cache

    def start(self) -> None:
        from .client import Client  # here, not at the top: see the module's docstring
        from .models import Task

        history, cache = self._cache()
        lastfailed = cache.get("cache/lastfailed", {}) if cache else {}
        tests = history.get("collected", 0)
        self.task = Task(
            type=self.config.getoption("qefleet_task_type"),
            complexity=round(min(1.0, math.log10(tests + 1) / 4), 3),  # 10 000 tests: 1.0
            available_resources=free_share(),
            previous_attempts=history.get("failing_streak", 0),
            required_capabilities=["pytest"],
            context={"suite": self.config.rootpath.name, "tests_last_run": tests, "previous_failures": len(lastfailed),
                     "cpus": cpus(), "attempt": history.get("runs", 0) + 1},
        )  # fmt: skip
        # Short budgets: a test run waits at most a few seconds for QE Fleet.
        self.client = Client(report_budget=float(os.environ.get("QEFLEET_REPORT_BUDGET", REPORT_BUDGET)))
        self.recommendation = self.client.recommend(self.task)
        self._apply(self.recommendation)
        if self.config.pluginmanager.hasplugin("xdist"):
            self.config.pluginmanager.register(XdistCollection(self), "qefleet-xdist")
        rec = self.recommendation
        self.lines.append(f"qefleet: strategy {rec.strategy} ({rec.source}); ran with {self.workers} xdist workers, "
                          f"{self.reruns} reruns{'; explored (picked at random)' if rec.explored else ''}")  # fmt: skip

    def _apply(self, rec) -> None:
        option, plugins = self.config.option, self.config.pluginmanager
        wanted = knobs(rec.parallelization, rec.retry_policy, cpus())
        workers, reruns = wanted
        if not plugins.hasplugin("xdist"):
            workers = 0
        elif getattr(option, "numprocesses", None) is not None:  # -n on the command line wins
            workers = option.numprocesses
        elif workers:
            option.numprocesses, option.dist, option.tx = workers, "load", ["popen"] * workers
        if not plugins.hasplugin("rerunfailures"):
            reruns = 0
        elif getattr(option, "reruns", None):  # --reruns on the command line wins
            reruns = option.reruns
        else:
            option.reruns = reruns
        self.workers, self.reruns = workers, reruns
        # Only a run that followed the strategy teaches QE Fleet about it.
        self.followed = (workers, reruns) == wanted
        if not self.followed:
            self.warn(f"this run's own settings replaced {rec.strategy} {wanted}: it will not be reported")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self.collected = max(self.collected, len(session.items))

    def pytest_runtest_logreport(self, report):
        if report.failed:
            kind = dict(report.user_properties).get(ERROR_PROPERTY, "Failed")
            crash = getattr(report.longrepr, "reprcrash", None)
            self.failures[kind] += 1
            self.examples.setdefault(kind, f"{report.nodeid}: {crash.message if crash else ''}"[:500])

    def pytest_sessionfinish(self, session, exitstatus):
        self.wall_ms = round((time.monotonic() - self.started) * 1000)
        self.exitstatus = int(exitstatus)

    def pytest_terminal_summary(self, terminalreporter):
        for line in self.lines:
            terminalreporter.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        # After the terminal summary, where pytest-cov has computed its total.
        try:
            self._report()
        except Exception as error:  # noqa: BLE001 - as in pytest_configure: never cost the run
            print(f"qefleet: report failed: {type(error).__name__}: {error}")
        finally:
            self.client.close()

    def _report(self) -> None:
        from .models import ErrorInfo, Result

        if self.exitstatus is None or not self.followed:
            return
        success = self.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        errors = [ErrorInfo(kind, f"{count} failed, e.g. {self.examples[kind]}")
                  for kind, count in self.failures.most_common(100)]  # fmt: skip
        if not success and not errors:
            errors = [ErrorInfo(pytest.ExitCode(self.exitstatus).name, "the run did not complete")]
        cov = self.config.pluginmanager.getplugin("_cov")
        total = getattr(cov, "cov_total", None)
        result = Result(success=success, execution_time_ms=min(self.wall_ms, 86_400_000), errors=errors,
                        coverage=round(total / 100, 4) if total is not None else None)  # fmt: skip
        delivery = self.client.report(self.task, result, recommendation=self.recommendation)
        history, cache = self._cache()
        if cache is not None:
            cache.set(
                "qefleet/run",
                {
                    "collected": self.collected,
                    "runs": history.get("runs", 0) + 1,
                    "failing_streak": 0 if success else history.get("failing_streak", 0) + 1,
                },
            )
        outcome = "queued (QE Fleet unreachable)" if delivery.queued else f"execution {delivery.execution.execution_id}"
        print(f"qefleet: reported {'success' if success else 'failure'} in {self.wall_ms} ms: {outcome}")
