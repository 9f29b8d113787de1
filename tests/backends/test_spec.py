import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.mlx_backend import check_platform
from backends.spec import ModelSpec, build_llm, parse_spec
from k1core.errors import UserError


@pytest.mark.parametrize("text, expected", [
    ("anthropic:claude-3-5-haiku-latest", ModelSpec("anthropic", "claude-3-5-haiku-latest")),
    ("llamacpp:models/tiny.gguf", ModelSpec("llamacpp", "models/tiny.gguf")),
    ("llamacpp:qwen0.5b", ModelSpec("llamacpp", "qwen0.5b")),
    ("qwen0.5b", ModelSpec("llamacpp", "qwen0.5b")),
    ("gemma270m", ModelSpec("llamacpp", "gemma270m")),
    ("openai:http://127.0.0.1:11434/v1#qwen2.5:7b", ModelSpec("openai", "qwen2.5:7b", "http://127.0.0.1:11434/v1")),
    ("openai:https://example.org/v1/#m", ModelSpec("openai", "m", "https://example.org/v1")),
    ("mlx:mlx-community/Qwen2.5-0.5B-Instruct-4bit", ModelSpec("mlx", "mlx-community/Qwen2.5-0.5B-Instruct-4bit")),
])
def test_accepted_forms(text, expected):
    assert parse_spec(text) == expected
    assert parse_spec(str(expected)) == expected


@pytest.mark.parametrize("text", [
    "", " ", "qwen", "claude-3", "anthropic:", "anthropic:claude 3", "anthropic:/etc/passwd", "gpt:4o",
    "llamacpp:model.bin", "llamacpp:", "openai:127.0.0.1:11434#m", "openai:http://127.0.0.1:11434/v1",
    "openai:http://127.0.0.1:11434/v1#", "openai:ftp://host/v1#m", "openai:http://:80/v1#m",
    "openai:http://h:99999/v1#m", "openai:http://h/v1?x=1#m", "mlx:", "llamacpp:a b.gguf",
])
def test_rejected_forms_name_the_accepted_ones(text):
    with pytest.raises(UserError, match="accepted forms: anthropic:<model-id>"):
        parse_spec(text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_any_string_parses_or_is_a_user_error_and_round_trips(text):
    try:
        spec = parse_spec(text)
    except UserError:
        return
    assert parse_spec(str(spec)) == spec


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["anthropic", "llamacpp", "openai", "mlx"]), st.text(max_size=40))
def test_fuzz_backend_prefixes(backend, rest):
    try:
        spec = parse_spec(f"{backend}:{rest}")
    except UserError:
        return
    assert spec.backend == backend and parse_spec(str(spec)) == spec


def test_build_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        build_llm(f"llamacpp:{tmp_path}/missing.gguf")


def test_mlx_elsewhere_is_one_clear_line():
    import platform
    import sys

    if sys.platform == "darwin" and platform.machine() == "arm64":
        pytest.skip("this is an Apple-silicon Mac")
    with pytest.raises(UserError, match="Apple-silicon Mac"):
        check_platform()
    with pytest.raises(UserError, match="Apple-silicon Mac"):
        build_llm("mlx:mlx-community/Qwen2.5-0.5B-Instruct-4bit")
