from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from plotly.offline import get_plotlyjs

# Under STATICFILES_DIRS, so runserver, collectstatic and whitenoise serve it;
# generated rather than committed so it always matches the installed plotly.
PLOTLY_JS = Path(settings.BASE_DIR) / "static" / "vendor" / "plotly" / "plotly.min.js"


class Command(BaseCommand):
    help = "Copy plotly.js from the installed plotly package into static/vendor/ (the dashboard never uses a CDN)."

    def handle(self, **options):
        bundle = get_plotlyjs()
        if PLOTLY_JS.exists() and PLOTLY_JS.read_text(encoding="utf-8") == bundle:
            self.stdout.write(f"{PLOTLY_JS.relative_to(settings.BASE_DIR)} is up to date.")
            return
        PLOTLY_JS.parent.mkdir(parents=True, exist_ok=True)
        PLOTLY_JS.write_text(bundle, encoding="utf-8")
        self.stdout.write(f"Wrote {PLOTLY_JS.relative_to(settings.BASE_DIR)} ({len(bundle):,} characters).")
