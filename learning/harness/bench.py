"""The benchmark behind `make bench`: figures for the learning loop's targets.

It builds a throw-away database with the production settings (a SQLite file
in WAL mode, or the configured PostgreSQL), drives the full stack in-process
with Django's test client, and reports percentiles. Targets are printed next
to each figure; nothing here asserts, since machines are noisy.
"""

import itertools
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from learning import abtests, improvement, overhead, safeguard, services, versions
from learning.core import engine, stats
from learning.models import (
    ABArm,
    Decision,
    Execution,
    FailurePattern,
    LearnedPattern,
    LearningProfile,
    QEntry,
    Strategy,
    VersionReason,
)
from learning.schemas import ExecutionIn, TaskIn
from qefleet.memory.fleet import issue_token, register_agent, register_demo_fleet
from qefleet.memory.models import Agent
from qefleet.memory.ttl import sweep_expired

from .poisoning import MATE_COST_TARGET
from .simulator import demo_agent_ids

TASK_TYPES = ("unit-tests", "integration-tests", "e2e-tests")


def percentiles(samples_ms):
    values = np.asarray(samples_ms)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)), "n": len(values)}


def cpu_reference_ms():
    """A fixed pure-Python workload (best of 5), so figures taken in a slow
    hour of a shared machine can be told from a slower build: the 2-core
    VMs here vary by 1.7x from hour to hour."""
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        sum(number * number for number in range(1_000_000))
        timings.append((time.perf_counter() - start) * 1000)
    return min(timings)


def task_body(number, rng):
    return {"id": f"bench-{number}", "type": TASK_TYPES[number % len(TASK_TYPES)],
            "complexity": float(rng.choice([0.2, 0.5, 0.8])), "required_capabilities": ["a"] * int(rng.choice([1, 3, 6])),
            "previous_attempts": 0, "available_resources": float(rng.choice([0.5, 0.9]))}


def result_body(rng):
    success = bool(rng.random() < 0.7)
    errors = [] if success else [{"type": "TimeoutError", "message": "timed out"}]
    return {"success": success, "execution_time_ms": int(rng.integers(200, 8000)), "errors": errors,
            "coverage": round(float(rng.random()), 3)}


class Bench:
    def __init__(self, tasks, out):
        self.tasks = tasks
        self.out = out
        self.rng = np.random.default_rng(42)
        self.numbers = itertools.count(1)
        self.figures = {}

    def agent(self, agent_id):
        agent, _ = register_agent(agent_id, "bench", "bench", "bench")
        _, token = issue_token(agent)
        client = Client(headers={"Authorization": f"Bearer {token}"})
        return agent, client

    def full_task(self, agent, client):
        """One recommendation and its execution report through HTTP; ms."""
        body = task_body(next(self.numbers), self.rng)
        start = time.perf_counter()
        decision = client.post(f"/api/v1/agents/{agent.agent_id}/recommendations", {"task": body},
                               content_type="application/json")
        report = client.post(f"/api/v1/agents/{agent.agent_id}/executions",
                             {"decision_id": decision.json()["decision_id"], "task": body,
                              "result": result_body(self.rng)}, content_type="application/json")
        elapsed = (time.perf_counter() - start) * 1000
        if decision.status_code != 200 or report.status_code != 201:
            raise RuntimeError(f"bench request failed: {decision.status_code} {report.status_code} {report.content!r}")
        return elapsed

    def floor(self, agent, client):
        start = time.perf_counter()
        for _ in range(2):
            client.get(f"/api/v1/agents/{agent.agent_id}")
        return (time.perf_counter() - start) * 1000

    def learning_step(self, agent):
        """The report's learning alone: services.report_execution with its commit; ms."""
        body = task_body(next(self.numbers), self.rng)
        decision = services.recommend(agent, TaskIn(**body))
        payload = {"decision_id": decision["decision_id"], "task": body, "result": result_body(self.rng)}
        report = ExecutionIn(**payload)
        start = time.perf_counter()
        services.report_execution(agent, report, None, report.model_dump(mode="json"))
        return (time.perf_counter() - start) * 1000

    def fill_q_table(self, agent, entries):
        strategies = list(Strategy.objects.active())
        states = itertools.product(range(11), repeat=5)
        rows = []
        for state in states:
            key = engine.state_key(np.array(state) / 10)
            for strategy in strategies:
                rows.append(QEntry(agent=agent, task_type=TASK_TYPES[len(rows) % 3], state_key=key,
                                   strategy=strategy, q_value=float(self.rng.normal(0, 0.5)), visits=1))
            if len(rows) >= entries:
                break
        QEntry.objects.bulk_create(rows[:entries], batch_size=2000, ignore_conflicts=True)

    def fill_experiences(self, agent, count):
        """`count` decisions and their executions spread over the task types
        and strategies (one in seven explored, a fifth failing with a
        timeout), and the profile's task count to match."""
        strategies = Strategy.catalog()
        decisions = Decision.objects.bulk_create([
            Decision(agent=agent, task_id=f"x-{n}", task_type=TASK_TYPES[n % 3], state_key="0.5,0.1,0.0,0.9,1.0",
                     strategy=strategies[n % len(strategies)], explored=n % 7 == 0,
                     propensity=0.075 if n % 7 == 0 else 0.925, epsilon=0.3, q_value=0.1)
            for n in range(1, count + 1)
        ], batch_size=500)
        Execution.objects.bulk_create([
            Execution(agent=agent, decision=decision, idempotency_key=f"x-{n}", request_digest="0" * 64, sequence=n,
                      task_id=f"x-{n}", task_type=decision.task_type, state_key="0.5,0.1,0.0,0.9,1.0",
                      next_state_key="0.5,0.1,0.1,0.8,1.0", strategy=decision.strategy,
                      success=n % 5 != 0, failure_classes="" if n % 5 else "timeout", error_count=int(n % 5 == 0),
                      execution_time_ms=1000 + 7 * (n % 300), reward=1.0, previous_q=0.0, q_value=0.1, response={})
            for n, decision in enumerate(decisions, start=1)
        ], batch_size=500)
        profile, _ = LearningProfile.objects.get_or_create(agent=agent)
        profile.task_count = count
        profile.save()
        return profile

    def versions(self, samples=10):
        """Capture an agent with 5,000 Q entries and 1,000 experiences, and roll it
        back (capture before, restore with its checksum check, records, event, alert)."""
        agent, _ = self.agent("bench-versions")
        self.fill_q_table(agent, 5000)
        profile = self.fill_experiences(agent, 1000)
        capture_ms, rollback_ms, version = [], [], None
        for _ in range(samples):
            start = time.perf_counter()
            version = versions.capture(agent, VersionReason.ON_DEMAND, profile)
            capture_ms.append((time.perf_counter() - start) * 1000)
        for _ in range(samples):
            start = time.perf_counter()
            with transaction.atomic():
                safeguard.roll_back(agent, profile, version, automatic=False, actor="bench")
            rollback_ms.append((time.perf_counter() - start) * 1000)
        return {"capture_ms": percentiles(capture_ms), "rollback_ms": percentiles(rollback_ms),
                "bytes": version.size_bytes, "q_entries": version.q_entries}

    def improvement_fleet(self, running_tests=20):
        """The demo fleet with 1,000 experiences each, patterns that offer
        opportunities, frequent failures, and `running_tests` undecided tests."""
        strategies = Strategy.catalog()
        agents = list(Agent.objects.filter(agent_id__in=demo_agent_ids()).order_by("agent_id"))
        for agent in agents:
            self.fill_experiences(agent, 1000)
            self.fill_q_table(agent, 300)
            LearnedPattern.objects.bulk_create([
                LearnedPattern(agent=agent, task_type=task_type, strategy=strategy, uses=uses,
                               successes=int(uses * rate), confidence=0.6)
                for task_type in TASK_TYPES
                for strategy, uses, rate in zip(strategies, (200, 40, 30, 20), (0.6, 0.8, 0.7, 0.5))
            ])
            FailurePattern.objects.create(agent=agent, task_type=TASK_TYPES[0], failure_class="timeout",
                                          frequency=200, confidence=0.2, mitigation=engine.MITIGATIONS["timeout"])
        for agent, task_type in list(itertools.product(agents, TASK_TYPES))[:running_tests]:
            test = abtests.create(agent, task_type, strategies[0], strategies[1], source="api")
            ABArm.objects.filter(test=test).update(n=60, successes=42, total_ms=60 * 2000)
        return agents

    def improvement_cycle(self, samples=3):
        """The scheduled cycle for the whole fleet, each run in a new slot."""
        self.improvement_fleet()
        durations, counts = [], None
        for hour in range(samples):
            start = time.perf_counter()
            counts = improvement.run_all(timezone.now() + timedelta(hours=hour + 1))
            durations.append((time.perf_counter() - start) * 1000)
        return {"cycle_ms": percentiles(durations), "last_counts": counts}

    def cycle_under_load(self, agent_threads=4, tasks_per_thread=150):
        """Simulated agents working while the cycle and a TTL sweep run beside
        them: their latencies and errors."""
        latencies, errors = [], []

        def agent_worker(number):
            try:
                agent, client = self.agent(f"bench-load-{number}")
                for _ in range(tasks_per_thread):
                    try:
                        latencies.append(self.full_task(agent, client))
                    except RuntimeError as error:
                        errors.append(str(error)[:200])
            finally:
                connections.close_all()

        def background():
            try:
                for hour in range(3):
                    improvement.run_all(timezone.now() + timedelta(hours=10 + hour))
                    sweep_expired(now=timezone.now() + timedelta(days=31))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=agent_worker, args=(n,)) for n in range(agent_threads)]
        threads.append(threading.Thread(target=background))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"task_ms": percentiles(latencies), "errors": len(errors), "first_errors": errors[:3]}

    @staticmethod
    def overhead_timing(reports=20_000, writes=20):
        """What measuring the overhead costs: per report, a stopwatch, a lap
        per stage and adding them to a buffer (µs); and a worker's write of
        a minute's rows, every stage with 50 samples (ms; minutes of 1970,
        which the measured figures leave out)."""
        stages = [stage for stage in overhead.STAGES if stage not in overhead.REQUESTS]
        buffer = overhead.OverheadBuffer()
        start = time.perf_counter()
        for _ in range(reports):
            with overhead.stopwatch() as watch:
                overhead.begin()
                for stage in stages:
                    overhead.lap(stage)
                overhead.complete("report")
            buffer.add(watch.samples(), 0.0)
        per_report_us = (time.perf_counter() - start) / reports * 1e6
        rng, write_ms = np.random.default_rng(5), []
        for minute in range(1, writes + 1):
            buffer = overhead.OverheadBuffer()
            for _ in range(50):
                buffer.add([(stage, float(rng.lognormal(0, 1))) for stage in overhead.STAGES], minute * 60.0)
            start = time.perf_counter()
            buffer.flush(minute * 60.0)
            write_ms.append((time.perf_counter() - start) * 1000)
        return {"per_report_us": per_report_us, "write_ms": percentiles(write_ms)}

    @staticmethod
    def overhead_measured(since):
        """The live figures (learning/overhead.py) of every HTTP task of the
        run, read back from the per-minute rows like the dashboard does."""
        overhead.BUFFER.flush(time.time())
        return {figures.stage: {"p50": figures.p50, "p95": figures.p95, "p99": figures.p99, "mean": figures.mean,
                                "n": figures.samples}
                for figures in overhead.stage_figures(since)}

    @staticmethod
    def ab_statistics():
        """Simulated error rate and power of the A/B decision rule (stats.py)."""
        horizon = stats.samples_per_arm()
        return {
            "horizon_per_arm": horizon,
            "aa_false_winners_base_0.5": stats.simulate_false_winners(rate=0.5, look_every=20),
            "aa_false_winners_base_0.8": stats.simulate_false_winners(rate=0.8, look_every=20),
            "power_10_points": stats.simulate_power(0.10, look_every=20),
            "power_20_points": stats.simulate_power(0.20, look_every=20),
        }

    def database_bytes(self):
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.execute("PRAGMA page_count")
                pages = cursor.fetchone()[0]
                cursor.execute("PRAGMA freelist_count")
                free = cursor.fetchone()[0]
                cursor.execute("PRAGMA page_size")
                return (pages - free) * cursor.fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0]

    def run(self, growth_tasks, quality, sharing, say, poisoning=None):
        started = timezone.now().replace(second=0, microsecond=0)
        self.figures["cpu_reference_ms"] = {"before": cpu_reference_ms()}
        register_demo_fleet()
        small, small_client = self.agent("bench-small")
        large, large_client = self.agent("bench-large")
        for _ in range(100):  # warm up and learn ~100 Q entries
            self.full_task(small, small_client)
        say("Warm-up done.")
        floor = [self.floor(small, small_client) for _ in range(self.tasks)]
        at_100 = [self.full_task(small, small_client) for _ in range(self.tasks)]
        self.fill_q_table(large, 50_000)
        say(f"Q entries: {QEntry.objects.filter(agent=small).count()} and {QEntry.objects.filter(agent=large).count()}.")
        at_50k = [self.full_task(large, large_client) for _ in range(self.tasks)]
        step = [self.learning_step(small) for _ in range(self.tasks)]
        self.figures.update({
            "floor_two_requests_ms": percentiles(floor),
            "task_ms_at_100_q_entries": percentiles(at_100),
            "task_ms_at_50000_q_entries": percentiles(at_50k),
            "learning_step_ms": percentiles(step),
            "q_entries": {"small": QEntry.objects.filter(agent=small).count(),
                          "large": QEntry.objects.filter(agent=large).count()},
        })
        self.figures["versions"] = self.versions()
        say("Latency and versions done; timing the improvement cycle.")
        self.figures["improvement_cycle"] = self.improvement_cycle()
        self.figures["cycle_under_load"] = self.cycle_under_load()
        self.figures["ab_statistics"] = self.ab_statistics()
        say("Improvement loop done; measuring growth.")
        growth_agent, growth_client = self.agent("bench-growth")
        for _ in range(50):
            self.full_task(growth_agent, growth_client)
        before = self.database_bytes()
        for _ in range(growth_tasks):
            self.full_task(growth_agent, growth_client)
        after = self.database_bytes()
        self.figures["bytes_per_task"] = {"tasks": growth_tasks, "bytes": after - before,
                                          "per_task": (after - before) / growth_tasks}
        self.figures["overhead"] = {"timing": self.overhead_timing(), "measured": self.overhead_measured(started)}
        if quality is not None:
            # Last, so its fleets (fresh ones, of their own) do not join the
            # improvement cycles timed above.
            say("Measuring learning quality.")
            self.figures["learning_quality"] = quality()
        if sharing is not None:
            say("Measuring the learning speed-up from pattern sharing.")
            self.figures["sharing"] = sharing()
        if poisoning is not None:
            say("Measuring a poisoned agent's cost to its team mates and false rollbacks.")
            self.figures["poisoning"] = poisoning()
        self.figures["cpu_reference_ms"]["after"] = cpu_reference_ms()
        return self.figures


def table(figures):
    floor = figures["floor_two_requests_ms"]["p50"]
    small = figures["task_ms_at_100_q_entries"]
    large = figures["task_ms_at_50000_q_entries"]
    step = figures["learning_step_ms"]
    cpu = figures["cpu_reference_ms"]
    rows = [
        ("CPU reference, before / after (lower is faster)", f"{cpu['before']:.0f} / {cpu['after']:.0f} ms",
         "this machine's speed at the time"),
        ("learning step, no HTTP (p50)", f"{step['p50']:.2f} ms", "<= 1.5 ms"),
        ("task: recommendation + execution (p50)", f"{small['p50']:.2f} ms", "<= 4 ms"),
        ("task (p95)", f"{small['p95']:.2f} ms", ""),
        ("task (p99)", f"{small['p99']:.2f} ms", "<= 12 ms"),
        ("floor: two no-op requests (p50)", f"{floor:.2f} ms", ""),
        ("task / floor", f"{small['p50'] / floor:.2f}x", "<= 4x"),
        ("task at 50,000 Q entries (p50)", f"{large['p50']:.2f} ms", ""),
        ("50,000 vs 100 Q entries", f"{large['p50'] / small['p50']:.2f}x", "<= 1.3x"),
        ("database growth per task", f"{figures['bytes_per_task']['per_task']:.0f} B", "<= 2048 B"),
        ("version capture, 5,000 Q + 1,000 exp. (p50)", f"{figures['versions']['capture_ms']['p50']:.1f} ms",
         "<= 50 ms"),
        ("version size", f"{figures['versions']['bytes'] / 1024:.0f} KB", "<= 300 KB"),
        ("rollback end to end, 5,000 Q (p50)", f"{figures['versions']['rollback_ms']['p50']:.1f} ms", "<= 200 ms"),
    ]
    cycle, load, ab = figures["improvement_cycle"], figures["cycle_under_load"], figures["ab_statistics"]
    rows += [
        ("improvement cycle, 17 agents x 1,000 exp., 20 tests (p50)", f"{cycle['cycle_ms']['p50']:.0f} ms",
         "<= 1000 ms"),
        ("tasks beside a cycle and a TTL sweep (p99)", f"{load['task_ms']['p99']:.1f} ms", "< 1000 ms"),
        ("errors seen by those tasks", f"{load['errors']}", "0"),
        ("A/B horizon per arm (10 points, 80 % power)", f"{ab['horizon_per_arm']}", ""),
        ("A/A false winners, a look every 20 (base 0.5)", f"{ab['aa_false_winners_base_0.5']:.1%}", "<= 5 %"),
        ("A/A false winners, a look every 20 (base 0.8)", f"{ab['aa_false_winners_base_0.8']:.1%}", "<= 5 %"),
        ("power at the horizon, +10 points", f"{ab['power_10_points']:.1%}", "reported"),
        ("power at the horizon, +20 points", f"{ab['power_20_points']:.1%}", "reported"),
    ]
    timing, measured = figures["overhead"]["timing"], figures["overhead"]["measured"]
    rows += [
        ("overhead timing per report (stopwatch, laps, buffer)", f"{timing['per_report_us']:.1f} us",
         f"< 1 % of a task ({small['p50'] * 10:.0f} us)"),
        ("overhead write of a minute's rows (p50)", f"{timing['write_ms']['p50']:.2f} ms", "once per worker per 10 s"),
    ]
    rows += [(f"live overhead: {overhead.STAGES[request]} (p50/p95/p99 ms)",
              f"{measured[request]['p50']:.2f}/{measured[request]['p95']:.2f}/{measured[request]['p99']:.1f}",
              f"p99 <= {settings.LEARNING_OVERHEAD_BUDGET_MS} ms")
             for request in overhead.REQUESTS if request in measured]
    text = _rows_table(rows)
    if figures.get("learning_quality"):
        text += "\n\n" + quality_table(figures["learning_quality"])
    if figures.get("sharing"):
        text += "\n\n" + sharing_table(figures["sharing"])
    if figures.get("poisoning"):
        text += "\n\n" + poisoning_table(figures["poisoning"])
    return text


def sharing_table(sharing):
    """The sharing speed-up over seeds (sharing_sim.over_seeds): each seed's,
    then the distribution and the figure over all seeds' newcomers, on
    observed success and on expected success (no coin-flip noise)."""
    def times(speedup):
        return "not reached" if speedup is None else f"{speedup:.2f}x"

    def interval(bounds):
        return f"{bounds[0]:.2f}-{bounds[1]:.2f}x"

    rows = [(f"sharing, seed {run['seed']}: observed / expected",
             f"{times(run['speedup'])} / {times(run['speedup_expected'])}",
             f"95 % intervals {interval(run['speedup_interval'])} / {interval(run['speedup_expected_interval'])}")
            for run in sharing["runs"]]
    rows += [
        (f"sharing: median / lowest over {len(sharing['runs'])} seeds (observed)",
         f"{sharing['median_speedup']:.2f} / {sharing['lowest_speedup']:.2f}x", ""),
        ("sharing: seeds at >= 2x with the interval above 1 (observed)", f"{sharing['seeds_meeting_target']}",
         "reported"),
        ("sharing: all seeds' newcomers, observed", times(sharing["pooled_speedup"]), ">= 2x"),
        ("sharing: its 95 % interval", interval(sharing["pooled_interval"]), "above 1"),
        ("sharing: all seeds' newcomers, expected success", times(sharing["pooled_speedup_expected"]), ">= 2x"),
        ("sharing: its 95 % interval", interval(sharing["pooled_expected_interval"]), "above 1"),
        ("sharing: importers at the first possible task (the window)",
         f"{sharing['importers_at_first_possible']} of {sharing['importers']}", "caps the observed figure"),
    ]
    return _rows_table(rows)


def poisoning_table(figures):
    """A poisoned agent's team mates (poisoning.measure_poisoning) and the
    stable world's rollbacks and restarts (poisoning.measure_stable)."""
    rows = []
    mates = figures.get("team_mates")
    if mates:
        protocol = mates["protocol"]
        low, high = mates["mate_cost_interval"]
        rows += [
            (f"poisoned agent's team mates ({mates['seeds']} seeds): tasks lost each, mean",
             f"{mates['mate_cost']:+.2f}", f"<= {MATE_COST_TARGET:g} tasks"),
            ("  its 95 % interval", f"{low:+.2f} to {high:+.2f}", f"below {MATE_COST_TARGET:g}"),
            ("  one team mate in one seed, lowest / highest",
             f"{mates['mate_cost_range'][0]:+.1f} / {mates['mate_cost_range'][1]:+.1f}", ""),
            (f"  the poisoned agent ({protocol['poisoned']}, tasks {protocol['poison_start']}-"
             f"{protocol['poison_start'] + protocol['poison_length'] - 1} of {protocol['tasks_each']}): all / poisoned",
             f"{mates['poisoned_cost']:+.1f} / {mates['poisoned_cost_during']:+.1f}", "reported"),
            ("  rollbacks: clean runs / poisoned runs", f"{mates['rollbacks_clean']} / {mates['rollbacks_poisoned']}",
             "0 / reported"),
        ]
        if mates["others_cost_largest"] is not None:
            rows.append(("  other teams' largest (a check)", f"{mates['others_cost_largest']:+.2f}", "0"))
        rows += [(f"whole-fleet poisoning (tasks {run['poison_start']}-{run['poison_start'] + run['poison_length'] - 1}"
                  f" of {run['tasks_each']}), seed {run['seed']}: agents rolled back",
                  f"{run['rolled_back']} of {run['agents']}", "> 0") for run in mates["whole_fleet"]]
    stable = figures.get("stable")
    if stable:
        size = f"{stable['agents']} x {stable['tasks_each']:,} stable tasks"
        rows += [(f"false rollbacks, {size}, seed {run['seed']}", f"{len(run['rollbacks'])}", "0")
                 for run in stable["runs"]]
        rows += [(f"  pooled rows restarted, seed {run['seed']}: rows / restarts",
                  f"{run['rows_restarted']} of {run['pooled_rows']} / {run['restarts']}", "reported")
                 for run in stable["runs"]]
        rows += [(f"  gap closed, last 200 tasks, seed {run['seed']}: expected / observed",
                  f"{run['gap_closed_expected']:.2f} / {run['gap_closed_observed']:.2f}", "reported")
                 for run in stable["runs"]]
    return _rows_table(rows)


def _rows_table(rows):
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'figure'.ljust(width)}  {'measured':>14}  target", "-" * (width + 32)]
    lines += [f"{name.ljust(width)}  {value:>14}  {target}" for name, value, target in rows]
    return "\n".join(lines)


# The issue's targets for the share of the random -> oracle gap closed (mean, lowest seed).
QUALITY_TARGETS = {"project": ">= 0.80 mean, no seed < 0.65", "12 buckets": ">= 0.65", "best changes half-way": ">= 0.55",
                   "agents differ": ">= 0.65", "8 strategies": ">= 0.60"}


def quality_table(worlds):
    """Gap closed on expected success (mean / min over seeds) and observed, per world."""
    rows = [(f"gap closed, {name} ({world['seeds']} seeds): expected mean / min",
             f"{world['mean']:.2f} / {world['min']:.2f}", QUALITY_TARGETS.get(name, ""))
            for name, world in worlds.items()]
    rows += [(f"gap closed, {name}: observed mean / min", f"{world['observed_mean']:.2f} / {world['observed_min']:.2f}",
              "") for name, world in worlds.items()]
    return _rows_table(rows)


def write_json(figures, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"database": connection.vendor, "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps({"meta": meta, **figures}, indent=2))
    return path

