"""A model's greedy answer found from another's draft equals the answer it writes itself, whatever the draft."""
from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from backends.llamacpp_backend import LlamaCppLLM  # noqa: E402
from backends.llamacpp_draft import DraftCheckedLLM, cut_at_stop, greedy_from_draft, messages_key  # noqa: E402
from backends.llm import Request, SamplingParams  # noqa: E402
from tests.backends.export.peft_fixtures import tiny_gguf  # noqa: E402

MESSAGES = [{"role": "user", "content": "the cat sat on the mat"}]


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    base, _, _ = tiny_gguf(tmp_path_factory.mktemp("draft"), "qwen2", wide=True)
    model = LlamaCppLLM(base, n_ctx=512, n_batch=8, n_threads=1)  # drafts span several batches of 8
    yield model
    model.close()


@pytest.mark.parametrize("max_tokens", [1, 7, 30])
def test_any_draft_gives_the_models_own_greedy_answer(llm, max_tokens):
    params = SamplingParams(max_tokens=max_tokens)
    own = llm.complete(MESSAGES, params)
    for draft in (own.text, own.text[: len(own.text) // 2], "answer: yes no the the", ""):
        checked = greedy_from_draft(llm, MESSAGES, draft, params)
        assert (checked.text, checked.output_tokens, checked.stop_reason) == (own.text, own.output_tokens, own.stop_reason)


def test_stop_strings_cut_the_checked_answer_like_generation(llm):
    own = llm.complete(MESSAGES, SamplingParams(max_tokens=30))
    stop = own.text[5:8]
    params = SamplingParams(max_tokens=30, stop=(stop,))
    assert greedy_from_draft(llm, MESSAGES, own.text, params).text == llm.complete(MESSAGES, params).text
    assert cut_at_stop("abcXdefY", ("Y", "X")) == ("abc", True) and cut_at_stop("abc", ("Z",)) == ("abc", False)


def test_draft_checked_llm_checks_greedy_calls_with_a_draft_and_passes_the_rest_on(llm):
    calls = []

    class Spy:
        backend, model, price = llm.backend, llm.model, llm.price

        @property
        def loaded(self):
            calls.append("loaded")
            return llm

        def complete(self, messages, params):
            calls.append("complete")
            return llm.complete(messages, params)

    checked = DraftCheckedLLM(Spy(), {messages_key(MESSAGES): "the"})
    checked.complete(MESSAGES, SamplingParams(max_tokens=3))
    checked.complete(MESSAGES, SamplingParams(max_tokens=3, temperature=0.7, seed=1))
    checked.complete([{"role": "user", "content": "no draft for this"}], SamplingParams(max_tokens=3))
    assert calls == ["loaded", "complete", "complete"]  # the model is looked at only for a greedy call with a draft


def test_batched_draft_checks_give_the_models_own_batched_answers(tmp_path):
    base, _, _ = tiny_gguf(tmp_path, "qwen2", wide=True)
    many = LlamaCppLLM(base, n_ctx=512, n_batch=8, n_threads=1, parallel=3)
    try:
        chats = [[{"role": "user", "content": f"the cat sat on mat {i}"}] for i in range(5)]
        params = SamplingParams(max_tokens=20)
        own = many.complete_many([Request(c, params) for c in chats])
        drafts = {messages_key(chats[0]): own[0].text, messages_key(chats[1]): own[1].text[:10],
                  messages_key(chats[2]): "answer: yes no the the", messages_key(chats[3]): ""}  # chats[4]: no draft
        finished = []
        checked = DraftCheckedLLM(many, drafts).complete_many(
            [Request(c, params) for c in chats], lambda done, total: finished.append((done, total)))
        assert [(c.text, c.output_tokens) for c in checked] == [(c.text, c.output_tokens) for c in own]
        assert finished[-1] == (5, 5) and len(finished) == 5
        stop = (own[2].text[4:7],)
        stopped = DraftCheckedLLM(many, drafts).complete_many([Request(chats[2], SamplingParams(max_tokens=20, stop=stop)),
                                                               Request(chats[0], SamplingParams(max_tokens=20, stop=stop))])
        assert [c.text for c in stopped] == [c.text for c in many.complete_many(
            [Request(chats[i], SamplingParams(max_tokens=20, stop=stop)) for i in (2, 0)])]
    finally:
        many.close()
