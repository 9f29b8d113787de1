"""Batched decoding (complete_many with parallel > 1) answers as one-at-a-time decoding does, on tiny GGUFs."""
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")
pytest.importorskip("tokenizers")

from backends.llamacpp_backend import LlamaCppLLM  # noqa: E402
from backends.llamacpp_batch import shared_prefix_length, utf8_hold  # noqa: E402
from backends.llm import Request, SamplingParams  # noqa: E402
from tests.backends.export.peft_fixtures import tiny_gguf, write_peft_adapter  # noqa: E402

SYSTEM = {"role": "system", "content": "the cat sat on the mat. answer: yes no " * 3}
QUESTIONS = ["what is 2 + 3 ?", "the cat", "yes", "what is the mat? the cat sat on the mat and " * 2,
             "no no no", "2 + 3", "the mat", "answer: yes"]


def chat(question: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    path, cfg, _ = tiny_gguf(tmp_path_factory.mktemp("tiny"), "qwen2")
    return path, cfg


def pair(path, parallel: int, **kwargs):
    """The same file loaded for one-at-a-time and for batched decoding."""
    one = LlamaCppLLM(path, n_ctx=512, n_threads=1, **kwargs)
    many = LlamaCppLLM(path, n_ctx=512, n_threads=1, parallel=parallel, **kwargs)
    return one, many


def same_answers(one, many, requests):
    expected = [one.complete(r.messages, r.params) for r in requests]
    got = many.complete_many(requests)
    for want, have in zip(expected, got):
        assert (have.text, have.output_tokens, have.stop_reason, have.input_tokens) == \
               (want.text, want.output_tokens, want.stop_reason, want.input_tokens)
    return got


def test_greedy_batched_equals_one_at_a_time_with_more_requests_than_slots(tiny_qwen):
    one, many = pair(tiny_qwen[0], parallel=3)
    requests = [Request(chat(q), SamplingParams(max_tokens=4 + 5 * (i % 4))) for i, q in enumerate(QUESTIONS)]
    seen = []
    got = same_answers(one, many, requests) and many.complete_many(
        requests, progress=lambda d, n: seen.append((d, n)), on_result=lambda i, c: seen.append(i))
    assert sorted(x for x in seen if isinstance(x, int)) == list(range(len(requests)))
    assert [x for x in seen if isinstance(x, tuple)] == [(d, len(requests)) for d in range(1, len(requests) + 1)]
    assert len({c.output_tokens for c in got}) > 1 and any(c.stop_reason == "length" for c in got)


def test_stop_strings_cut_the_text_as_one_at_a_time_does(tiny_qwen):
    one, many = pair(tiny_qwen[0], parallel=4)
    free = [one.complete(chat(q), SamplingParams(max_tokens=24)).text for q in QUESTIONS[:4]]
    stops = [(text[len(text) // 2:len(text) // 2 + 2],) for text in free]  # strings each answer really contains
    requests = [Request(chat(q), SamplingParams(max_tokens=24, stop=s)) for q, s in zip(QUESTIONS, stops)]
    got = same_answers(one, many, requests)
    assert all(c.stop_reason == "stop" and len(c.text) < len(f) for c, f in zip(got, free))


def test_prompts_without_a_common_prefix_and_a_single_request(tiny_qwen):
    one, many = pair(tiny_qwen[0], parallel=2)
    requests = [Request([{"role": "user", "content": q}], SamplingParams(max_tokens=6)) for q in QUESTIONS[:3]]
    same_answers(one, many, requests)
    same_answers(one, many, requests[:1])


def test_seeded_sampling_is_reproducible_and_follows_the_seed(tiny_qwen):
    one, many = pair(tiny_qwen[0], parallel=3)
    requests = [Request(chat(q), SamplingParams(temperature=1.0, max_tokens=12, seed=seed))
                for q in QUESTIONS[:3] for seed in (1, 2)]
    first = [c.text for c in many.complete_many(requests)]
    assert first == [c.text for c in many.complete_many(requests)]
    assert first[0] != first[1]  # another seed, another draw
    same_answers(one, many, requests)


def greedy_up_to_ties(path, one, requests, got, tie: float) -> None:
    """Every token of each batched answer is, given the tokens before it, within `tie` logits of the
    one-at-a-time model's best: flash attention sums over another set of cells in a batch, which may
    flip a near-tie (measured 0.0625 on gemma3), never a clear choice or a truncated prompt."""
    import llama_cpp
    import numpy as np

    scorer = llama_cpp.Llama(str(path), n_ctx=512, n_threads=1, logits_all=True, flash_attn=True, verbose=False)
    for request, have in zip(requests, got):
        want = one.complete(request.messages, request.params)
        assert (have.input_tokens, have.output_tokens, have.stop_reason) == \
               (want.input_tokens, want.output_tokens, want.stop_reason)
        prompt = one.prompt_tokens(request.messages)
        answer = scorer.tokenize(have.text.encode(), add_bos=False, special=True)
        scorer.reset()
        scorer.eval(prompt + answer)
        logits = np.asarray(scorer.scores[len(prompt) - 1:len(prompt) - 1 + len(answer)])
        gaps = logits.max(axis=1) - logits[np.arange(len(answer)), answer]
        assert gaps.max() <= tie, (have.text, want.text, gaps)


@pytest.mark.slow
def test_sliding_window_model_decodes_every_prompt_whole():
    """gemma3 (sliding-window attention, no chat template): the shipped 270M model, loaded in about a second."""
    from tests.conftest import shipped_model

    path = shipped_model("gemma270m")
    one, many = pair(path, parallel=3)
    prompts = ["The capital of France is", "1, 2, 3,", "The cat sat on the", "Water boils at"]
    requests = [Request([{"role": "user", "content": p}], SamplingParams(max_tokens=6)) for p in prompts]
    greedy_up_to_ties(path, one, requests, many.complete_many(requests), tie=0.1)


def test_lora_adapter_applies_to_batched_decoding(tmp_path, tiny_qwen):
    from backends.export.lora_gguf import write_lora_gguf

    path, cfg = tiny_qwen
    write_peft_adapter(tmp_path / "adapter", cfg, rank=4, alpha=32.0, std=0.3)
    adapter = write_lora_gguf(path, tmp_path / "adapter", tmp_path / "adapter.gguf")
    requests = [Request(chat(q), SamplingParams(max_tokens=10)) for q in QUESTIONS[:4]]
    one, many = pair(path, parallel=2, lora_path=adapter)
    adapted = same_answers(one, many, requests)
    plain = LlamaCppLLM(path, n_ctx=512, n_threads=1, parallel=2).complete_many(requests)
    assert [c.text for c in adapted] != [c.text for c in plain]


def test_a_prompt_longer_than_the_context_is_an_llm_error(tiny_qwen):
    from backends.llm import LLMError

    many = LlamaCppLLM(tiny_qwen[0], n_ctx=64, n_threads=1, parallel=2)
    with pytest.raises(LLMError, match="does not fit the context of 64 tokens"):
        many.complete_many([Request(chat("yes"), SamplingParams(max_tokens=4)),
                            Request(chat("the cat " * 40), SamplingParams(max_tokens=4))])


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7, 1], [8, 1]]) == 0
    assert shared_prefix_length([[5, 6, 7]]) == 2


def test_utf8_hold_waits_for_the_rest_of_a_cut_character():
    assert utf8_hold(b"abc", 0) == 0
    assert utf8_hold(b"ab" + "é".encode()[:1], 0) == 1
    assert utf8_hold(b"ab" + "€".encode()[:1], 0) == 2
    assert utf8_hold(b"a" + "€".encode()[:2], 0) == 1


def test_calibration_times_decode_calls_and_keeps_the_figures(tiny_qwen, tmp_path, monkeypatch):
    from backends import local_speed
    from backends.llamacpp_speed import GENERATION_SIZES, calibrate

    monkeypatch.setattr(local_speed, "speed_file", lambda: tmp_path / "speed.json")
    (speed,) = calibrate([("tiny", tiny_qwen[0])], threads=1, rounds=2).values()
    assert "median of 2 rounds" in speed.source
    assert speed.prompt_tok_s > 0 and speed.generation_tok_s > 0 and speed.load_seconds >= 0
    assert [n for n, _ in speed.batch_speedup] == list(GENERATION_SIZES) and speed.batch_speedup[0] == (1, 1.0)
    assert "(1 thread," in speed.source and local_speed.local_speed("tiny") == speed
