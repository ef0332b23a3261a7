"""The interpreter and Django carry the fixes the deployment relies on."""

import sys

import django


def test_it_runs_on_python_3_11_or_newer():
    assert sys.version_info >= (3, 11)


def test_it_runs_django_5_2_lts_with_both_body_size_fixes():
    # 5.2.13 fixed the ASGI body-size bypass (GHSA-933h-hp56-hf7m); 5.2.14
    # the FILE_UPLOAD_MAX_MEMORY_SIZE variant (GHSA-w26r-rmm8-9c29).
    assert (5, 2, 14) <= django.VERSION[:3] and django.VERSION[:2] == (5, 2)
