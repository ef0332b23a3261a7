"""`make ope-bench`: offline evaluation checked against truth, twice.

1. The simulated world (simulator.FleetEnvironment), where every success
   probability is known: per seed, each agent logs 1,000 tasks with the
   learner's own epsilon-greedy Q-learning (engine.choose, engine.q_update,
   the decaying exploration rate: exact propensities), then the estimator
   evaluates candidate policies from those logs: each fixed strategy on the
   agent's main task type (an A/B question), the final greedy policy (a
   version's), the same with the default exploration rate, and the uniform
   policy. The truth is each policy's exact expected success rate over the
   world's task distribution. Measured: how often the 95 % intervals cover
   it, the doubly robust estimate's relative error, and how often the
   estimator refuses (and whether it refuses the cases it gets wrong).
2. The Open Bandit Dataset sample (Saito et al., ZOZOTOWN), read from obp
   0.5.7's source archive, fetched at benchmark time into var/cache (never
   installed, never vendored): the Bernoulli Thompson sampling policy's
   click rate estimated from the uniform random log, through the CSV
   importer operators use (learning.offline_import), against the click rate
   of the log that policy wrote itself; for the policy of prior_bts.yaml
   (obp's protocol) and for the policy as it ran, by SNIPS and doubly
   robust with each reward model, beside the error that noise alone
   would leave (`noise_floor`).
"""

import csv
import functools
import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from learning import offline_import
from learning.core import engine, offline, scoring

from .simulator import COMPLEXITY_LEVELS, RESOURCE_LEVELS, STRATEGIES, FleetEnvironment

# --- the simulated world ---------------------------------------------------------------

TEAMS = {"test-generator": "core-testing", "test-executor": "core-testing", "coverage-analyzer": "core-testing",
         "performance-tester": "performance-security", "security-scanner": "performance-security"}
LOGGED_AGENTS = ("test-executor", "coverage-analyzer", "security-scanner")
CAPABILITY_COUNTS = {"few": 2, "many": 6}


def _state(task):
    vector = engine.state_vector(task["complexity"], len(task["required_capabilities"]), task["previous_attempts"],
                                 task["available_resources"])
    return engine.state_key(vector)


def log_agent(environment, agent_id, tasks, rng, capture_at):
    """`tasks` logged decisions of one agent learning as the product does:
    (task types, state keys, actions, propensities, successes, the Q-table
    as a version captured after `capture_at` tasks would hold it)."""
    config = engine.DEFAULT_CONFIG
    epsilon = config["exploration_rate"]
    q = {}
    rows = []
    version = {}
    for number in range(tasks):
        if number == capture_at:
            version = {key: values.copy() for key, values in q.items()}
        task = environment.next_task(agent_id)
        key = (task["type"], _state(task))
        values = q.setdefault(key, np.zeros(len(STRATEGIES)))
        choice = engine.choose(values, epsilon, rng)
        result = environment.outcome(task, STRATEGIES[choice.index])
        reward = scoring.reward(result["success"], result["execution_time_ms"], len(result["errors"]),
                                result.get("coverage"))
        attempts, resources = engine.next_attempt(0, task["available_resources"])
        next_key = (task["type"], engine.state_key(engine.state_vector(
            task["complexity"], len(task["required_capabilities"]), attempts, resources)))
        best_next = float(q[next_key].max()) if next_key in q else 0.0
        values[choice.index] = engine.q_update(values[choice.index], reward, best_next, config["learning_rate"],
                                               config["discount_factor"])
        epsilon = engine.decayed_epsilon(epsilon, config["exploration_decay"], config["min_exploration_rate"])
        rows.append((task["type"], key[1], choice.index, choice.propensity, float(result["success"])))
    types, keys, actions, propensities, successes = (np.array(column) for column in zip(*rows))
    return types, keys, actions.astype(int), propensities.astype(float), successes, version


def world_contexts(environment, agent_id):
    """Every (task type, state key, probability, success rates by strategy)
    of the agent's task distribution, exactly."""
    types = environment.task_types(TEAMS[agent_id])
    main = environment.main_task_type(agent_id)
    others = [kind for kind in types if kind != main]
    type_share = {main: environment.primary_share if others else 1.0}
    type_share.update({kind: (1 - environment.primary_share) / len(others) for kind in others})
    contexts = []
    for kind, share in type_share.items():
        for complexity in COMPLEXITY_LEVELS.values():
            for count in CAPABILITY_COUNTS.values():
                for resources, weight in zip(RESOURCE_LEVELS, environment.resource_weights):
                    task = {"type": kind, "complexity": complexity, "required_capabilities": ["x"] * count,
                            "previous_attempts": 0, "available_resources": resources}
                    rates = np.array([environment.success_probability(task, name) for name in STRATEGIES])
                    probability = share * weight / (len(COMPLEXITY_LEVELS) * len(CAPABILITY_COUNTS))
                    contexts.append((kind, _state(task), probability, rates))
    return contexts


def _greedy_distribution(q, key, epsilon):
    values = q.get(key)
    mask = np.zeros((1, len(STRATEGIES)), dtype=bool)
    if values is None:
        mask[0, 0] = True  # nothing learned: the catalog's first strategy, as a fresh agent uses its default
    else:
        mask[0] = values == values.max()
    return offline.epsilon_greedy(mask, epsilon)[0]


def candidates(version):
    """name -> (distribution for a (task type, state key), which logs: "main"
    (the agent's main task type), "all", or "after" (the tasks after the
    version's capture, which did not shape its Q-values: on the tasks that
    did, its greedy choices would look better than they are))."""
    policies = {f"fixed:{name}": ((lambda key, index=index: np.eye(len(STRATEGIES))[index]), "main")
                for index, name in enumerate(STRATEGIES)}
    policies["version greedy"] = ((lambda key: _greedy_distribution(version, key, 0.0)), "after")
    policies["version explore 0.3"] = (
        (lambda key: _greedy_distribution(version, key, engine.DEFAULT_CONFIG["exploration_rate"])), "after")
    policies["uniform"] = ((lambda key: np.full(len(STRATEGIES), 1 / len(STRATEGIES))), "all")
    return policies


def simulate_seed(seed, tasks=1000, replicates=500):
    """One seed's evaluations: a list of dicts (agent, policy, truth, estimates or refusal)."""
    environment = FleetEnvironment(TEAMS, seed)
    rng = np.random.default_rng([seed, 7])
    results = []
    for agent_id in LOGGED_AGENTS:
        types, keys, actions, propensities, successes, version = log_agent(environment, agent_id, tasks, rng,
                                                                           tasks // 2)
        main = environment.main_task_type(agent_id)
        world = world_contexts(environment, agent_id)
        for name, (policy, which) in candidates(version).items():
            main_only = which == "main"
            rows = types == main if main_only else np.ones(len(types), dtype=bool)
            if which == "after":
                rows[:tasks // 2] = False
            codes = {}
            contexts = np.array([codes.setdefault((kind, key), len(codes))
                                 for kind, key in zip(types[rows], keys[rows])], dtype=int)
            logs = offline.Logs.build(contexts, actions[rows], propensities[rows], successes[rows],
                                      max(len(codes), 1), len(STRATEGIES))
            target = np.array([policy((kind, key)) for kind, key in zip(types[rows], keys[rows])])
            relevant = [(p, rates, policy((kind, key))) for kind, key, p, rates in world
                        if not main_only or kind == main]
            total = sum(p for p, _, _ in relevant)
            truth = sum(p * float(rates @ distribution) for p, rates, distribution in relevant) / total
            record = {"seed": seed, "agent": agent_id, "policy": name, "truth": truth, "rows": int(rows.sum())}
            try:
                evaluation = offline.evaluate(logs, target, seed=seed, replicates=replicates)
            except offline.NotCovered as refused:
                # What the estimate would have been, to see whether refusing was right.
                record.update(refused=refused.reason, **refused.figures, unrefused=offline.doubly_robust(
                    logs, target, offline.reward_model(logs)))
            else:
                record.update(evaluation.as_dict())
            results.append(record)
    return results


def coverage_study(seeds=50, tasks=1000, first_seed=1, replicates=500, progress=None):
    started = time.perf_counter()
    records = []
    for seed in range(first_seed, first_seed + seeds):
        records.extend(simulate_seed(seed, tasks, replicates))
        if progress:
            progress(f"seed {seed}: {len(records)} evaluations")
    answered = [r for r in records if "refused" not in r]
    refused = [r for r in records if "refused" in r]

    def covered(record, estimator):
        return record[estimator]["low"] <= record["truth"] <= record[estimator]["high"]

    def error(record, value):
        return abs(value - record["truth"]) / record["truth"]

    by_policy = {}
    for name in sorted({r["policy"] for r in records}):
        mine = [r for r in answered if r["policy"] == name]
        by_policy[name] = {
            "evaluations": sum(r["policy"] == name for r in records), "refused": sum(r["policy"] == name
                                                                                  for r in refused),
            "dr_coverage": float(np.mean([covered(r, "doubly_robust") for r in mine])) if mine else None,
            "snips_coverage": float(np.mean([covered(r, "snips") for r in mine])) if mine else None,
            "dr_median_relative_error": float(np.median([error(r, r["doubly_robust"]["value"]) for r in mine]))
            if mine else None,
            "median_effective_samples": float(np.median([r["effective_samples"] for r in mine])) if mine else None,
        }
    return {
        "seeds": seeds, "tasks_per_agent": tasks, "agents": list(LOGGED_AGENTS), "evaluations": len(records),
        "answered": len(answered), "refused": len(refused),
        "dr_coverage": float(np.mean([covered(r, "doubly_robust") for r in answered])),
        "snips_coverage": float(np.mean([covered(r, "snips") for r in answered])),
        "dr_median_relative_error": float(np.median([error(r, r["doubly_robust"]["value"]) for r in answered])),
        "snips_median_relative_error": float(np.median([error(r, r["snips"]["value"]) for r in answered])),
        "refused_median_relative_error": float(np.median([error(r, r["unrefused"]) for r in refused]))
        if refused else None,
        "mean_interval_width": float(np.mean([r["doubly_robust"]["high"] - r["doubly_robust"]["low"]
                                              for r in answered])),
        "by_policy": by_policy,
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- shadow mode's estimate -----------------------------------------------------------------


def shadow_seed(seed, tasks=1000, shadow_tasks=300, replicates=300):
    """Shadow mode in the simulated world: each logged agent learns for
    `tasks` tasks (its past: the reference log), then runs the catalog's
    first strategy in shadow for `shadow_tasks` tasks while its learned
    greedy choice is logged. offline.compare_with_reference estimates the
    learned policy against the agent's own; the truth is the world's exact
    success probabilities of both choices on those very tasks."""
    environment = FleetEnvironment(TEAMS, seed)
    rng = np.random.default_rng([seed, 11])
    results = []
    for agent_id in LOGGED_AGENTS:
        types, keys, actions, propensities, successes, q = log_agent(environment, agent_id, tasks, rng, tasks - 1)
        codes = {}
        past = [codes.setdefault(key, len(codes)) for key in zip(types, keys)]
        rows, truth_own, truth_learned = [], [], []
        for _ in range(shadow_tasks):
            task = environment.next_task(agent_id)
            key = (task["type"], _state(task))
            learned = int(np.argmax(q[key])) if key in q else 0
            result = environment.outcome(task, STRATEGIES[0])
            rows.append((codes.setdefault(key, len(codes)), learned, float(result["success"])))
            truth_own.append(environment.success_probability(task, STRATEGIES[0]))
            truth_learned.append(environment.success_probability(task, STRATEGIES[learned]))
        contexts, learned, rewards = (np.array(column) for column in zip(*rows))
        logs = offline.Logs.build(contexts, np.zeros(shadow_tasks, dtype=int), np.ones(shadow_tasks), rewards,
                                  len(codes), len(STRATEGIES))
        reference = offline.Logs.build(past, actions, propensities, successes, len(codes), len(STRATEGIES))
        target = np.eye(len(STRATEGIES))[learned.astype(int)]
        lift = float(np.mean(truth_learned) - np.mean(truth_own))
        record = {"seed": seed, "agent": agent_id, "truth_lift": lift, "truth_learned": float(np.mean(truth_learned))}
        try:
            record.update(offline.compare_with_reference(logs, target, reference, replicates=replicates,
                                                         seed=seed).as_dict())
        except offline.NotCovered as refused:
            record["refused"] = refused.reason
        results.append(record)
    return results


def shadow_study(seeds=50, tasks=1000, shadow_tasks=300, first_seed=1, replicates=300, margin=0.02):
    """Coverage and error of shadow mode's estimate over `seeds` seeds, and
    what the promotion rule (lower bound above `margin`) would have done:
    promotions, and those where the learned policy was truly no better."""
    started = time.perf_counter()
    records = [record for seed in range(first_seed, first_seed + seeds)
               for record in shadow_seed(seed, tasks, shadow_tasks, replicates)]
    answered = [r for r in records if "refused" not in r]

    def covers(record, name, truth):
        return record[name]["low"] <= record[truth] <= record[name]["high"]

    return {
        "seeds": seeds, "tasks_per_agent": tasks, "shadow_tasks": shadow_tasks, "margin": margin,
        "estimates": len(records),
        "refused": len(records) - len(answered),
        "lift_coverage": float(np.mean([covers(r, "lift", "truth_lift") for r in answered])),
        "learned_coverage": float(np.mean([covers(r, "target", "truth_learned") for r in answered])),
        "lift_median_abs_error": float(np.median([abs(r["lift"]["value"] - r["truth_lift"]) for r in answered])),
        "lift_mean_error": float(np.mean([r["lift"]["value"] - r["truth_lift"] for r in answered])),
        "mean_lift_width": float(np.mean([r["lift"]["high"] - r["lift"]["low"] for r in answered])),
        "median_agreement": float(np.median([r["agreement"] for r in answered])),
        "promoted": sum(r["lift"]["low"] > margin for r in answered),
        "promoted_not_better": sum(r["lift"]["low"] > margin and r["truth_lift"] <= 0 for r in answered),
        "truly_better_by_margin": sum(r["truth_lift"] > margin for r in answered),
        "seconds": round(time.perf_counter() - started, 1),
    }


# --- the what-if's own time --------------------------------------------------------------


def time_whatif(tasks=1000, seed=1, repeats=7):
    """Seconds a what-if takes at `tasks` logged tasks of one agent, stored as
    recommend and report store them (needs a database: the command gives it
    a throw-away one). Median and slowest of `repeats`."""
    from learning import offline_eval
    from learning.models import Decision, Execution, Strategy
    from qefleet.memory.fleet import register_agent

    agent, _ = register_agent("ope-bench-agent", "test-executor", "core-testing", "ope-bench", False)
    # Second of its team, so its main task type is integration tests, where one strategy is best everywhere.
    environment = FleetEnvironment({"ope-bench-peer": "core-testing", agent.agent_id: "core-testing"}, seed)
    types, keys, actions, propensities, successes, _ = log_agent(environment, agent.agent_id, tasks,
                                                                np.random.default_rng(seed), tasks)
    strategies = {strategy.name: strategy for strategy in Strategy.objects.all()}
    decisions, executions = [], []
    for number, (kind, key, action, propensity, success) in enumerate(zip(types, keys, actions, propensities,
                                                                          successes)):
        strategy = strategies[STRATEGIES[action]]
        decision = Decision(agent=agent, task_id=f"ope-{number}", task_type=kind, state_key=key, strategy=strategy,
                            explored=False, propensity=propensity, epsilon=0.0, q_value=0.0)
        decisions.append(decision)
        executions.append(Execution(
            agent=agent, decision=decision, idempotency_key=f"ope-{number}", request_digest="", sequence=number + 1,
            task_id=decision.task_id, task_type=kind, state_key=key, next_state_key=key, strategy=strategy,
            success=bool(success), execution_time_ms=2000, reward=0.0, previous_q=0.0, q_value=0.0, response={}))
    Decision.objects.bulk_create(decisions)
    Execution.objects.bulk_create(executions)
    main = environment.main_task_type(agent.agent_id)
    # The strategy the agent used most for its main task type: a question the logs can answer (a refusal
    # returns before the bootstrap, so it would time nothing).
    used_most = STRATEGIES[int(np.bincount(actions[types == main], minlength=len(STRATEGIES)).argmax())]
    policy = offline_eval.Fixed(main, strategies[used_most])
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = offline_eval.evaluate(offline_eval.agents_in_scope(agent), policy)
        seconds.append(time.perf_counter() - started)
    return {"tasks": tasks, "question": answer["policy"], "median_s": float(np.median(seconds)),
            "max_s": float(max(seconds)), "refused": answer.get("refused", {}).get("reason")}


# --- the Open Bandit Dataset ----------------------------------------------------------------

OBP = "obp==0.5.7"
ARCHIVE = "obp-0.5.7.tar.gz"
CAMPAIGNS = ("all", "men", "women")
POSITIONS = 3
MONTE_CARLO = 100_000


def fetch_archive(cache):
    """obp's source archive in `cache`, downloaded by pip when missing (its
    Python pin is for installing, which we never do)."""
    cache = Path(cache)
    archive = cache / ARCHIVE
    if not archive.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--ignore-requires-python", "--dest", str(cache), OBP], check=True)
    return archive


def _member(archive, suffix):
    name = next(member for member in archive.getnames() if member.endswith(suffix))
    return archive.extractfile(name).read().decode()


def parse_prior(text):
    """{campaign: {"alpha": [...], "beta": [...]}} from prior_bts.yaml, a
    two-level mapping of number lists (read here to need no YAML library)."""
    prior, campaign, key = {}, None, None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith(" ") and stripped.endswith(":"):
            campaign = prior.setdefault(stripped[:-1], {})
        elif stripped.endswith(":"):
            key = stripped[:-1]
            campaign[key] = []
        elif stripped.startswith("- "):
            campaign[key].append(float(stripped[2:]))
    return prior


def thompson_distribution(alpha, beta, draws=MONTE_CARLO, seed=0):
    """(positions, items): how often Bernoulli Thompson sampling with this
    prior ranks each item at each of the first positions (sample a rate per
    item from Beta(alpha, beta), rank by it), by Monte Carlo."""
    rng = np.random.default_rng(seed)
    alpha, beta = np.asarray(alpha), np.asarray(beta)
    counts = np.zeros((POSITIONS, len(alpha)))
    for start in range(0, draws, 10_000):
        sampled = rng.beta(alpha, beta, size=(min(10_000, draws - start), len(alpha)))
        ranked = np.argsort(-sampled, axis=1)[:, :POSITIONS]
        for position in range(POSITIONS):
            counts[position] += np.bincount(ranked[:, position], minlength=len(alpha))
    return counts / draws


def as_run_distribution(positions, items, n_items):
    """(positions, items): how often the Thompson sampling log itself showed
    each item at each position, its clicks unused. The production policy
    updated its Beta parameters while it logged (its logged propensities
    drift: hundreds of values per (position, item)); prior_bts.yaml holds
    them at the start of the period only, so this is the policy whose click
    rate the log's truth measures."""
    counts = np.zeros((POSITIONS, n_items))
    np.add.at(counts, (positions, items), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def _log_csv(text):
    """The importer's CSV of an OBD log (context: the position; action: the
    item), and the log's clicks, positions (from 0) and items."""
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(offline_import.LOG_COLUMNS)
    for row in rows:
        writer.writerow((f"position-{row['position']}", f"item-{row['item_id']}", row["propensity_score"],
                         row["click"]))
    clicks, positions, items = (np.array([float(row[column]) for row in rows]) for column in
                                ("click", "position", "item_id"))
    return out.getvalue(), clicks, positions.astype(int) - 1, items.astype(int)


def _policy_csv(distribution):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(offline_import.POLICY_COLUMNS)
    for position, row in enumerate(distribution, start=1):
        for item, probability in enumerate(row):
            writer.writerow((f"position-{position}", f"item-{item}", repr(float(probability))))
    return out.getvalue()


def _against(estimate, truth):
    low, high = estimate["low"], estimate["high"]
    return {**estimate, "relative_error": abs(estimate["value"] - truth) / truth, "covers": low <= truth <= high}


FACTORED = functools.partial(offline.reward_model, kind="factored")


def cross_fitted_factored(logs, target, replicates, seed=0):
    """The doubly robust estimate with the factored (position-based) reward
    model, cross-fitted on two folds, and its percentile bootstrap interval:
    each replicate deals the original rows into folds and resamples them
    with their folds, so the copies of a row are fitted or corrected
    together, never both."""
    n = len(logs)
    point = offline.cross_fitted_doubly_robust(logs, target, FACTORED, offline.random_folds(n, seed=seed))
    rng = np.random.default_rng(seed)
    draws = []
    for replicate in range(replicates):
        rows = rng.integers(n, size=n)
        folds = offline.random_folds(n, seed=replicate)[rows]
        draws.append(offline.cross_fitted_doubly_robust(logs.take(rows), target[rows], FACTORED, folds))
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"value": point, "low": float(min(low, point)), "high": float(max(high, point))}


def noise_floor(logs, target, truth, truth_rows):
    """The mean relative error to expect from noise alone, with an exact
    reward model: the clicks' own variance through the weights (the click
    probabilities taken from the factored model) and the truth's binomial
    variance, combined as normal errors (E|N(0, s)| = s sqrt(2/pi))."""
    weights = offline.importance_weights(logs, target)
    rates = FACTORED(logs)[logs.contexts, logs.actions]
    estimate_sd = np.sqrt((weights ** 2 * rates * (1 - rates)).sum()) / weights.sum()
    truth_sd = np.sqrt(truth * (1 - truth) / truth_rows)
    return float(np.sqrt(2 / np.pi) * np.hypot(estimate_sd, truth_sd) / truth)


def evaluate_target(imported, distribution, truth, truth_rows, replicates):
    """One target policy on one campaign's random log, through the importer:
    SNIPS and doubly robust with each reward model (the product's estimator),
    doubly robust with the factored model cross-fitted; each against the truth."""
    target = offline_import.read_policy(_policy_csv(distribution), imported)
    try:
        evaluation = offline.evaluate(imported.logs, target, replicates=replicates)
    except offline.NotCovered as refused:
        return {"refused": refused.as_dict()}
    factored = offline.evaluate(imported.logs, target, replicates=replicates, model="factored")
    estimates = {"snips": evaluation.snips.as_dict(), "dr_cells": evaluation.doubly_robust.as_dict(),
                 "dr_factored": factored.doubly_robust.as_dict(),
                 "dr_factored_crossfit": cross_fitted_factored(imported.logs, target, replicates)}
    return {"estimators": {name: _against(estimate, truth) for name, estimate in estimates.items()},
            "effective_samples": evaluation.effective_samples,
            "noise_floor": noise_floor(imported.logs, target, truth, truth_rows)}


def monte_carlo_check(alpha, beta, distribution, imported):
    """How much the Monte Carlo draws move things: the largest standard error
    of a (position, item) probability, and the relative change of the SNIPS
    estimate when the draws are made again with another seed."""
    again = thompson_distribution(alpha, beta, seed=1)
    values = [offline.snips(imported.logs, offline_import.read_policy(_policy_csv(each), imported))
              for each in (distribution, again)]
    return {"draws": MONTE_CARLO, "max_standard_error": float(np.sqrt(distribution * (1 - distribution)
                                                                       / MONTE_CARLO).max()),
            "snips_shift": abs(values[1] - values[0]) / values[0]}


TARGETS = {"prior": "Thompson sampling from prior_bts.yaml (obp's protocol)",
           "as_run": "the policy as it ran (the log's own (position, item) frequencies)"}
ESTIMATORS = {"snips": "SNIPS", "dr_cells": "DR, cell model", "dr_factored": "DR, factored",
              "dr_factored_crossfit": "DR, factored, x-fit"}


def open_bandit_check(cache, replicates=2000):
    """Per campaign: the Thompson sampling policy's click rate estimated from
    the uniform random log, for both targets (TARGETS), against the click
    rate of the log that policy wrote; and a summary per target and estimator."""
    with tarfile.open(fetch_archive(cache)) as archive:
        prior = parse_prior(_member(archive, "obp/policy/conf/prior_bts.yaml"))
        results = {}
        for campaign in CAMPAIGNS:
            random_log, random_clicks, _, _ = _log_csv(_member(archive, f"obp/dataset/obd/random/{campaign}/"
                                                                       f"{campaign}.csv"))
            _, bts_clicks, bts_positions, bts_items = _log_csv(_member(archive, f"obp/dataset/obd/bts/{campaign}/"
                                                                                f"{campaign}.csv"))
            alpha, beta = prior[campaign]["alpha"], prior[campaign]["beta"]
            imported = offline_import.read_logs(random_log)
            truth = float(bts_clicks.mean())
            distributions = {"prior": thompson_distribution(alpha, beta),
                             "as_run": as_run_distribution(bts_positions, bts_items, len(alpha))}
            results[campaign] = {
                "truth": truth, "truth_clicks": int(bts_clicks.sum()), "rows": len(bts_clicks),
                "random_clicks": int(random_clicks.sum()),
                "monte_carlo": monte_carlo_check(alpha, beta, distributions["prior"], imported),
                "targets": {name: evaluate_target(imported, distribution, truth, len(bts_clicks), replicates)
                            for name, distribution in distributions.items()},
            }
    summary = {"campaigns": results}
    for target in TARGETS:
        answered = [entry["targets"][target] for entry in results.values() if "refused" not in entry["targets"][target]]
        complete = len(answered) == len(CAMPAIGNS)
        summary[target] = {"noise_floor": float(np.mean([e["noise_floor"] for e in answered])) if complete else None}
        for estimator in ESTIMATORS:
            mine = [e["estimators"][estimator] for e in answered]
            summary[target][estimator] = {
                "covers_all": complete and all(e["covers"] for e in mine),
                "mean_relative_error": float(np.mean([e["relative_error"] for e in mine])) if mine else None,
            }
    return summary


# --- printing --------------------------------------------------------------------------------


def tables(figures):
    lines = []
    timing = figures.get("whatif_time")
    if timing:
        lines += [(f"What-if at {timing['tasks']} logged tasks ({timing['question']}): median "
                   f"{timing['median_s']:.3f} s, slowest {timing['max_s']:.3f} s (target < 1 s)"), ""]
    study = figures.get("simulation")
    if study:
        lines += [
            (f"Simulated world: {study['seeds']} seeds x {len(study['agents'])} agents x {study['tasks_per_agent']} "
            f"logged tasks, {study['evaluations']} evaluations ({study['refused']} refused), {study['seconds']} s"),
            (f"  {'policy':<34}{'evals':>6}{'refused':>8}{'DR cover':>9}{'SNIPS cov':>10}{'DR med err':>11}"
            f"{'med ESS':>9}"),
        ]
        for name, row in study["by_policy"].items():
            def cell(value, fmt):
                return format(value, fmt) if value is not None else format("-", fmt[:-2].rstrip("."))
            lines.append(f"  {name:<34}{row['evaluations']:>6}{row['refused']:>8}"
                         f"{cell(row['dr_coverage'], '>9.1%')}{cell(row['snips_coverage'], '>10.1%')}"
                         f"{cell(row['dr_median_relative_error'], '>11.2%')}"
                         f"{cell(row['median_effective_samples'], '>9.0f')}")
        lines += [
            (f"  all answered: DR coverage {study['dr_coverage']:.1%} (target >= 90 %), SNIPS coverage "
            f"{study['snips_coverage']:.1%}; DR median relative error {study['dr_median_relative_error']:.2%} "
            f"(target <= 5 %), SNIPS {study['snips_median_relative_error']:.2%}"),
        ]
        if study["refused_median_relative_error"] is not None:
            lines.append(f"  the refused ones, had they been answered: median relative error "
                         f"{study['refused_median_relative_error']:.2%}")
    shadow = figures.get("shadow")
    if shadow:
        lines += ["", (f"Shadow mode: {shadow['seeds']} seeds x {len(LOGGED_AGENTS)} agents, "
                       f"{shadow['tasks_per_agent']} logged tasks then {shadow['shadow_tasks']} in shadow on the "
                       f"first strategy, {shadow['estimates']} estimates ({shadow['refused']} refused), "
                       f"{shadow['seconds']} s"),
                  (f"  learned - own: 95 % interval covers the truth {shadow['lift_coverage']:.1%}, median absolute "
                   f"error {shadow['lift_median_abs_error'] * 100:.1f} points, mean error "
                   f"{shadow['lift_mean_error'] * 100:+.1f} points, mean width {shadow['mean_lift_width'] * 100:.1f} "
                   f"points; learned value covered {shadow['learned_coverage']:.1%}; median agreement "
                   f"{shadow['median_agreement']:.0%}"),
                  (f"  the rule (lower bound above {shadow['margin'] * 100:+.0f} points) promotes {shadow['promoted']} "
                   f"(truly better by that: {shadow['truly_better_by_margin']}); promoted but truly no better: "
                   f"{shadow['promoted_not_better']}")]
    bandit = figures.get("open_bandit")
    if bandit:
        lines += ["", "Open Bandit Dataset: Bernoulli TS click rate from the uniform random log (the truth: the click "
                  "rate of the log TS wrote)"]
        for campaign, entry in bandit["campaigns"].items():
            check = entry["monte_carlo"]
            lines.append(f"  {campaign}: truth {entry['truth']:.5f} ({entry['truth_clicks']} clicks in "
                         f"{entry['rows']:,} rows; the random log has {entry['random_clicks']}); Monte Carlo "
                         f"{check['draws']:,} draws: "
                         f"standard error <= {check['max_standard_error']:.4f}, SNIPS moves {check['snips_shift']:.2%} "
                         "with another seed")
        for target, title in TARGETS.items():
            lines += [f"  target: {title}",
                      (f"    {'campaign':<9}{'estimator':<22}{'estimate':>9}{'95 % interval':>22}{'rel err':>8}"
                       f"{'covers':>7}{'ESS':>7}{'floor':>7}")]
            for campaign, entry in bandit["campaigns"].items():
                result = entry["targets"][target]
                if "refused" in result:
                    lines.append(f"    {campaign:<9}refused: {result['refused']['message']}")
                    continue
                for estimator, label in ESTIMATORS.items():
                    e = result["estimators"][estimator]
                    lines.append(f"    {campaign:<9}{label:<22}{e['value']:>9.5f}   [{e['low']:.5f}, {e['high']:.5f}]"
                                 f"{e['relative_error']:>8.2f}{'yes' if e['covers'] else 'no':>7}"
                                 f"{result['effective_samples']:>7.0f}{result['noise_floor']:>7.2f}")
            row = bandit[target]
            floor = row["noise_floor"]
            for estimator, label in ESTIMATORS.items():
                error = row[estimator]["mean_relative_error"]
                lines.append(f"    {label}: covers all three: {'yes' if row[estimator]['covers_all'] else 'no'}; mean "
                             f"relative error {'-' if error is None else f'{error:.3f}'} (target <= 0.25)")
            if floor is not None:
                lines.append(f"    noise floor (mean relative error expected with an exact reward model, from the "
                             f"clicks' and the truth's noise): {floor:.3f}")
    return "\n".join(lines)
