"""Logged histories for the drill tests: executions written directly, as an
agent's reports would have left them, at a steady pace."""

from datetime import timedelta

import numpy as np
from django.utils import timezone

from learning.models import Execution, LearningProfile

from .helpers import strategy


def logged_history(agent, tasks=400, success_rate=0.8, ms_spread=0, tasks_per_hour=20, seed=0):
    """`tasks` policy tasks ending now, `tasks_per_hour` of them an hour:
    success drawn at `success_rate`, durations around 3 s (uniformly
    +- `ms_spread`), no errors."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    used = strategy()
    Execution.objects.bulk_create(
        [
            Execution(
                agent=agent,
                idempotency_key=f"k{number}",
                request_digest="d" * 64,
                sequence=number,
                task_id=f"t{number}",
                task_type="unit-tests",
                state_key="0.5,0.1,0.0,0.9,1.0",
                next_state_key="0.5,0.1,0.1,0.8,1.0",
                strategy=used,
                success=bool(rng.random() < success_rate),
                execution_time_ms=int(3000 + rng.integers(-ms_spread, ms_spread + 1)),
                reward=0.0,
                previous_q=0.0,
                q_value=0.0,
                response={},
                created_at=now - timedelta(hours=(tasks - number) / tasks_per_hour),
            )
            for number in range(1, tasks + 1)
        ]
    )
    LearningProfile.objects.update_or_create(agent=agent, defaults={"task_count": tasks})
