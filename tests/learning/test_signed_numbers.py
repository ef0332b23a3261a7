"""A signed number as the learning app and the dashboard write it: one rule, no "-0.0"."""

from learning.core.numbers import shown, signed_number


def test_a_signed_number_never_reads_minus_zero():
    assert [signed_number(value, 1) for value in (-0.04, 0.0, -1.25, 2.0)] == ["+0.0", "+0.0", "-1.2", "+2.0"]


def test_the_value_shown_is_the_number_as_written_so_a_mark_beside_it_agrees():
    assert shown(-0.04, 1) == 0.0 and not shown(-0.04, 1) < 0
    assert shown(-0.06, 1) == -0.1 and shown(19.96, 1) == 20.0
