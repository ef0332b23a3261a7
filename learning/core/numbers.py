"""A signed number as an operator reads it: one rule for the learning app's
words and the dashboard's (the dashboard imports learning, never the reverse)."""


def shown(number, digits):
    """`number` as it is written with `digits` decimals, zero never negative:
    what decides a sign mark beside it (-0.0004 at 1 digit is 0.0, not below zero)."""
    return round(number, digits) + 0.0


def signed_number(number, digits):
    """A number with its sign that never reads "-0.0": what rounds to zero is "+0.0"."""
    return f"{shown(number, digits):+.{digits}f}"
