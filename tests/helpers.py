"""Helpers shared by the test packages."""

from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_in_threads(count, work):
    """work(0) ... work(count - 1), each in its own thread (and database
    connection, closed when it ends); their results in order."""
    def wrapped(index):
        try:
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(wrapped, range(count)))
