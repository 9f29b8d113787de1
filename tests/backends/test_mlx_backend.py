"""mlx_backend generates greedily from a tiny random HF model exactly as the NumPy reference forward does.

The backend refuses to start off Apple silicon (mlx[cpu] on Linux is for tests only), so the platform
check is patched out here; everything else is the real mlx-lm path.
"""
import sys

import numpy as np
import pytest

sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/student")


def numpy_greedy(model, prompt_ids: list[int], eos: int, max_tokens: int) -> list[int]:
    """Greedy continuation by the NumPy forward, stopping at eos (not included)."""
    from backends.student.forward_numpy import numpy_logits
    from backends.student.layer_stack import stack_layers

    ids, out = list(prompt_ids), []
    for _ in range(max_tokens):
        nxt = int(numpy_logits(model.config, *stack_layers(model), np.array([ids]))[0, -1].argmax())
        if nxt == eos:
            break
        ids.append(nxt)
        out.append(nxt)
    return out


def test_greedy_generation_matches_the_numpy_forward(tmp_path, monkeypatch, request):
    pytest.importorskip("mlx_lm", reason="mlx-lm is not installed (on Linux: pip install 'mlx[cpu]' mlx-lm)")
    from tiny_models import random_weights, tiny_config, tiny_tokenizer, write_hf_dir

    import backends.mlx_backend as mlx_backend
    from backends.llm import SamplingParams
    from backends.student.hf_loader import load_hf_dir
    from backends.student.tokenizer import render_chat

    tok = tiny_tokenizer()
    cfg = tiny_config("llama", tok.get_vocab_size() + 8)
    hf_dir = write_hf_dir(cfg, random_weights(cfg, seed=4), tok, tmp_path / "llama")
    monkeypatch.setattr(mlx_backend, "check_platform", lambda: None)
    import mlx.core as mx

    mx.disable_compile()  # eager: mlx[cpu] would first build fused kernels with the C++ compiler (slow when cold)
    request.addfinalizer(mx.enable_compile)
    llm = mlx_backend.MlxLLM(str(hf_dir))
    messages = [{"role": "user", "content": "what is 2 + 3 ?"}]
    first = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=12))
    assert llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=12)).text == first.text

    model = load_hf_dir(hf_dir)
    prompt = model.tokenizer.encode(render_chat(model.chat_template, messages, add_generation_prompt=True))
    want = numpy_greedy(model, prompt, tok.token_to_id("<|im_end|>"), 12)
    assert len(want) == 12  # this random model never emits <|im_end|> here: the run ends on max_tokens
    assert (first.input_tokens, first.output_tokens, first.stop_reason) == (len(prompt), 12, "length")
    assert first.text == model.tokenizer.decode(want)
