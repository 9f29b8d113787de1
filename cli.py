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


from lrl.run_config import RunConfig, parse_stages  # noqa: E402  (light: no model or backend imports)


@lrl.command("run")
@click.option("--teacher", default=RunConfig.teacher, show_default=True, help="model spec, e.g. anthropic:claude-3-5-haiku-latest")
@click.option("--student", default=RunConfig.student, show_default=True, help="model spec of the student")
@click.option("--domain", "domain_name", default=RunConfig.domain, show_default=True, help="scheduling, coding or arithmetic")
@click.option("--variant", default=RunConfig.variant, show_default=True, help="domain variant ('default' for the domain's own)")
@click.option("--n-train", default=RunConfig.n_train, show_default=True, type=int, help="training problems (batches of 10)")
@click.option("--n-val", default=RunConfig.n_val, show_default=True, type=int, help="validation problems for scoring strategies")
@click.option("--n-test", default=RunConfig.n_test, show_default=True, type=int, help="test problems")
@click.option("--stages", "stages_text", default="all", show_default=True, help="comma list of 0,1,2,3,3b")
@click.option("--out", default=str(RunConfig().out), show_default=True, type=click.Path(file_okay=False), help="run directory (re-run to resume)")
@click.option("--budget-usd", default=None, type=float, help="hard cap on dollars spent by this run")
@click.option("--offline", is_flag=True, help="replay from the run's response cache; a miss is an error")
@click.option("--review", is_flag=True, help="accept, edit or reject the distilled strategy before it is used")
@click.option("--seed", default=RunConfig.seed, show_default=True, type=int, help="problem and sampling seed")
@click.option("--baseline-prompt", default="zero-shot", show_default=True, type=click.Choice(["zero-shot", "published"]),
              help="'published' gives the teacher baseline the algorithm, as the published prompt did")
@click.option("--threads", "n_threads", default=None, type=int, help="llama.cpp threads (default: llama.cpp's)")
def lrl_run(domain_name, stages_text, variant, **options):
    """Run (or resume) the LRL stages: baselines, bootstrap, teacher + strategy, transfer check."""
    from lrl.pipeline import run
    from lrl.review import ask_person, require_terminal

    if options["review"]:
        require_terminal(sys.stdin.isatty())
    config = RunConfig(domain=domain_name, stages=parse_stages(stages_text),
                       variant=None if variant == "default" else variant, **options)

    def progress(label, total):
        return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True)

    run(config, reviewer=ask_person if config.review else None, progress=progress, echo=click.echo)
    click.echo(f"wrote {config.out}/report.md and results.json")
    click.echo((config.out / "report.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
