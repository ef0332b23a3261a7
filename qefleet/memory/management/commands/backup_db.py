import os
import shutil
import subprocess
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = ("Back up the database to a new file, safely while the server writes: SQLite with VACUUM INTO, "
            "PostgreSQL with pg_dump -Fc. Check the copy with check_backup.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="The backup file to create; it must not exist yet.")

    def handle(self, path, **options):
        target = Path(path).resolve()
        if target.exists():
            raise CommandError(f"{target} exists; back up to a new file.")
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if connection.vendor == "sqlite":
            self.sqlite(target)
        elif connection.vendor == "postgresql":
            self.postgresql(target)
        else:
            raise CommandError(f"No backup for the {connection.vendor} database.")
        self.stdout.write(f"Backed up the {connection.vendor} database to {target} "
                          f"({target.stat().st_size:,} bytes, {time.monotonic() - started:.1f} s).")

    def sqlite(self, target):
        # VACUUM INTO writes a consistent snapshot from one read transaction;
        # in WAL mode writers carry on meanwhile. Copying the live file could
        # catch it half-written, or miss what is still in the WAL.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM INTO %s", [str(target)])

    def postgresql(self, target):
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise CommandError("pg_dump is not installed (Debian: apt-get install postgresql-client); "
                               "see 'Backup and restore' in README.md.")
        params = connection.get_connection_params()
        command = [pg_dump, "--format=custom", f"--file={target}", "--dbname", params["dbname"]]
        for option, name in (("--host", "host"), ("--port", "port"), ("--username", "user")):
            if params.get(name):
                command += [option, str(params[name])]
        # The password travels in the environment, never on the command line.
        env = {**os.environ, **({"PGPASSWORD": params["password"]} if params.get("password") else {})}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            target.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
