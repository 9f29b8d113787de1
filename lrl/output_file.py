"""Output files: checked before any work is done, appended to as results arrive, read back to resume.

A command that writes results checks its output path first, so a missing folder costs nothing;
one that produces results slowly appends each as it comes, so a crash or Ctrl-C keeps them and
the same command run again continues where it stopped.
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from k1core.errors import UserError
from lrl.domain import read_jsonl


def writable_file(path: str | Path) -> Path:
    """`path` as a Path if a file can be written there; a UserError saying why not otherwise."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name to write")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {path}: permission denied")
    return path


def append_jsonl(path: Path, obj: dict) -> None:
    """One line appended and closed at once: whatever is on disk is whole records."""
    try:
        with open(path, "ab") as f:
            f.write(orjson.dumps(obj) + b"\n")
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror})") from None


def read_finished_records(path: Path) -> list[dict]:
    """The whole records of a results file being appended to; a torn last line (a kill mid-write) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    if whole < len(data):
        with open(path, "r+b") as f:
            f.truncate(whole)
    return [record for _where, record in read_jsonl(path)]
