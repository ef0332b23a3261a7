"""A/B test statistics: pure functions, no Django, no database.

The seed (section 7) runs a fixed 100 tasks and crowns the strategy with the
higher point score, which names a "winner" between two identical strategies
about half the time. The score is still reported here, but the decision is
made on the difference in success rate, treatment minus control, with an
error rate that can be stated. The rule (`decide`, one test at a time):

- Before both arms reach the horizon, stop early only when the always-valid
  confidence sequence (`sequential_interval`) excludes zero: "winner" above
  zero, "loser" below (the control stays); otherwise "running". The sequence
  holds under continuous monitoring, so looking every hour costs nothing.
- Once both arms reach the horizon, the fixed-horizon interval
  (`fixed_interval`) decides: "winner" above zero, "loser" below, otherwise
  "inconclusive".
- A winner that violates a guardrail (time, errors) stays a winner but lists
  the guardrails in `blocked_by`; the caller does not apply it.
- The rule is a two-sided test at level alpha: between two identical
  strategies the fixed look alone ends in a verdict either way (a false
  winner or a false loser) with probability alpha, alpha/2 on each side.
  The always-valid early stops add to that, in theory up to alpha on both
  sides together (so a false winner has probability at most alpha), in practice about
  half a point at a look every 10 tasks, as the sequence is conservative:
  `simulate_verdicts` measures it, and the statistics drills
  (learning/core/drills.py) measure it on each agent's own logs.
- Across the fleet's concurrent tests the caller controls the false discovery
  rate with `benjamini_hochberg` over the verdicts' p-values.

Success rates carry the Agresti-Caffo adjustment (one success and one failure
added to each arm), so 0/n and n/n never give a zero-width interval. The
always-valid sequence is the two-sided normal-mixture boundary (Robbins;
Howard et al. 2021) on that estimate. Its variance is estimated from the data,
so the guarantee is asymptotic; `simulate_verdicts` checks it at the
sample sizes the fleet uses.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from . import scoring
from .numbers import signed_number


ALPHA = 0.05            # two-sided
DEFAULT_MDE = 0.10      # minimum detectable effect, absolute success-rate points
DEFAULT_POWER = 0.80
MIN_SAMPLES = 100       # the design's sample size, a floor per arm
SRM_P = 0.001           # strict, so sample-ratio alarms stay rare and worth investigating
# The designs a test can use, both ends included. With an effect of at least
# one point and power of at most 0.99 the horizon stays under 92,000 tasks
# per arm (a test that ends); an effect of at most half leaves base_rate + mde
# or base_rate - mde a success rate whatever the base rate; each arm gets at
# least 1 % of the tasks.
MDE_RANGE = (0.01, 0.5)
POWER_RANGE = (0.5, 0.99)
CONTROL_WEIGHT_RANGE = (0.01, 0.99)

OUTCOMES = ("running", "winner", "inconclusive", "loser")
RUNNING, WINNER, INCONCLUSIVE, LOSER = range(4)

_NORMAL = NormalDist()


@dataclass(frozen=True)
class ArmStats:
    n: int
    successes: int
    total_ms: float
    error_tasks: int    # tasks with at least one error

    def __post_init__(self):
        if self.n < 0 or not 0 <= self.successes <= self.n or not 0 <= self.error_tasks <= self.n:
            raise ValueError("ArmStats needs 0 <= successes, error_tasks <= n.")
        if self.total_ms < 0:
            raise ValueError("ArmStats total_ms must not be negative.")

    @property
    def success_rate(self):
        return self.successes / self.n if self.n else 0.0

    @property
    def mean_ms(self):
        return self.total_ms / self.n if self.n else 0.0

    @property
    def error_rate(self):
        return self.error_tasks / self.n if self.n else 0.0

    @property
    def score(self):
        return scoring.ab_score(self.success_rate, self.mean_ms)

    def to_dict(self):
        return {
            "n": self.n,
            "success_rate": round(self.success_rate, 4),
            "mean_ms": round(self.mean_ms, 1),
            "error_rate": round(self.error_rate, 4),
            "score": round(self.score, 5),
        }


# --- sample size -----------------------------------------------------------------------


def samples_per_arm(mde=DEFAULT_MDE, power=DEFAULT_POWER, alpha=ALPHA, base_rate=0.5, floor=MIN_SAMPLES):
    """Tasks per arm for a two-sided two-proportion z-test to detect `mde`.

    The classic formula: the null variance pooled at the mean rate, the
    alternative's unpooled. The treatment rate is base_rate + mde, mirrored
    to base_rate - mde when that would pass 1. Never below `floor`.
    """
    if not mde > 0:
        raise ValueError("mde must be a positive difference in success rate.")
    if not 0 < power < 1:
        raise ValueError("power must be between 0 and 1 (exclusive).")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1 (exclusive).")
    if not 0 <= base_rate <= 1:
        raise ValueError("base_rate must be between 0 and 1.")
    control = base_rate
    treatment = base_rate + mde if base_rate + mde <= 1 else base_rate - mde
    if treatment < 0:
        raise ValueError("mde is too large for base_rate: neither base_rate + mde nor base_rate - mde is a rate.")
    mean = (control + treatment) / 2
    z_power = _NORMAL.inv_cdf(power)
    spread = (
        _z(alpha) * math.sqrt(2 * mean * (1 - mean))
        + z_power * math.sqrt(control * (1 - control) + treatment * (1 - treatment))
    )
    return max(floor, math.ceil(spread * spread / (mde * mde)))


# --- the shared math (arrays or scalars; decide() and the simulations both use it) -------


def _adjusted_difference(successes_c, n_c, successes_t, n_t):
    """Agresti-Caffo estimate of p_treatment - p_control and its variance."""
    rate_c = (successes_c + 1) / (n_c + 2)
    rate_t = (successes_t + 1) / (n_t + 2)
    variance = rate_c * (1 - rate_c) / (n_c + 2) + rate_t * (1 - rate_t) / (n_t + 2)
    return rate_t - rate_c, variance


def _z(alpha):
    return _NORMAL.inv_cdf(1 - alpha / 2)


def _best_mixture_ratio(alpha):
    """The mixture ratio t at which the boundary is narrowest for a given
    variance: the root of t = L + log(1 + t), L = -2 log(alpha)."""
    level = -2 * math.log(alpha)
    ratio = level
    for _ in range(30):  # a contraction with factor < 1/(1 + L): converged long before 30
        ratio = level + math.log1p(ratio)
    return ratio


def _mixture_ratio(n_c, n_t, alpha, tuning_n):
    """Prior variance / estimate variance, t, for the normal mixture.

    The prior is fixed in standardised units, so t grows with the effective
    sample size (the harmonic mean of the arms; 0 when an arm is empty), and
    reaches the narrowest-boundary value exactly when it equals tuning_n.
    """
    n_c = np.asarray(n_c, dtype=float)
    n_t = np.asarray(n_t, dtype=float)
    effective_n = 2 * n_c * n_t / np.maximum(n_c + n_t, 1)
    return _best_mixture_ratio(alpha) * effective_n / tuning_n


def _sequential_half_width(variance, ratio, alpha):
    """Half-width of the two-sided normal-mixture confidence sequence
    (Robbins; Howard et al. 2021): sqrt(v (1+t)/t log((1+t)/alpha^2)).
    Infinite while an arm is empty (t = 0)."""
    ratio = np.asarray(ratio, dtype=float)
    with np.errstate(divide="ignore"):
        return np.sqrt(variance * (1 + ratio) / ratio * np.log((1 + ratio) / alpha**2))


def _log_mixture_lr(diff, variance, ratio):
    """log of the mixture likelihood ratio against "no difference":
    t/(1+t) d^2/(2v) - log(1+t)/2. It exceeds log(1/alpha) exactly when the
    sequence at alpha excludes zero."""
    ratio = np.asarray(ratio, dtype=float)
    return ratio / (1 + ratio) * diff * diff / (2 * variance) - 0.5 * np.log1p(ratio)


def _judge(successes_c, n_c, successes_t, n_t, horizon, alpha):
    """The decision rule on arrays of arm counts: (outcome codes, low, high).

    The one implementation of the rule; `decide` calls it on scalars and the
    simulations on whole trials x looks arrays.
    """
    diff, variance = _adjusted_difference(successes_c, n_c, successes_t, n_t)
    at_horizon = np.minimum(n_c, n_t) >= horizon
    ratio = _mixture_ratio(n_c, n_t, alpha, horizon)
    half = np.where(at_horizon, _z(alpha) * np.sqrt(variance), _sequential_half_width(variance, ratio, alpha))
    low = np.clip(diff - half, -1.0, 1.0)
    high = np.clip(diff + half, -1.0, 1.0)
    undecided = np.where(at_horizon, INCONCLUSIVE, RUNNING)
    outcome = np.where(low > 0, WINNER, np.where(high < 0, LOSER, undecided))
    return outcome, low, high


# --- intervals and p-values --------------------------------------------------------------


def _counts(control, treatment):
    return control.successes, control.n, treatment.successes, treatment.n


def fixed_interval(control, treatment, alpha=ALPHA):
    """Fixed-horizon (1 - alpha) interval for p_treatment - p_control: valid
    for one look at a sample size chosen in advance."""
    diff, variance = _adjusted_difference(*_counts(control, treatment))
    half = _z(alpha) * math.sqrt(variance)
    return max(-1.0, diff - half), min(1.0, diff + half)


def fixed_p_value(control, treatment):
    """Two-sided z-test p-value on the same estimate as `fixed_interval`, so
    p < alpha exactly when that interval excludes zero."""
    diff, variance = _adjusted_difference(*_counts(control, treatment))
    return math.erfc(abs(diff) / math.sqrt(2 * variance))


def sequential_interval(control, treatment, alpha=ALPHA, tuning_n=None):
    """Always-valid (1 - alpha) confidence sequence for p_treatment - p_control.

    The probability that it ever excludes the true difference, however often
    it is looked at, is at most alpha (Ville's inequality on the mixture
    likelihood ratio). Narrowest when each arm has `tuning_n` tasks (default:
    the horizon for the default MDE).
    """
    tuning_n = tuning_n or samples_per_arm()
    diff, variance = _adjusted_difference(*_counts(control, treatment))
    ratio = _mixture_ratio(control.n, treatment.n, alpha, tuning_n)
    half = float(_sequential_half_width(variance, ratio, alpha))
    return max(-1.0, diff - half), min(1.0, diff + half)


def sequential_p_value(control, treatment, alpha=ALPHA, tuning_n=None):
    """The always-valid p-value of `sequential_interval`: min(1, 1/LR), the
    smallest level at which the sequence (tuned for `alpha`) excludes zero.

    Across looks, use the running minimum: min over looks so far of this value
    is still always-valid (`decide` takes it as `previous_p`).
    """
    tuning_n = tuning_n or samples_per_arm()
    diff, variance = _adjusted_difference(*_counts(control, treatment))
    ratio = _mixture_ratio(control.n, treatment.n, alpha, tuning_n)
    return min(1.0, math.exp(-float(_log_mixture_lr(diff, variance, ratio))))


# --- sample ratio mismatch and multiple tests ----------------------------------------------


def _chi_square_sf(x, df):
    """P(X > x) for a chi-square with integer `df`: the regularised upper
    incomplete gamma Q(df/2, x/2) in its closed form for whole and half
    integers (terms summed in log space so large x cannot overflow)."""
    if x <= 0:
        return 1.0
    half_x = x / 2
    # Odd df: Q(k + 1/2, h) = erfc(sqrt(h)) + sum over p = 1/2 .. k - 1/2 of
    # h^p e^-h / Gamma(p + 1); even df: Q(k, h) = sum over p = 0 .. k - 1 of the same.
    total, power = (math.erfc(math.sqrt(half_x)), 0.5) if df % 2 else (0.0, 0.0)
    while power < df / 2:
        total += math.exp(power * math.log(half_x) - half_x - math.lgamma(power + 1))
        power += 1
    return min(1.0, total)


def srm_p_value(counts, weights):
    """Chi-square goodness of fit of the arms' task counts against the
    intended split. A tiny p (below SRM_P) means assignment is broken and the
    test's results cannot be trusted."""
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValueError("srm_p_value needs one weight per arm and at least two arms.")
    if any(weight <= 0 for weight in weights):
        raise ValueError("srm_p_value weights must be positive.")
    if any(count < 0 for count in counts):
        raise ValueError("srm_p_value counts must not be negative.")
    total = sum(counts)
    if total == 0:
        return 1.0
    weight_sum = sum(weights)
    statistic = 0.0
    for count, weight in zip(counts, weights):
        expected = total * weight / weight_sum
        statistic += (count - expected) ** 2 / expected
    return _chi_square_sf(statistic, len(counts) - 1)


def benjamini_hochberg(p_values, q=ALPHA):
    """Which hypotheses to reject, in input order, keeping the expected share
    of false discoveries among the rejections at most q."""
    count = len(p_values)
    order = sorted(range(count), key=lambda index: p_values[index])
    passing = [rank for rank, index in enumerate(order, 1) if p_values[index] <= rank * q / count]
    cutoff = max(passing, default=0)
    rejected = [False] * count
    for index in order[:cutoff]:
        rejected[index] = True
    return rejected


def rate_fell(events_before, n_before, events_after, n_after, alpha=ALPHA):
    """Whether a rate (a failure class's, say) fell by more than chance: the
    (1 - alpha) interval for after - before, Agresti-Caffo as for the arms,
    lies wholly below zero. 38 % of 100 tasks to 36 % of 50 did not."""
    diff, variance = _adjusted_difference(events_before, n_before, events_after, n_after)
    return diff + _z(alpha) * math.sqrt(variance) < 0


def guardrails(control, treatment, max_time_increase=0.10, max_error_increase=0.05):
    """Names of violated guardrails: "time" (mean time up by more than 10 %,
    relative) and "errors" (error rate up by more than 5 points, absolute)."""
    if control.n == 0 or treatment.n == 0:
        return []
    violated = []
    if treatment.mean_ms > control.mean_ms * (1 + max_time_increase):
        violated.append("time")
    if treatment.error_rate - control.error_rate > max_error_increase:
        violated.append("errors")
    return violated


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: str        # "running" | "winner" | "inconclusive" | "loser" (treatment clearly worse)
    interval: tuple     # (low, high) for the success-rate difference, treatment - control
    p_value: float      # always-valid running minimum before the horizon, fixed at the horizon
    sequential: bool    # the always-valid rule decided / is being reported
    blocked_by: tuple   # guardrails that block applying a winner
    reason: str


def _points(value):
    return signed_number(value * 100, 1)


def decide(control, treatment, horizon, alpha=ALPHA, previous_p=1.0):
    """The verdict for one test now (the rule is in the module docstring).

    `previous_p` is the running minimum of earlier looks' p-values; callers
    stop at the first verdict that is not "running".
    """
    if horizon < 1:
        raise ValueError("horizon must be at least one task per arm.")
    code, low, high = _judge(*_counts(control, treatment), horizon, alpha)
    outcome, interval = OUTCOMES[int(code)], (float(low), float(high))
    n = min(control.n, treatment.n)
    sequential = n < horizon
    if sequential:
        p_value = min(previous_p, sequential_p_value(control, treatment, alpha, horizon))
    else:
        p_value = fixed_p_value(control, treatment)
    blocked_by = tuple(guardrails(control, treatment)) if outcome == "winner" else ()

    kind = "always-valid interval" if sequential else "interval"
    span = f"{_points(interval[0])} to {_points(interval[1])}"
    # The cycle looks once per slot, so the arms can pass the horizon between
    # two looks; the decision then counts every task, and says why n > horizon.
    at = (f"n = {n} of {horizon}" if n <= horizon
          else f"n = {n}, past the horizon of {horizon} (reached between two looks)")
    difference = _points(treatment.success_rate - control.success_rate)
    if outcome == "running":
        reason = f"running: {at}, {kind} {span} crosses zero"
    elif outcome == "inconclusive":
        reason = f"inconclusive: the {kind} {span} still crosses zero at {at}"
    else:
        # What follows a winner or loser (guardrails, which strategy stays) is
        # the caller's to say: it knows the strategies' names.
        reason = f"{outcome}: treatment {difference} points ({kind} {span}) at {at}"
    return Verdict(outcome, interval, p_value, sequential, blocked_by, reason)


# --- simulations -------------------------------------------------------------------------------


def off_policy_value(chosen, rewards, propensities):
    """(estimate, effective sample size) of always taking one action, from
    logged decisions: self-normalised inverse propensity weighting.

    `chosen` marks the logged decisions that took the action, `rewards`
    their outcomes and `propensities` the probability the logging policy
    gave the action it took. A strategy picked mostly where it shines looks
    better in its raw success rate than it would be everywhere; weighting by
    1 / propensity undoes that selection.
    """
    weights = np.asarray(chosen, dtype=float) / np.asarray(propensities, dtype=float)
    total = float(weights.sum())
    if total == 0:
        return None, 0.0
    estimate = float((weights * np.asarray(rewards, dtype=float)).sum()) / total
    return estimate, total * total / float((weights * weights).sum())


def simulate_verdicts(control_rate, treatment_rate, horizon=None, look_every=20, trials=2000, seed=0, alpha=ALPHA):
    """How simulated tests end when the rule is applied every `look_every`
    tasks per arm and each test stops at its first verdict that is not
    "running": {"winner": share, "loser": share, "inconclusive": share}.
    Horizon default: samples_per_arm()."""
    horizon = horizon or samples_per_arm(alpha=alpha)
    if look_every < 1 or trials < 1:
        raise ValueError("look_every and trials must be at least 1.")
    looks = np.append(np.arange(look_every, horizon, look_every), horizon)
    gaps = np.diff(looks, prepend=0)
    rng = np.random.default_rng(seed)
    # Successes between consecutive looks are binomial: the same counts as
    # drawing task by task, in trials x looks memory instead of trials x horizon.
    successes_c = np.cumsum(rng.binomial(gaps, control_rate, size=(trials, len(looks))), axis=1)
    successes_t = np.cumsum(rng.binomial(gaps, treatment_rate, size=(trials, len(looks))), axis=1)
    codes, _, _ = _judge(successes_c, looks, successes_t, looks, horizon, alpha)
    first_stop = np.argmax(codes != RUNNING, axis=1)  # the horizon look never runs on, so one exists
    final = codes[np.arange(trials), first_stop]
    return {OUTCOMES[code]: float(np.mean(final == code)) for code in (WINNER, LOSER, INCONCLUSIVE)}


def simulate_false_winners(rate=0.8, horizon=None, look_every=20, trials=2000, seed=0, alpha=ALPHA):
    """A/A: both arms succeed at `rate`; the share of tests that still name a
    winner (about alpha/2, one side of the two-sided level, and at most alpha)."""
    return simulate_verdicts(rate, rate, horizon, look_every, trials, seed, alpha)["winner"]


def simulate_power(delta, base_rate=0.5, horizon=None, look_every=20, trials=2000, seed=0, alpha=ALPHA):
    """The treatment succeeds `delta` more often; the share of tests that
    find it the winner. Horizon default: samples_per_arm()."""
    return simulate_verdicts(base_rate, base_rate + delta, horizon, look_every, trials, seed, alpha)["winner"]


# --- the degradation rule (the safeguard's, and an applied winner's monitoring) ---------

OK, WARNING, DEGRADED = "ok", "warning", "degraded"


def standard_error(scores):
    """Standard error of the mean of an array of scores (0 with fewer than two)."""
    return float(scores.std(ddof=1)) / math.sqrt(len(scores)) if len(scores) > 1 else 0.0


STATE_CODES = (OK, WARNING, DEGRADED)  # judge_windows' codes 0, 1, 2


def judge_windows(means, standard_errors, reference, reference_spread, threshold_pct, z):
    """The degradation rule on arrays of windows (their means and standard
    errors; the reference may be an array too): codes into STATE_CODES.

    The one implementation of the rule; `judge` calls it on one window and
    the drills (learning/core/drills.py) on whole runs x checks arrays.
    Degraded only when the gap to the line exceeds z standard errors of the
    difference: both the window and the reference are estimates."""
    means = np.asarray(means, dtype=float)
    line = np.asarray(reference, dtype=float) * (1 - threshold_pct / 100)
    spread = z * np.sqrt(np.asarray(standard_errors, dtype=float) ** 2 + np.asarray(reference_spread) ** 2)
    return np.where(means + spread < line, 2, np.where(means < line, 1, 0))


def judge(scores, reference, reference_spread, threshold_pct, z):
    """(state, change %) of a window of scores against a reference."""
    mean = float(scores.mean())
    change = (mean - reference) / reference * 100 if reference else 0.0
    code = judge_windows(mean, standard_error(scores), reference, reference_spread, threshold_pct, z)
    return STATE_CODES[int(code)], change
