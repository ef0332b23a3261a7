"""`check --deploy` passes with production settings and fails on a weak key."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables that would loosen production's defaults if the caller's shell had them.
LOOSENING = ("DEBUG", "HTTPS", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
             # set by the browser tests' Playwright plugin in this process, never in production
             "DJANGO_ALLOW_ASYNC_UNSAFE")


def deploy_check(**env):
    base = {name: value for name, value in os.environ.items() if name not in LOOSENING}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**base, "DEBUG": "0", "ALLOWED_HOSTS": "qefleet.example.com", **env},
        capture_output=True, text=True, timeout=120,
    )


def test_it_passes_with_production_settings():
    result = deploy_check(SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout and "WARNING" not in result.stderr


def test_it_fails_on_the_development_key():
    result = deploy_check(SECRET_KEY="dev-only-insecure-key-change-me")
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_it_fails_when_https_is_turned_off():
    result = deploy_check(SECRET_KEY=secrets.token_urlsafe(50), HTTPS="0")
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W012" in result.stderr
