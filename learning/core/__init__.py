"""The learning math: pure functions and constants, no Django, no database."""
