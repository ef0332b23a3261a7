"""QE Fleet's Python client: ask which strategy to run a task with, report
how it went, and read and write the swarm's memory."""

__version__ = "0.1.0"

from .client import Client, TaskRun  # noqa: E402
from .aio import AsyncClient, AsyncTaskRun  # noqa: E402
from .config import Settings, default_recommendation  # noqa: E402
from .core import Delivery  # noqa: E402
from .errors import ApiError, QEFleetError, Unavailable  # noqa: E402
from .models import (  # noqa: E402
    Action,
    ErrorInfo,
    Event,
    Execution,
    Feedback,
    Hint,
    LearningStatus,
    MemoryEntry,
    Page,
    Recommendation,
    Result,
    Task,
)

__all__ = [
    "Action", "ApiError", "AsyncClient", "AsyncTaskRun", "Client", "Delivery", "ErrorInfo", "Event", "Execution",
    "Feedback", "Hint", "LearningStatus", "MemoryEntry", "Page", "QEFleetError", "Recommendation", "Result",
    "Settings", "Task", "TaskRun", "Unavailable", "default_recommendation",
]
