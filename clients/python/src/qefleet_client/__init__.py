"""QE Fleet's Python client: ask which strategy to run a task with, report
how it went, and read and write the swarm's memory.

The names below are imported on first use (PEP 562): pytest imports the
pytest-qefleet plugin, a submodule, in every test run of the environment it
is installed in, and importing the whole client with it (httpx, asyncio)
would cost every run a few hundred milliseconds, used or not."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Where each public name lives.
_EXPORTS = {
    "AsyncClient": "aio",
    "AsyncTaskRun": "aio",
    "Client": "client",
    "TaskRun": "client",
    "Settings": "config",
    "default_recommendation": "config",
    "Delivery": "core",
    "ApiError": "errors",
    "QEFleetError": "errors",
    "Unavailable": "errors",
    **dict.fromkeys(
        ["Action", "ErrorInfo", "Event", "Execution", "Feedback", "Hint", "LearningHealth", "LearningStatus",
         "MemoryEntry", "Page", "Recommendation", "Result", "Task"],
        "models",
    ),
}  # fmt: skip

__all__ = [
    "Action",
    "ApiError",
    "AsyncClient",
    "AsyncTaskRun",
    "Client",
    "Delivery",
    "ErrorInfo",
    "Event",
    "Execution",
    "Feedback",
    "Hint",
    "LearningHealth",
    "LearningStatus",
    "MemoryEntry",
    "Page",
    "QEFleetError",
    "Recommendation",
    "Result",
    "Settings",
    "Task",
    "TaskRun",
    "Unavailable",
    "default_recommendation",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and editors, which do not run __getattr__
    from .aio import AsyncClient, AsyncTaskRun
    from .client import Client, TaskRun
    from .config import Settings, default_recommendation
    from .core import Delivery
    from .errors import ApiError, QEFleetError, Unavailable
    from .models import (
        Action,
        ErrorInfo,
        Event,
        Execution,
        Feedback,
        Hint,
        LearningHealth,
        LearningStatus,
        MemoryEntry,
        Page,
        Recommendation,
        Result,
        Task,
    )
