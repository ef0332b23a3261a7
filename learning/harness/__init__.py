"""Harness code: the simulated fleet, benchmarks, load and fault drills, generated history.

No product module imports it; management commands and tests drive it.
"""
