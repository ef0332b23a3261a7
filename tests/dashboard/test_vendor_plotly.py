"""plotly.js is copied from the installed plotly package, never fetched."""

from django.core.management import call_command
from plotly.offline import get_plotlyjs

from dashboard.management.commands import vendor_plotly


def test_it_copies_plotly_js_once(tmp_path, monkeypatch, capsys, settings):
    settings.BASE_DIR = tmp_path
    monkeypatch.setattr(vendor_plotly, "PLOTLY_JS", tmp_path / "static" / "vendor" / "plotly" / "plotly.min.js")
    call_command("vendor_plotly")
    assert vendor_plotly.PLOTLY_JS.read_text(encoding="utf-8") == get_plotlyjs()
    assert "Wrote static/vendor/plotly/plotly.min.js" in capsys.readouterr().out
    call_command("vendor_plotly")
    assert "is up to date" in capsys.readouterr().out
