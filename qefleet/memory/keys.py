"""What a partition name and a memory key may be.

Keys are stored exactly as sent (no normalisation), so any valid Unicode key
round-trips character for character on SQLite and PostgreSQL alike. SQLite enforces no
column length, so the limits are checked here, in the application.
"""

import re
import unicodedata

from .errors import Invalid

MAX_KEY_LENGTH = 512
MAX_PARTITION_LENGTH = 64
PARTITION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _bad_character(text):
    for char in text:
        if "\ud800" <= char <= "\udfff":
            return "a lone surrogate"
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") and char not in "\u200d\ufe0f":
            return f"the control or unassigned character U+{ord(char):04X}"
    return None


def whole_number(text):
    """The number `text` spells in ASCII digits (at most 18, so it fits a
    64-bit column), else None: "²".isdigit() is true and int("²") raises, and
    other scripts' digits are no number a key or cursor of ours holds."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def validate_partition(partition):
    if not partition or len(partition) > MAX_PARTITION_LENGTH or not PARTITION_RE.match(partition):
        raise Invalid(
            f"A partition is 1-{MAX_PARTITION_LENGTH} characters of letters, digits, '_', '.' and '-'.", "partition"
        )
    return partition


def validate_key(key, field="key"):
    if not key:
        raise Invalid("The key is empty.", field)
    if len(key) > MAX_KEY_LENGTH:
        raise Invalid(f"The key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}.", field)
    if "%" in key:
        # Django keeps percent-escapes that are not UTF-8 as literal "%XX"
        # text, so a key with "%" could not be told apart from a broken one.
        raise Invalid("The key may not contain '%'.", field)
    problem = _bad_character(key)
    if problem:
        raise Invalid(f"The key contains {problem}.", field)
    if key != key.strip():
        raise Invalid("The key starts or ends with white space.", field)
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise Invalid("Key segments between '/' must be non-empty and not '.' or '..'.", field)
    return key
