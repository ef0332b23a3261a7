"""pytest-qefleet on real pytest runs (pytester, in subprocesses) against
the live server: the strategy is applied for real, the outcome is reported,
and an unreachable server costs the run nothing."""

import re
import sqlite3

import pytest
from qefleet_client import Settings, default_recommendation
from qefleet_client.local import LastStrategies
from qefleet_client.pytest_plugin import knobs

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def fleet_env(monkeypatch, tmp_path, server):
    def use(url, agent="py-pytest"):
        monkeypatch.setenv("QEFLEET_URL", url)
        monkeypatch.setenv("QEFLEET_TOKEN", server.tokens[agent])
        monkeypatch.setenv("QEFLEET_AGENT", agent)
        monkeypatch.setenv("QEFLEET_STATE_DIR", str(tmp_path / "state"))
        # A bound for the unreachable server; patience for the live one on a loaded machine.
        monkeypatch.setenv("QEFLEET_FALLBACK_AFTER", "0.5" if url == UNREACHABLE else "120")
        monkeypatch.setenv("QEFLEET_REPORT_BUDGET", "0.5" if url == UNREACHABLE else "120")
        monkeypatch.setenv("QEFLEET_TIMEOUT", "60")

    return use


def last_known(tmp_path, strategy, parallelization, retry_policy, task_type="test-suite"):
    """What an earlier run learned from the server, as the fallback will find it."""
    settings = Settings(url=UNREACHABLE, state_dir=tmp_path / "state")
    known = default_recommendation(strategy, parallelization, retry_policy)
    LastStrategies(settings.agent_dir("py-pytest")).remember(task_type, known)


def test_a_run_is_recommended_applied_and_reported_with_its_errors_by_class(pytester, fleet_env, server):
    fleet_env(server.url)
    pytester.makepyfile(
        "def test_passes():\n    assert True\n\n"
        "def test_fails():\n    raise ValueError('boom')\n\n"
        "def test_times_out():\n    raise TimeoutError('slow')\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert re.search(r"qefleet: strategy [a-z-]+ \(server\); ran with \d+ xdist workers, \d+ reruns", output)
    execution_id = int(re.search(r"qefleet: reported failure in \d+ ms: execution (\d+)", output).group(1))
    with sqlite3.connect(server.database) as db:
        row = db.execute("SELECT success, error_count, failure_classes, task_type, decision_id FROM learning_execution"
                         " WHERE id = ?", (execution_id,)).fetchone()  # fmt: skip
    success, error_count, classes, task_type, decision = row
    assert (success, error_count, task_type) == (0, 2, "test-suite") and decision is not None
    assert "timeout" in classes.split(",")  # the server's class for a TimeoutError


def test_parallel_execution_runs_on_xdist_workers_and_queues_the_report_when_unreachable(pytester, fleet_env, tmp_path):
    fleet_env(UNREACHABLE)
    last_known(tmp_path, "parallel-execution", 1.0, "exponential")
    pytester.makepyfile("import os\n\ndef test_on_a_worker():\n    assert os.environ.get('PYTEST_XDIST_WORKER')\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*qefleet: strategy parallel-execution (last-known); ran with * xdist workers*",
                                 "*qefleet: reported success in * ms: queued (QE Fleet unreachable)*"])  # fmt: skip
    queue = Settings(url=UNREACHABLE, state_dir=tmp_path / "state").agent_dir("py-pytest") / "queue"
    assert len(list(queue.glob("*.json"))) == 1


def test_adaptive_retry_reruns_a_failure(pytester, fleet_env, tmp_path):
    fleet_env(UNREACHABLE)
    last_known(tmp_path, "adaptive-retry", 0.0, "adaptive")
    pytester.makepyfile(
        "from pathlib import Path\n\n"
        "def test_flaky(tmp_path_factory):\n"
        "    mark = Path(__file__).with_name('tried')\n"
        "    if not mark.exists():\n"
        "        mark.write_text('once')\n"
        "        raise ConnectionError('first try')\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*ran with 0 xdist workers, 2 reruns*", "*1 passed, 1 rerun*"])


def test_sequential_execution_and_the_default_run_in_one_process(pytester, fleet_env):
    fleet_env(UNREACHABLE)
    pytester.makepyfile("import os\n\ndef test_here():\n    assert not os.environ.get('PYTEST_XDIST_WORKER')\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*strategy sequential-execution (default); ran with 0 xdist workers, 0 reruns*"])


def test_the_plugin_never_fails_a_run(pytester, monkeypatch):
    monkeypatch.setenv("QEFLEET_URL", "not a url at all")
    monkeypatch.delenv("QEFLEET_AGENT", raising=False)
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*qefleet: not started, the run goes on without it*"])


def test_without_qefleet_url_the_plugin_stays_out(pytester, monkeypatch):
    monkeypatch.delenv("QEFLEET_URL", raising=False)
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK and "qefleet:" not in result.stdout.str()


def test_without_qefleet_url_the_client_is_not_even_imported(pytester, monkeypatch):
    """pytest imports the plugin in every run of its environment: idle, it must cost nothing."""
    monkeypatch.delenv("QEFLEET_URL", raising=False)
    pytester.makepyfile(
        "import sys\n\n"
        "def test_idle():\n"
        "    assert not {'qefleet_client.client', 'qefleet_client.aio', 'httpx'} & set(sys.modules)\n"
    )
    assert pytester.runpytest_subprocess("-p", "no:randomly").ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    "parallelization, retry_policy, available_cpus, expected",
    [
        (1.0, "exponential", 2, (2, 0)),  # parallel-execution: one worker per CPU
        (0.5, "adaptive", 2, (0, 2)),  # adaptive-retry: half of 2 CPUs is one worker, so in-process
        (0.3, "fixed", 2, (0, 0)),  # resource-optimization: one worker, in-process
        (0.3, "fixed", 8, (2, 0)),
        (0.0, "fixed", 8, (0, 0)),  # sequential-execution
    ],
)
def test_one_worker_runs_in_the_pytest_process(parallelization, retry_policy, available_cpus, expected):
    assert knobs(parallelization, retry_policy, available_cpus) == expected
