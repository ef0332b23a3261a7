"""Logged decisions with known truth for the what-if tests: an
epsilon-greedy logging policy over a small world whose success rates per
(state, strategy) are chosen here, written straight to Decision and
Execution (as recommend and report would, without a thousand requests)."""

import numpy as np

from learning.models import Decision, Execution, Strategy

STATES = ("0.2,0.2,0.0,0.9,1.0", "0.5,0.2,0.0,0.9,1.0", "0.8,0.6,0.0,0.9,1.0")
# Success rates by state for the strategies in catalog order (the first four).
RATES = np.array([[0.85, 0.40, 0.55, 0.30],
                  [0.35, 0.80, 0.60, 0.45],
                  [0.50, 0.45, 0.90, 0.40]])
GREEDY = (0, 1, 2)


def truth(strategy_position):
    """The true success rate of always using one strategy (states equally likely)."""
    return float(RATES[:, strategy_position].mean())


def log_tasks(agent, count, task_type="integration-tests", epsilon=0.3, seed=0, only=None, decided=True):
    """`count` logged tasks of `agent`; `only` restricts the logging policy to
    those strategy positions (the others get no probability)."""
    rng = np.random.default_rng(seed)
    strategies = list(Strategy.objects.order_by("pk"))[:4]
    allowed = np.array(only if only is not None else range(4))
    decisions, executions = [], []
    for index in range(count):
        state = int(rng.integers(len(STATES)))
        greedy = GREEDY[state] if GREEDY[state] in allowed else int(allowed[0])
        probabilities = np.zeros(4)
        probabilities[allowed] = epsilon / len(allowed)
        probabilities[greedy] += 1 - epsilon
        action = int(rng.choice(4, p=probabilities))
        success = bool(rng.random() < RATES[state, action])
        strategy = strategies[action]
        decision = Decision(agent=agent, task_id=f"log-{seed}-{index}", task_type=task_type, state_key=STATES[state],
                            strategy=strategy, explored=action != greedy, propensity=float(probabilities[action]),
                            epsilon=epsilon, q_value=0.0)
        decisions.append(decision)
        executions.append(Execution(
            agent=agent, decision=decision if decided else None, idempotency_key=f"log-{seed}-{index}",
            request_digest="0" * 64, sequence=index + 1, task_id=decision.task_id, task_type=task_type,
            state_key=STATES[state], next_state_key=STATES[state], strategy=strategy, success=success,
            execution_time_ms=int(rng.integers(1000, 6000)), error_count=0 if success else 1, reward=0.0,
            previous_q=0.0, q_value=0.0, response={}))
    Decision.objects.bulk_create(decisions)
    Execution.objects.bulk_create(executions)
    return strategies
