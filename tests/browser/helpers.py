"""Steps the browser tests share."""

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "a demo password"


def visit(page, url):
    page.goto(url)
    page.wait_for_load_state("networkidle")


def log_in(page, live_server, role, then="/ops/"):
    visit(page, f"{live_server.url}{then}")
    page.get_by_label("User name").fill(role)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}{then}")
    page.wait_for_load_state("networkidle")


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
