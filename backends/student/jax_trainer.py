"""LoRA fine-tuning of a student model with JAX: data stream, step loop, evaluation, early stopping,
best-adapter keeping and exact resume. Data-parallel over all local devices when there are several.
"""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np

from backends.student.adapters import save_adapter
from backends.student.base_model import BaseModel
from backends.student.chat_data import Example, make_batch, pack_rows
from backends.student.checkpoint import load_checkpoint, save_checkpoint
from backends.student.layer_stack import local_flags, stack_layers
from backends.student.lora import first_trained_layer, init_lora
from backends.student.train_config import TrainConfig, TrainResult
from k1core.errors import UserError
from k1core.lazy import require
from k1core.optim import lr_at


def row_stream(examples: list[Example], seq_len: int, seed: int):
    """Endless packed rows: every epoch shuffles the examples with rng(seed, epoch) and packs them."""
    for epoch in itertools.count():
        order = np.random.default_rng([seed, epoch]).permutation(len(examples))
        yield from pack_rows([examples[i] for i in order], seq_len)


def stacked_batches(rows, tcfg: TrainConfig) -> dict[str, np.ndarray]:
    """M micro-batches of B rows stacked on a leading axis, loss positions padded to one width."""
    B, M = tcfg.batch_size, tcfg.grad_accum
    micro = [make_batch(rows[i * B:(i + 1) * B], tcfg.seq_len, tcfg.logit_chunk) for i in range(M)]
    width = max(b["loss_index"].shape[1] for b in micro)
    for b in micro:
        for key in ("loss_index", "targets", "loss_weight"):
            b[key] = np.pad(b[key], ((0, 0), (0, width - b[key].shape[1])))
    return {k: np.stack([b[k] for b in micro]) for k in micro[0]}


class _Devices:
    """Places arrays: batches sharded over the rows axis across local devices, the rest replicated."""

    def __init__(self, jax, batch_size: int):
        self.jax = jax
        self.n = jax.local_device_count()
        if self.n > 1:
            if batch_size % self.n:
                raise UserError(f"batch_size {batch_size} must be a multiple of the {self.n} local devices")
            from jax.sharding import Mesh, NamedSharding, PartitionSpec

            mesh = Mesh(np.array(jax.local_devices()), ("data",))
            self.replicated = NamedSharding(mesh, PartitionSpec())
            self.rows = NamedSharding(mesh, PartitionSpec(None, "data"))

    def params(self, tree):
        return self.jax.device_put(tree, self.replicated) if self.n > 1 else self.jax.device_put(tree)

    def batch(self, tree):
        return self.jax.device_put(tree, self.rows) if self.n > 1 else self.jax.device_put(tree)


def _progress(step, total, loss, tok_s, started, done_steps):
    """One line rewritten in place in a terminal; in a log, a line every 5% of the steps."""
    terminal = sys.stderr.isatty()
    if not terminal and step % max(1, total // 20) and step != total:
        return
    elapsed = time.time() - started
    eta = elapsed / max(done_steps, 1) * (total - step)
    print(f"{chr(13) if terminal else ''}step {step}/{total}  loss {loss:.4f}  {tok_s:,.0f} tok/s  eta {eta:,.0f}s",
          end="" if terminal else "\n", file=sys.stderr, flush=True)


def train_lora(model: BaseModel, train: list[Example], val: list[Example], tcfg: TrainConfig,
               accuracy_fn=None, stop_at: int | None = None, progress=_progress) -> TrainResult:
    """Train a LoRA adapter on `train` (resuming from tcfg.out_dir/checkpoint when present).

    Writes the best adapter (by validation loss) to out_dir/best and the last to out_dir/final.
    `accuracy_fn(lora) -> float` is called at each evaluation when given; `stop_at` ends the run
    after that step without the final save (used to simulate an interrupted run).
    """
    jax = require("jax", "jax")
    from backends.student.jax_step import make_eval_nll, make_train_step

    cfg, lcfg, ocfg = model.config, tcfg.lora, tcfg.optim
    out = Path(tcfg.out_dir)
    dev = _Devices(jax, tcfg.batch_size)
    layers, head = stack_layers(model)
    layers, head = dev.params(layers), dev.params(head)
    flags = dev.params(local_flags(cfg))
    step_fn = make_train_step(cfg, lcfg.scale, tcfg.logit_chunk, lcfg.dropout, ocfg.beta1, ocfg.beta2, ocfg.eps,
                              ocfg.weight_decay, ocfg.grad_clip, first_trained_layer(cfg, lcfg))
    eval_fn = make_eval_nll(cfg, lcfg.scale, tcfg.logit_chunk)

    resumed = load_checkpoint(out / "checkpoint", cfg.n_layers)
    if resumed:
        lora, m, v, state = resumed
    else:
        lora = init_lora(cfg, lcfg, tcfg.seed)
        m = {k: (np.zeros_like(a), np.zeros_like(b)) for k, (a, b) in lora.items()}
        v = {k: (np.zeros_like(a), np.zeros_like(b)) for k, (a, b) in lora.items()}
        state = {"step": 0, "seed": tcfg.seed, "best_val": None, "since_best": 0, "history": []}
    lora, m, v = dev.params(lora), dev.params(m), dev.params(v)
    t = jax.numpy.int32(state["step"])
    base_key = jax.random.PRNGKey(tcfg.seed)
    rows_per_step = tcfg.batch_size * tcfg.grad_accum
    stream = itertools.islice(row_stream(train, tcfg.seq_len, tcfg.seed), state["step"] * rows_per_step, None)
    val_batches = [make_batch(rows, tcfg.seq_len, tcfg.logit_chunk)
                   for rows in _chunks(pack_rows(val, tcfg.seq_len), tcfg.batch_size)] if val else []

    def validate():
        nll = n = 0.0
        for b in val_batches:
            b = {k: np.pad(x, ((0, tcfg.batch_size - x.shape[0]),) + ((0, 0),) * (x.ndim - 1)) for k, x in b.items()}
            s, c = eval_fn(lora, layers, head, flags, dev.params(b))
            nll, n = nll + float(s), n + float(c)
        return nll / max(n, 1.0)

    started, first_step, stopped_early = time.time(), state["step"], False
    while state["step"] < tcfg.steps:
        rows = list(itertools.islice(stream, rows_per_step))
        batch = stacked_batches(rows, tcfg)
        lr = np.float32(lr_at(state["step"], ocfg))
        tick = time.time()
        lora, m, v, t, nll, ntok, _ = step_fn(lora, m, v, t, layers, head, flags, dev.batch(batch), lr,
                                              jax.random.fold_in(base_key, state["step"]))
        loss = float(nll) / float(ntok)
        state["step"] += 1
        if progress and state["step"] % tcfg.log_every == 0:
            real_tokens = int((batch["segments"] > 0).sum())
            progress(state["step"], tcfg.steps, loss, real_tokens / (time.time() - tick), started, state["step"] - first_step)
        if val_batches and tcfg.eval_every and state["step"] % tcfg.eval_every == 0:
            record = {"step": state["step"], "train_loss": loss, "val_loss": validate()}
            if accuracy_fn is not None:
                record["accuracy"] = float(accuracy_fn(jax.device_get(lora)))
            state["history"].append(record)
            if state["best_val"] is None or record["val_loss"] < state["best_val"]:
                state["best_val"], state["since_best"] = record["val_loss"], 0
                save_adapter(out / "best", jax.device_get(lora), lcfg, model.source)
            else:
                state["since_best"] += 1
            if tcfg.patience and state["since_best"] >= tcfg.patience:
                stopped_early = True
        if state["step"] % tcfg.checkpoint_every == 0 or stopped_early or state["step"] == tcfg.steps:
            save_checkpoint(out / "checkpoint", jax.device_get(lora), jax.device_get(m), jax.device_get(v), lcfg, state)
        if stopped_early or (stop_at is not None and state["step"] >= stop_at):
            break
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    lora = jax.device_get(lora)
    if stop_at is None or state["step"] < stop_at:
        save_adapter(out / "final", lora, lcfg, model.source)
    best = state["best_val"] if state["best_val"] is not None else float("nan")
    return TrainResult(lora, state["history"], best, state["step"], stopped_early)


def _chunks(seq, n):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def load_student(path: str | Path) -> BaseModel:
    """A base model from a .gguf file or a Hugging Face directory."""
    path = Path(path)
    if path.is_dir():
        from backends.student.hf_loader import load_hf_dir

        return load_hf_dir(path)
    from backends.student.gguf_loader import load_gguf

    return load_gguf(path)


class JaxTrainer:
    """The "jax" trainer (backends.student.trainers): any GGUF file or HF directory, packed rows, CPU or GPU."""

    name = "jax"

    def prepare(self, model_path: str | Path) -> tuple[BaseModel, object, str]:
        model = load_student(model_path)
        return model, model.tokenizer, model.chat_template

    def rows(self, train: list[Example], seq_len: int, seed: int):
        return row_stream(train, seq_len, seed)

    def train(self, handle: BaseModel, train: list[Example], val: list[Example], tcfg: TrainConfig,
              accuracy_fn=None) -> TrainResult:
        return train_lora(handle, train, val, tcfg, accuracy_fn)
