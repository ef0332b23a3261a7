"""Operators' own logs for offline evaluation: a CSV of logged decisions
(context, action, propensity, reward) and a CSV of the candidate policy
(context, action, probability), read into learning.core.offline's inputs.
The same estimator then answers as it does for the fleet's own logs.

Contexts and actions are free text (codes are given in order of first
appearance); a reward is any finite number (a click, a success, a score).
With the factored reward model (a position-based click model when the
context is the position) rewards must not be negative.
Bad input raises ImportError naming the file, line and column.
"""

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .core import offline

LOG_COLUMNS = ("context", "action", "propensity", "reward")
POLICY_COLUMNS = ("context", "action", "probability")
MAX_ROWS = 1_000_000
NOT_NEGATIVE = ": the factored reward model needs rewards that are not negative (clicks, successes)"


class LogImportError(ValueError):
    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ImportedLogs:
    logs: offline.Logs
    contexts: list
    actions: list


def _rows(text, name, columns):
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in columns if column not in (reader.fieldnames or ())]
    if missing:
        raise LogImportError(name, f"needs the columns {', '.join(columns)} (missing: {', '.join(missing)})")
    for count, row in enumerate(reader, start=1):
        if count > MAX_ROWS:
            raise LogImportError(name, f"has more than {MAX_ROWS:,} rows")
        # The reader's own line number: it skips blank lines, so counting rows would name the wrong one.
        yield reader.line_num, row


def _number(row, column, name, line, low=-math.inf, high=math.inf, low_open=False, why=""):
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise LogImportError(f"{name}:{line}:{column}", f"{row[column]!r} is not a number") from None
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise LogImportError(f"{name}:{line}:{column}", f"{value} is not in {bracket}{low}, {high}]{why}")
    return value


def read_logs(text, name="logs", nonnegative=False):
    """ImportedLogs from the logged decisions' CSV text; `nonnegative`
    refuses a negative reward (the factored reward model needs none)."""
    contexts, actions, rows = {}, {}, []
    reward_low, reward_why = (0.0, NOT_NEGATIVE) if nonnegative else (-math.inf, "")
    for line, row in _rows(text, name, LOG_COLUMNS):
        propensity = _number(row, "propensity", name, line, 0.0, 1.0, low_open=True)
        reward = _number(row, "reward", name, line, reward_low, why=reward_why)
        rows.append((contexts.setdefault(row["context"], len(contexts)),
                     actions.setdefault(row["action"], len(actions)), propensity, reward))
    if not rows:
        raise LogImportError(name, "has no logged decisions")
    context, action, propensity, reward = (np.array(column) for column in zip(*rows))
    logs = offline.Logs.build(context, action, propensity, reward, len(contexts), len(actions))
    return ImportedLogs(logs, list(contexts), list(actions))


def read_policy(text, imported, name="policy"):
    """The (rows, actions) target table for `imported` logs from the policy's
    CSV: every logged context needs a distribution over the logged actions."""
    by_context = {}
    for line, row in _rows(text, name, POLICY_COLUMNS):
        probability = _number(row, "probability", name, line, 0.0, 1.0)
        if row["action"] not in imported.actions:
            if probability > 0:
                raise LogImportError(f"{name}:{line}:action", f"{row['action']!r} never occurs in the logs: "
                                     "the logs cannot tell how it would do")
            continue
        by_context.setdefault(row["context"], {})[row["action"]] = probability
    table = np.zeros((len(imported.contexts), len(imported.actions)))
    for code, context in enumerate(imported.contexts):
        if context not in by_context:
            raise LogImportError(f"{name}:context", f"has no probabilities for the logged context {context!r}")
        for action, probability in by_context[context].items():
            table[code, imported.actions.index(action)] = probability
        if abs(table[code].sum() - 1) > 1e-6:
            raise LogImportError(f"{name}:probability", f"the probabilities of context {context!r} sum to "
                                 f"{table[code].sum():.6f}, not 1")
    return table[imported.logs.contexts]


def evaluate(logs_text, policy_text, seed=0, replicates=offline.REPLICATES, model="cells"):
    """offline.evaluate on imported logs and policy with the reward model
    `model` (offline.REWARD_MODELS; NotCovered when they do not overlap)."""
    imported = read_logs(logs_text, nonnegative=model == "factored")
    return offline.evaluate(imported.logs, read_policy(policy_text, imported), seed=seed, replicates=replicates,
                            model=model)
