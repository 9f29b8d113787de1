"""The forward pass against llama.cpp on the real Qwen2.5-Coder-0.5B-Instruct GGUF (slow).

Three comparisons over the same positions (the chat template's shared system prefix counted once):
our plain float32 forward, our forward with llama.cpp's rounding emulated, and llama.cpp against
itself (whole prompt in one batch vs token by token). The last one is the ceiling: in a 24-layer
model with 8-bit activations, float32 summation-order noise flips a few activation roundings, the
flips cascade, and by the last layer two runs differ as much as exact and quantized arithmetic do.

Measured (26 prompts, 663 positions, llama-cpp-python 0.3.36 on x86 CPU), top-1 against llama.cpp batched:
plain 651 (98.2%, mean |logit diff| 0.052, misses within 0.33 logits), with llama.cpp's rounding 655
(98.8%, 0.057, within 0.11), llama.cpp token by token 655 (98.8%, 0.056, within 0.14). The issue's
99% is out of reach for any implementation that is not bit-exact with ggml's kernels; on a shallow
quantized model the emulated rounding lands on llama.cpp's logits to float32 noise (test_ggml_numerics).
"""
import numpy as np
import pytest

from backends.student.forward_numpy import numpy_logits
from backends.student.ggml_numerics import llama_cpp_arithmetic
from backends.student.gguf_loader import load_gguf
from backends.student.layer_stack import stack_layers
from backends.student.tokenizer import render_chat

PROMPTS = [
    "Write a python function that adds two numbers.",
    "What does `git rebase -i HEAD~3` do?",
    "Explain the difference between a list and a tuple in Python in two sentences.",
    "Schedule three meetings of 30 minutes between 9:00 and 11:00 without overlap.",
    "def fibonacci(n):",
    "Translate to French: The weather is nice today, so we will walk to the station.",
    "Write a SQL query that returns the ten customers with the highest total order value, joining orders and customers.",
    "A train leaves at 14:35 and the trip takes 2 hours 50 minutes. When does it arrive? Show the steps.",
    "Refactor this JavaScript to use async/await: fetch(url).then(r => r.json()).then(data => console.log(data))"
    ".catch(e => console.error(e));",
    "List five common HTTP status codes and what each one means.",
    "What is the time complexity of binary search, and why?",
    "Write a bash one-liner that counts the lines of every .py file under the current directory.",
    "Summarise the plot of Romeo and Juliet in three sentences.",
    "Explain what a mutex is to a new programmer, with a short C example.",
    "Given the numbers 4, 8, 15, 16, 23 and 42, compute their mean and median.",
    "Write a Rust function that reverses a string slice and returns a new String.",
    "Why does this Python code print 3 three times? fns = [lambda: i for i in range(4)][1:]; "
    "[print(f()) for f in fns]",
    "Design a REST API for a library: books, members and loans. Give the endpoints with their HTTP verbs.",
    "I have a CSV with columns date, store, sales. Show pandas code that gives the weekly total per store, "
    "sorted by week.",
    "What is the difference between TCP and UDP? When would you choose UDP for a game server?",
    "Prove that the sum of the first n odd numbers is n squared.",
    "Write a Go HTTP handler that returns the current time as JSON, and a test for it.",
    "Alice has twice as many apples as Bob. Together they have 27. How many does each have?",
    "Explain gradient descent with momentum in plain words, then give the update equations.",
    "Convert this loop to a list comprehension: out = []\nfor x in xs:\n    if x % 3 == 0:\n        out.append(x * x)",
    "Write a regular expression that matches ISO dates like 2024-03-15 and explain each part.",
]


@pytest.fixture(scope="module")
def comparison(real_qwen_gguf):
    """{mode: (agree, total, mean |logit diff|, [(ref gap, our gap) at each miss])} against llama.cpp."""
    llama_cpp = pytest.importorskip("llama_cpp")
    model = load_gguf(real_qwen_gguf)
    layers, head = stack_layers(model)
    emulation = llama_cpp_arithmetic(model)
    model.weights.clear()
    batched = llama_cpp.Llama(model_path=real_qwen_gguf, logits_all=True, n_ctx=512, verbose=False)
    stepwise = llama_cpp.Llama(model_path=real_qwen_gguf, logits_all=True, n_ctx=512, n_batch=1, n_ubatch=1,
                               verbose=False)

    def llama_cpp_logits(llm, ids):
        llm.reset()
        llm.eval(ids)
        return np.asarray(llm.scores[:len(ids)], dtype=np.float32).copy()

    modes = {"plain": lambda ids: numpy_logits(model.config, layers, head, np.array([ids]))[0],
             "llama.cpp rounding": lambda ids: numpy_logits(model.config, layers, head, np.array([ids]),
                                                            llama_cpp=emulation)[0],
             "llama.cpp token by token": lambda ids: llama_cpp_logits(stepwise, ids)}
    stats = {mode: [0, 0, [], []] for mode in modes}
    seen = set()
    for prompt in PROMPTS:
        text = render_chat(model.chat_template, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = model.tokenizer.encode(text)
        new = [t for t in range(len(ids)) if tuple(ids[:t + 1]) not in seen]
        seen.update(tuple(ids[:t + 1]) for t in new)
        ref = llama_cpp_logits(batched, ids)[new]
        for mode, logits in modes.items():
            ours = logits(ids)[new]
            s = stats[mode]
            s[0] += int((ours.argmax(-1) == ref.argmax(-1)).sum())
            s[1] += len(new)
            s[2].append(np.abs(ours - ref).mean(-1))
            for t in np.nonzero(ours.argmax(-1) != ref.argmax(-1))[0]:
                a, b = ours[t].argmax(), ref[t].argmax()
                s[3].append((float(ref[t, b] - ref[t, a]), float(ours[t, a] - ours[t, b])))
    out = {mode: (a, n, float(np.concatenate(e).mean()), ties) for mode, (a, n, e, ties) in stats.items()}
    for mode, (a, n, err, ties) in out.items():
        print(f"\n{mode:>25} vs llama.cpp batched: top-1 {a}/{n} = {a / n:.2%}, mean |logit diff| {err:.4f}, "
              f"largest gap at a miss {max([max(t) for t in ties], default=0):.3f}", flush=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "llama.cpp rounding"])
def test_forward_matches_llama_cpp(comparison, mode):
    agree, total, err, ties = comparison[mode]
    assert total >= 500
    assert agree / total >= 0.97, (agree, total, ties)
    assert all(g_ref < 0.5 and g_ours < 0.5 for g_ref, g_ours in ties), ties  # misses are near-ties
    assert err < 0.1  # mean |diff| over logits whose mean magnitude is about 4.8


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "llama.cpp rounding"])
def test_misses_are_within_llama_cpp_s_own_run_to_run_misses(comparison, mode):
    """The issue asks >= 99%; llama.cpp against itself (batched vs token by token) misses about as often.

    Misses are counts of a dozen or less, so twice llama.cpp's own is the bound (Poisson noise at
    these counts is about that wide), and the logit error may be at most 1.25 times its own.
    """
    self_agree, total, self_err, _ = comparison["llama.cpp token by token"]
    agree, _, err, ties = comparison[mode]
    assert total - agree <= 2 * (total - self_agree), (mode, agree, self_agree, total, ties)
    assert err < 1.25 * self_err, (mode, err, self_err)
