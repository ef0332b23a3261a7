"""Offline (counterfactual) evaluation: what a policy would have scored on
the tasks already logged, from the probability the logging policy gave each
logged choice. Pure numpy, no Django.

The logs are rows (context, action, propensity, reward); a target policy is
given by its probability for every action in every logged row's context.
Two estimators, both self-normalised so a handful of large weights cannot
push a success rate past 1:

- SNIPS: sum(w * r) / sum(w) with w = target(a | x) / propensity.
- Doubly robust: the reward model's value of the target (direct part) plus
  the self-normalised weighted residuals of the logged rewards. With a zero
  reward model it is SNIPS exactly; with a right model the weights only
  correct what the model gets wrong.

The reward model ("cells", the default) is the mean reward of each
(context, action) cell, shrunk towards the action's mean over all
contexts, which is shrunk towards the overall mean (SHRINKAGE
pseudo-observations each step), so a cell seen once does not claim to know
its rate. "factored" is context effect x action effect (a position-based
click model when the contexts are positions): it fills a cell never logged
from the action's other contexts, scaled. Each model's predictions are
kept within the range of the rewards it was fitted on (a product of effects
can pass it). `cross_fitted_doubly_robust` fits the model on other rows
than those whose residuals it corrects. `make ope-bench` measures all of
them on the Open Bandit Dataset (no gain there over the cell model: see
the README).

Intervals are percentile bootstrap intervals (the reward model refitted in
every replicate, one seeded generator, vectorised); the doubly robust one
is widened by what the cells the logs never saw could change (the target's
mass there times the room between the model's guess and the logged reward
range), which no resampling of the rows can show. Before estimating
anything, `evaluate` refuses, with the reason, when the logs cannot answer:
no rows, target mass on actions the logs never show (no overlap), or on
(context, action) cells never logged beyond what the reward model may
fill in (no overlap), or too few effective samples.
"""

from dataclasses import dataclass, replace

import numpy as np

LEVEL = 0.95
REPLICATES = 1000
SHRINKAGE = 5.0
MIN_EFFECTIVE = 30.0        # effective samples below this: the weights are too uneven to trust
MAX_UNLOGGED = 0.01         # share of the target's mass on actions the logs never show at all
MAX_UNSUPPORTED = 0.25      # share on (context, action) cells never logged: the reward model fills these in
_CHUNK_CELLS = 4_000_000    # replicate rows x (rows or cells) per block, to bound memory


class NotCovered(Exception):
    """The logs do not cover the target policy. `reason` is one of
    "no_logs", "no_overlap", "too_few_effective_samples"; `figures` holds
    what was measured (effective sample size, unsupported share)."""

    def __init__(self, reason, message, **figures):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.figures = figures

    def as_dict(self):
        return {"reason": self.reason, "message": self.message,
                **{name: round(float(value), 4) for name, value in self.figures.items()}}


@dataclass(frozen=True)
class Logs:
    """Logged decisions as integer codes: `contexts` in range(n_contexts),
    `actions` in range(n_actions), the logging `propensities` of the
    actions taken (in (0, 1]) and their `rewards`."""

    contexts: np.ndarray
    actions: np.ndarray
    propensities: np.ndarray
    rewards: np.ndarray
    n_contexts: int
    n_actions: int

    @classmethod
    def build(cls, contexts, actions, propensities, rewards, n_contexts=None, n_actions=None):
        contexts = np.asarray(contexts, dtype=np.int64)
        actions = np.asarray(actions, dtype=np.int64)
        propensities = np.asarray(propensities, dtype=float)
        rewards = np.asarray(rewards, dtype=float)
        n = len(actions)
        if not (len(contexts) == len(propensities) == len(rewards) == n):
            raise ValueError("contexts, actions, propensities and rewards must have one entry per logged row.")
        if n and not ((propensities > 0) & (propensities <= 1)).all():
            raise ValueError("every logged propensity must be in (0, 1]: a row without one cannot be weighted.")
        if n and not np.isfinite(rewards).all():
            raise ValueError("every reward must be a finite number.")
        n_contexts = int(n_contexts if n_contexts is not None else (contexts.max() + 1 if n else 0))
        n_actions = int(n_actions if n_actions is not None else (actions.max() + 1 if n else 0))
        if n and (contexts.min() < 0 or contexts.max() >= n_contexts or actions.min() < 0
                  or actions.max() >= n_actions):
            raise ValueError("context and action codes must lie in range(n_contexts) and range(n_actions).")
        return cls(contexts, actions, propensities, rewards, n_contexts, n_actions)

    def __len__(self):
        return len(self.actions)

    @property
    def cells(self):
        return self.contexts * self.n_actions + self.actions

    def take(self, rows):
        """The logs of `rows` (indices, or a boolean mask) only."""
        return replace(self, contexts=self.contexts[rows], actions=self.actions[rows],
                       propensities=self.propensities[rows], rewards=self.rewards[rows])


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def as_dict(self):
        return {"value": round(self.value, 5), "low": round(self.low, 5), "high": round(self.high, 5)}


@dataclass(frozen=True)
class Evaluation:
    """A target policy's estimated value on the logs, with 95 % intervals.

    `lift` is the doubly robust estimate minus the logged mean reward (the
    logging policy's own value), its interval from the same replicates."""

    snips: Estimate
    doubly_robust: Estimate
    logged: Estimate
    lift: Estimate
    effective_samples: float
    rows: int
    unsupported: float
    level: float

    def as_dict(self):
        return {"snips": self.snips.as_dict(), "doubly_robust": self.doubly_robust.as_dict(),
                "logged": self.logged.as_dict(), "lift": self.lift.as_dict(),
                "effective_samples": round(self.effective_samples, 1), "rows": self.rows,
                "unsupported": round(self.unsupported, 4), "level": self.level}


# --- the pieces ----------------------------------------------------------------------


def importance_weights(logs, target):
    """target(a_i | x_i) / propensity_i for every logged row; `target` is
    (rows, actions), each row a distribution over the actions."""
    return target[np.arange(len(logs)), logs.actions] / logs.propensities


def effective_samples(weights):
    """Kish's effective sample size, (sum w)^2 / sum w^2: the number of
    equally weighted rows that would carry as much information."""
    weights = np.asarray(weights, dtype=float)
    square = float((weights * weights).sum())
    return 0.0 if square == 0 else float(weights.sum()) ** 2 / square


def _seen(logs, also_seen=None):
    """(contexts, actions) booleans: the cells a logged row shows (and the
    cell indices `also_seen`, from other logs of the same coding)."""
    seen = np.zeros(logs.n_contexts * logs.n_actions, dtype=bool)
    seen[logs.cells] = True
    if also_seen is not None:
        seen[also_seen] = True
    return seen.reshape(logs.n_contexts, logs.n_actions)


def unsupported_share(logs, target, reference=None):
    """The target's mean mass on (context, action) cells with no logged row
    (in `logs`, or in `reference`, other logs of the same coding): there the
    logs say nothing, and a weighting estimator silently drops it."""
    seen = _seen(logs, None if reference is None else reference.cells)
    return float((target * ~seen[logs.contexts]).sum(axis=1).mean()) if len(logs) else 0.0


def unlogged_share(logs, target, reference=None):
    """The target's mean mass on actions no logged row took (in `logs` or
    `reference`), in any context: the logging policy gave them no chance,
    so nothing can be said of them."""
    taken = np.zeros(logs.n_actions, dtype=bool)
    taken[logs.actions] = True
    if reference is not None:
        taken[reference.actions] = True
    return float(target[:, ~taken].sum(axis=1).mean()) if len(logs) else 0.0


def snips(logs, target):
    weights = importance_weights(logs, target)
    total = weights.sum()
    return float((weights * logs.rewards).sum() / total) if total > 0 else float("nan")


def _cell_model(sums, counts, shrinkage):
    """Shrunk cell means from cell sums and counts of shape (..., contexts, actions)."""
    overall = sums.sum(axis=(-2, -1)) / np.maximum(counts.sum(axis=(-2, -1)), 1e-12)
    action_mean = ((sums.sum(axis=-2) + shrinkage * overall[..., None])
                   / (counts.sum(axis=-2) + shrinkage))
    return (sums + shrinkage * action_mean[..., None, :]) / (counts + shrinkage)


def _factored_model(sums, counts, shrinkage, iterations=50):
    """Context effect x action effect from cell sums and counts of shape
    (..., contexts, actions): alternating Poisson maximum-likelihood updates
    of the two, each shrunk by `shrinkage` pseudo-rows (actions towards the
    overall rate, contexts towards no effect), the context effects scaled
    to a row-weighted mean of 1."""
    overall = (sums.sum(axis=(-2, -1)) / np.maximum(counts.sum(axis=(-2, -1)), 1e-12))[..., None]
    context_rows = counts.sum(axis=-1)
    examination = np.ones(sums.shape[:-1])
    for _ in range(iterations):
        exposure = np.einsum("...c,...ca->...a", examination, counts) + shrinkage
        attractiveness = np.divide(sums.sum(axis=-2) + shrinkage * overall, exposure,
                                   out=np.broadcast_to(overall, exposure.shape).copy(), where=exposure > 0)
        expected = np.einsum("...ca,...a->...c", counts, attractiveness) + shrinkage * overall
        examination = np.divide(sums.sum(axis=-1) + shrinkage * overall, expected, out=np.ones_like(expected),
                                where=expected > 0)
        scale = ((examination * context_rows).sum(axis=-1) / np.maximum(context_rows.sum(axis=-1), 1e-12))[..., None]
        scale = np.where(scale > 0, scale, 1.0)
        examination, attractiveness = examination / scale, attractiveness * scale
    return examination[..., :, None] * attractiveness[..., None, :]


# The reward models doubly robust can use, each fitted from cell sums and counts:
# "cells", the shrunk mean of each (context, action) cell; "factored", context
# effect x action effect, e.g. a position-based click model (contexts the
# positions: P(click) = examination(position) x attractiveness(item)), whose
# action effects pool each action's rows over every context, for rewards
# that are not negative (clicks, successes).
REWARD_MODELS = {"cells": _cell_model, "factored": _factored_model}


def _fit(cell_sums, cell_counts, n_contexts, n_actions, shrinkage, kind, low, high):
    """The reward model from cell sums and counts (a batch of them: `low` and
    `high` then one per fit), within the fitted rows' reward range [low,
    high]: a product of effects can pass it (a top position's effect is above
    1), and a 0/1 success rate predicted above 1 would push the estimate past
    what any policy can score."""
    shape = cell_sums.shape[:-1] + (n_contexts, n_actions)
    model = REWARD_MODELS[kind](cell_sums.reshape(shape), cell_counts.reshape(shape), shrinkage)
    return np.clip(model, np.asarray(low)[..., None, None], np.asarray(high)[..., None, None])


def _check_model(kind, rewards):
    if kind not in REWARD_MODELS:
        raise ValueError(f"the reward model is one of {', '.join(REWARD_MODELS)}, not {kind!r}.")
    if kind == "factored" and len(rewards) and np.min(rewards) < 0:
        raise ValueError("the factored reward model needs rewards that are not negative.")


def reward_model(logs, shrinkage=SHRINKAGE, kind="cells"):
    """(contexts, actions) predicted rewards from the logs (REWARD_MODELS)."""
    _check_model(kind, logs.rewards)
    size = logs.n_contexts * logs.n_actions
    sums = np.bincount(logs.cells, weights=logs.rewards, minlength=size).astype(float)
    counts = np.bincount(logs.cells, minlength=size).astype(float)
    low, high = (logs.rewards.min(), logs.rewards.max()) if len(logs) else (0.0, 0.0)  # no rows: it predicts 0
    return _fit(sums, counts, logs.n_contexts, logs.n_actions, shrinkage, kind, low, high)


def random_folds(rows, count=2, seed=0):
    """A fold number for each of `rows` rows: a seeded shuffle dealt into
    `count` folds of (nearly) equal size."""
    return np.random.default_rng(seed).permutation(rows) % count


def cross_fitted_doubly_robust(logs, target, fit, folds):
    """The doubly robust estimate with the reward model of each fold's rows
    fitted on the other folds' rows (`fit(logs) -> (contexts, actions)`), so
    no row's residual is measured against a model that saw it; the folds'
    estimates weighted by their rows. `folds` is each row's fold number
    (random_folds); for a bootstrap resample, those of the original rows
    drawn, so every copy of a row sits in one fold."""
    n, folds = len(logs), np.asarray(folds)
    total = 0.0
    for number in np.unique(folds):
        inside = folds == number
        total += inside.sum() * doubly_robust(logs.take(inside), target[inside], fit(logs.take(~inside)))
    return total / n if n else float("nan")


def doubly_robust(logs, target, model):
    """The doubly robust estimate with a given (contexts, actions) reward model."""
    if len(logs) == 0:
        return float("nan")
    weights = importance_weights(logs, target)
    direct = (target * model[logs.contexts]).sum(axis=1)
    residual = logs.rewards - model[logs.contexts, logs.actions]
    total = weights.sum()
    correction = (weights * residual).sum() / total if total > 0 else 0.0
    return float(direct.mean() + correction)


# --- the evaluation ------------------------------------------------------------------


def check_coverage(logs, target, min_effective=MIN_EFFECTIVE, max_unsupported=MAX_UNSUPPORTED):
    """(weights, effective samples, unsupported share), or NotCovered."""
    if len(logs) == 0:
        raise NotCovered("no_logs", "There are no logged decisions with a propensity to evaluate from.",
                         effective_samples=0.0, unsupported=1.0)
    weights = importance_weights(logs, target)
    effective = effective_samples(weights)
    unsupported = unsupported_share(logs, target)
    unlogged = unlogged_share(logs, target)
    if weights.sum() == 0 or unlogged > MAX_UNLOGGED:
        raise NotCovered(
            "no_overlap",
            f"The policy puts {unlogged:.0%} of its choices on strategies the logs never show: the logging "
            "policy never gave them a chance, so the logs cannot say how they would have done.",
            effective_samples=effective, unsupported=unsupported, unlogged=unlogged)
    if unsupported > max_unsupported:
        raise NotCovered(
            "no_overlap",
            f"The policy puts {unsupported:.0%} of its choices on strategies the logs never show in those "
            f"states (at most {max_unsupported:.0%} can be filled in by the reward model): the logs cannot "
            "say how they would have done there.",
            effective_samples=effective, unsupported=unsupported, unlogged=unlogged)
    if effective < min_effective:
        raise NotCovered(
            "too_few_effective_samples",
            f"The logs carry the information of only {effective:.1f} tasks about this policy (at least "
            f"{min_effective:.0f} are needed): the logging policy rarely chose what this policy would.",
            effective_samples=effective, unsupported=unsupported)
    return weights, effective, unsupported


def _percentiles(values, point, level, widen=(0.0, 0.0)):
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Estimate(float(point), float(min(low, point) - widen[0]), float(max(high, point) + widen[1]))


def unseen_bounds(logs, target, model, also_seen=None):
    """How far the doubly robust estimate could move if the cells the logs
    (and `also_seen`, more logged cells) never saw did as badly, or as well,
    as any logged reward: (down, up). The reward model's guess for them is a
    guess, and the bootstrap cannot see what no row shows, so the interval
    owns up to it. A guess outside the logged range leaves no room on that
    side (not a negative one, which would narrow the interval)."""
    unseen = ~_seen(logs, also_seen)[logs.contexts]
    mass = target * unseen
    guess = model[logs.contexts]
    down = float((mass * np.maximum(guess - logs.rewards.min(), 0.0)).sum(axis=1).mean())
    up = float((mass * np.maximum(logs.rewards.max() - guess, 0.0)).sum(axis=1).mean())
    return down, up


def evaluate(logs, target, level=LEVEL, replicates=REPLICATES, seed=0, shrinkage=SHRINKAGE,
             min_effective=MIN_EFFECTIVE, max_unsupported=MAX_UNSUPPORTED, model="cells"):
    """The target's value on the logs by SNIPS and doubly robust (with the
    reward model `model`, one of REWARD_MODELS), each with a percentile
    bootstrap interval (rows resampled, the reward model refitted per
    replicate), the lift of the doubly robust estimate over the logged mean,
    the effective sample size; NotCovered when the logs cannot say."""
    return evaluate_each(logs, target, {"value": logs.rewards}, level, replicates, seed, shrinkage, min_effective,
                         max_unsupported, model)["value"]


def evaluate_each(logs, target, rewards, level=LEVEL, replicates=REPLICATES, seed=0, shrinkage=SHRINKAGE,
                  min_effective=MIN_EFFECTIVE, max_unsupported=MAX_UNSUPPORTED, model="cells"):
    """`evaluate` for several rewards of the same logged rows ({name: array},
    e.g. success and score), sharing the bootstrap's resampled rows: one
    draw of replicates serves them all. Returns {name: Evaluation}."""
    target = np.asarray(target, dtype=float)
    if target.shape != (len(logs), logs.n_actions):
        raise ValueError("target must give a probability for every action in every logged row.")
    if len(logs) and (np.abs(target.sum(axis=1) - 1) > 1e-6).any():
        raise ValueError("each row of target must be a distribution over the actions (sum to 1).")
    each = {name: replace(logs, rewards=np.asarray(values, dtype=float)) for name, values in rewards.items()}
    for metric_logs in each.values():
        _check_model(model, metric_logs.rewards)
    weights, effective, unsupported = check_coverage(logs, target, min_effective, max_unsupported)
    n = len(logs)
    points = {}
    for name, metric_logs in each.items():
        fitted = reward_model(metric_logs, shrinkage, model)
        points[name] = (snips(metric_logs, target), doubly_robust(metric_logs, target, fitted),
                        float(metric_logs.rewards.mean()), unseen_bounds(metric_logs, target, fitted))

    cells = logs.cells
    size = logs.n_contexts * logs.n_actions
    # Replicates are multiplicities of the rows; sums over a replicate's rows
    # are matrix products with indicator columns of the cells and contexts
    # that occur, so nothing is (replicates, rows, actions) in size.
    seen_cells, cell_of_row = np.unique(cells, return_inverse=True)
    cell_columns = np.zeros((n, len(seen_cells)))
    cell_columns[np.arange(n), cell_of_row] = 1.0
    seen_contexts, context_of_row = np.unique(logs.contexts, return_inverse=True)
    target_columns = np.zeros((n, len(seen_contexts), logs.n_actions))
    target_columns[np.arange(n), context_of_row, :] = target
    target_columns = target_columns.reshape(n, -1)
    rng = np.random.default_rng(seed)
    draws = {name: {"snips": [], "dr": [], "logged": []} for name in each}
    block = max(1, min(replicates, _CHUNK_CELLS // max(n, target_columns.shape[1], len(seen_cells))))
    for start in range(0, replicates, block):
        count = min(block, replicates - start)
        picks = rng.integers(n, size=(count, n)) + (np.arange(count) * n)[:, None]
        multiplicity = np.bincount(picks.ravel(), minlength=count * n).reshape(count, n).astype(float)
        sum_w = multiplicity @ weights
        weighted = multiplicity * weights
        cell_counts = np.zeros((count, size))
        cell_counts[:, seen_cells] = multiplicity @ cell_columns
        mass = (multiplicity @ target_columns).reshape(count, len(seen_contexts), logs.n_actions)
        drawn = multiplicity > 0
        for name, metric_logs in each.items():
            values = metric_logs.rewards
            cell_sums = np.zeros((count, size))
            cell_sums[:, seen_cells] = multiplicity @ (cell_columns * values[:, None])
            # Each replicate's model within its own rows' reward range, as reward_model fits it.
            low = np.where(drawn, values, np.inf).min(axis=1)
            high = np.where(drawn, values, -np.inf).max(axis=1)
            models = _fit(cell_sums, cell_counts, logs.n_contexts, logs.n_actions, shrinkage, model, low, high)
            direct = (mass * models[:, seen_contexts, :]).sum(axis=(1, 2)) / n
            residual = values[None, :] - models.reshape(count, size)[:, cells]
            draws[name]["snips"].append((weighted @ values) / sum_w)
            draws[name]["dr"].append(direct + (weighted * residual).sum(axis=1) / sum_w)
            draws[name]["logged"].append((multiplicity @ values) / n)
    results = {}
    for name, (point_snips, point_dr, point_logged, unseen) in points.items():
        snips_b, dr_b, logged_b = (np.concatenate(draws[name][key]) for key in ("snips", "dr", "logged"))
        results[name] = Evaluation(
            snips=_percentiles(snips_b, point_snips, level),
            doubly_robust=_percentiles(dr_b, point_dr, level, unseen),
            logged=_percentiles(logged_b, point_logged, level),
            lift=_percentiles(dr_b - logged_b, point_dr - point_logged, level, unseen),
            effective_samples=effective, rows=n, unsupported=unsupported, level=level,
        )
    return results


# --- a deterministic logging policy against a target, with a reference log ------------------------


@dataclass(frozen=True)
class Comparison:
    """A target policy against the policy that logged `logs`, on the same
    rows: the target's doubly robust value, the logged mean, and their
    difference (`lift`), each with its 95 % interval from the same
    replicates; `agreement` is the target's mean mass on the logged actions."""

    target: Estimate
    logged: Estimate
    lift: Estimate
    agreement: float
    rows: int
    reference_rows: int
    unsupported: float
    level: float

    def as_dict(self):
        return {"target": self.target.as_dict(), "logged": self.logged.as_dict(), "lift": self.lift.as_dict(),
                "agreement": round(self.agreement, 4), "rows": self.rows, "reference_rows": self.reference_rows,
                "unsupported": round(self.unsupported, 4), "level": self.level}


def compare_with_reference(logs, target, reference, level=LEVEL, replicates=REPLICATES, seed=0,
                           shrinkage=SHRINKAGE, max_unsupported=MAX_UNSUPPORTED):
    """The target against the logging policy when that policy was
    deterministic where they disagree (an agent's own choices, propensity
    1), so no logged row shows the target's choice there and importance
    weighting alone cannot answer: the doubly robust estimate with its reward
    model fitted on `logs` and `reference` (other logs of the same contexts
    and actions, e.g. the swarm's, where other choices were tried). Rows of
    both are resampled in every replicate and the model refitted. Refuses
    (NotCovered) without rows, or when the target's choices fall on actions
    or (context, action) cells neither log shows beyond what the model may
    fill in."""
    target = np.asarray(target, dtype=float)
    if target.shape != (len(logs), logs.n_actions):
        raise ValueError("target must give a probability for every action in every logged row.")
    if (reference.n_contexts, reference.n_actions) != (logs.n_contexts, logs.n_actions):
        raise ValueError("reference must code contexts and actions as logs does.")
    if len(logs) == 0:
        raise NotCovered("no_logs", "There are no logged decisions to compare on.", unsupported=1.0)
    both = Logs(np.concatenate([logs.contexts, reference.contexts]), np.concatenate([logs.actions, reference.actions]),
                np.concatenate([logs.propensities, reference.propensities]),
                np.concatenate([logs.rewards, reference.rewards]), logs.n_contexts, logs.n_actions)
    unlogged, unsupported = unlogged_share(logs, target, reference), unsupported_share(logs, target, reference)
    if unlogged > MAX_UNLOGGED or unsupported > max_unsupported:
        raise NotCovered(
            "no_overlap",
            f"The policy puts {unsupported:.0%} of its choices on strategies neither these logs nor the reference "
            f"logs show in those states (at most {max_unsupported:.0%} can be filled in by the reward model).",
            unsupported=unsupported, unlogged=unlogged)
    model = reward_model(both, shrinkage)
    point = doubly_robust(logs, target, model)
    logged_mean = float(logs.rewards.mean())
    unseen = unseen_bounds(logs, target, model, also_seen=reference.cells)
    n, m = len(logs), len(reference)
    rng = np.random.default_rng(seed)
    target_b, logged_b = np.empty(replicates), np.empty(replicates)
    for replicate in range(replicates):
        rows = rng.integers(n, size=n)
        reference_rows = rng.integers(m, size=m) if m else np.zeros(0, dtype=int)
        sample = logs.take(rows)
        pooled = replace(both, contexts=np.concatenate([sample.contexts, reference.contexts[reference_rows]]),
                         actions=np.concatenate([sample.actions, reference.actions[reference_rows]]),
                         propensities=np.concatenate([sample.propensities, reference.propensities[reference_rows]]),
                         rewards=np.concatenate([sample.rewards, reference.rewards[reference_rows]]))
        target_b[replicate] = doubly_robust(sample, target[rows], reward_model(pooled, shrinkage))
        logged_b[replicate] = sample.rewards.mean()
    return Comparison(
        target=_percentiles(target_b, point, level, unseen), logged=_percentiles(logged_b, logged_mean, level),
        lift=_percentiles(target_b - logged_b, point - logged_mean, level, unseen),
        agreement=float(target[np.arange(n), logs.actions].mean()), rows=n, reference_rows=m,
        unsupported=unsupported, level=level)


# --- target policies ---------------------------------------------------------------------


def fixed_action(rows, n_actions, action):
    """Always `action`: what an A/B test would apply."""
    target = np.zeros((rows, n_actions))
    target[:, action] = 1.0
    return target


def epsilon_greedy(greedy_mask, epsilon):
    """Epsilon-greedy over each row's greedy set (a (rows, actions) boolean
    mask, ties shared), as the learner chooses (engine.choose)."""
    mask = np.asarray(greedy_mask, dtype=bool)
    n_actions = mask.shape[1]
    return epsilon / n_actions + (1 - epsilon) * mask / mask.sum(axis=1, keepdims=True)
