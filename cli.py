"""The `k1` command: parses arguments and calls library functions; no algorithms live here."""
from __future__ import annotations

import sys

import click

from k1core import __version__
from k1core.errors import UserError


class K1Group(click.Group):
    """Turns a UserError anywhere below into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"k1: error: {err}", err=True)
            sys.exit(2)


@click.group(cls=K1Group)
@click.version_option(__version__, prog_name="k1")
def main():
    """k1: the K-1 self-learning LM vs a baseline GPT, and Linguistic RL + LoRA knowledge transfer."""


@main.group(cls=K1Group)
def lrl():
    """Linguistic RL + LoRA knowledge transfer: problems, scoring, stages, evaluation."""


@lrl.command("train-student")
@click.argument("model_path", type=click.Path())
@click.argument("train_jsonl", type=click.Path())
@click.option("--val", "val_jsonl", type=click.Path(), default=None, help="validation chat JSONL")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="adapter / checkpoint directory")
@click.option("--steps", default=200, show_default=True)
@click.option("--seq-len", default=256, show_default=True)
@click.option("--batch-size", default=1, show_default=True)
@click.option("--grad-accum", default=1, show_default=True)
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--rank", default=8, show_default=True)
@click.option("--alpha", default=16.0, show_default=True)
@click.option("--dropout", default=0.0, show_default=True)
@click.option("--targets", default="q,k,v,o,gate,up,down", show_default=True)
@click.option("--eval-every", default=20, show_default=True)
@click.option("--patience", default=0, show_default=True)
@click.option("--seed", default=0, show_default=True)
def train_student(model_path, train_jsonl, val_jsonl, out_dir, steps, seq_len, batch_size, grad_accum, lr, rank,
                  alpha, dropout, targets, eval_every, patience, seed):
    """LoRA-train a student (GGUF file or HF directory) on chat JSONL; resumes from OUT when present."""
    from backends.student.finetune import finetune
    from backends.student.jax_trainer import TrainConfig
    from backends.student.lora import LoraConfig
    from k1core.optim import AdamWConfig

    tcfg = TrainConfig(
        out_dir=out_dir, seq_len=seq_len, batch_size=batch_size, grad_accum=grad_accum, steps=steps,
        lora=LoraConfig(targets=tuple(t.strip() for t in targets.split(",") if t.strip()), rank=rank, alpha=alpha,
                        dropout=dropout),
        optim=AdamWConfig(lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 20), total_steps=steps, weight_decay=0.0),
        eval_every=eval_every, patience=patience, checkpoint_every=max(1, eval_every), seed=seed)
    result = finetune(model_path, train_jsonl, val_jsonl, tcfg)
    click.echo(f"trained {result.steps_done} steps; best val loss {result.best_val:.4f}; adapters in {out_dir}")


if __name__ == "__main__":
    main()
