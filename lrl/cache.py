"""Content-addressed response cache (SQLite), and CachedLLM: the one place calls are cached and metered.

The key is the sha256 of canonical JSON (orjson, sorted keys) of backend, model, messages, every
sampling parameter and the prompt-template version, so changing any of them is a miss and
nothing else is, with one exception: a greedy answer that ended on its own, before its token
limit, is what the same request gives under any limit above its length, so it also answers those
(stage 4's base student asks stage 0's questions again with a smaller limit). Only successful
completions are stored: a failed call raises before `put`.
Offline mode replays a finished run from the cache and fails with one clear line on a miss,
which is how a run is reproduced without a key or a model.

CachedLLM also reports every call to an optional Ledger: hits as dollars saved, misses as
dollars spent, and it asks the ledger's budget before any paid call goes out.
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
import time
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Callable, Sequence, get_type_hints

import orjson

from backends.llm import (LLM, Completion, Message, Progress, Request, ResultHook, SamplingParams,
                          validate_messages)
from k1core.errors import UserError
from k1core.json_object import json_object
from lrl.ledger import Ledger

SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, completion BLOB NOT NULL, request BLOB NOT NULL, created REAL NOT NULL)"""
BAD_SCHEMA = """CREATE TABLE IF NOT EXISTS bad_responses (
    key TEXT PRIMARY KEY, completion BLOB, request BLOB, created REAL, reason TEXT)"""
ENDED_SCHEMA = """CREATE TABLE IF NOT EXISTS ended (
    free_key TEXT PRIMARY KEY, key TEXT NOT NULL, output_tokens INTEGER NOT NULL)"""
COLUMNS = ["key", "completion", "request", "created"]
COMPLETION_TYPES = {f.name: get_type_hints(Completion)[f.name] for f in fields(Completion)}
REQUIRED_FIELDS = {f.name for f in fields(Completion) if f.default is MISSING}


def _to_stderr(text: str) -> None:
    print(f"k1: warning: {text}", file=sys.stderr)


def completion_from_json(raw) -> Completion:
    """A Completion from a stored row; ValueError saying what is wrong with it."""
    data = json_object(raw)
    for name, kind in COMPLETION_TYPES.items():
        if name not in data:
            if name in REQUIRED_FIELDS:
                raise ValueError(f"field {name!r} is missing")
            continue
        allowed = (int, float) if kind is float else kind
        if not isinstance(data[name], allowed) or (kind is not bool and isinstance(data[name], bool)):
            raise ValueError(f"field {name!r} is a {type(data[name]).__name__}, not {kind.__name__}")
    unknown = sorted(set(data) - set(COMPLETION_TYPES))
    if unknown:
        raise ValueError(f"unknown fields {', '.join(unknown)}")
    return Completion.from_dict(data)


def _readable_rows(db: sqlite3.Connection) -> list[tuple]:
    """The rows of `responses` a damaged database still gives up, in rowid order until the first bad page."""
    rows = []
    try:
        for row in db.execute("SELECT key, completion, request, created FROM responses"):
            rows.append(row)
    except sqlite3.DatabaseError:
        pass
    return rows


def cache_key(backend: str, model: str, messages: Sequence[Message], params: SamplingParams,
              template_version: str) -> str:
    """sha256 hex of the canonical JSON of everything that determines a response."""
    payload = {"backend": backend, "model": model, "messages": list(messages), "params": params.to_dict(),
               "template_version": template_version}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def limit_free_key(backend: str, model: str, messages: Sequence[Message], params: SamplingParams,
                   template_version: str) -> str | None:
    """The key of a greedy request with its token limit left out (None for a sampled one, whose
    answers differ from call to call anyway)."""
    if params.temperature != 0:
        return None
    return cache_key(backend, model, messages, replace(params, max_tokens=1), template_version + "|any-limit")


def ended_on_its_own(completion: Completion, params: SamplingParams) -> bool:
    """Whether a completion stopped before its token limit (end of turn or a stop string), so a
    larger limit would not have changed it."""
    return completion.output_tokens < params.max_tokens


class ResponseCache:
    """SQLite table key -> completion JSON. WAL mode and one lock make it safe across threads of one process.

    A cache that cannot be trusted never stops a run with a traceback, and loses nothing it can
    still read: a damaged file (corrupt pages, a foreign schema, not SQLite at all) is moved
    aside with its readable rows copied into a fresh one; a row that does not hold a valid
    completion is moved to the table `bad_responses` and asked again. `notice` tells the user.
    """

    def __init__(self, path: Path, notice: Callable[[str], None] = _to_stderr):
        self.path = Path(path)
        self.notice = notice
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        problem, salvaged = self._damage()
        if problem:
            aside = self._move_aside()
            self.notice(f"response cache {self.path} is damaged ({problem}); moved it to {aside.name} and kept "
                        f"{len(salvaged)} readable responses; the others will be asked again")
        self.db = self._connect()
        if salvaged:
            with self.db:
                self.db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)", salvaged)

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            db.execute(BAD_SCHEMA)
            db.execute(ENDED_SCHEMA)
            return db
        except sqlite3.DatabaseError as err:
            raise UserError(f"response cache {self.path} is unusable ({err}); move it aside to start afresh") from None

    def _damage(self) -> tuple[str, list[tuple]]:
        """('', []) for a sound (or absent) file, else (what is wrong, the rows still readable)."""
        if not self.path.exists():
            return "", []
        db = None
        try:
            db = sqlite3.connect(self.path)
            columns = [row[1] for row in db.execute("PRAGMA table_info(responses)")]
            if columns and columns != COLUMNS:
                return f"table 'responses' has columns {', '.join(columns)}", []
            check = [row[0] for row in db.execute("PRAGMA quick_check")]
            if check == ["ok"]:
                return "", []
            return f"integrity check: {check[0]}", _readable_rows(db)
        except sqlite3.DatabaseError as err:
            return str(err), _readable_rows(db) if db is not None else []
        finally:
            if db is not None:
                db.close()

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))
        return aside

    def get(self, key: str) -> Completion | None:
        """The stored completion for `key`, or None (also for a bad row, which is set aside)."""
        with self._lock:
            row = self.db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return completion_from_json(row[0])
        except ValueError as err:
            self._set_aside(key, str(err))
            return None

    def _set_aside(self, key: str, reason: str) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO bad_responses SELECT *, ? FROM responses WHERE key = ?", (reason, key))
            self.db.execute("DELETE FROM responses WHERE key = ?", (key,))
        self.notice(f"response cache {self.path}: entry {key[:16]} is unreadable ({reason}); "
                    "moved it to table bad_responses, it will be asked again")

    def get_ended(self, free_key: str, max_tokens: int) -> Completion | None:
        """A greedy answer stored under another token limit that ended on its own in fewer than
        `max_tokens` tokens, or None."""
        with self._lock:
            row = self.db.execute("SELECT key, output_tokens FROM ended WHERE free_key = ?", (free_key,)).fetchone()
        return self.get(row[0]) if row is not None and row[1] < max_tokens else None

    def put(self, key: str, completion: Completion, request: dict, free_key: str | None = None) -> None:
        """Store a successful completion (first write wins; the same key means the same request);
        with `free_key`, also as the answer to that greedy request under any limit above its length."""
        with self._lock, self.db:
            self.db.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)",
                            (key, orjson.dumps(completion.to_dict()), orjson.dumps(request), time.time()))
            if free_key is not None:
                self.db.execute("INSERT OR IGNORE INTO ended VALUES (?, ?, ?)", (free_key, key, completion.output_tokens))

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.db.close()


class CachedLLM:
    """Wraps an LLM: replays cached responses, stores new ones, meters both in an optional Ledger.

    A hit comes back with `cached=True` and the cost it had when it was first produced (the ledger
    counts that as saved). With `offline=True` a miss is a UserError instead of a backend call.
    """

    def __init__(self, llm: LLM, cache: ResponseCache, *, template_version: str, ledger: Ledger | None = None,
                 offline: bool = False):
        self.llm, self.cache, self.ledger = llm, cache, ledger
        self.template_version, self.offline = template_version, offline
        self.backend, self.model, self.price = llm.backend, llm.model, llm.price
        self.batch_discount = llm.batch_discount
        self.parallel = getattr(llm, "parallel", 1)  # an LLM without the attribute answers one request at a time

    def key(self, messages: Sequence[Message], params: SamplingParams) -> str:
        return cache_key(self.backend, self.model, messages, params, self.template_version)

    def complete(self, messages: Sequence[Message], params: SamplingParams = SamplingParams()) -> Completion:
        """Cached completion, or a (budget-checked, metered) backend call that is then cached."""
        return self.complete_many([Request(messages, params)])[0]

    def complete_many(self, requests: Sequence[Request], progress: Progress | None = None,
                      on_result: ResultHook | None = None) -> list[Completion]:
        """Hits from the cache; misses from the backend, each cached the moment it arrives.

        A backend that works on one request at a time is called once per miss, each paid call
        budget-checked just before it goes out. A batch backend (Message Batches) or one that
        decodes many requests at once (`parallel` > 1) gets all misses in one bulk call, checked
        against the budget as a whole first. Either way a run killed midway keeps every answer
        that finished. `progress` counts hits and finished misses; `on_result` hears of both.
        """
        keys = [self.key(validate_messages(r.messages), r.params) for r in requests]
        results: list[Completion | None] = [self._lookup(key, r) for key, r in zip(keys, requests)]
        for i, hit in enumerate(results):
            if hit is not None:
                results[i] = replace(hit, cached=True, latency_s=0.0)
                if self.ledger:
                    self.ledger.record(results[i])
                if on_result:
                    on_result(i, results[i])
        missing = [i for i, r in enumerate(results) if r is None]
        if missing and self.offline:
            raise UserError(f"offline: {len(missing)} of {len(requests)} responses are not in the cache "
                            f"{self.cache.path} (first key {keys[missing[0]][:16]}); run once online first")
        hits = len(requests) - len(missing)
        if progress and hits:
            progress(hits, len(requests))

        def keep(j: int, completion: Completion) -> None:
            i = missing[j]
            if results[i] is None:
                results[i] = self._store(keys[i], requests[i], completion)
                if on_result:
                    on_result(i, results[i])

        if missing and (self.batch_discount or self.parallel > 1):
            todo = [requests[i] for i in missing]
            self._check_budget(todo)
            shifted = (lambda done, _total: progress(hits + done, len(requests))) if progress else None
            for j, completion in enumerate(self.llm.complete_many(todo, shifted, keep)):
                keep(j, completion)  # a backend that did not report it as it finished
        else:
            for j, i in enumerate(missing):
                self._check_budget([requests[i]])
                keep(j, self.llm.complete(requests[i].messages, requests[i].params))
                if progress:
                    progress(hits + j + 1, len(requests))
        return results

    def _free_key(self, request: Request) -> str | None:
        return limit_free_key(self.backend, self.model, request.messages, request.params, self.template_version)

    def _lookup(self, key: str, request: Request) -> Completion | None:
        """The stored answer to this request, or a greedy one that ended below this request's limit."""
        found = self.cache.get(key)
        if found is not None:
            return found
        free_key = self._free_key(request)
        return self.cache.get_ended(free_key, request.params.max_tokens) if free_key else None

    def _check_budget(self, requests: Sequence[Request]) -> None:
        if self.ledger:
            self.ledger.check_budget(self.ledger.estimate_requests_usd(self.price, requests, self.batch_discount))

    def _store(self, key: str, request: Request, completion: Completion) -> Completion:
        ended = ended_on_its_own(completion, request.params)
        self.cache.put(key, completion, {"messages": list(request.messages), "params": request.params.to_dict()},
                       self._free_key(request) if ended else None)
        if self.ledger:
            self.ledger.record(completion)
        return completion
