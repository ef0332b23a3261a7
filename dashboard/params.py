"""The one way the dashboard reads a request's parameters: a page's query
(`request.GET`) and an action's form (`request.POST`).

Each reader returns a value the page can use, or the default when the
parameter is absent or empty, or raises `BadParameter`, which the views
answer with 400 and its message. A message names the parameter and what it
must be, never the value sent, so it is safe to show as it is.
"""

import unicodedata
from datetime import UTC, datetime, timedelta

from qefleet.memory.keys import whole_number as number_in

# The largest number a page reads: what an integer column holds (SQLite and
# PostgreSQL alike), so no number reaches a query that the database refuses.
MAX_NUMBER = 2**31 - 1
MAX_TEXT = 200
# Characters a text keeps: tab and line breaks (an operator's note); any
# other control character, NUL first (PostgreSQL refuses it in text), is refused.
LINE_CONTROLS = "\t\n\r"


# A page's time range (?range=), one for all its charts: its name and how far back it reaches.
TIME_RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
               "30d": timedelta(days=30), "90d": timedelta(days=90)}


class BadParameter(ValueError):
    """A parameter the page cannot use; the message says which and why."""


def text(params, name, default="", max_length=MAX_TEXT):
    """Text of at most `max_length` characters, without control characters."""
    value = params.get(name, "") or default
    if len(value) > max_length:
        raise BadParameter(f"{name} must be at most {max_length} characters long.")
    if any(unicodedata.category(char) == "Cc" and char not in LINE_CONTROLS for char in value):
        raise BadParameter(f"{name} must not contain control characters.")
    return value


def whole_number(params, name, default=None, minimum=0, maximum=MAX_NUMBER):
    """A whole number in ASCII digits (not "²", which `str.isdigit` accepts and
    `int` refuses, nor other scripts' digits) from `minimum` to `maximum`."""
    value = params.get(name, "")
    if not value:
        return default
    number = number_in(value)
    if number is None or not minimum <= number <= maximum:
        raise BadParameter(f"{name} must be a whole number from {minimum} to {maximum}.")
    return number


def whole_numbers(params, name, minimum=0, maximum=MAX_NUMBER, most=500):
    """Every value of a repeated parameter (checkboxes), each a whole number
    as `whole_number` reads it; at most `most` of them."""
    values = params.getlist(name)
    if len(values) > most:
        raise BadParameter(f"{name} may be given at most {most} times.")
    numbers = [whole_number({name: value}, name, minimum=minimum, maximum=maximum) for value in values]
    if None in numbers:
        raise BadParameter(f"{name} must be a whole number from {minimum} to {maximum}.")
    return numbers


def page_number(params, name="page"):
    """A page of a paginated list: 1 or more (a paginator shows the last page
    for a number past it)."""
    return whole_number(params, name, default=1, minimum=1)


def choice(params, name, allowed, default=""):
    """One of `allowed` (strings); `default` when absent, even when not one of them ("" for all)."""
    value = params.get(name, "")
    if not value:
        return default
    if value not in allowed:
        raise BadParameter(f"{name} must be one of: {', '.join(allowed)}.")
    return value


def time_range(params, default="7d", allowed=tuple(TIME_RANGES)):
    """A page's time range (?range=, one of `allowed`, names of TIME_RANGES):
    (its name, how far back it reaches)."""
    name = choice(params, "range", list(allowed), default)
    return name, TIME_RANGES[name]


def moment(params, name, earliest, latest):
    """An ISO 8601 date and time from `earliest` to `latest` (aware), as an
    aware UTC datetime. A time without an offset is UTC: the console's ISO
    time inputs send one, and their labels say UTC."""
    try:
        value = datetime.fromisoformat(params.get(name, ""))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # In UTC, a time on the calendar's last day with a negative offset is past it.
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadParameter(f"{name} must be a date and time, YYYY-MM-DDTHH:MM (UTC) or with an offset.") from None
    if not earliest < value <= latest:
        raise BadParameter(f"{name} must be after {earliest:%Y-%m-%d %H:%M} and at most "
                           f"{latest:%Y-%m-%d %H:%M} UTC.")
    return value
