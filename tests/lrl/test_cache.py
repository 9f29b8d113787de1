import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.llm import LLMError, Request, SamplingParams
from k1core.errors import UserError
from lrl.cache import CachedLLM, ResponseCache, cache_key
from lrl.ledger import Ledger
from tests.lrl.echo_llm import ScriptedLLM

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+3?"}]


def test_key_is_sha256_of_canonical_sorted_json():
    key = cache_key("anthropic", "claude-haiku-4-5", CHAT, SamplingParams(), "v1")
    canonical = ('{"backend":"anthropic","messages":[{"content":"be brief","role":"system"},'
                 '{"content":"2+3?","role":"user"}],"model":"claude-haiku-4-5","params":{"max_tokens":512,'
                 '"seed":0,"stop":[],"temperature":0.0,"top_p":1.0},"template_version":"v1"}')
    assert key == hashlib.sha256(canonical.encode()).hexdigest()
    reordered = [dict(reversed(list(m.items()))) for m in CHAT]  # dict order must not matter
    assert cache_key("anthropic", "claude-haiku-4-5", reordered, SamplingParams(), "v1") == key


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["backend", "model", "content", "role", "temperature", "max_tokens", "seed", "top_p",
                        "stop", "template"]))
def test_every_ingredient_changes_the_key(field):
    base = dict(backend="b", model="m", messages=[{"role": "user", "content": "x"}],
                params=SamplingParams(), template_version="v1")
    changed = dict(base)
    if field in ("backend", "model"):
        changed[field] = "other"
    elif field == "content":
        changed["messages"] = [{"role": "user", "content": "y"}]
    elif field == "role":
        changed["messages"] = [{"role": "system", "content": "x"}, {"role": "user", "content": "x"}]
    elif field == "template":
        changed["template_version"] = "v2"
    else:
        value = {"temperature": 0.5, "max_tokens": 7, "seed": 1, "top_p": 0.9, "stop": ("\n",)}[field]
        changed["params"] = SamplingParams(**{field: value})
    assert cache_key(**base) != cache_key(**changed)


def test_a_greedy_answer_that_ended_on_its_own_answers_any_larger_limit(tmp_path):
    llm = ScriptedLLM()  # writes min(max_tokens, 500) tokens: 500 of 512 ends on its own, 400 of 400 is cut
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1")
    ended = cached.complete(CHAT, SamplingParams(max_tokens=512))
    again = cached.complete(CHAT, SamplingParams(max_tokens=501))
    assert len(llm.calls) == 1 and again.cached and again.text == ended.text
    cached.complete(CHAT, SamplingParams(max_tokens=500))  # it might have been cut there: asked
    assert len(llm.calls) == 2
    other = [{"role": "user", "content": "3+4?"}]
    cached.complete(other, SamplingParams(max_tokens=400))  # cut at its limit: says nothing about 600
    cached.complete(other, SamplingParams(max_tokens=600))
    cached.complete(other, SamplingParams(temperature=0.7, max_tokens=512))  # sampled: never shared
    cached.complete(other, SamplingParams(temperature=0.7, max_tokens=600))
    assert len(llm.calls) == 6
    replay = CachedLLM(ScriptedLLM(), ResponseCache(tmp_path / "c.sqlite"), template_version="v1", offline=True)
    assert replay.complete(CHAT, SamplingParams(max_tokens=700)).text == ended.text


def test_hit_miss_and_persistence(tmp_path):
    llm = ScriptedLLM()
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1")
    first = cached.complete(CHAT)
    second = cached.complete(CHAT)
    assert len(llm.calls) == 1 and not first.cached and second.cached
    assert second.text == first.text and second.cost_usd == first.cost_usd and second.latency_s == 0.0
    cached.complete(CHAT, SamplingParams(temperature=0.7))  # different params: a miss
    assert len(llm.calls) == 2
    reopened = CachedLLM(ScriptedLLM(), ResponseCache(tmp_path / "c.sqlite"), template_version="v1", offline=True)
    assert reopened.complete(CHAT).text == first.text
    assert len(reopened.cache) == 2


def test_offline_miss_is_a_clear_error(tmp_path):
    cached = CachedLLM(ScriptedLLM(), ResponseCache(tmp_path / "c.sqlite"), template_version="v1", offline=True)
    with pytest.raises(UserError, match="offline: 1 of 1 responses are not in the cache"):
        cached.complete(CHAT)
    assert cached.llm.calls == []


def test_errors_are_never_cached_and_finished_work_survives_a_failure(tmp_path):
    llm = ScriptedLLM(fail_on="boom")
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1")
    requests = [Request([{"role": "user", "content": p}]) for p in ("a", "b", "boom", "c")]
    with pytest.raises(LLMError):
        cached.complete_many(requests)
    assert len(cached.cache) == 2  # a and b were stored as they finished; the failure was not
    llm.fail_on = None
    out = cached.complete_many(requests)
    assert [c.cached for c in out] == [True, True, False, False]
    assert llm.calls == ["a", "b", "boom", "boom", "c"]


def test_bulk_progress_counts_hits_and_batch_backends_get_one_bulk_call(tmp_path):
    llm = ScriptedLLM(batch_discount=True)
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1")
    cached.complete([{"role": "user", "content": "a"}])
    seen = []
    requests = [Request([{"role": "user", "content": p}]) for p in ("a", "b", "c")]
    cached.complete_many(requests, progress=lambda done, total: seen.append((done, total)))
    assert llm.bulk_calls == [1, 2] and seen[0] == (1, 3) and seen[-1] == (3, 3)


def test_parallel_backend_gets_all_misses_in_one_call_and_each_answer_is_kept_as_it_finishes(tmp_path):
    llm = ScriptedLLM(fail_on="boom", parallel=4)
    cached = CachedLLM(llm, ResponseCache(tmp_path / "c.sqlite"), template_version="v1")
    cached.complete([{"role": "user", "content": "a"}])
    requests = [Request([{"role": "user", "content": p}]) for p in ("a", "b", "c", "boom", "d")]
    with pytest.raises(LLMError):
        cached.complete_many(requests)
    assert llm.bulk_calls == [1, 4] and len(cached.cache) == 3  # a, then b and c as they finished
    llm.fail_on = None
    seen, heard = [], []
    out = cached.complete_many(requests, progress=lambda done, total: seen.append((done, total)),
                               on_result=lambda i, c: heard.append((i, c.cached)))
    assert llm.bulk_calls == [1, 4, 2] and [c.cached for c in out] == [True, True, True, False, False]
    assert seen == [(3, 5), (4, 5), (5, 5)] and sorted(heard) == [(0, True), (1, True), (2, True), (3, False), (4, False)]


def test_threads_share_one_cache(tmp_path):
    cached = CachedLLM(ScriptedLLM(), ResponseCache(tmp_path / "c.sqlite"), template_version="v1")

    def work(i):
        for j in range(20):
            cached.complete([{"role": "user", "content": f"{i}-{j % 5}"}])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cached.cache) == 20


def test_cached_calls_feed_the_ledger(tmp_path):
    ledger = Ledger()
    cached = CachedLLM(ScriptedLLM(), ResponseCache(tmp_path / "c.sqlite"), template_version="v1", ledger=ledger)
    with ledger.stage("stage1"):
        paid = cached.complete(CHAT)
        cached.complete(CHAT)
    s = ledger.summary()["stages"]["stage1"]
    assert s["calls"] == 2 and s["cache_hits"] == 1
    assert s["usd"] == pytest.approx(paid.cost_usd) and s["saved_usd"] == pytest.approx(paid.cost_usd)


def _filled_cache(path, n=3):
    cache = ResponseCache(path)
    completions = {}
    for i in range(n):
        key = f"{i:064x}"
        completions[key] = ScriptedLLM().complete([{"role": "user", "content": f"question {i}"}], SamplingParams())
        cache.put(key, completions[key], {"i": i})
    cache.close()
    return completions


def test_a_file_that_is_not_sqlite_is_moved_aside_and_the_run_goes_on(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    notices = []
    cache = ResponseCache(path, notice=notices.append)
    assert len(cache) == 0 and cache.get("0" * 64) is None
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not sqlite" * 100  # nothing thrown away
    assert len(notices) == 1 and aside[0].name in notices[0] and "not a database" in notices[0]


def test_a_foreign_schema_is_moved_aside(tmp_path):
    import sqlite3
    path = tmp_path / "c.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE responses (id INTEGER, payload TEXT)")
    db.commit()
    db.close()
    notices = []
    cache = ResponseCache(path, notice=notices.append)
    assert len(cache) == 0 and "columns id, payload" in notices[0]


def test_corrupt_pages_keep_every_row_still_readable(tmp_path):
    path = tmp_path / "c.sqlite"
    completions = _filled_cache(path, n=400)  # several pages of rows
    data = bytearray(path.read_bytes())
    page = 4096
    data[len(data) - 2 * page: len(data) - page] = b"\xff" * page  # wreck one page near the end
    path.write_bytes(bytes(data))
    notices = []
    cache = ResponseCache(path, notice=notices.append)
    kept = sum(cache.get(key) is not None for key in completions)
    assert notices and "damaged" in notices[0] and f"kept {len(cache)}" in notices[0]
    assert 0 < kept == len(cache) < 400
    assert [p for p in tmp_path.iterdir() if ".damaged-" in p.name]


@pytest.mark.parametrize("stored, reason", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"text": "hi"}', "missing"),
    (b'{"text": 5, "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, '
     b'"latency_s": 0.1, "cost_usd": 0.0, "model": "m", "backend": "b", "stop_reason": "stop"}', "'text' is a int"),
    (b'{"text": "x", "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, '
     b'"latency_s": 0.1, "cost_usd": 0.0, "model": "m", "backend": "b", "stop_reason": "stop", "evil": 1}', "unknown"),
])
def test_a_bad_row_is_set_aside_reported_and_asked_again(tmp_path, stored, reason):
    path = tmp_path / "c.sqlite"
    completions = _filled_cache(path)
    bad_key = next(iter(completions))
    cache = ResponseCache(path)
    cache.db.execute("UPDATE responses SET completion = ? WHERE key = ?", (stored, bad_key))
    notices = []
    cache.notice = notices.append
    assert cache.get(bad_key) is None
    assert len(notices) == 1 and bad_key[:16] in notices[0] and reason in notices[0]
    assert cache.db.execute("SELECT completion FROM bad_responses WHERE key = ?", (bad_key,)).fetchone()[0] == stored
    assert len(cache) == 2 and all(cache.get(k) == c for k, c in completions.items() if k != bad_key)
    cache.put(bad_key, completions[bad_key], {})  # asked again: the fresh answer is stored
    assert cache.get(bad_key) == completions[bad_key]


def test_offline_replay_over_a_bad_row_is_one_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    llm = CachedLLM(ScriptedLLM(), cache, template_version="v1")
    llm.complete(CHAT, SamplingParams())
    cache.db.execute("UPDATE responses SET completion = ?", (b"garbage",))
    notices = []
    cache.notice = notices.append
    offline = CachedLLM(ScriptedLLM(), cache, template_version="v1", offline=True)
    with pytest.raises(UserError, match="not in the cache"):
        offline.complete(CHAT, SamplingParams())
    assert notices and "unreadable" in notices[0]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_any_stored_bytes_give_a_completion_or_a_miss(stored):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(f"{tmp}/c.sqlite", notice=lambda _text: None)
        cache.db.execute("INSERT INTO responses VALUES (?, ?, ?, ?)", ("k", stored, b"{}", 0.0))
        got = cache.get("k")
        assert got is None or got.text is not None
        cache.close()
