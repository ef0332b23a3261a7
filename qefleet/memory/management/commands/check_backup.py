import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

PROJECT_APPS = ("auth", "memory", "learning", "dashboard")


class Command(BaseCommand):
    help = ("Check a backup made by backup_db without changing it: a SQLite copy is opened read-only, "
            "integrity-checked and its tables counted; a pg_dump archive is listed with pg_restore.")

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, path, **options):
        source = Path(path).resolve()
        if not source.is_file():
            raise CommandError(f"No backup file at {source}.")
        with source.open("rb") as file:
            header = file.read(16)
        if header.startswith(b"SQLite format 3\0"):
            self.sqlite(source)
        elif header.startswith(b"PGDMP"):
            self.pg_dump_archive(source)
        else:
            raise CommandError(f"{source} is neither a SQLite database nor a pg_dump archive.")

    def sqlite(self, source):
        try:
            copy = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
            try:
                problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
                tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                counts = {table: copy.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                          for table in project_tables() if table in tables}
            finally:
                copy.close()
        except sqlite3.DatabaseError as error:
            raise CommandError(f"{source} cannot be read: {error}") from None
        if problems != ["ok"]:
            raise CommandError(f"integrity_check failed on {source}:\n" + "\n".join(problems[:20]))
        if not counts:
            raise CommandError(f"{source} is a sound SQLite file without any of QE Fleet's tables.")
        self.stdout.write(f"{source}: integrity_check ok, {len(tables)} tables.")
        for table, count in counts.items():
            self.stdout.write(f"  {table:<32} {count:>12,}")

    def pg_dump_archive(self, source):
        pg_restore = shutil.which("pg_restore")
        if pg_restore is None:
            raise CommandError("pg_restore is not installed (Debian: apt-get install postgresql-client).")
        result = subprocess.run([pg_restore, "--list", str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise CommandError(f"pg_restore cannot read {source}: {result.stderr.strip()}")
        data = [line for line in result.stdout.splitlines() if " TABLE DATA " in line]
        self.stdout.write(f"{source}: a readable pg_dump archive with data for {len(data)} tables "
                          "(restore it to count rows: pg_restore --dbname …).")


def project_tables():
    """The tables of the project's apps, in model order."""
    return [model._meta.db_table for app in PROJECT_APPS for model in apps.get_app_config(app).get_models()]
