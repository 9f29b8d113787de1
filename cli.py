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


def config_options(command):
    """One --flag per TrainConfig key, all defaulting to None so only given flags override."""
    from k1core.config import FIELDS, FIELDS_TYPES, config_help

    for name in reversed(list(FIELDS)):
        flag = "--" + name.replace("_", "-")
        kind, default = FIELDS_TYPES[name], FIELDS[name].default
        text = config_help(name) + ("" if default is None else f"  [default: {default}]")
        if kind is bool:
            command = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=text)(command)
        else:
            command = click.option(flag, name, type=kind, default=None, help=text)(command)
    return command


@main.command()
@click.option("--config", "config_file", type=click.Path(), help="TOML or JSON file of config keys")
@click.option("--resume", is_flag=True, help="continue the run saved in --out from its last checkpoint")
@config_options
def train(config_file, resume, **flags):
    """Train the GPT baseline and/or K-1 on a byte-level corpus and compare them.

    Settings come from defaults, then --config FILE, then flags. Results go to OUT/results.json.
    """
    from k1core.config import make_config, read_config_file
    from k1core.train import saved_config, train as run_training

    file_values = read_config_file(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}
    base = {}
    if resume:
        out = given.get("out", file_values.get("out", make_config().out))
        base = saved_config(out) or {}
    cfg = make_config(base, file_values, given)
    try:
        run_training(cfg, resume=resume)
    except KeyboardInterrupt:
        click.echo(f"k1: interrupted; continue with: k1 train --resume --out {cfg.out}", err=True)
        sys.exit(130)


@main.command()
@click.option("--checkpoint", required=True, type=click.Path(), help="run folder, model folder or checkpoint.npz")
@click.option("--prompt", default="\n", show_default=True, help="text to continue")
@click.option("--max-new-tokens", default=300, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float, help="0 means greedy")
@click.option("--top-k", default=None, type=int, help="sample only among the k most likely bytes")
@click.option("--seed", default=0, show_default=True, type=int)
def generate(checkpoint, prompt, max_new_tokens, temperature, top_k, seed):
    """Continue a prompt with a model saved by `k1 train`."""
    from k1core.generate import generate_text

    click.echo(prompt + generate_text(checkpoint, prompt, max_new_tokens, temperature, top_k, seed))


@main.group(cls=K1Group)
def lrl():
    """Linguistic RL + LoRA knowledge transfer: problems, scoring, stages, evaluation."""


if __name__ == "__main__":
    main()
