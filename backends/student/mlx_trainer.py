"""LoRA fine-tuning through mlx-lm's tuner: the trainer for Apple silicon (mlx[cpu] also runs it on Linux, slowly).

Same inputs and outputs as the JAX trainer: examples encoded by chat_data.encode_chat (our tokenizer and
chat template, so token ids and the prompt mask are identical), a TrainConfig, and PEFT adapters written
by adapters.save_adapter to out_dir/best and out_dir/final. mlx-lm's LoRALinear computes
y = x W^T + scale * (x @ a) @ b with a (in, r) and b (r, out), which is our stacked (A, B) layout, so
with scale = alpha / r the adapter converts by stacking over layers. mlx-lm's own copy (adapters.safetensors
+ its adapter_config.json, for `mlx_lm.generate --adapter-path`) lands in out_dir/mlx.

Resumable as the JAX trainer is, into the same out_dir/checkpoint layout (PEFT adapter, AdamW moments under
PEFT names, trainer_state.json): each micro-batch reseeds mlx's RNG from (seed, micro-batch index), so the
dropout masks after a resume are the ones an uninterrupted run draws, and no RNG state needs saving.

Difference from the JAX trainer: examples are padded per batch rather than packed (mlx-lm's models take
no segment mask).
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import orjson

from backends.student.adapters import save_adapter
from backends.student.architectures import StudentConfig, projection_name
from backends.student.chat_data import Example
from backends.student.checkpoint import load_checkpoint, save_checkpoint
from backends.student.hf_loader import read_hf_config
from backends.student.train_config import TrainConfig, TrainResult
from backends.student.lora import LoraConfig, init_lora
from k1core.errors import UserError
from k1core.lazy import require

PAD_MULTIPLE = 32  # batch widths rounded up to this, so mx.compile sees few distinct shapes


def mlx_param_name(layer: int, target: str, which: str) -> str:
    """mlx-lm's name of a LoRA matrix, e.g. model.layers.0.self_attn.q_proj.lora_a."""
    return projection_name(layer, target)[:-len("weight")] + f"lora_{which}"


def mlx_lora_parameters(lcfg: LoraConfig) -> dict:
    """The lora_parameters dict mlx-lm's linear_to_lora_layers takes: keys are module paths inside a layer."""
    keys = [projection_name(0, t)[len("model.layers.0."):-len(".weight")] for t in lcfg.targets]
    return {"rank": lcfg.rank, "scale": lcfg.scale, "dropout": lcfg.dropout, "keys": keys}


def set_lora(model, lora: dict) -> None:
    """Load stacked {target: (A (L,in,r), B (L,r,out))} into the model's LoRA layers."""
    import mlx.core as mx

    model.load_weights([(mlx_param_name(i, t, w), mx.array(m[i]))
                        for t, (a, b) in lora.items() for w, m in (("a", a), ("b", b)) for i in range(a.shape[0])],
                       strict=False)


def read_lora(model, n_layers: int, lcfg: LoraConfig) -> dict:
    """The model's LoRA matrices as stacked float32 NumPy {target: (A (L,in,r), B (L,r,out))}."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    params = dict(tree_flatten(model.trainable_parameters()))

    def stack(target, which):
        return np.stack([np.array(params[mlx_param_name(i, target, which)].astype(mx.float32)) for i in range(n_layers)])

    return {t: (stack(t, "a"), stack(t, "b")) for t in lcfg.targets}


def check_mlx_input(model_dir: str | Path) -> Path:
    """The model directory, or a UserError when mlx-lm is missing or the path is not an HF directory."""
    try:
        require("mlx_lm", "mlx")
    except UserError as err:  # the extra only installs mlx on Apple silicon
        raise UserError(f"{err} on Apple silicon; elsewhere use --trainer jax "
                        "(or pip install 'mlx[cpu]' mlx-lm, which is slow)") from None
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: the mlx trainer needs a Hugging Face model directory "
                        "(config.json + *.safetensors); train a GGUF file with --trainer jax")
    return model_dir


def save_mlx_adapter(model, out_dir: Path, n_layers: int, lcfg: LoraConfig) -> None:
    """mlx-lm's own adapter layout (adapters.safetensors + adapter_config.json) for mlx_lm's --adapter-path."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    mx.save_safetensors(str(out_dir / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    (out_dir / "adapter_config.json").write_bytes(orjson.dumps(
        {"fine_tune_type": "lora", "num_layers": n_layers, "lora_parameters": mlx_lora_parameters(lcfg)}))


def load_mlx_lora_model(model_dir: str | Path, lcfg: LoraConfig, seed: int):
    """mlx-lm model of an HF directory, base frozen, LoRA layers on the targets initialised as init_lora does.

    Returns (model, StudentConfig).
    """
    model_dir = check_mlx_input(model_dir)
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    cfg = read_hf_config(model_dir)
    try:
        model, _ = load_model(model_dir)
    except Exception as err:  # mlx-lm raises ValueError/FileNotFoundError/KeyError for bad directories
        raise UserError(f"{model_dir}: mlx-lm cannot load the model ({err})") from None
    model.freeze()
    linear_to_lora_layers(model, cfg.n_layers, mlx_lora_parameters(lcfg))
    set_lora(model, init_lora(cfg, lcfg, seed))
    return model, cfg


def masked_nll(model, batch, lengths):
    """Mean next-token NLL over answer tokens and their count, mlx-lm's loss signature.

    batch (B, W) token ids, lengths (B, 2) rows (n_prompt, n). Position j predicts token j+1 and counts
    when n_prompt <= j+1 < n: the mask chat_data.make_batch builds. (mlx-lm's default_loss also counts
    the first padding token after each example, so it is not used.)
    """
    import mlx.core as mx
    import mlx.nn as nn

    inputs, targets = batch[:, :-1], batch[:, 1:]  # (B, W-1)
    logits = model(inputs).astype(mx.float32)  # (B, W-1, V)
    predicted = mx.arange(1, targets.shape[1] + 1)  # index of the token each position predicts
    mask = (predicted >= lengths[:, 0:1]) & (predicted < lengths[:, 1:])  # (B, W-1)
    nll = nn.losses.cross_entropy(logits, targets) * mask
    ntoks = mask.sum()
    return nll.sum() / ntoks, ntoks


def pad_batch(examples: list[Example]):
    """(tokens (B, W) zero-padded, lengths (B, 2) of (n_prompt, n)) as mlx arrays."""
    import mlx.core as mx

    width = -(-max(len(ex.ids) for ex in examples) // PAD_MULTIPLE) * PAD_MULTIPLE
    tokens = np.zeros((len(examples), width), np.int32)
    for row, ex in enumerate(examples):
        tokens[row, :len(ex.ids)] = ex.ids
    lengths = np.array([(ex.n_prompt, len(ex.ids)) for ex in examples], np.int32)
    return mx.array(tokens), mx.array(lengths)


def example_batches(shuffle_seed: int, skip: int = 0):
    """A batch iterator with mlx-lm's iterate_batches signature over a list of Examples.

    Training (loop=True): an endless stream, each epoch shuffled with rng(seed, epoch) as the JAX
    trainer's row_stream does, cut into batches, the first `skip` dropped (a resumed run); mlx's RNG
    is reseeded from (seed, micro-batch index) before each batch. Evaluation (loop=False): one pass in order.
    """
    import mlx.core as mx

    def iterate(dataset, batch_size, max_seq_length=None, loop=False, seed=None, comm_group=None):
        if not loop:
            order = iter(range(len(dataset)))
            while chunk := [dataset[int(i)] for i in itertools.islice(order, batch_size)]:
                yield pad_batch(chunk)
            return
        order = itertools.chain.from_iterable(np.random.default_rng([shuffle_seed, epoch]).permutation(len(dataset))
                                              for epoch in itertools.count())
        order = itertools.islice(order, skip * batch_size, None)
        for index in itertools.count(skip):
            mx.random.seed(int(np.random.SeedSequence([shuffle_seed, index]).generate_state(1)[0]))  # dropout masks
            yield pad_batch([dataset[int(i)] for i in itertools.islice(order, batch_size)])

    return iterate


def schedule(ocfg):
    """k1core.optim.lr_at as an mlx schedule (called with the optimizer's step before each update)."""
    import mlx.core as mx

    def lr(step):
        warm = ocfg.lr * (step + 1) / ocfg.warmup_steps
        progress = mx.clip((step - ocfg.warmup_steps) / max(1, ocfg.total_steps - ocfg.warmup_steps), 0.0, 1.0)
        cosine = ocfg.min_lr + 0.5 * (1.0 + mx.cos(np.pi * progress)) * (ocfg.lr - ocfg.min_lr)
        return mx.where(step < ocfg.warmup_steps, warm, cosine)

    return lr


def make_optimizer(ocfg):
    """AdamW with bias correction and global-norm clipping at ocfg.grad_clip: the JAX step's update."""
    import mlx.optimizers as optim

    class ClippedAdamW(optim.AdamW):
        def apply_gradients(self, gradients, parameters):
            if ocfg.grad_clip > 0:
                gradients, _ = optim.clip_grad_norm(gradients, ocfg.grad_clip)
            return super().apply_gradients(gradients, parameters)

    return ClippedAdamW(schedule(ocfg), betas=[ocfg.beta1, ocfg.beta2], eps=ocfg.eps,
                        weight_decay=ocfg.weight_decay, bias_correction=True)


def optimizer_moments(optimizer, n_layers: int, lcfg: LoraConfig) -> tuple[dict, dict]:
    """AdamW's first and second moments as stacked {target: (A-shaped, B-shaped)}, like read_lora."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    flat = dict(tree_flatten(optimizer.state))

    def stacked(moment):
        return {t: tuple(np.stack([np.array(flat[f"{mlx_param_name(i, t, w)}.{moment}"].astype(mx.float32))
                                   for i in range(n_layers)]) for w in ("a", "b")) for t in lcfg.targets}

    return stacked("m"), stacked("v")


def restore_optimizer(optimizer, model, m: dict, v: dict, step: int) -> None:
    """Put saved moments and the update count back into an mlx AdamW for `model`'s LoRA parameters."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    optimizer.init(model.trainable_parameters())
    flat = dict(tree_flatten(optimizer.state))
    for moment, saved in (("m", m), ("v", v)):
        for t, pair in saved.items():
            for w, stack in zip(("a", "b"), pair):
                for i in range(stack.shape[0]):
                    flat[f"{mlx_param_name(i, t, w)}.{moment}"] = mx.array(stack[i])
    flat["step"] = mx.array(step, mx.uint64)
    optimizer.state = tree_unflatten(list(flat.items()))


class _EarlyStop(Exception):
    """Raised from a callback to end mlx-lm's train loop (it has no stop hook); args: (step, early)."""


class _Evaluations:
    """mlx-lm training callback: history, best adapter to out/best, accuracy_fn, early stopping,
    and atomic checkpoints to out/checkpoint. `state` is the checkpoint's trainer_state (step,
    seed, best_val, since_best, history); mlx-lm counts iterations from 1 again after a resume."""

    def __init__(self, model, optimizer, cfg: StudentConfig, tcfg: TrainConfig, source: str, accuracy_fn,
                 state: dict, stop_at: int | None):
        self.model, self.optimizer, self.cfg, self.tcfg = model, optimizer, cfg, tcfg
        self.source, self.accuracy_fn, self.state, self.stop_at = source, accuracy_fn, state, stop_at
        self.offset, self.train_loss = state["step"], None

    def step_of(self, iteration: int) -> int:
        return self.offset + iteration // self.tcfg.grad_accum

    def checkpoint(self) -> None:
        lora = read_lora(self.model, self.cfg.n_layers, self.tcfg.lora)
        m, v = optimizer_moments(self.optimizer, self.cfg.n_layers, self.tcfg.lora)
        save_checkpoint(Path(self.tcfg.out_dir) / "checkpoint", lora, m, v, self.tcfg.lora, self.state)

    def on_train_loss_report(self, info: dict) -> None:
        self.train_loss = info["train_loss"]
        self.state["step"] = self.step_of(info["iteration"])
        if self.state["step"] % self.tcfg.checkpoint_every == 0 or self.state["step"] == self.tcfg.steps:
            self.checkpoint()
        if self.stop_at is not None and self.state["step"] >= self.stop_at:
            raise _EarlyStop(self.state["step"], False)

    def on_val_loss_report(self, info: dict) -> None:
        if self.offset and info["iteration"] == 0:
            return  # mlx-lm evaluates on entering its loop; an uninterrupted run had no evaluation here
        record = {"step": self.step_of(info["iteration"]), "train_loss": self.train_loss, "val_loss": info["val_loss"]}
        lora = read_lora(self.model, self.cfg.n_layers, self.tcfg.lora)
        if self.accuracy_fn is not None:
            record["accuracy"] = float(self.accuracy_fn(lora))
        self.state["history"].append(record)
        if self.state["best_val"] is None or record["val_loss"] < self.state["best_val"]:
            self.state["best_val"], self.state["since_best"] = record["val_loss"], 0
            save_adapter(Path(self.tcfg.out_dir) / "best", lora, self.tcfg.lora, self.source)
        else:
            self.state["since_best"] += 1
        if self.tcfg.patience and self.state["since_best"] >= self.tcfg.patience and record["step"] < self.tcfg.steps:
            self.state["step"] = record["step"]
            self.checkpoint()
            raise _EarlyStop(record["step"], True)


def train_lora_mlx(model_dir: str | Path, train: list[Example], val: list[Example], tcfg: TrainConfig,
                   accuracy_fn=None, stop_at: int | None = None) -> TrainResult:
    """Train a LoRA adapter on the HF model at `model_dir` with mlx-lm's trainer; PEFT adapters to out_dir.

    Resumes from out_dir/checkpoint when present; `stop_at` ends the run after that step without the
    final save (a simulated interruption). Evaluations after a resume fall where an uninterrupted run
    has them when checkpoint_every is a multiple of eval_every.
    """
    if tcfg.lora.layers is not None:
        raise UserError("LoRA on the top layers only (--lora-layers) is built for the jax trainer; "
                        "the mlx trainer trains every layer")
    require("mlx.core", "mlx")
    from mlx_lm.tuner.trainer import TrainingArgs, evaluate
    from mlx_lm.tuner.trainer import train as mlx_train

    lcfg, out = tcfg.lora, Path(tcfg.out_dir)
    model, cfg = load_mlx_lora_model(model_dir, lcfg, tcfg.seed)
    if len(train) < tcfg.batch_size:
        raise UserError(f"{len(train)} training examples are fewer than batch_size {tcfg.batch_size}")
    optimizer = make_optimizer(tcfg.optim)
    state = {"step": 0, "seed": tcfg.seed, "best_val": None, "since_best": 0, "history": []}
    resumed = load_checkpoint(out / "checkpoint", cfg.n_layers)
    if resumed:
        lora, m, v, state = resumed
        set_lora(model, lora)
        restore_optimizer(optimizer, model, m, v, state["step"])
    iters = (tcfg.steps - state["step"]) * tcfg.grad_accum  # mlx-lm counts micro-batches
    evaluating = bool(val) and tcfg.eval_every > 0
    (out / "mlx").mkdir(parents=True, exist_ok=True)
    # Checkpoints and stop_at ride on mlx-lm's loss reports, so report at every step any of them needs.
    report_every = math.gcd(tcfg.log_every, tcfg.checkpoint_every, stop_at or 0) * tcfg.grad_accum
    args = TrainingArgs(batch_size=tcfg.batch_size, iters=iters, val_batches=-1, steps_per_report=report_every,
                        steps_per_eval=(tcfg.eval_every * tcfg.grad_accum) if evaluating else iters + 1,
                        steps_per_save=iters + 1, max_seq_length=tcfg.seq_len,
                        adapter_file=str(out / "mlx" / "adapters.safetensors"), grad_accumulation_steps=tcfg.grad_accum)
    evals = _Evaluations(model, optimizer, cfg, tcfg, str(model_dir), accuracy_fn, state, stop_at)
    batches = example_batches(tcfg.seed)
    stopped_at, early = None, False
    if iters > 0:
        try:
            mlx_train(model, optimizer, train, val if evaluating else None, args, loss=masked_nll,
                      iterate_batches=example_batches(tcfg.seed, skip=state["step"] * tcfg.grad_accum),
                      training_callback=evals)
        except _EarlyStop as stop:
            stopped_at, early = stop.args
    if not early and stopped_at is not None:  # interrupted on purpose: no evaluation, no final save
        return TrainResult(read_lora(model, cfg.n_layers, lcfg), state["history"], state["best_val"] or float("nan"),
                           stopped_at, False)
    if evaluating and not early and iters > 0:  # mlx-lm's last evaluation precedes the last step
        evals.on_val_loss_report({"iteration": iters, "val_loss": evaluate(
            model, val, tcfg.batch_size, -1, tcfg.seq_len, loss=masked_nll, iterate_batches=batches)})
    save_mlx_adapter(model, out / "mlx", cfg.n_layers, lcfg)
    lora = read_lora(model, cfg.n_layers, lcfg)
    save_adapter(out / "final", lora, lcfg, str(model_dir))
    best = state["best_val"] if state["best_val"] is not None else float("nan")
    return TrainResult(lora, state["history"], best, tcfg.steps if stopped_at is None else stopped_at, early)


class MlxTrainer:
    """The "mlx" trainer (backends.student.trainers): an HF directory through mlx-lm's tuner."""

    name = "mlx"

    def prepare(self, model_path: str | Path) -> tuple[str | Path, object, str]:
        from backends.student.hf_loader import read_hf_tokenizer

        tokenizer, template, _ = read_hf_tokenizer(check_mlx_input(model_path))
        return model_path, tokenizer, template

    def rows(self, train: list[Example], seq_len: int, seed: int):
        """One example per row (batches are padded, not packed); the shuffle changes no count."""
        return ([example] for example in itertools.cycle(train))

    def train(self, handle: str | Path, train: list[Example], val: list[Example], tcfg: TrainConfig,
              accuracy_fn=None) -> TrainResult:
        return train_lora_mlx(handle, train, val, tcfg, accuracy_fn)
