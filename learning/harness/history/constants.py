"""The simulated world's shape: its clock, the tasks' states and strategies,
the failure classes, the safeguard's defaults, the tests' intents and the
agents' roles.

The tunables a test may patch (EVENT_SECONDS, CYCLE_SECONDS, EXPERIENCES,
BASE_TASKS_PER_HOUR) are read as `constants.NAME` where they are used, so a
patch of this module takes effect everywhere.
"""

import numpy as np

from learning.core import engine
from learning.harness.simulator import CAPABILITY_LEVELS, COMPLEXITY_LEVELS, ERRORS, FAILURE_MIX, STRATEGIES
from learning.models import ImprovementCycle, LearningProfile, Safeguard, Snapshot
from qefleet.memory.models import DAY, Event

HOUR = 3600.0
MAX_DAYS = Snapshot.RETENTION_DAYS  # older history would be pruned at once
EVENT_SECONDS = Event.DEFAULT_TTL


def events_since(now):
    """Where the generated events begin: their TTL back from `now`, less an
    hour, so that none expires while the run (or a slow database) finishes."""
    return now - EVENT_SECONDS + HOUR


CYCLE_SECONDS = ImprovementCycle.RETENTION_DAYS * DAY
BASELINE_WINDOW = LearningProfile._meta.get_field("baseline_window").default  # the improvement baseline's tasks
EXPERIENCES = engine.DEFAULT_CONFIG["max_experiences"]
BASE_TASKS_PER_HOUR = 20
TASK_TYPE_SHARE = 0.9  # of an agent's tasks in its main task type, as in the simulator
EXPLORE_PENALTY = 0.2  # success lost when exploring away from the bucket's best strategy
RESCUED = 0.25  # share of a mitigated failure class's failures that the mitigation turns into successes


def _guard_default(name):
    return Safeguard._meta.get_field(name).default


GUARD_WINDOW = _guard_default("window")
GUARD_EVERY = _guard_default("check_every")
GUARD_THRESHOLD = _guard_default("threshold_pct")
GUARD_Z = _guard_default("confidence_z")
GUARD_CONSECUTIVE = _guard_default("consecutive")
KNOWN_GOOD_AFTER = _guard_default("known_good_after")

# The states of the world's tasks: complexity x required capabilities x
# previous attempts x available resources, 24 state keys per task type.
COMPLEXITY = tuple(COMPLEXITY_LEVELS.values())
CAPABILITIES = tuple(counts[0] for counts in CAPABILITY_LEVELS.values())
ATTEMPTS = (0, 1)
RESOURCES = (0.9, 0.5)
STATE_KEYS = [engine.state_key(engine.state_vector(c, k, a, r))
              for c in COMPLEXITY for k in CAPABILITIES for a in ATTEMPTS for r in RESOURCES]
NEXT_KEYS = [engine.state_key(engine.state_vector(c, k, *engine.next_attempt(a, r)))
             for c in COMPLEXITY for k in CAPABILITIES for a in ATTEMPTS for r in RESOURCES]
NEXT_STATE = np.array([STATE_KEYS.index(key) if key in STATE_KEYS else -1 for key in NEXT_KEYS])
STATES = len(STATE_KEYS)
ACTIONS = len(STRATEGIES)

# Failure classes (engine's), and what each strategy fails with (the simulator's mix).
CLASSES = tuple(engine.MITIGATIONS)
KIND_CLASS = {kind: CLASSES.index(engine.failure_class(*templates[0])) for kind, templates in ERRORS.items()}
MIX = [(np.cumsum([weight for weight in FAILURE_MIX[name].values()]) / sum(FAILURE_MIX[name].values()),
        np.array([KIND_CLASS[kind] for kind in FAILURE_MIX[name]])) for name in STRATEGIES]
MESSAGES = {KIND_CLASS[kind]: templates[0] for kind, templates in reversed(ERRORS.items())}

# What each test is set up to show (the statistics decide what it shows).
# An agent's first test takes the next intent of INTENTS, so even a short
# history has every outcome; later ones are drawn with INTENT_WEIGHTS.
INTENTS = ("kept", "inconclusive", "reverted", "control_wins", "srm", "kept", "guardrail", "aborted",
           "inconclusive", "kept")
INTENT_WEIGHTS = {"kept": 0.34, "inconclusive": 0.24, "control_wins": 0.15, "reverted": 0.1, "guardrail": 0.06,
                  "aborted": 0.07, "srm": 0.04}
ROLES = ("auto_rollback", "rollback_and_undo", "rollback_pending", "final_running", "final_running",
         "final_running", "final_monitoring")
# One newcomer in each of the two largest teams, where most patterns are shared
# in its task types: it joins late and bootstraps from what its swarm shared.
NEWCOMERS_JOIN = 0.7  # of the period
REGULAR_CUTOFF = 10 * DAY  # before a final test, so earlier ones are done (7 monitoring days and more)
