"""llama.cpp on the real Qwen2.5-Coder-0.5B (loads in ~1 s): template, greedy decoding, batched decode, bad files."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from backends.llamacpp_backend import LlamaCppLLM, render_chat  # noqa: E402
from backends.llm import Request, SamplingParams  # noqa: E402
from backends.model_assets import GEMMA_270M, QWEN_0_5B  # noqa: E402
from k1core.errors import UserError  # noqa: E402
from tests.conftest import shipped_model  # noqa: E402

CHAT = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+3? Answer with a number only."}]


def model_path(asset):
    return shipped_model(asset.alias)


@pytest.fixture(scope="module")
def qwen():
    return LlamaCppLLM(model_path(QWEN_0_5B), model="qwen0.5b", n_ctx=2048, n_batch=64)


def test_prompt_uses_the_chat_template_stored_in_the_gguf(qwen):
    rendered = render_chat(qwen.chat_template, CHAT, qwen.bos_token, qwen.eos_token)
    assert rendered == ("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n"
                        "What is 2+3? Answer with a number only.<|im_end|>\n<|im_start|>assistant\n")
    # The same text llama-cpp-python's own GGUF-template chat handler would build.
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(qwen.chat_template, qwen.eos_token, qwen.bos_token)
    assert formatter(messages=CHAT).prompt == rendered
    assert qwen.prompt_tokens(CHAT)[0] == 151644  # <|im_start|> as one special token, no BOS for Qwen


def test_greedy_answer_token_counts_and_zero_cost(qwen):
    first = qwen.complete(CHAT, SamplingParams(max_tokens=8))
    again = qwen.complete(CHAT, SamplingParams(max_tokens=8, seed=123))  # greedy ignores the seed
    assert first.text.strip() == "5" == again.text.strip()
    assert first.input_tokens == len(qwen.prompt_tokens(CHAT)) and first.output_tokens >= 1
    assert first.stop_reason == "stop" and first.cost_usd == 0.0 and first.model == "qwen0.5b"


@pytest.mark.slow
def test_max_tokens_stop_strings_and_bulk_order(qwen):
    story = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    short = qwen.complete(story, SamplingParams(max_tokens=4))
    assert short.stop_reason == "length" and short.output_tokens == 4
    stopped = qwen.complete(story, SamplingParams(max_tokens=24, stop=("5",)))
    assert "5" not in stopped.text and stopped.stop_reason == "stop"
    seen = []
    out = qwen.complete_many([Request(CHAT, SamplingParams(max_tokens=4)), Request(story, SamplingParams(max_tokens=4))],
                             progress=lambda done, total: seen.append((done, total)))
    assert out[0].text.strip() == "5" and out[1].text == short.text and seen == [(1, 2), (2, 2)]


@pytest.mark.slow
def test_sampling_is_seeded(qwen):
    poem = [{"role": "user", "content": "Write one line about the sea."}]
    a, b = (qwen.complete(poem, SamplingParams(temperature=1.0, max_tokens=12, seed=7)) for _ in range(2))
    assert a.text == b.text


BATCHED_DECODE = textwrap.dedent("""
    import sys, llama_cpp
    prompt = " ".join(f"item{i}" for i in range(15))
    llm = llama_cpp.Llama(sys.argv[1], n_ctx=512, n_batch=int(sys.argv[2]), verbose=False)
    tokens = llm.tokenize(prompt.encode())
    out = llm.create_completion(tokens, max_tokens=6, temperature=0.0)
    print(len(tokens), repr(out["choices"][0]["text"]))
""")


def decode_in_subprocess(path, n_batch):
    """Run one decode in a child, so a segfaulting native build fails this test instead of killing pytest."""
    result = subprocess.run([sys.executable, "-c", BATCHED_DECODE, str(path), str(n_batch)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"llama.cpp decode with n_batch={n_batch} crashed (rc {result.returncode}): " \
                                   f"{result.stderr[-500:]}"
    return result.stdout.strip()


def test_multi_token_prompt_decodes_in_one_batch_without_crashing():
    out = decode_in_subprocess(model_path(QWEN_0_5B), n_batch=64)
    n_tokens = int(out.split()[0])
    assert 32 <= n_tokens <= 64  # the whole prompt goes through llama_decode as one batch


@pytest.mark.slow
def test_batched_and_token_by_token_decode_agree():
    path = model_path(QWEN_0_5B)
    assert decode_in_subprocess(path, n_batch=64) == decode_in_subprocess(path, n_batch=1)


def test_gemma_without_template_gets_plain_text_and_one_bos():
    gemma = LlamaCppLLM(model_path(GEMMA_270M), n_ctx=512)
    assert gemma.chat_template is None
    tokens = gemma.prompt_tokens([{"role": "user", "content": "The capital of France is"}])
    assert tokens[0] == gemma.llama.token_bos() and tokens[1] != gemma.llama.token_bos()
    assert gemma.complete([{"role": "user", "content": "1, 2, 3,"}], SamplingParams(max_tokens=3)).output_tokens == 3


def test_truncated_and_random_files_fail_with_one_line_naming_the_file(tmp_path):
    source = model_path(QWEN_0_5B)
    truncated = tmp_path / "truncated.gguf"
    with open(source, "rb") as f:
        truncated.write_bytes(f.read(20_000_000))
    with pytest.raises(UserError, match=r"truncated.gguf is not a valid GGUF model: truncated") as err:
        LlamaCppLLM(truncated)
    assert "\n" not in str(err.value)
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(np.random.default_rng(1).bytes(1 << 16))
    with pytest.raises(UserError, match="noise.gguf is not a valid GGUF model"):
        LlamaCppLLM(noise)
