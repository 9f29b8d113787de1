"""The forward pass against llama.cpp on the real Qwen2.5-Coder-0.5B-Instruct GGUF (slow)."""
import numpy as np
import pytest

from backends.student.forward_numpy import numpy_logits
from backends.student.gguf_loader import load_gguf
from backends.student.layer_stack import stack_layers
from backends.student.tokenizer import render_chat

PROMPTS = [
    "Write a python function that adds two numbers.",
    "What does `git rebase -i HEAD~3` do?",
    "Explain the difference between a list and a tuple in Python in two sentences.",
    "Schedule three meetings of 30 minutes between 9:00 and 11:00 without overlap.",
    "def fibonacci(n):",
]


@pytest.mark.slow
def test_forward_matches_llama_cpp(real_qwen_gguf):
    llama_cpp = pytest.importorskip("llama_cpp")
    model = load_gguf(real_qwen_gguf)
    layers, head = stack_layers(model)
    model.weights.clear()
    llm = llama_cpp.Llama(model_path=real_qwen_gguf, logits_all=True, n_ctx=512, verbose=False)
    agree = total = 0
    for prompt in PROMPTS:
        text = render_chat(model.chat_template, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = model.tokenizer.encode(text)
        ours = numpy_logits(model.config, layers, head, np.array([ids]))[0]
        llm.reset()
        llm.eval(ids)
        ref = np.asarray(llm.scores[:len(ids)])
        agree += int((ours.argmax(-1) == ref.argmax(-1)).sum())
        total += len(ids)
        # llama.cpp quantizes activations to 8 bits for its quantized products: close, not equal
        corr = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
        assert corr > 0.999, (prompt, corr)
        assert np.abs(ours - ref).mean() < 0.05 * np.abs(ref).mean(), prompt
    assert agree / total >= 0.99, (agree, total)
