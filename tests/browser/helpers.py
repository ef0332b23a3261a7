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


def overflow(page):
    """How many px the page is wider than the window (0: none)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def serious_violations(page, axe_source):
    """axe-core's serious and critical violations on the page, each as its rule and first nodes."""
    page.add_script_tag(content=axe_source)
    return page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => v.id + ': ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '))""")
