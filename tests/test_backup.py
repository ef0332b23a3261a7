"""backup_db copies the live database safely while it is written to;
check_backup proves the copy sound."""

import sqlite3
import threading
from contextlib import closing

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from qefleet.memory.models import MemoryEntry
from tests.conftest import make_agent

pytestmark = pytest.mark.django_db(transaction=True)
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's VACUUM INTO")
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump")


class Writer(threading.Thread):
    """Writes one memory entry per transaction until stopped."""

    def __init__(self, agent):
        super().__init__()
        self.agent, self.written, self.stop = agent, 0, threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                entry = MemoryEntry(partition="load", key=f"k{self.written}", value={"n": self.written})
                entry.assign_owner(self.agent)
                entry.save()
                self.written += 1
        finally:
            connection.close()


@pytest.fixture
def writer():
    thread = Writer(make_agent("writer"))
    thread.start()
    yield thread
    thread.stop.set()
    thread.join()


@on_sqlite
def test_it_backs_up_sqlite_while_another_thread_writes(writer, tmp_path, capsys):
    while writer.written < 50:
        threading.Event().wait(0.01)
    committed_before = MemoryEntry.objects.count()
    call_command("backup_db", str(tmp_path / "backup.sqlite3"))
    writer.stop.set()
    writer.join()

    call_command("check_backup", str(tmp_path / "backup.sqlite3"))
    report = capsys.readouterr().out
    assert "integrity_check ok" in report and "memory_entries" in report
    with closing(sqlite3.connect(f"{(tmp_path / 'backup.sqlite3').as_uri()}?mode=ro", uri=True)) as copy:
        keys = {key for (key,) in copy.execute("SELECT key FROM memory_entries WHERE partition = 'load'")}
    assert {f"k{n}" for n in range(committed_before)} <= keys


@on_postgresql
def test_it_backs_up_postgresql_with_pg_dump(tmp_path, capsys):
    make_agent("alice")
    call_command("backup_db", str(tmp_path / "backup.dump"))
    call_command("check_backup", str(tmp_path / "backup.dump"))
    assert "readable pg_dump archive" in capsys.readouterr().out


def test_it_never_overwrites_a_file(tmp_path):
    (tmp_path / "taken").write_text("keep me")
    with pytest.raises(CommandError, match="exists"):
        call_command("backup_db", str(tmp_path / "taken"))
    assert (tmp_path / "taken").read_text() == "keep me"


@on_sqlite
def test_it_fails_the_check_of_a_damaged_copy(tmp_path):
    make_agent("alice")
    path = tmp_path / "backup.sqlite3"
    call_command("backup_db", str(path))
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # the second page, whatever table it holds
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError):
        call_command("check_backup", str(path))


def test_it_refuses_what_is_not_a_backup(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CommandError, match="neither"):
        call_command("check_backup", str(tmp_path / "notes.txt"))
