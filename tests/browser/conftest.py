"""Browser tests: pytest-playwright drives Debian's chromium (never a browser
that Playwright downloads) against pytest-django's live_server.

Every page a test opens is watched: a CSP violation, a console error or a
failed request fails the test. Each test saves screenshots under
var/screenshots/ for review.
"""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import Page

from tests.browser.helpers import PASSWORD

# Playwright's sync API runs an event loop in the main thread, where the
# tests also use the ORM (setting up data, checking results).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    # Browser tests are transactional: the database is emptied when each one
    # ends, so they run after every other test.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900}}


@pytest.fixture(scope="session", autouse=True)
def _plotly_in_static_files():
    call_command("vendor_plotly")


@pytest.fixture(scope="session", autouse=True)
def _migrated_data(django_db_setup):
    """The data the migrations made, serialized when the test database was
    created (the browser tests ask for serialized_rollback). Taken before
    Playwright starts: once its event loop runs, Django hands the tests
    other connection objects, which lack it."""
    return connections["default"]._test_serialized_contents


@pytest.fixture(scope="module", autouse=True)
def _restorable_database(_migrated_data, playwright, django_db_blocker):
    # Each browser test loads the migrated data (serialized_rollback) and
    # empties the database when it ends, without post_migrate. Earlier
    # transactional tests flush with post_migrate, which re-creates content
    # types and permissions under new ids the data cannot be loaded over:
    # start from empty.
    connections["default"]._test_serialized_contents = _migrated_data
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, inhibit_post_migrate=True, verbosity=0)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users():
    """One login per role, all with PASSWORD."""
    for role in ("viewer", "operator", "admin"):
        user = User.objects.create_user(role, password=PASSWORD)
        user.groups.add(Group.objects.get(name=role))


@pytest.fixture
def watched(page: Page):
    """The page, failing the test on any CSP violation, console error or
    failed request on whatever it loads."""
    problems = []
    page.expose_function("reportCspViolation", lambda text: problems.append(f"CSP violation: {text}"))
    page.add_init_script("document.addEventListener('securitypolicyviolation', (event) => "
                         "window.reportCspViolation(event.violatedDirective + ' ' + event.blockedURI));")
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400 else None)
    yield page
    page.wait_for_load_state("networkidle")
    assert problems == []


@pytest.fixture
def page_without_csp(browser):
    """A page whose CSP lets Playwright add axe-core's script (the dashboard's
    own CSP allows no inline script); the pages' CSP is tested elsewhere."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


AXE = Path(__file__).resolve().parents[2] / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def axe_source():
    """axe-core's script, installed from the npm registry by `make axe` (the
    test target runs it) into var/node/, never committed."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run `make axe`.")
    return AXE.read_text(encoding="utf-8")
