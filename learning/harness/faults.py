"""Fault injection against real processes, behind `manage.py faults` (`make faults`).

Each scenario starts gunicorn and/or `manage.py qcluster` with production
settings (DEBUG off, a random SECRET_KEY, short queue timeouts, one-minute
cycle slots) on a fresh SQLite file under var/faults/, injects one fault and
checks the invariants in the database itself. Every process is started in a
process group of its own, and only those groups are ever signalled.

To land a kill inside a write without hooks in the code under test, the
harness holds SQLite's write lock from a connection of its own (BEGIN
IMMEDIATE): the server's next write then waits on busy_timeout where it
stands, the harness kills, and only then lets go. Under load it instead
freezes the server's processes (SIGSTOP) and kills them only when one of them
is found holding the write lock, that is, inside a transaction.
"""

import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.models import Count, F, Sum

from .load import free_port

FAULTS_DIR = Path(settings.BASE_DIR) / "var" / "faults"
DATABASE = FAULTS_DIR / "faults.sqlite3"
REDIS_URL = "redis://127.0.0.1:6379/2"
Q_TIMEOUT, Q_RETRY, Q_POLL = 5, 8, 1   # the ORM broker polls every second (settings)
SLOT_SECONDS = 60
CYCLE_JOB = "qefleet.learning.improvement_cycle"
WEB_WORKERS = 2
HISTORY_TASKS_PER_AGENT = 40           # simulated tasks before the cluster scenarios
PLAYBOOK = ("test-executor", "security-scanner")
ROLLBACK_Q_ENTRIES = 20_000            # a big Q-table, so a rollback takes long enough to be hit
CYCLE_STEPS = 4
SCHEDULER_DELAY_S = 30                 # django-q2's scheduler first runs this long after the cluster starts
SERVING_WITHIN_S = 5.0


class ScenarioError(RuntimeError):
    pass


# --- processes -----------------------------------------------------------------------------------


class Processes:
    """The process groups this run started: the only ones it ever signals."""

    def __init__(self, secret_key):
        self.secret_key = secret_key
        self.started = []

    def environment(self, broker="orm", **extra):
        env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "Q_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="qefleet.settings", DEBUG="0", SECRET_KEY=self.secret_key,
            ALLOWED_HOSTS="127.0.0.1", HTTPS="0", RATE_LIMIT_PER_MINUTE="0",
            DATABASE_URL=f"sqlite:///{DATABASE}", QUEUE_BROKER=broker, REDIS_URL=REDIS_URL,
            Q_TIMEOUT=str(Q_TIMEOUT), Q_RETRY=str(Q_RETRY), CYCLE_SLOT_SECONDS=str(SLOT_SECONDS),
            PYTHONUNBUFFERED="1",
        )
        env.update({name: str(value) for name, value in extra.items()})
        return env

    def start(self, name, args, env, **popen):
        popen.setdefault("stdout", open(FAULTS_DIR / f"{name}.log", "ab"))
        popen.setdefault("stderr", subprocess.STDOUT)
        process = subprocess.Popen(args, cwd=settings.BASE_DIR, env=env, start_new_session=True, **popen)
        self.started.append(process)
        return process

    def web(self, port, env):
        gunicorn = Path(sys.executable).parent / "gunicorn"
        return self.start("gunicorn", [str(gunicorn), "qefleet.wsgi", "--bind", f"127.0.0.1:{port}",
                                       "--workers", str(WEB_WORKERS), "--graceful-timeout", "20"], env)

    def cluster(self, env):
        return self.start("qcluster", [sys.executable, "manage.py", "qcluster"], env)

    def signal(self, process, signum):
        """Signal the process group `process` leads (it was started with its own session)."""
        if process not in self.started:
            raise ValueError("Only process groups this run started are signalled.")
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self, process):
        self.signal(process, signal.SIGKILL)
        process.wait()

    def stop(self, process, timeout=20):
        self.signal(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(process)
        # Workers a stopped master left behind are in its group too.
        self.signal(process, signal.SIGKILL)

    def stop_all(self):
        for process in self.started:
            if process.poll() is None:
                self.stop(process, timeout=10)
            else:
                self.signal(process, signal.SIGKILL)


# --- HTTP ----------------------------------------------------------------------------------------


def call(port, method, path, token, body=None, headers=None, timeout=30):
    """(status, JSON body or text, headers); raises OSError or HTTPException when
    the connection fails."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, f"/api/v1/{path}", body=None if body is None else json.dumps(body),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                                    **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        try:
            content = json.loads(raw) if raw else None
        except ValueError:
            content = raw.decode(errors="replace")[:200]
        return response.status, content, {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()


def wait_serving(port, agent_id, token, timeout=60.0):
    """Seconds until the agent's own record is served (200)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if call(port, "GET", f"agents/{agent_id}", token, timeout=5)[0] == 200:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise ScenarioError(f"Nothing served on port {port} after {timeout:g} s.")


def report_body(key, strategy):
    """An execution report that always looks the same, so the safeguard never
    rolls back mid-scenario and executions stay equal to Q visits."""
    return {"task": {"id": key, "type": "unit-tests", "complexity": 0.5, "required_capabilities": ["a"],
                     "previous_attempts": 0, "available_resources": 0.8},
            "result": {"success": True, "execution_time_ms": 1000, "errors": []},
            "action": {"strategy": strategy.name, "parallelization": strategy.parallelization,
                       "retry_policy": strategy.retry_policy}}


class Reporter:
    """Sends execution reports as an agent should: each under its own
    Idempotency-Key, sent again with the same key after a failed connection or
    a 5xx, until it is answered or the deadline passes."""

    def __init__(self, port, strategy):
        self.port = port
        self.strategy = strategy
        self.outcomes = {}
        self.lock = threading.Lock()

    def send(self, agent_id, token, key, deadline):
        retries = Counter()
        while True:
            try:
                status, content, _ = call(self.port, "POST", f"agents/{agent_id}/executions", token,
                                          report_body(key, self.strategy), {"Idempotency-Key": key})
                if status < 500:
                    break
                retries[f"http_{status}"] += 1
            except (OSError, http.client.HTTPException) as error:
                status, content = None, None
                retries[type(error).__name__] += 1
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        with self.lock:
            self.outcomes[key] = {"agent": agent_id, "status": status, "body": content, "retries": retries}
        return status, content

    def run(self, agents, per_agent, deadline, prefix, stop=None):
        """One thread per agent sending `per_agent` reports (or until `stop` is set)."""
        def agent_loop(agent_id, token):
            for number in range(per_agent):
                if stop is not None and stop.is_set():
                    return
                self.send(agent_id, token, f"{prefix}-{agent_id}-{number}", deadline)

        threads = [threading.Thread(target=agent_loop, args=agent, daemon=True) for agent in agents]
        for thread in threads:
            thread.start()
        return threads

    def summary(self):
        statuses = Counter(str(outcome["status"]) for outcome in self.outcomes.values())
        retries = sum((outcome["retries"] for outcome in self.outcomes.values()), Counter())
        return {"sent": len(self.outcomes), "statuses": dict(statuses), "retries": dict(retries)}


# --- the database --------------------------------------------------------------------------------


def use_database(path):
    """Point this process's ORM at `path`, as the test runner points it at its test database."""
    connections.close_all()
    connections["default"].settings_dict["NAME"] = str(path)


def remove_database(path):
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_database(source, target):
    """A consistent copy through SQLite's backup API (never cp of a live file)."""
    connections.close_all()
    remove_database(target)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def integrity():
    with closing(sqlite3.connect(DATABASE, timeout=10)) as database:
        return database.execute("PRAGMA integrity_check").fetchone()[0]


def page_count():
    with closing(sqlite3.connect(DATABASE, timeout=10)) as database:
        return database.execute("PRAGMA page_count").fetchone()[0]


class WriteLock:
    """SQLite's write lock, held from a connection of the harness's own."""

    def __enter__(self):
        self.database = sqlite3.connect(DATABASE, isolation_level=None, timeout=10)
        self.database.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.database.execute("ROLLBACK")
        self.database.close()


def write_lock_taken():
    """Whether another connection holds the write lock right now (no waiting)."""
    with closing(sqlite3.connect(DATABASE, isolation_level=None, timeout=0)) as database:
        try:
            database.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        database.execute("ROLLBACK")
        return False


def learning_balance():
    """(executions, sum of Q visits): equal unless a report was half-applied."""
    from learning.models import Execution, QEntry

    return Execution.objects.count(), QEntry.objects.aggregate(total=Sum("visits"))["total"] or 0


def executions_per_key(keys):
    from learning.models import Execution

    counts = dict(Execution.objects.filter(idempotency_key__in=list(keys)).values("idempotency_key")
                  .annotate(n=Count("id")).values_list("idempotency_key", "n"))
    return {key: counts.get(key, 0) for key in keys}


def slot_of(moment):
    return datetime.fromtimestamp(int(moment) // SLOT_SECONDS * SLOT_SECONDS, tz=dt_timezone.utc)


def wait_for_slot_second(second):
    """Sleep until `second` seconds into a cycle slot, so a scenario's cycle and
    its re-run fall in one slot."""
    into = time.time() % SLOT_SECONDS
    time.sleep((second - into) % SLOT_SECONDS)


# --- the run -------------------------------------------------------------------------------------


class FaultRun:
    """Templates, fleet tokens and processes shared by the scenarios."""

    def __init__(self, processes, write):
        self.processes = processes
        self.write = write
        self.templates = {}
        self.agents = []  # [(agent id, token)]

    def migrate(self, path):
        remove_database(path)
        env = self.processes.environment(DATABASE_URL=f"sqlite:///{path}")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=settings.BASE_DIR, env=env,
                       check=True, stdout=subprocess.DEVNULL)

    def template(self, name):
        """(path, [(agent id, token)]): a migrated database with the 17-agent demo fleet and its tokens;
        "history" adds a simulated fleet's tasks (two agents held to a
        playbook), so the improvement loop has work to do."""
        if name in self.templates:
            return self.templates[name]
        from .simulator import FleetEnvironment, HttpTransport, Simulation, prepare_fleet

        path = FAULTS_DIR / f"template-{name}.sqlite3"
        self.write(f"  building the {name} template database")
        self.migrate(path)
        use_database(path)
        fleet = prepare_fleet(17, label="faults")
        agents = [(agent.agent_id, agent.token) for agent in fleet]
        if name == "history":
            port = free_port()
            web = self.processes.web(port, self.processes.environment(DATABASE_URL=f"sqlite:///{path}"))
            try:
                wait_serving(port, *agents[0])
                environment = FleetEnvironment({agent.agent_id: agent.team for agent in fleet}, seed=1)
                simulation = Simulation(HttpTransport(f"http://127.0.0.1:{port}"), fleet, environment,
                                        17 * HISTORY_TASKS_PER_AGENT)
                simulation.apply_playbooks(set(PLAYBOOK))
                simulation.run()
            finally:
                self.processes.stop(web)
        connections.close_all()
        self.templates[name] = (path, agents)
        return self.templates[name]

    def fresh(self, template):
        """A copy of the template as the scenario's database; its agents' tokens in self.agents."""
        path, self.agents = self.template(template)
        copy_database(path, DATABASE)
        use_database(DATABASE)

    def strategy(self):
        from learning.models import Strategy

        return Strategy.default()


def web_kill(run):
    """kill -9 of gunicorn (master and workers) in the middle of execution reports."""
    run.fresh("bare")
    processes, port = run.processes, free_port()
    env = processes.environment()
    web = processes.web(port, env)
    agent_id, token = run.agents[0]
    wait_serving(port, agent_id, token)
    reporter = Reporter(port, run.strategy())
    for number in range(20):
        reporter.send(agent_id, token, f"warm-{number}", time.monotonic() + 10)

    # 1. A report held by the harness's write lock inside its transaction.
    key, answer = "killed-mid-report", {}
    sender = threading.Thread(target=lambda: answer.update(
        reply=_once(port, agent_id, token, key, reporter.strategy)), daemon=True)
    with WriteLock():
        sender.start()
        time.sleep(1.0)
        in_flight = sender.is_alive()
        processes.kill(web)
        sender.join(10)
    rows_after_kill = executions_per_key([key])[key]
    executions, visits = learning_balance()
    integrity_after_kill = integrity()

    web = processes.web(port, env)
    serving_s = wait_serving(port, agent_id, token)
    first = _once(port, agent_id, token, key, reporter.strategy)
    again = _once(port, agent_id, token, key, reporter.strategy)
    same_body = first[1] == again[1]

    # 2. Under load: freeze the server until one of its workers holds the
    # write lock (is inside a transaction), then kill it there.
    stop = threading.Event()
    load = Reporter(port, reporter.strategy)
    threads = load.run(run.agents[1:5], 10_000, time.monotonic() + 90, "load", stop)
    tries, killed_in_transaction = 0, False
    time.sleep(0.5)
    while tries < 40 and not killed_in_transaction:
        tries += 1
        time.sleep(random.uniform(0.05, 0.3))
        processes.signal(web, signal.SIGSTOP)
        killed_in_transaction = write_lock_taken()
        if killed_in_transaction:
            processes.kill(web)
        else:
            processes.signal(web, signal.SIGCONT)
    integrity_mid = integrity()
    web = processes.web(port, env)
    serving_under_load_s = wait_serving(port, agent_id, token)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(60)
    processes.stop(web)

    per_key = executions_per_key(load.outcomes)
    answered = sum(1 for outcome in load.outcomes.values() if outcome["status"] in (200, 201))
    executions_end, visits_end = learning_balance()
    figures = {
        "held_report_in_flight_at_kill": in_flight,
        "held_report_answer_before_restart": answer.get("reply", (None,))[0],
        "rows_of_killed_report_after_kill": rows_after_kill,
        "balance_after_kill": [executions, visits],
        "integrity_after_kill": integrity_after_kill,
        "serving_after_restart_s": round(serving_s, 2),
        "retry_statuses": [first[0], again[0]],
        "retry_bodies_equal": same_body,
        "rows_of_killed_report_after_retries": executions_per_key([key])[key],
        "load_killed_inside_a_transaction": killed_in_transaction,
        "load_freeze_tries": tries,
        "integrity_after_load_kill": integrity_mid,
        "serving_after_load_restart_s": round(serving_under_load_s, 2),
        "load": load.summary(),
        "load_keys_answered": answered,
        "load_keys_with_one_execution": sum(1 for n in per_key.values() if n == 1),
        "load_keys_with_two_or_more": sum(1 for n in per_key.values() if n > 1),
        "balance_end": [executions_end, visits_end],
        "integrity_end": integrity(),
    }
    checks = [
        in_flight and answer.get("reply", (None,))[0] is None,
        rows_after_kill == 0 and executions == visits and integrity_after_kill == "ok",
        serving_s <= SERVING_WITHIN_S and serving_under_load_s <= SERVING_WITHIN_S,
        first[0] in (200, 201) and again[0] == 200 and same_body,
        figures["rows_of_killed_report_after_retries"] == 1,
        killed_in_transaction and integrity_mid == "ok",
        answered == len(load.outcomes) == figures["load_keys_with_one_execution"],
        executions_end == visits_end and figures["integrity_end"] == "ok",
    ]
    return all(checks), figures


def _once(port, agent_id, token, key, strategy):
    """One attempt: (status, body), or (None, error name) when the connection failed."""
    try:
        status, content, _ = call(port, "POST", f"agents/{agent_id}/executions", token,
                                  report_body(key, strategy), {"Idempotency-Key": key})
        return status, content
    except (OSError, http.client.HTTPException) as error:
        return None, type(error).__name__


def disk_full(run):
    """The database's size quota (SQLITE_MAX_PAGE_COUNT) runs out under reports."""
    from qefleet.memory.models import Event, PerformanceMetric

    run.fresh("bare")
    processes, port = run.processes, free_port()
    quota = page_count() + 40
    web = processes.web(port, processes.environment(SQLITE_MAX_PAGE_COUNT=quota))
    agent_id, token = run.agents[0]
    wait_serving(port, agent_id, token)
    strategy = run.strategy()
    statuses, refused, bad_refusals = Counter(), [], 0
    for number in range(5000):
        key = f"fill-{number}"
        status, content = _once(port, agent_id, token, key, strategy)
        statuses[str(status)] += 1
        if status == 503:
            refused.append(key)
            headers_ok = _storage_full_answer(port, agent_id, token, key, strategy)
            bad_refusals += not headers_ok
            if len(refused) >= 10:
                break
    balance_full = learning_balance()
    rows_of_refused = sum(executions_per_key(refused).values())
    integrity_full = integrity()

    # Free space as an operator would: prune history from another connection.
    freed = Event.objects.all().delete()[0] + PerformanceMetric.objects.all().delete()[0]
    freed_at = time.monotonic()
    recovered_s, after = None, Counter()
    for key in refused:
        status, _ = _once(port, agent_id, token, key, strategy)
        after[str(status)] += 1
        if status in (200, 201) and recovered_s is None:
            recovered_s = time.monotonic() - freed_at
    same_server = web.poll() is None
    processes.stop(web)
    balance_end = learning_balance()
    figures = {
        "quota_pages": quota, "accepted_before_full": statuses.get("201", 0), "statuses": dict(statuses),
        "refusals_without_storage_full_503": bad_refusals, "rows_of_refused_reports": rows_of_refused,
        "balance_when_full": list(balance_full), "integrity_when_full": integrity_full, "rows_pruned": freed,
        "retried_after_freeing": dict(after), "recovered_after_s": round(recovered_s, 3) if recovered_s else None,
        "without_restart": same_server, "balance_end": list(balance_end), "integrity_end": integrity(),
    }
    checks = [
        len(refused) >= 10, statuses.get("500", 0) == 0, bad_refusals == 0, rows_of_refused == 0,
        balance_full[0] == balance_full[1], integrity_full == "ok",
        after.get("201", 0) == len(refused), same_server,
        balance_end[0] == balance_end[1], figures["integrity_end"] == "ok",
    ]
    return all(checks), figures


def _storage_full_answer(port, agent_id, token, key, strategy):
    """Whether a refused report is a storage_full 503 with Retry-After (asked again to read the headers)."""
    status, content, headers = call(port, "POST", f"agents/{agent_id}/executions", token,
                                    report_body(key, strategy), {"Idempotency-Key": key})
    return (status == 503 and isinstance(content, dict) and content.get("error") == "storage_full"
            and headers.get("retry-after", "").isdigit())


def graceful_restart(run):
    """SIGHUP, then SIGTERM and a new master, while 17 agents send reports."""
    run.fresh("bare")
    processes, port = run.processes, free_port()
    env = processes.environment()
    web = processes.web(port, env)
    wait_serving(port, *run.agents[0])
    per_agent = 30
    reporter = Reporter(port, run.strategy())
    threads = reporter.run(run.agents, per_agent, time.monotonic() + 120, "graceful")
    time.sleep(2.0)
    processes.signal(web, signal.SIGHUP)       # reload: new workers, old ones finish their request
    time.sleep(3.0)
    stopping = time.monotonic()
    processes.stop(web)                        # graceful: in-flight requests finish, then exit
    web = processes.web(port, env)
    downtime_s = time.monotonic() - stopping + wait_serving(port, *run.agents[0])
    for thread in threads:
        thread.join(150)
    processes.stop(web)
    summary = reporter.summary()
    accepted = sum(1 for outcome in reporter.outcomes.values() if outcome["status"] in (200, 201))
    per_key = executions_per_key(reporter.outcomes)
    executions, visits = learning_balance()
    figures = {
        "requests": len(run.agents) * per_agent, **summary, "accepted": accepted,
        "execution_rows": sum(per_key.values()), "keys_with_one_execution": sum(1 for n in per_key.values() if n == 1),
        "q_visits": visits, "downtime_s": round(downtime_s, 2), "integrity": integrity(),
    }
    server_errors = sum(n for status, n in summary["retries"].items() if status.startswith("http_5"))
    figures["server_errors"] = server_errors
    checks = [
        accepted == figures["requests"] == figures["keys_with_one_execution"] == figures["execution_rows"],
        executions == visits == figures["requests"], server_errors == 0, figures["integrity"] == "ok",
    ]
    return all(checks), figures


def cluster_kill(run, broker):
    """kill -9 of the cluster while the improvement cycle is half-way."""
    from django_q.models import Schedule, Task

    from learning import improvement
    from learning.models import ImprovementCycle

    if broker == "redis" and not hasattr(improvement, "rerun_lost_cycle"):
        return None, {"pending": "no guard job (learning.improvement.rerun_lost_cycle) yet"}
    run.fresh("history")
    if broker == "redis":
        _redis().flushdb()
    processes = run.processes
    env = processes.environment(broker=broker)
    started_at = time.time()
    # The cluster's scheduler first runs 30 s after start: started here, the
    # cycle begins early in the next slot, which leaves the re-run room in it.
    wait_for_slot_second(SLOT_SECONDS - SCHEDULER_DELAY_S + 3)
    slot = slot_of(time.time() + SCHEDULER_DELAY_S)
    cluster = processes.cluster(env)
    cycles = ImprovementCycle.objects.filter(slot_start=slot)
    # A whole cycle takes a fraction of a second, and a waiting BEGIN IMMEDIATE
    # loses the race for the lock to it, so the cluster is frozen (SIGSTOP) the
    # moment its first cycle row shows, and killed frozen.
    _wait_for_row(slot, SCHEDULER_DELAY_S + 20)
    processes.signal(cluster, signal.SIGSTOP)
    in_transaction = write_lock_taken()
    before_kill = list(cycles.values_list("agent__agent_id", "steps", "finished_at"))
    processes.kill(cluster)
    killed_at = time.time()
    if broker == "redis":
        # The schedule has moved on, as it has after an hourly run: with a slot
        # of a minute its next run would land in the same slot and hide the
        # loss, so it is held back to leave the guard the only way back.
        Schedule.objects.filter(name=CYCLE_JOB).update(next_run=slot + timedelta(seconds=3 * SLOT_SECONDS))
    processes_restarted_at = time.time()
    cluster = processes.cluster(env)

    expected = _agents_due_a_cycle()
    wait_s = (3 * SLOT_SECONDS + 20) if broker == "redis" else (Q_RETRY + 2 * Q_POLL + 30)
    done_at = None
    while time.time() - killed_at < wait_s:
        if _cycles_complete(slot, expected):
            done_at = time.time()
            break
        time.sleep(0.2)
    if done_at is not None and broker == "redis":
        time.sleep(5)  # room for a second (wrong) run of the guard to show
    processes.stop(cluster)
    if broker == "redis":
        _redis().flushdb()

    first_started = min(cycles.values_list("started_at", flat=True))
    # A redelivered task keeps its first start time; its stop time is the re-run's.
    after_kill = datetime.fromtimestamp(killed_at, tz=dt_timezone.utc)
    reruns = Task.objects.filter(func="learning.jobs.improvement_cycle", success=True,
                                 stopped__gte=after_kill).order_by("stopped")
    guard_runs = [task for task in Task.objects.filter(func="learning.jobs.cycle_guard",
                                                       stopped__gte=after_kill)
                  if isinstance(task.result, dict) and task.result.get("lost") == slot.isoformat()]
    rerun = reruns.first() if broker == "orm" else (guard_runs[0] if guard_runs else None)
    duplicates = _duplicates(started_at)
    figures = {
        "broker": broker, "slot": slot.isoformat(), "agents_due": len(expected),
        "cycles_started_at_kill": len(before_kill), "killed_inside_a_transaction": in_transaction,
        "steps_done_at_kill": sum(len(steps) for _, steps, _ in before_kill),
        "killed_s_into_slot": round(killed_at - slot.timestamp(), 2),
        "rerun_done_after_first_start_s": round((rerun.stopped - first_started).total_seconds(), 2) if rerun else None,
        "rerun_done_after_kill_s": round(rerun.stopped.timestamp() - killed_at, 2) if rerun else None,
        "restart_after_kill_s": round(processes_restarted_at - killed_at, 2),
        "cycles_complete_after_kill_s": round(done_at - killed_at, 2) if done_at else None,
        "cycle_rows_for_slot": cycles.count(),
        "triggers": dict(Counter(cycles.values_list("trigger", flat=True))),
        "guard_reruns_of_slot": len(guard_runs),
        **duplicates, "integrity": integrity(),
    }
    checks = [
        rerun is not None, done_at is not None,
        figures["cycle_rows_for_slot"] == len(expected) and _one_cycle_per_agent_and_slot(),
        not duplicates["duplicate_open_tests"], not duplicates["tests_without_a_cycle_decision"],
        not duplicates["duplicate_events"], figures["integrity"] == "ok",
    ]
    if broker == "orm":
        figures["within_retry_plus_two_polls"] = (
            rerun is not None and figures["rerun_done_after_first_start_s"] <= Q_RETRY + 2 * Q_POLL)
        checks.append(figures["within_retry_plus_two_polls"])
    else:
        checks.append(len(guard_runs) == 1)
    return all(checks), figures


def _wait_for_row(slot, timeout):
    """Poll (as fast as SQLite answers) until a cycle row of `slot` exists."""
    deadline = time.monotonic() + timeout
    stored = slot.strftime("%Y-%m-%d %H:%M:%S")
    with closing(sqlite3.connect(DATABASE, timeout=10)) as database:
        while not database.execute("SELECT 1 FROM learning_improvementcycle WHERE slot_start = ?",
                                   (stored,)).fetchone():
            if time.monotonic() > deadline:
                raise ScenarioError("The cluster ran no improvement cycle in time.")


def _redis():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def _agents_due_a_cycle():
    from learning.models import LearningProfile

    return set(LearningProfile.objects.filter(enabled=True, task_count__gt=0).values_list("agent_id", flat=True))


def _cycles_complete(slot, expected):
    from learning.models import ImprovementCycle

    done = {agent for agent, steps in ImprovementCycle.objects.filter(slot_start=slot, finished_at__isnull=False)
            .values_list("agent_id", "steps") if len(steps) == CYCLE_STEPS}
    return expected <= done


def _one_cycle_per_agent_and_slot():
    from learning.models import ImprovementCycle

    return not ImprovementCycle.objects.values("agent", "slot_start").annotate(n=Count("id")).filter(n__gt=1).exists()


def _duplicates(since):
    """Effects that happened twice: open tests per (agent, task type), loop
    tests no cycle recorded creating, and events with the same type, owner
    and payload."""
    from learning.models import OPEN_TEST_STATES, ABTest, ImprovementCycle
    from qefleet.memory.models import Event

    moment = datetime.fromtimestamp(since, tz=dt_timezone.utc)
    open_twice = list(ABTest.objects.filter(state__in=OPEN_TEST_STATES).values("agent__agent_id", "task_type")
                      .annotate(n=Count("id")).filter(n__gt=1).values_list("agent__agent_id", "task_type"))
    recorded = {item["abtest"] for decisions in ImprovementCycle.objects.values_list("decisions", flat=True)
                for item in decisions if item.get("kind") == "abtest_created"}
    loop_tests = set(ABTest.objects.filter(source="loop", created_at__gte=moment).values_list("id", flat=True))
    events = Counter((event_type, owner, json.dumps(payload, sort_keys=True)) for event_type, owner, payload in
                     Event.objects.filter(timestamp__gte=moment).values_list("type", "owner_id", "payload"))
    return {
        "tests_created": len(loop_tests),
        "duplicate_open_tests": open_twice,
        "tests_without_a_cycle_decision": sorted(loop_tests - recorded),
        "events_since_start": sum(events.values()),
        "duplicate_events": [key[0] for key, n in events.items() if n > 1],
    }


def rollback_kill(run, tries=20):
    """kill -9 of an operator's rollback, at random moments, `tries` times."""
    from django.contrib.auth.models import User

    from learning import versions
    from learning.models import LearningProfile, LiveVersion, QEntry, StateVersion, VersionReason
    from qefleet.memory.models import Agent

    from .bench import Bench

    run.fresh("bare")
    agent = Agent.objects.get(agent_id=run.agents[0][0])
    Bench(0, None).fill_q_table(agent, ROLLBACK_Q_ENTRIES)
    profile, _ = LearningProfile.objects.get_or_create(agent=agent)
    first = versions.capture(agent, VersionReason.ON_DEMAND, profile)
    QEntry.objects.filter(agent=agent).update(q_value=F("q_value") + 0.25, visits=F("visits") + 1)
    second = versions.capture(agent, VersionReason.ON_DEMAND, profile)
    StateVersion.objects.filter(pk__in=[first.pk, second.pk]).update(pinned=True)
    User.objects.get_or_create(username=ROLLBACK_OPERATOR)
    env = run.processes.environment()
    numbers = {first.pk: first.number, second.pk: second.number}

    def target():
        live = LearningProfile.objects.get(agent=agent).live_version_id
        return first.number if live == second.pk else second.number

    full_s = _rollback_child(run, env, agent.agent_id, target(), kill_after=None)
    outcomes, violations = Counter(), []
    for attempt in range(tries):
        wanted = target()
        finished = _rollback_child(run, env, agent.agent_id, wanted, kill_after=random.uniform(0, full_s * 1.1))
        profile = LearningProfile.objects.with_live_version().get(agent=agent)
        live = list(LiveVersion.objects.filter(agent=agent, live_until__isnull=True).values_list("version_id", flat=True))
        state_sum = versions.checksum(versions.learned_state(agent, profile))
        consistent = (len(live) == 1 and live[0] == profile.live_version_id
                      and state_sum == profile.live_version.checksum)
        if not consistent:
            violations.append(attempt)
        landed = numbers.get(profile.live_version_id) == wanted
        outcomes["finished" if finished is not None else ("killed, committed" if landed else "killed, rolled back")] += 1
    figures = {"tries": tries, "q_entries": ROLLBACK_Q_ENTRIES, "uncut_rollback_s": round(full_s, 2),
               "outcomes": dict(outcomes), "inconsistent_after_tries": violations, "integrity": integrity()}
    return not violations and figures["integrity"] == "ok", figures


ROLLBACK_OPERATOR = "faults-operator"
ROLLBACK_CHILD = (
    "import sys, django; django.setup(); "
    "from learning.harness.faults import roll_back_as_child; roll_back_as_child(sys.argv[1], int(sys.argv[2]))"
)


def roll_back_as_child(agent_id, number):
    """The child process of the rollback scenario: an operator's rollback,
    announcing when it starts and how long it took."""
    from django.contrib.auth.models import User

    from learning import operations
    from qefleet.memory.models import Agent

    agent = Agent.objects.get(agent_id=agent_id)
    user = User.objects.get(username=ROLLBACK_OPERATOR)
    print("ready", flush=True)
    started = time.perf_counter()
    operations.roll_back_to(agent, number, user, reason="fault injection")
    print(f"done {time.perf_counter() - started:.3f}", flush=True)


def _rollback_child(run, env, agent_id, number, kill_after):
    """Run one rollback in a child; kill it `kill_after` seconds into the
    rollback. Returns the rollback's duration, or None when it was killed first."""
    child = run.processes.start("rollback", [sys.executable, "-c", ROLLBACK_CHILD, agent_id, str(number)], env,
                                stdout=subprocess.PIPE, stderr=open(FAULTS_DIR / "rollback.log", "ab"))
    if child.stdout.readline().strip() != b"ready":
        child.wait()
        raise ScenarioError("The rollback child failed to start; see var/faults/rollback.log.")
    if kill_after is not None:
        time.sleep(kill_after)
        if child.poll() is None:
            run.processes.kill(child)
    line = child.stdout.readline().decode().split()
    child.wait()
    child.stdout.close()
    return float(line[1]) if line[:1] == ["done"] else None


SCENARIOS = {
    "web_kill": ("kill -9 web mid-report", web_kill),
    "cluster_kill_orm": ("kill -9 cluster mid-cycle (ORM)", lambda run: cluster_kill(run, "orm")),
    "cluster_kill_redis": ("kill -9 cluster mid-cycle (Redis)", lambda run: cluster_kill(run, "redis")),
    "disk_full": ("database quota full", disk_full),
    "graceful_restart": ("graceful restart under load", graceful_restart),
    "rollback_kill": ("kill -9 during rollback", rollback_kill),
}


def table(results):
    rows = [("scenario", "result", "figures")]
    for name, result in results.items():
        verdict = {True: "PASS", False: "FAIL", None: "PENDING"}[result["passed"]]
        rows.append((SCENARIOS[name][0], verdict, _headline(result["figures"])))
    width = [max(len(row[column]) for row in rows) for column in range(2)]
    return "\n".join(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}" for row in rows)


HEADLINES = (
    "error", "pending", "serving_after_restart_s", "retry_statuses", "load_killed_inside_a_transaction",
    "load_keys_with_two_or_more", "balance_end", "killed_inside_a_transaction", "steps_done_at_kill",
    "rerun_done_after_first_start_s", "rerun_done_after_kill_s", "cycle_rows_for_slot", "guard_reruns_of_slot", "tests_created",
    "accepted_before_full", "statuses", "recovered_after_s", "requests", "accepted", "downtime_s",
    "server_errors", "outcomes", "inconsistent_after_tries", "integrity", "integrity_end",
)


def _headline(figures):
    return "; ".join(f"{name}={json.dumps(figures[name])}" for name in HEADLINES if name in figures)


def run_scenarios(names, processes, write):
    FAULTS_DIR.mkdir(parents=True, exist_ok=True)
    run = FaultRun(processes, write)
    results = {}
    try:
        for name in names:
            title, scenario = SCENARIOS[name]
            write(f"{title} ...")
            started = time.monotonic()
            try:
                passed, figures = scenario(run)
            except Exception as error:  # a scenario that breaks is a failure to report, not a crash
                passed, figures = False, {"error": f"{type(error).__name__}: {error}"}
            finally:
                processes.stop_all()
            figures["seconds"] = round(time.monotonic() - started, 1)
            results[name] = {"passed": passed, "figures": figures}
            write(f"  {'PASS' if passed else 'PENDING' if passed is None else 'FAIL'}: {_headline(figures)}")
    finally:
        processes.stop_all()
        connections.close_all()
    return results


def write_json(results, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"database": "sqlite", "cpus": os.cpu_count(), "q_timeout": Q_TIMEOUT, "q_retry": Q_RETRY,
            "cycle_slot_seconds": SLOT_SECONDS, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps({"meta": meta, "scenarios": results}, indent=2, default=str))
    return path

