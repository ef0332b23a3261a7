"""make agent-demo: pytest-qefleet on test suites no one here wrote.

Downloads pinned source distributions from PyPI, starts a local QE Fleet
(see tests/live_server.py), then for each suite: RUNS runs through
pytest-qefleet (one task type per suite, so a strategy is learned per
suite), and among them BASELINE runs each of always-sequential and
always-parallel (one xdist worker per CPU) without the plugin. Prints the strategy learned
per suite and the wall time of the agent's runs against the two fixed
strategies. Wall time is measured around the whole pytest process, so
xdist's start-up is counted where it is paid. The server's database stays
in DEMO_DIR; the last lines say how to open the dashboard on it.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from live_server import LiveServer
from qefleet_client.pytest_plugin import cpus

# Pinned sdists whose archives carry their tests, of different sizes.
SUITES = {"six": "six==1.17.0", "toolz": "toolz==1.0.0", "more-itertools": "more-itertools==10.5.0"}
RUNS = int(os.environ.get("DEMO_RUNS", "8"))
BASELINE = int(os.environ.get("DEMO_BASELINE", "2"))
AGENT = "demo-test-executor"


def fetch(work: Path) -> dict[str, Path]:
    downloads = work / "sdists"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d",
                    str(downloads), *SUITES.values()], check=True)  # fmt: skip
    sources = {}
    for name, pin in SUITES.items():
        (archive,) = downloads.glob(f"{pin.split('==')[0].replace('-', '[-_]')}-{pin.split('==')[1]}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(work / "src", filter="data")
        sources[name] = work / "src" / archive.name.removesuffix(".tar.gz")
    return sources


def timed_pytest(source: Path, env: dict, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args], cwd=source, env=env, check=False,
                          capture_output=True, text=True)  # fmt: skip
    return time.monotonic() - started, done.stdout


def load() -> str:
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main() -> None:
    # Outside this repository: pytest finds a suite's rootdir by walking up, and
    # under var/ it would take the server's pyproject.toml for the suite's own.
    work = Path(os.environ.get("DEMO_DIR", Path(tempfile.gettempdir()) / "qefleet-agent-demo")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sources = fetch(work)
    server = LiveServer(work)
    server.database.unlink(missing_ok=True)
    token = server.setup((AGENT,))[AGENT]
    server.start()
    env = {**os.environ, "QEFLEET_URL": server.url, "QEFLEET_TOKEN": token, "QEFLEET_AGENT": AGENT,
           "QEFLEET_STATE_DIR": str(work / "state")}  # fmt: skip
    plain = {k: v for k, v in env.items() if k != "QEFLEET_URL"}
    rows = []
    load_at_start = load()
    try:
        for name, source in sources.items():
            task_type = f"suite-{name}"
            agent_runs, sequential, parallel, exploited = [], [], [], []
            for run in range(RUNS):
                seconds, output = timed_pytest(source, env, "--qefleet-task-type", task_type, "-p", "no:cacheprovider")
                line = re.search(r"qefleet: strategy (\S+) .*ran with (\d+) xdist workers.*", output)
                strategy, workers = (line.group(1), int(line.group(2))) if line else ("?", 0)
                agent_runs.append(seconds)
                explored = line is not None and "explored (picked at random)" in line.group(0)
                if line and not explored:
                    exploited.append((strategy, workers))
                print(f"{name:15} run {run + 1:2}/{RUNS}: {strategy:22} {seconds:6.1f} s{' (explored)' if explored else ''}",
                      flush=True)  # fmt: skip
                # The fixed strategies' runs spread among the agent's: on a shared machine
                # the load drifts, and a block of runs at the end would meet another load.
                if len(sequential) < BASELINE and run + 1 >= (len(sequential) + 1) * RUNS / BASELINE:
                    sequential.append(timed_pytest(source, plain, "-p", "no:cacheprovider")[0])
                    parallel.append(timed_pytest(source, plain, "-p", "no:cacheprovider", "-n", str(cpus()))[0])
            collected = re.search(r"(\d+) tests? collected", timed_pytest(source, plain, "--collect-only")[1])
            tests = int(collected.group(1)) if collected else 0
            # Learned: what its last run that did not explore chose, from its own values, and the
            # fixed strategy that choice runs as: in-process (always-sequential) or on xdist workers.
            learned, on_workers = exploited[-1] if exploited else ("(still exploring)", 0)
            rows.append((name, tests, learned, on_workers,
                         statistics.mean(agent_runs), statistics.mean(agent_runs[RUNS // 2:]),
                         statistics.mean(sequential), statistics.mean(parallel)))  # fmt: skip
    finally:
        server.stop()
    print(f"\n{cpus()} CPUs, load average {load_at_start} at the start and {load()} at the end (1, 5, 15 min); "
          f"{RUNS} agent runs and {BASELINE} runs of each fixed strategy per suite; mean wall seconds")  # fmt: skip
    print(f"{'suite':15} {'tests':>6}  {'learned strategy':22} {'agent':>7} {'2nd half':>8} {'always-seq':>10} "
          f"{'always-par':>10} {'vs seq':>7} {'vs par':>7} {'choice':>7}")  # fmt: skip
    for name, tests, strategy, on_workers, mean, late, seq, par in rows:
        chosen, other = (par, seq) if on_workers else (seq, par)
        print(f"{name:15} {tests:6}  {strategy:22} {mean:7.1f} {late:8.1f} {seq:10.1f} {par:10.1f} "
              f"{(seq - late) / seq:+7.0%} {(par - late) / par:+7.0%} {(other - chosen) / other:+7.0%}")  # fmt: skip
    print("(vs seq / vs par: the agent's second-half mean against each fixed strategy, exploration included;\n"
          " choice: the fixed strategy the learned one runs as against the other one; + is time saved)")
    print(f"\nOn the dashboard (the server's database is kept):\n"
          f"  DATABASE_URL=sqlite:///{server.database} make run SIMULATE=0\n"
          f"  then http://127.0.0.1:8000/ops/agents/{AGENT}/ (log in as viewer, password viewer-demo)")


if __name__ == "__main__":
    main()
