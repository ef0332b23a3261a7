"""A simulated past for the 17 demo agents: FOR DEMOS AND BENCHMARKS ONLY (see past.py)."""

from .constants import MAX_DAYS
from .generate import HistoryExists, generate

__all__ = ["MAX_DAYS", "HistoryExists", "generate"]
