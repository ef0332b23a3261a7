"""A simulated past for the 17 demo agents: FOR DEMOS AND BENCHMARKS ONLY (see past.py)."""

from .past import MAX_DAYS, HistoryExists, generate

__all__ = ["MAX_DAYS", "HistoryExists", "generate"]
