"""Errors a user can act on: every one names the file, the record and the problem."""

from __future__ import annotations

from pathlib import Path


class HatlError(Exception):
    """Base class for errors reported to the user without a traceback by ``hatl`` commands."""


class InputError(HatlError):
    """Bad input: names the file, the record inside it (row, sample id, key) and what is wrong."""

    def __init__(self, path: str | Path | None, record: str | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.record = record
        self.problem = problem
        where = self.path or "<no file>"
        if record:
            where = f"{where} [{record}]"
        super().__init__(f"{where}: {problem}")


class ConfigError(HatlError):
    """The configuration is invalid: names the key and the problem."""
