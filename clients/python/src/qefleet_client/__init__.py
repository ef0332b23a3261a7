"""QE Fleet's Python client: ask which strategy to run a task with, report
how it went, and read and write the swarm's memory."""

__version__ = "0.1.0"

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
