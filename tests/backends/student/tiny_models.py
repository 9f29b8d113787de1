"""Tiny random models of each architecture, written as GGUF and as HF directories by the tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from backends.student.architectures import StudentConfig, arch_switches
from backends.student.base_model import expected_shapes
from backends.student.safetensors_io import write_safetensors

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer():
    """A byte-level BPE over 256 bytes plus a few merges and the chatml special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the cat sat on the mat. answer: yes no " * 20, "what is 2 + 3 ? 5"] * 10, trainer)
    return tok


def tiny_config(arch: str, vocab_size: int) -> StudentConfig:
    dim = 32
    sw = arch_switches(arch, dim)
    if arch == "gemma3":
        sw.update(sliding_window=4, sliding_pattern=2)
    return StudentConfig(arch=arch, vocab_size=vocab_size, dim=dim, n_layers=2, n_heads=4, n_kv_heads=2,
                         head_dim=8 if arch != "gemma3" else 16, ffn_dim=48, norm_eps=1e-6,
                         rope_theta=10000.0, tied_embeddings=arch != "llama", **sw)


def random_weights(cfg: StudentConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_shapes(cfg).items():
        if name.endswith("norm.weight"):
            out[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[name] = (0.2 * rng.standard_normal(shape)).astype(np.float32)
    return out


def write_hf_dir(cfg: StudentConfig, weights: dict, tok, out: Path) -> Path:
    """config.json + model.safetensors + tokenizer.json + tokenizer_config.json as transformers writes them."""
    out.mkdir(parents=True, exist_ok=True)
    names = {"attn_norm": "input_layernorm"}
    if cfg.arch == "gemma3":
        names.update(post_attn_norm="post_attention_layernorm", mlp_norm="pre_feedforward_layernorm",
                     post_mlp_norm="post_feedforward_layernorm")
    else:
        names.update(mlp_norm="post_attention_layernorm")
    hf = {}
    for name, arr in weights.items():
        parts = name.split(".")
        if len(parts) == 5 and parts[3] in names:
            name = f"model.layers.{parts[2]}.{names[parts[3]]}.weight"
        hf[name] = arr - 1.0 if cfg.arch == "gemma3" and name.endswith("norm.weight") else arr
    write_safetensors(out / "model.safetensors", hf)
    config = {
        "model_type": {"gemma3": "gemma3_text"}.get(cfg.arch, cfg.arch), "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim, "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim, "intermediate_size": cfg.ffn_dim,
        "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta, "tie_word_embeddings": cfg.tied_embeddings,
        "max_position_embeddings": 512, "torch_dtype": "float32", "hidden_act": "silu",
    }
    if cfg.arch == "gemma3":
        config.update(hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=cfg.head_dim,
                      sliding_window=cfg.sliding_window, sliding_window_pattern=cfg.sliding_pattern,
                      rope_local_base_freq=cfg.rope_local_theta,
                      layer_types=["sliding_attention" if cfg.is_local_layer(i) else "full_attention"
                                   for i in range(cfg.n_layers)])
    if cfg.arch == "qwen2":
        config["use_sliding_window"] = False
    (out / "config.json").write_bytes(orjson.dumps(config))
    if tok is not None:
        tok.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_bytes(orjson.dumps({"chat_template": CHATML, "eos_token": "<|im_end|>"}))
    return out


def write_gguf(cfg: StudentConfig, weights: dict, tok, path: Path, matrix_types: dict | None = None) -> Path:
    """A GGUF file as llama.cpp's converter writes it (llama q/k rows permuted), with a gpt2 vocab.

    `matrix_types` maps a canonical matrix name to a GGUF type name ('Q8_0', 'Q5_0', ...) to store
    it quantized; everything else is F32.
    """
    import gguf

    from backends.student.gguf_loader import permute_rope_rows

    w = gguf.GGUFWriter(str(path), cfg.arch)
    a = cfg.arch
    w.add_block_count(cfg.n_layers)
    w.add_context_length(512)
    w.add_embedding_length(cfg.dim)
    w.add_feed_forward_length(cfg.ffn_dim)
    w.add_head_count(cfg.n_heads)
    w.add_head_count_kv(cfg.n_kv_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    if a == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
    if tok is not None:
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        tokens = [t for t, _ in vocab] + [f"[PAD{i}]" for i in range(cfg.vocab_size - len(vocab))]
        types = [gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t, _ in vocab]
        types += [gguf.TokenType.UNUSED] * (cfg.vocab_size - len(vocab))
        merges = orjson.loads(tok.to_str())["model"]["merges"]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
        w.add_eos_token_id(tok.token_to_id("<|im_end|>"))
        w.add_bos_token_id(tok.token_to_id("<|endoftext|>"))
        w.add_add_bos_token(False)
        w.add_chat_template(CHATML)
    stems = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
             "attn_norm": "attn_norm", "mlp_norm": "ffn_norm", "post_attn_norm": "post_attention_norm",
             "post_mlp_norm": "post_ffw_norm", "q_norm": "attn_q_norm", "k_norm": "attn_k_norm"}
    for name, arr in weights.items():
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        elif name == "lm_head.weight":
            gname = "output.weight"
        else:
            parts = name.split(".")
            stem = stems[parts[-2]]
            gname = f"blk.{parts[2]}.{stem}.{parts[-1]}"
            if a == "llama" and parts[-2] in ("q_proj", "k_proj") and parts[-1] == "weight":
                arr = permute_rope_rows(arr, cfg.n_heads if parts[-2] == "q_proj" else cfg.n_kv_heads)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        qtype = (matrix_types or {}).get(name)
        if qtype is None:
            w.add_tensor(gname, arr)
        else:
            qt = gguf.GGMLQuantizationType[qtype]
            w.add_tensor(gname, gguf.quants.quantize(arr, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
