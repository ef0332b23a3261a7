"""The load generator behind `make load` (`manage.py load_fleet`).

Pieces, used in this order by the command:

* `LoadDatabase`: a fresh, dedicated database (a SQLite file, or a PostgreSQL
  database it creates and drops), migrated, with the demo fleet registered
  and one token per agent. The command's own process reaches it through its
  default connection, pointed there for the run (`use_database`).
* `Gunicorn`: the real server on 127.0.0.1 and a free port, in its own
  process group, with production settings (DEBUG off, a random SECRET_KEY).
* `run_phase`: one thread per agent, each with its own keep-alive
  connection, doing tasks (a recommendation and its execution report, bodies
  from the simulator's FleetEnvironment) until a task count or a deadline;
  every request's kind, start, latency and status is kept.
* `summarise` and `check_accounting`: the figures of a phase, and the
  no-lost-update check against the database.
"""

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dj_database_url
import numpy as np
import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Case, Q, Sum, Value, When
from django.utils import timezone
from psycopg import sql

from learning.core import engine
from learning.models import Execution, PooledValue, QEntry, Rollback
from learning.versions import decode
from qefleet.memory.fleet import SWARM, issue_token, register_agent
from qefleet.memory.models import Agent, Event

from . import simulator
from .simulator import FleetEnvironment, SimAgent

RECOMMEND = "recommendation"
REPORT = "report"
CONNECTION_ERROR = 0  # the status recorded for a request that got no HTTP answer
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# --- the database ------------------------------------------------------------------------


class use_database:
    """Point this process's default connection at `url` for the block, as a
    server started with DATABASE_URL=url would see it (settings.py's SQLite
    PRAGMAs aside: this process writes only while the server is idle)."""

    def __init__(self, url):
        self.database = dj_database_url.parse(url)

    def __enter__(self):
        self.previous = connections.settings[DEFAULT_DB_ALIAS]
        self._switch(connections.configure_settings({DEFAULT_DB_ALIAS: self.database})[DEFAULT_DB_ALIAS])
        return self

    def __exit__(self, *exc):
        self._switch(self.previous)

    @staticmethod
    def _switch(database):
        connections.close_all()
        connections.settings[DEFAULT_DB_ALIAS] = database
        try:
            del connections[DEFAULT_DB_ALIAS]  # the next use opens a connection with the new settings
        except AttributeError:
            pass


class LoadDatabase:
    """The run's own database at `url`: created fresh (dropped first when it
    exists), and dropped again by `drop`. Its name must say `load`, so a
    typo can never drop a real database."""

    def __init__(self, url):
        self.database = dj_database_url.parse(url)
        self.name = str(self.database["NAME"])
        self.is_sqlite = self.database["ENGINE"].endswith("sqlite3")
        if "load" not in Path(self.name).name:
            raise ValueError(f"The load database's name must contain 'load' (it is dropped): {self.name!r}.")
        if not self.is_sqlite and (self.database.get("HOST") or "127.0.0.1") not in LOOPBACK:
            raise ValueError(f"The load database must be on this machine, not {self.database['HOST']!r}.")

    @property
    def vendor(self):
        return "sqlite" if self.is_sqlite else "postgresql"

    def _files(self):
        return [Path(self.name + suffix) for suffix in ("", "-wal", "-shm")]

    def _maintenance(self):
        options = {"host": self.database.get("HOST"), "port": self.database.get("PORT"),
                   "user": self.database.get("USER"), "password": self.database.get("PASSWORD")}
        return psycopg.connect(dbname="postgres", autocommit=True,
                               **{key: value for key, value in options.items() if value})

    def drop(self):
        if self.is_sqlite:
            for path in self._files():
                path.unlink(missing_ok=True)
            return
        with self._maintenance() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def create(self):
        """Drop and create the database; the caller migrates it (inside use_database)."""
        self.drop()
        if self.is_sqlite:
            Path(self.name).parent.mkdir(parents=True, exist_ok=True)
            return
        with self._maintenance() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))


def prepare_fleet(count, token_lifetime_s):
    """Migrate, then the simulator's fleet (the demo agents, each with a
    token) plus `load-agent-NN` agents on a `load` team past the 17."""
    call_command("migrate", verbosity=0, interactive=False)
    lifetime = timedelta(seconds=token_lifetime_s)
    fleet = simulator.prepare_fleet(count, lifetime, label="load_fleet")
    expires_at = timezone.now() + lifetime
    for number in range(len(fleet) + 1, count + 1):
        agent = register_agent(f"load-agent-{number:02d}", "load", "load", SWARM)[0]
        fleet.append(SimAgent(agent.agent_id, agent.team, issue_token(agent, "load_fleet", expires_at)[1]))
    return fleet


def seed_expired_events(agents, count):
    """`count` events already expired, spread over the agents: the backlog
    the TTL sweep deletes while the fleet works."""
    owners = list(Agent.objects.filter(agent_id__in=[agent.agent_id for agent in agents]))
    expired = timezone.now() - timedelta(minutes=1)
    Event.with_expired.bulk_create(
        [Event(owner=owners[n % len(owners)], team=owners[n % len(owners)].team, swarm=SWARM,
               type="load:expired", payload={"n": n}, expires_at=expired) for n in range(count)],
        batch_size=1000)


def check_accounting(accepted):
    """The no-lost-update check: `accepted` maps agent id to the execution
    reports the server accepted. Each adds one execution row and, while the
    agent learns, one visit to one Q entry. A rollback (the safeguard's
    answer to a degraded score) restores an older Q-table and turns learning
    off, so a rolled-back agent's visits must equal those of the version its
    last rollback restored. An agent with learning off otherwise (frozen) is
    left out of the visits check and named. The swarm's pooled rows, which
    every agent writes and no rollback rewrites, gain one visit per level
    (bucket and task type) for every report that learned. Returns the
    figures and whether they agree."""
    executions = Execution.objects.count()
    # A report whose safeguard check rolled the agent back learned first, then turned learning off.
    learned = Execution.objects.filter(Q(response__learning_enabled=True) | Q(response__rolled_back=True)).count()
    pooled = dict(PooledValue.objects.annotate(level=Case(When(abstract_key=engine.TYPE_KEY, then=Value("type")),
                                                           default=Value("bucket")))
                  .values_list("level").annotate(Sum("visits")).order_by())
    visits = dict(QEntry.objects.values_list("agent__agent_id").annotate(Sum("visits")).order_by())
    learning = set(Agent.objects.filter(learning__enabled=True).values_list("agent_id", flat=True))
    restored = {}
    for rollback in Rollback.objects.filter(agent__agent_id__in=list(accepted)).select_related(
            "agent", "to_version").order_by("created_at"):
        version = rollback.to_version  # None once pruned
        restored[rollback.agent.agent_id] = version and sum(row[4] for row in decode(version)["state"]["q"])
    expected, left_out = {}, []
    for agent_id, count in accepted.items():
        if restored.get(agent_id) is not None:
            expected[agent_id] = restored[agent_id]
        elif agent_id in learning and agent_id not in restored:
            expected[agent_id] = count
        else:
            left_out.append(agent_id)
    mismatched = {agent_id: {"expected": visits_expected, "visits": visits.get(agent_id, 0)}
                  for agent_id, visits_expected in expected.items() if visits.get(agent_id, 0) != visits_expected}
    return {
        "accepted_reports": sum(accepted.values()),
        "execution_rows": executions,
        "visits": sum(visits.get(agent_id, 0) for agent_id in expected),
        "expected_visits": sum(expected.values()),
        "rolled_back": sorted(agent_id for agent_id in restored if agent_id in expected),
        "agents_left_out": left_out,
        "mismatched_agents": mismatched,
        "learned_reports": learned,
        "pooled_visits": pooled,
        "ok": (executions == sum(accepted.values()) and not mismatched
               and pooled.get("bucket", 0) == pooled.get("type", 0) == learned),
    }


# --- the server --------------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """gunicorn serving qefleet.wsgi on 127.0.0.1, in a process group of its
    own so that stopping it ends exactly its master and workers. The run's
    log at `log_path` (written afresh) holds gunicorn's lines and what the
    application logs to stderr: the traceback of each 5xx."""

    def __init__(self, env, workers, worker_class, threads, log_path):
        self.env = env
        self.port = free_port()
        self.log_path = Path(log_path)
        self.command = [
            sys.executable, "-m", "gunicorn", "qefleet.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--worker-class", worker_class,
            "--threads", str(threads), "--timeout", "30", "--graceful-timeout", "10",
            "--error-logfile", str(self.log_path), "--log-level", "warning",
        ]
        self.process = None

    def start(self, wait_s=30.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.unlink(missing_ok=True)
        # Appending, as gunicorn's own log file does; the process keeps its copy of the descriptor.
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=settings.BASE_DIR,
                                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/api/v1/openapi.json")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {wait_s:g} s:\n{self.log_tail()}")

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        stop_group(self.process, timeout=15)

    def log_tail(self, lines=20):
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_group(process, timeout):
    """SIGTERM the process group `process` leads, SIGKILL it after `timeout` s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


def server_env(database_url, rate_limit_per_minute):
    """Production settings on plain http: DEBUG off, a fresh random key,
    HTTPS=0 (no redirect to https on loopback), the load database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qefleet.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HTTPS": "0",
        "RATE_LIMIT_PER_MINUTE": str(rate_limit_per_minute),
    }


class BackgroundJob:
    """A manage.py command in its own process group, timed from start to exit."""

    def __init__(self, name, args, env):
        self.name = name
        self.args = args
        self.env = env
        self.started = self.ended = None
        self.returncode = None
        self.output = ""
        self._process = None
        self._waiter = None

    def start(self):
        self.started = time.perf_counter()
        self._process = subprocess.Popen([sys.executable, "manage.py", *self.args], env=self.env,
                                         cwd=settings.BASE_DIR, start_new_session=True, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()

    def _wait(self):
        self.output = self._process.communicate()[0]
        self.ended = time.perf_counter()
        self.returncode = self._process.returncode

    def finish(self, timeout):
        """Wait up to `timeout` s for the job; stop it if it is still running."""
        if self._process is None:
            return
        self._waiter.join(timeout)
        if self._waiter.is_alive():
            stop_group(self._process, timeout=10)
            self._waiter.join()
            self.output += f"\nstopped after {timeout:g} s"

    def to_dict(self):
        return {"command": " ".join(self.args), "returncode": self.returncode,
                "seconds": None if self.ended is None else round(self.ended - self.started, 3),
                "output": self.output.strip()[-2000:]}


# --- the client --------------------------------------------------------------------------


class AgentConnection:
    """One agent's keep-alive connection to the API. A request that gets no
    HTTP answer (refused, reset, timed out) gives CONNECTION_ERROR, and the
    next request opens a new connection."""

    def __init__(self, port, agent, timeout):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "Authorization": f"Bearer {agent.token}"}

    def post(self, path, body):
        """(status, parsed JSON body or None)."""
        try:
            self.connection.request("POST", f"/api/v1/{path}", json.dumps(body), self.headers)
            response = self.connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return CONNECTION_ERROR, None
        try:
            return response.status, json.loads(content)
        except ValueError:
            return response.status, None

    def close(self):
        self.connection.close()


@dataclass
class Phase:
    """What one phase sent and got back. `samples` holds (kind, start s since
    the phase began, latency ms, status) per request."""

    name: str
    samples: list = field(default_factory=list)
    accepted: dict = field(default_factory=dict)  # agent id -> reports answered 201 (or 200: a replay)
    tasks: int = 0
    started_at: float = 0.0  # time.perf_counter() at the start
    report_retries: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # CPU the whole client process used meanwhile
    stopped_by: str = "deadline"


def run_phase(name, port, agents, environment, seconds, max_tasks, rate, timeout):
    """Every agent works in its own thread until `seconds` have passed or
    `max_tasks` tasks were started; a task under way is always finished, so
    each recommendation gets its report. `rate` (tasks/s over the fleet)
    paces the agents; 0 runs them as fast as the server answers. A report
    that got no answer is sent again once with the same decision_id (the
    server counts it once), so the accounting stays exact."""
    phase = Phase(name, accepted={agent.agent_id: 0 for agent in agents})
    lock = threading.Lock()
    started = phase.started_at = time.perf_counter()
    cpu = time.process_time()
    deadline = started + seconds
    interval = len(agents) / rate if rate else 0.0

    def take_task():
        with lock:
            if phase.tasks >= max_tasks:
                phase.stopped_by = "task count"
                return False
            phase.tasks += 1
            return True

    def timed(connection, kind, path, body, samples):
        begin = time.perf_counter()
        status, answer = connection.post(path, body)
        samples.append((kind, begin - started, (time.perf_counter() - begin) * 1000, status))
        return status, answer

    def work(agent, offset):
        connection = AgentConnection(port, agent, timeout)
        samples, accepted, retries = [], 0, 0
        next_at = started + offset
        try:
            while time.perf_counter() < deadline:
                if interval:
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                    if time.perf_counter() >= deadline:
                        break
                if not take_task():
                    break
                task = environment.next_task(agent.agent_id)
                status, decision = timed(connection, RECOMMEND, f"agents/{agent.agent_id}/recommendations",
                                         {"task": task}, samples)
                if status != 200 or decision is None:
                    continue
                report = {"decision_id": decision["decision_id"], "task": task,
                          "result": environment.outcome(task, decision["strategy"])}
                path = f"agents/{agent.agent_id}/executions"
                status, _ = timed(connection, REPORT, path, report, samples)
                if status == CONNECTION_ERROR:
                    retries += 1
                    status, _ = timed(connection, REPORT, path, report, samples)
                accepted += status in (200, 201)
        finally:
            connection.close()
            with lock:
                phase.samples.extend(samples)
                phase.accepted[agent.agent_id] += accepted
                phase.report_retries += retries

    threads = [threading.Thread(target=work, args=(agent, n * interval / len(agents)), name=agent.agent_id)
               for n, agent in enumerate(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.elapsed_s = time.perf_counter() - started
    phase.client_cpu_s = time.process_time() - cpu
    phase.samples.sort(key=lambda sample: sample[1])
    return phase


# --- the figures -------------------------------------------------------------------------


def latency(samples_ms):
    if not samples_ms:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    values = np.asarray(samples_ms)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": len(values), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "max": round(float(values.max()), 2)}


def summarise(phase, window=None):
    """The figures of a phase; `window` (start, end in phase seconds) adds
    the latencies of the requests under way during it."""
    statuses = {}
    for _, _, _, status in phase.samples:
        statuses[status] = statuses.get(status, 0) + 1
    completed = sum(phase.accepted.values())
    figures = {
        "seconds": round(phase.elapsed_s, 2),
        "stopped_by": phase.stopped_by,
        "tasks_started": phase.tasks,
        "tasks_completed": completed,
        "requests": len(phase.samples),
        "tasks_per_s": round(completed / phase.elapsed_s, 1) if phase.elapsed_s else 0.0,
        "requests_per_s": round(len(phase.samples) / phase.elapsed_s, 1) if phase.elapsed_s else 0.0,
        "latency_ms": {kind: latency([ms for k, _, ms, _ in phase.samples if k == kind]) for kind in (RECOMMEND, REPORT)},
        "all_requests_ms": latency([ms for _, _, ms, _ in phase.samples]),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "server_errors": sum(count for status, count in statuses.items() if status >= 500),
        "other_non_2xx": sum(count for status, count in statuses.items()
                             if status != CONNECTION_ERROR and not 200 <= status < 300 and status < 500),
        "connection_errors": statuses.get(CONNECTION_ERROR, 0),
        "report_retries": phase.report_retries,
        "client_cpu_share": round(phase.client_cpu_s / phase.elapsed_s, 3) if phase.elapsed_s else 0.0,
    }
    figures["errors"] = figures["server_errors"] + figures["other_non_2xx"] + figures["connection_errors"]
    if window is not None:
        start, end = window
        during = [sample for sample in phase.samples if sample[1] <= end and sample[1] + sample[2] / 1000 >= start]
        figures["during_jobs"] = {
            "window_s": [round(start, 2), round(end, 2)],
            "latency_ms": latency([ms for _, _, ms, _ in during]),
            "errors": sum(1 for *_, status in during if not 200 <= status < 300),
        }
    return figures


def fleet_environment(agents, seed):
    return FleetEnvironment({agent.agent_id: agent.team for agent in agents}, seed)
