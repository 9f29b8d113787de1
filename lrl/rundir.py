"""The run directory: every artifact of an LRL run, written so a kill at any moment loses nothing.

JSON files are replaced atomically (write a temporary file, fsync, rename); JSONL logs are
appended one whole line at a time and flushed. A stage's progress lives in
`stages/<stage>.json`, so a re-run continues where the killed one stopped.

Layout:
    config.json      the effective configuration (a re-run must match it)
    manifest.json    package versions, seeds, model ids, prompt-template version
    journal.md       what happened, in order, for a person to read
    thoughts.jsonl   every prompt and response, one line per model call of the run
    strategy.md      the final strategy; strategies/NN.md + NN.json every candidate with its score
    results.json     per stage: accuracy with CIs, baselines, breakdowns, paired tests
    report.md        the table a person reads first
    ledger.json      tokens and dollars per stage; responses.sqlite the response cache
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable

import orjson

from k1core.errors import UserError


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON; readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in `path`, `default` when it does not exist; UserError when it is unreadable."""
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except orjson.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); move it aside or use a new --out") from None


class RunDir:
    """One run's directory; stages read and write their state through it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._mend_torn_line(self.thoughts_path)
        self._thought_keys = {entry["key"] for entry in self._read_jsonl(self.thoughts_path)}

    # -------------------------------------------------------------- paths
    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def thoughts_path(self) -> Path:
        return self.path / "thoughts.jsonl"

    @property
    def cache_path(self) -> Path:
        return self.path / "responses.sqlite"

    # -------------------------------------------------------------- config
    def bind_config(self, config: dict) -> None:
        """Write config.json, or check that the one already there is the same run."""
        existing = read_json(self / "config.json")
        if existing is not None and existing != config:
            changed = sorted(k for k in set(existing) | set(config) if existing.get(k) != config.get(k))
            raise UserError(f"{self.path} holds a run with a different configuration ({', '.join(changed)}); "
                            "re-run with the same flags to resume, or choose a new --out")
        if existing is None:
            write_json_atomic(self / "config.json", config)

    # -------------------------------------------------------------- stage state
    def stage_state(self, stage: str) -> dict:
        return read_json(self / "stages" / f"{stage}.json", default={})

    def save_stage_state(self, stage: str, state: dict) -> None:
        write_json_atomic(self / "stages" / f"{stage}.json", state)

    # -------------------------------------------------------------- logs
    def journal(self, text: str) -> None:
        """Append a paragraph to journal.md with a UTC timestamp."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        with open(self / "journal.md", "a", encoding="utf-8") as f:
            f.write(f"**{stamp}** {text.strip()}\n\n")

    def log_thoughts(self, entries: Iterable[dict]) -> None:
        """Append prompt/response entries; one already logged under the same `key` is skipped,
        so a resumed run that replays cached calls does not log them twice."""
        with open(self.thoughts_path, "ab") as f:
            for entry in entries:
                if entry["key"] in self._thought_keys:
                    continue
                self._thought_keys.add(entry["key"])
                f.write(orjson.dumps(entry) + b"\n")
            f.flush()

    @staticmethod
    def _mend_torn_line(path: Path) -> None:
        """End a line a kill left unfinished, so the next entry starts on a line of its own."""
        if path.exists() and path.stat().st_size:
            with open(path, "rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    @staticmethod
    def _read_jsonl(path: Path) -> list[dict]:
        if not path.exists():
            return []
        rows = []
        for line in path.read_bytes().splitlines():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # a line torn by a kill mid-write; its call is logged again on resume
        return rows
