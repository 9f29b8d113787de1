"""LoRA training throughput on Qwen2.5-Coder-0.5B-Instruct: k1's JAX trainer vs transformers + peft (torch CPU).

Same GGUF weights (dequantized to float32), rank 8, alpha 16, all seven projections, batch 1 x 256
tokens, AdamW. Each framework runs in its own subprocess so peak RSS is its own; the two alternate
(`--rounds`) so that load from other processes on a shared machine hits both alike.

    python -m bench.bench_lora --steps 5 --rounds 2
    python -m bench.bench_lora --compare bf16   # JAX with frozen weights stored as float32 vs bfloat16
    python -m bench.bench_lora --lora-layers 12 --compare layers   # JAX: LoRA on the top 12 layers vs all
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


FROZEN_MATRICES = ("wqkv", "wo", "wgu", "wd")


def frozen_as(layers: dict, head: dict, dtype) -> tuple[dict, dict]:
    """Frozen projection matrices and the vocabulary matrix in `dtype`; norms, biases and the
    embedding lookup stay float32, so activations and the residual stream stay float32."""
    layers = {k: v.astype(dtype) if k in FROZEN_MATRICES else v for k, v in layers.items()}
    return layers, {**head, "out": head["out"].astype(dtype)}


def run_jax(gguf: str, steps: int, answer_from: int, frozen_dtype: str = "float32", lora_layers: int | None = None) -> dict:
    import jax

    from backends.student.chat_data import Example, make_batch
    from backends.student.gguf_loader import load_gguf
    from backends.student.jax_step import make_train_step
    from backends.student.layer_stack import local_flags, stack_layers
    from backends.student.lora import LoraConfig, first_trained_layer, init_lora

    model = load_gguf(gguf, with_tokenizer=False)
    cfg, lcfg = model.config, LoraConfig(rank=RANK, alpha=ALPHA, layers=lora_layers)
    layers, head = stack_layers(model)
    model.weights.clear()  # only the stacked copies are kept for training
    if frozen_dtype != "float32":
        layers, head = frozen_as(layers, head, jax.numpy.dtype(frozen_dtype))
    ids, start = bench_batch(cfg.vocab_size, answer_from)
    chunk = 128
    batch = make_batch([[Example(tuple(int(i) for i in ids), start)]], SEQ, chunk)
    batch = {k: v[None] for k, v in batch.items()}
    lora = init_lora(cfg, lcfg)
    m = jax.tree.map(np.zeros_like, lora)
    v = jax.tree.map(np.zeros_like, lora)
    step = make_train_step(cfg, lcfg.scale, chunk, 0.0, 0.9, 0.999, 1e-8, 0.0, 1.0, first_trained_layer(cfg, lcfg))
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


def run_torch(gguf: str, steps: int, answer_from: int, lora_layers: int | None = None) -> dict:
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
    top = list(range(c.n_layers - lora_layers, c.n_layers)) if lora_layers else None  # autograd stops below them
    net = get_peft_model(net, PeftLoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS),
                                             layers_to_transform=top))
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


def current_rss_gb() -> float | None:
    """Resident memory now (Linux /proc), None elsewhere: after the run it is the steady state, which
    ru_maxrss's peak hides when setup briefly holds two copies of the weights."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def child(args) -> None:
    if args.child == "jax":
        result = run_jax(args.gguf, args.steps, args.answer_from, args.frozen_dtype, args.lora_layers)
    else:
        result = run_torch(args.gguf, args.steps, args.answer_from, args.lora_layers)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["rss_after_steps_gb"] = current_rss_gb()
    print("RESULT " + orjson.dumps(result).decode())


CONTENDERS = {  # name: (child, frozen dtype, LoRA on --lora-layers or on every layer)
    "jax": ("jax", "float32", True), "torch": ("torch", "float32", True),
    "jax-bfloat16": ("jax", "bfloat16", True), "jax-all-layers": ("jax", "float32", False)}
RIVALS = {"torch": "torch", "bf16": "jax-bfloat16", "layers": "jax-all-layers"}


def spawn(which: str, args) -> dict:
    """Run one contender of CONTENDERS in a child process, so that its peak memory is its own."""
    library, dtype, top_layers = CONTENDERS[which]
    cmd = [sys.executable, __file__, "--child", library, "--gguf", args.gguf, "--steps", str(args.steps),
           "--answer-from", str(args.answer_from), "--frozen-dtype", dtype]
    if top_layers and args.lora_layers:
        cmd += ["--lora-layers", str(args.lora_layers)]
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
    ap.add_argument("--compare", choices=list(RIVALS), default="torch",
                    help="torch: JAX vs transformers+peft; bf16: JAX with frozen weights float32 vs bfloat16; "
                    "layers: JAX with LoRA on the top --lora-layers layers vs on every layer")
    ap.add_argument("--lora-layers", type=int, default=None,
                    help="LoRA on the top N decoder layers only (both contenders, PEFT layers_to_transform)")
    ap.add_argument("--child", choices=["jax", "torch"])
    ap.add_argument("--frozen-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--out", default=None, help="default bench/results/bench_lora[_bf16|_layers].json")
    args = ap.parse_args()
    if args.compare == "layers" and not args.lora_layers:
        raise SystemExit("bench_lora: --compare layers needs --lora-layers N")
    if args.child:
        return child(args)
    if args.gguf is None:
        from backends.model_assets import resolve_alias

        args.gguf = str(resolve_alias("qwen0.5b"))
    if not os.path.isfile(args.gguf):
        raise SystemExit(f"bench_lora: GGUF not found: {args.gguf}")
    other = RIVALS[args.compare]
    runs = {"jax": [], other: []}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for which in (other, "jax") if r % 2 == 0 else ("jax", other):
            res = spawn(which, args)
            runs[which].append(res)
            print(f"round {r} {which}: {SEQ / np.median(res['step_s']):.1f} tok/s, peak {res['peak_rss_gb']:.2f} GB",
                  file=sys.stderr)
    summary = {}
    for which, rs in runs.items():
        steps = [s for res in rs for s in res["step_s"]]
        summary[which] = {"tokens_per_s": SEQ / float(np.median(steps)), "median_step_s": float(np.median(steps)),
                          "peak_rss_gb": max(res["peak_rss_gb"] for res in rs),
                          "rss_after_steps_gb": max((res.get("rss_after_steps_gb") or 0.0) for res in rs),
                          "first_step_s": rs[0]["compile_s"],
                          "losses": rs[0]["loss"]}
    report = {"benchmark": "LoRA training step, Qwen2.5-Coder-0.5B-Instruct (GGUF dequantized to f32)",
              "seq_len": SEQ, "batch": 1, "rank": RANK, "alpha": ALPHA, "targets": list(TARGETS),
              "lora_layers": args.lora_layers or "all",
              "loss_positions": SEQ - args.answer_from, "steps_per_round": args.steps, "rounds": args.rounds,
              "cpu_threads": os.cpu_count(), "load_average_before": load_before,
              "load_average_after": os.getloadavg(), **summary,
              f"ratio_jax_over_{other.replace('-', '_')}": summary["jax"]["tokens_per_s"] / summary[other]["tokens_per_s"]}
    if args.compare == "bf16":
        report["max_abs_loss_diff"] = float(np.max(np.abs(np.subtract(summary["jax"]["losses"], summary[other]["losses"]))))
    name = {"torch": "bench_lora.json", "bf16": "bench_lora_bf16.json", "layers": "bench_lora_layers.json"}[args.compare]
    out = Path(args.out or ROOT / "bench" / "results" / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
