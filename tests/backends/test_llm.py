"""The protocol's value types and checks, and chat-template rendering (no model needed)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.llamacpp_backend import render_chat
from backends.llm import Completion, SamplingParams, validate_messages
from k1core.errors import UserError


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.1}, {"temperature": 3}, {"temperature": "0"}, {"max_tokens": 0}, {"max_tokens": 1.5},
    {"seed": 1.0}, {"top_p": 0.0}, {"top_p": 1.1}, {"stop": "\n"}, {"stop": ("",)}, {"stop": (1,)},
])
def test_bad_sampling_params_are_user_errors(kwargs):
    with pytest.raises(UserError):
        SamplingParams(**kwargs)


def test_sampling_params_are_frozen_and_stop_becomes_a_tuple():
    params = SamplingParams(stop=["a", "b"])
    assert params.stop == ("a", "b") and params.to_dict()["stop"] == ["a", "b"]
    with pytest.raises(AttributeError):
        params.temperature = 1.0


def test_completion_round_trips_through_a_dict():
    c = Completion("hi", 3, 1, 0, 0, 0.5, 0.01, "m", "b", "stop", batched=True)
    assert Completion.from_dict(c.to_dict()) == c


message = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool", ""]),
                                 "content": st.one_of(st.text(max_size=5), st.none(), st.integers())})


@settings(max_examples=300, deadline=None)
@given(st.lists(message, max_size=4))
def test_fuzz_messages_are_valid_or_one_user_error(messages):
    try:
        valid = validate_messages(messages)
    except UserError:
        return
    assert valid[-1]["role"] == "user" and all(m["role"] != "system" for m in valid[1:])


CHATML = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_template_rendering_strips_cache_flags_and_adds_the_generation_prompt():
    chat = [{"role": "system", "content": "s", "cache_prefix": True}, {"role": "user", "content": "u"}]
    assert render_chat(CHATML, chat, "<s>", "</s>") == "<|system|>s<|user|>u<|assistant|>"
    assert render_chat(None, chat, "<s>", "</s>") == "s\n\nu"


def test_template_errors_and_sandbox_are_user_errors():
    refusing = "{{ raise_exception('System role not supported') }}"
    with pytest.raises(UserError, match="System role not supported"):
        render_chat(refusing, [{"role": "user", "content": "u"}], "", "")
    with pytest.raises(UserError, match="chat template failed"):
        render_chat("{{ messages[0].content + 1 }}", [{"role": "user", "content": "u"}], "", "")
    escaping = "{{ messages.__class__.__mro__[1].__subclasses__() }}"  # a template must not reach Python internals
    with pytest.raises(UserError, match="chat template"):
        render_chat(escaping, [{"role": "user", "content": "u"}], "", "")
