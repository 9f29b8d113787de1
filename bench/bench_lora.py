"""LoRA training throughput on Qwen2.5-Coder-0.5B-Instruct: k1's JAX trainer vs transformers + peft (torch CPU).

Same GGUF weights (dequantized to float32), rank 8, alpha 16, all seven projections, batch 1 x 256
tokens, AdamW. Each framework runs in its own subprocess so peak RSS is its own; the two alternate
(`--rounds`) so that load from other processes on a shared machine hits both alike.

    python -m bench.bench_lora --steps 5 --rounds 2
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEQ, RANK, ALPHA = 256, 8, 16.0
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def bench_batch(vocab: int, answer_from: int, seed: int = 0):
    """One 1 x 256 sequence; positions >= answer_from carry loss (the rest is the prompt)."""
    ids = np.random.default_rng(seed).integers(0, min(vocab, 150000), SEQ).astype(np.int32)
    return ids, answer_from


def run_jax(gguf: str, steps: int, answer_from: int) -> dict:
    import jax

    from backends.student.chat_data import Example, make_batch
    from backends.student.gguf_loader import load_gguf
    from backends.student.jax_step import make_train_step
    from backends.student.layer_stack import local_flags, stack_layers
    from backends.student.lora import LoraConfig, init_lora

    model = load_gguf(gguf, with_tokenizer=False)
    cfg, lcfg = model.config, LoraConfig(rank=RANK, alpha=ALPHA)
    layers, head = stack_layers(model)
    model.weights.clear()  # only the stacked copies are kept for training
    ids, start = bench_batch(cfg.vocab_size, answer_from)
    chunk = 128
    batch = make_batch([[Example(tuple(int(i) for i in ids), start)]], SEQ, chunk)
    batch = {k: v[None] for k, v in batch.items()}
    lora = init_lora(cfg, lcfg)
    m = jax.tree.map(np.zeros_like, lora)
    v = jax.tree.map(np.zeros_like, lora)
    step = make_train_step(cfg, lcfg.scale, chunk, 0.0, 0.9, 0.999, 1e-8, 0.0, 1.0)
    layers, head, flags = jax.device_put(layers), jax.device_put(head), jax.device_put(local_flags(cfg))
    t = jax.numpy.int32(0)
    key, lr = jax.random.PRNGKey(0), np.float32(1e-4)
    times, losses = [], []
    for i in range(steps + 1):  # the first step compiles
        tick = time.perf_counter()
        lora, m, v, t, nll, n, _ = step(lora, m, v, t, layers, head, flags, batch, lr, key)
        losses.append(float(nll) / float(n))
        times.append(time.perf_counter() - tick)
    return {"step_s": times[1:], "compile_s": times[0], "loss": losses}


def run_torch(gguf: str, steps: int, answer_from: int) -> dict:
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    from backends.student.gguf_loader import load_gguf

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = load_gguf(gguf, with_tokenizer=False)
    c = model.config
    hf_cfg = Qwen2Config(vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.ffn_dim,
                         num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
                         rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta, tie_word_embeddings=c.tied_embeddings,
                         max_position_embeddings=32768, torch_dtype="float32")
    names = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}
    state = {}
    for name, arr in model.weights.items():
        parts = name.split(".")
        if len(parts) == 5 and parts[3] in names:
            name = f"model.layers.{parts[2]}.{names[parts[3]]}.weight"
        state[name] = torch.from_numpy(arr)
    model.weights.clear()
    with torch.device("meta"):
        net = Qwen2ForCausalLM(hf_cfg)
    net.load_state_dict(state, strict=True, assign=True)  # no random init: weights are the GGUF's
    net.model.rotary_emb = Qwen2RotaryEmbedding(config=hf_cfg)  # its buffers were left on the meta device
    del state
    net = get_peft_model(net, PeftLoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS)))
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    ids, start = bench_batch(c.vocab_size, answer_from)
    inputs = torch.from_numpy(ids.astype(np.int64))[None]
    labels = inputs.clone()
    labels[:, :start] = -100  # transformers shifts labels: position t predicts token t+1
    times, losses = [], []
    for _ in range(steps + 1):
        tick = time.perf_counter()
        loss = net(input_ids=inputs, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
        times.append(time.perf_counter() - tick)
    return {"step_s": times[1:], "compile_s": times[0], "loss": losses}


def child(args) -> None:
    fn = run_jax if args.child == "jax" else run_torch
    result = fn(args.gguf, args.steps, args.answer_from)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + orjson.dumps(result).decode())


def spawn(which: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--gguf", args.gguf, "--steps", str(args.steps),
           "--answer-from", str(args.answer_from)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    if run.returncode or not lines:
        raise SystemExit(f"{which} benchmark failed:\n{run.stderr[-3000:]}")
    return orjson.loads(lines[-1][7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", default=None, help="student GGUF (default: the shipped qwen0.5b, assembled)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--answer-from", type=int, default=1, help="first answer token; 1 = loss on all 255 targets")
    ap.add_argument("--child", choices=["jax", "torch"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_lora.json"))
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.gguf is None:
        from backends.model_assets import resolve_alias

        args.gguf = str(resolve_alias("qwen0.5b"))
    if not os.path.isfile(args.gguf):
        raise SystemExit(f"bench_lora: GGUF not found: {args.gguf}")
    runs = {"jax": [], "torch": []}
    for r in range(args.rounds):
        for which in ("torch", "jax") if r % 2 == 0 else ("jax", "torch"):
            res = spawn(which, args)
            runs[which].append(res)
            print(f"round {r} {which}: {SEQ / np.median(res['step_s']):.1f} tok/s, peak {res['peak_rss_gb']:.2f} GB",
                  file=sys.stderr)
    summary = {}
    for which, rs in runs.items():
        steps = [s for res in rs for s in res["step_s"]]
        summary[which] = {"tokens_per_s": SEQ / float(np.median(steps)), "median_step_s": float(np.median(steps)),
                          "peak_rss_gb": max(res["peak_rss_gb"] for res in rs), "first_step_s": rs[0]["compile_s"],
                          "losses": rs[0]["loss"]}
    report = {"benchmark": "LoRA training step, Qwen2.5-Coder-0.5B-Instruct (GGUF dequantized to f32)",
              "seq_len": SEQ, "batch": 1, "rank": RANK, "alpha": ALPHA, "targets": list(TARGETS),
              "loss_positions": SEQ - args.answer_from, "steps_per_round": args.steps, "rounds": args.rounds,
              "cpu_threads": os.cpu_count(), **summary,
              "ratio_jax_over_torch": summary["jax"]["tokens_per_s"] / summary["torch"]["tokens_per_s"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
