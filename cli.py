"""The `k1` command: parses arguments and calls library functions; no algorithms live here."""
from __future__ import annotations

import os
import sys

from backends.threads import configure_threads, default_parallel, default_threads

# BLAS reads its thread count when numpy first loads, so this runs before anything imports numpy.
# Every core by default: on an otherwise idle machine the GPT trains 1.2-1.3x and K-1 1.1x faster on
# two threads than on one (docs/benchmarks.md); on a busy shared one, K1_THREADS=1 avoids the collapse.
_threads = os.environ.get("K1_THREADS", "")
configure_threads(int(_threads) if _threads.isdigit() and int(_threads) > 0 else default_threads())

import click  # noqa: E402  (after the thread settings above)

from backends.student.training_length import DEFAULT_EPOCHS  # noqa: E402
from k1core import __version__  # noqa: E402
from k1core.errors import UserError, one_line
from lrl.run_config import RunConfig, parse_stages  # light: no model or backend imports

PARALLEL_HELP = (f"requests answered at once: llama.cpp sequences decoded in one batch, or concurrent calls "
                 f"to an OpenAI-compatible server; 1 = one at a time [default on this machine: {default_parallel()}]")
LORA_LAYERS_HELP = ("train LoRA on the top N decoder layers only, with no backward pass below them "
                    "(jax trainer); default: every layer")


class K1Group(click.Group):
    """Turns a UserError anywhere below into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"k1: error: {one_line(str(err))}", err=True)
            sys.exit(2)


def unsafe_sandbox_option(command):
    """--unsafe-sandbox on a command that may run model-written code (the coding domain)."""
    def permit(_ctx, _param, value):
        if value:
            from lrl.sandbox import permit_unsafe_sandbox
            permit_unsafe_sandbox()

    return click.option("--unsafe-sandbox", is_flag=True, expose_value=False, callback=permit,
                        help="run model-written code even where no isolation tool (bubblewrap, sandbox-exec) "
                             "works: UNSAFE, and every report says so")(command)


def stages_help() -> str:
    """--stages help, listed from the stage modules themselves (lrl.stages)."""
    from lrl.stages import all_stages

    extra = ", ".join(f"{s.id} ({s.title})" for s in all_stages() if not s.default)
    return (f"comma list of stage ids ({','.join(s.id for s in all_stages())}; docs/lrl.md); 'default' = "
            f"{','.join(s.id for s in all_stages() if s.default)}; 'all' adds the long ones: {extra}")


@click.group(cls=K1Group)
@click.version_option(__version__, prog_name="k1")
def main():
    """k1: the K-1 self-learning LM vs a baseline GPT, and Linguistic RL + LoRA knowledge transfer.

    Compute libraries (BLAS, Numba, XLA) use every core unless K1_THREADS says how many threads.
    """


def config_options(command):
    """One --flag per TrainConfig key, all defaulting to None so only given flags override."""
    from k1core.config import FIELDS, FIELDS_TYPES, config_help

    for name in reversed([n for n in FIELDS if n in FIELDS_TYPES]):  # the [k1] table has its own flag
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
@click.option("--k1", "k1_settings", multiple=True, metavar="KEY=VALUE",
              help="a K-1 setting (K1Config field, e.g. --k1 lr=0.002 --k1 top_k_agents=6); repeatable")
@click.option("--plasticity/--no-plasticity", default=None,
              help="K-1 only: grow, prune, merge and reorganize the tree (same as --k1 plasticity=...)  [default: off]")
@click.option("--controller/--no-controller", default=None,
              help="K-1 only: the autonomous controller (same as --k1 controller=...)  [default: off]")
@click.option("--top-k-agents", type=int, default=None,
              help="K-1 only: agents updated per step (same as --k1 top_k_agents=...)  [default: 8]")
@config_options
def train(config_file, resume, k1_settings, plasticity, controller, top_k_agents, **flags):
    """Train the GPT baseline and/or K-1 on a byte-level corpus and compare them.

    Settings come from defaults, then --config FILE, then flags. Results go to OUT/results.json.
    """
    from backends.compute import load_compute
    from k1core.config import make_config, parse_assignment, read_config_file
    from k1core.train import resume_config, train as run_training

    file_values = read_config_file(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}
    shortcuts = {"plasticity": plasticity, "controller": controller, "top_k_agents": top_k_agents}
    k1 = dict(parse_assignment(text) for text in k1_settings) | {k: v for k, v in shortcuts.items() if v is not None}
    if k1:
        given["k1"] = k1
    base = {}
    if resume:
        out = given.get("out", file_values.get("out", make_config().out))
        base = resume_config(out)
    cfg = make_config(base, file_values, given)
    try:
        run_training(cfg, resume=resume, compute=load_compute(cfg.backend))
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
    from backends.compute import load_compute
    from k1core.generate import generate_text

    click.echo(prompt + generate_text(checkpoint, prompt, max_new_tokens, temperature, top_k, seed, load_compute))


@main.command()
@click.option("--assemble", is_flag=True, help="Assemble (and hash-check) every model whose packages are installed.")
@click.option("--calibrate", is_flag=True,
              help="Measure how fast llama.cpp runs each assembled model on this machine (about 30 s each a round) "
                   "and keep the figures for k1 lrl run's pre-run estimate.")
@click.option("--threads", type=int, default=None, help="llama.cpp threads for --calibrate (default: llama.cpp's, as runs use)")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="--calibrate measures every model this many times, taking turns, and keeps the medians")
def models(assemble, calibrate, threads, rounds):
    """List the PyPI-shipped model aliases: installed parts, assembled file, size and hash check."""
    from backends.model_assets import ASSETS, asset_status
    from backends.model_assets import assemble as assemble_asset

    for asset in ASSETS.values():
        if assemble and asset_status(asset)["parts_installed"]:
            assemble_asset(asset)
        st = asset_status(asset)
        size = f"{st['size'] / 1e6:.1f} MB" if st["size"] else "-"
        click.echo(f"{st['alias']:<10} {st['state']:<40} {size:>9}  {st['path']}  [{st['license']}]")
    if calibrate:
        from backends.llamacpp_speed import calibrate as calibrate_model
        from backends.local_speed import speed_file

        ready = [(asset.alias, st["path"]) for asset in ASSETS.values() if (st := asset_status(asset))["state"] == "ok"]
        if not ready:
            raise UserError("no assembled model to calibrate: run k1 models --assemble first")

        def describe(speed) -> str:
            batched = ", ".join(f"{x:.1f}x at {n}" for n, x in speed.batch_speedup if n > 1)
            return (f"prompts {speed.prompt_tok_s:g} tok/s, one sequence {speed.generation_tok_s:g} tok/s, "
                    f"batched generation {batched}, load {speed.load_seconds:g} s")

        def report(alias, round_, speed):
            click.echo(f"round {round_}/{rounds} {alias}: {describe(speed)}", err=True)

        for alias, speed in calibrate_model(ready, threads, rounds, report).items():
            click.echo(f"{alias}{' (median)' * (rounds > 1)}: {describe(speed)}")
        click.echo(f"kept in {speed_file()}")


@main.group(cls=K1Group)
def lrl():
    """Linguistic RL + LoRA knowledge transfer: problems, scoring, stages, evaluation."""


# ---------------------------------------------------------------- export, chat, eval

def _progress(label: str):
    """A progress(done, total) callback for long loops, on stderr so stdout stays clean: one line
    rewritten in a terminal, a line every few percent in a log."""
    from k1core.progress import ItemProgress

    bar = None

    def report(done, total):
        nonlocal bar
        if bar is None:
            bar = ItemProgress(label, total, sys.stderr)
        bar.update(done - bar.done)
        if done == total:
            bar.close()
    return report


@main.command("export")
@unsafe_sandbox_option
@click.option("--base", required=True, help="base GGUF: path, llamacpp:<path>, or alias (qwen0.5b, gemma270m)")
@click.option("--adapter", "adapter_dir", required=True, type=click.Path(), help="PEFT LoRA adapter directory")
@click.option("--quant", default="q4_k_m", show_default=True,
              help="fused quantization: q4_k_m, q4_k_m_lora_q8 (LoRA-touched tensors Q8_0), q5_k_m, q6_k, q8_0 or f16")
@click.option("--deploy", default="auto", show_default=True, type=click.Choice(["auto", "adapter", "fused"]),
              help="artifact for the Modelfile: auto = the smallest that passes the gate (base + adapter without a gate)")
@click.option("--out", required=True, type=click.Path(), help="output GGUF (siblings: .f16/.q8_0/.lora GGUF, report)")
@click.option("--gate-problems", type=click.Path(), help="problems JSONL for the fidelity gate")
@click.option("--gate-domain", default="scheduling", show_default=True, help="domain to draw gate problems from")
@click.option("--gate-variant", default="balanced", show_default=True)
@click.option("--gate-n", default=200, show_default=True,
              help="test-split problems drawn when no file is given (at 200 a 2-point drop is 4 changed answers)")
@click.option("--strategy", "strategy_file", type=click.Path(), help="strategy the student was trained with in its prompt")
@click.option("--no-gate", is_flag=True, help="skip the fidelity gate")
@click.option("--max-tokens", default=512, show_default=True)
@click.option("--threads", type=int, default=None, help="llama.cpp threads")
@click.option("--parallel", type=click.IntRange(min=1), default=None, help=PARALLEL_HELP)
def export_cmd(base, adapter_dir, quant, deploy, out, gate_problems, gate_domain, gate_variant, gate_n, strategy_file,
               no_gate, max_tokens, threads, parallel):
    """Write a LoRA student as base + adapter GGUF and fused GGUFs, gate each against fused F16, deploy the smallest that passes."""
    from backends.export.model_path import resolve_gguf
    from lrl.domain import get_domain, read_problems
    from lrl.export_job import ExportConfig, export_student, render_export
    from lrl.student_prompt import read_strategy

    config = ExportConfig(quant=quant, deploy=deploy, run_gate=not no_gate, strategy=read_strategy(strategy_file),
                          max_tokens=max_tokens, n_threads=threads, parallel=parallel or default_parallel())
    domain, problems = get_domain(gate_domain), []
    if not no_gate:
        problems = (read_problems(gate_problems, domain) if gate_problems
                    else domain.generate(gate_n, seed=0, split="test", variant=gate_variant))
    gate_bars = {}
    report = export_student(resolve_gguf(base), adapter_dir, out, config, domain, problems,
                            progress=lambda q, d, n: gate_bars.setdefault(q, _progress(f"gate {q}"))(d, n))
    click.echo(render_export(report))


@main.command("chat")
@click.argument("model")  # a GGUF path, alias or llamacpp spec, optionally +lora=<adapter.gguf>
@click.option("--system", default=None, help="system prompt")
@click.option("--max-tokens", default=512, show_default=True)
@click.option("--temperature", default=0.0, show_default=True)
@click.option("--threads", type=int, default=None)
def chat_cmd(model, system, max_tokens, temperature, threads):
    """Chat with a GGUF model, or a base GGUF +lora=<adapter.gguf> (its own chat template; tokens stream; /reset, /exit)."""
    from backends.chat_session import chat_loop
    from backends.export.model_path import local_spec
    from backends.llm import SamplingParams
    from backends.spec import BackendOptions, build_llm

    llm = build_llm(local_spec(model), BackendOptions(n_threads=threads))
    def read_line():
        line = sys.stdin.readline()
        return line if line else None

    def write(text):
        click.echo(text, nl=False)
        sys.stdout.flush()

    chat_loop(llm, read_line, write, SamplingParams(temperature=temperature, max_tokens=max_tokens), system)


@lrl.command("eval")
@unsafe_sandbox_option
@click.option("--model", "model_spec", required=True, help="model spec (llamacpp:file.gguf, qwen0.5b, anthropic:...)")
@click.option("--problems", "problems_file", required=True, type=click.Path(), help="problems JSONL")
@click.option("--domain", "domain_name", default=None, help="domain for lines without a 'domain' key")
@click.option("--strategy", "strategy_file", type=click.Path(), help="strategy text put in the prompt")
@click.option("--out", required=True, type=click.Path(), help="results JSONL")
@click.option("--max-tokens", default=512, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--parallel", type=click.IntRange(min=1), default=None, help=PARALLEL_HELP)
def lrl_eval(model_spec, problems_file, domain_name, strategy_file, out, max_tokens, threads, parallel):
    """Run a model greedily on a problems file: accuracy with CI, majority baseline, parse failures.

    Each answer is appended to OUT as it is scored; the same command run again continues.
    """
    from lrl.eval_run import eval_file

    click.echo(eval_file(model_spec, problems_file, out, domain_name, strategy_file, max_tokens, threads,
                         parallel or default_parallel(), progress=_progress("eval")))


@lrl.command("problems")
@click.option("--domain", "domain_name", required=True, help="scheduling, coding or arithmetic")
@click.option("--variant", default=None, help="domain variant (scheduling: seed, balanced, min-rooms, large, minutes)")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "dev", "test"]))
@click.option("--n", "n", default=150, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=123, show_default=True, type=int)
@click.option("--difficulty", default=None, help="only this difficulty (default: stratified)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL file to write")
@click.option("--disjoint-from", "others", multiple=True, type=click.Path(dir_okay=False),
              help="problem files the new set must not overlap (canonical duplicates are an error)")
def lrl_problems(domain_name, variant, split, n, seed, difficulty, out, others):
    """Generate a problem set as JSONL (one problem per line)."""
    from lrl.problem_sets import generate_problem_file
    click.echo(generate_problem_file(domain_name, variant, split, n, seed, difficulty, out, others))


@lrl.command("grade")
@unsafe_sandbox_option
@click.argument("problems", type=click.Path(dir_okay=False))
@click.argument("responses", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="results JSONL for `k1 lrl score`")
@click.option("--domain", "domain_name", default=None, help="domain of problem lines without a 'domain' key")
def lrl_grade(problems, responses, out, domain_name):
    """Parse and check model responses ({"id", "response"} per line) against a problem file."""
    from lrl.evaluation import grade_files
    click.echo(grade_files(problems, responses, out, domain_name))


@lrl.command("prompts")
@click.argument("problems", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help='JSONL of {"id", "prompt"}')
@click.option("--strategy", default=None, type=click.Path(dir_okay=False), help="text file with a strategy to include")
@click.option("--domain", "domain_name", default=None, help="domain of problem lines without a 'domain' key")
def lrl_prompts(problems, out, strategy, domain_name):
    """Render the user message for every problem, to send to any model you like."""
    from lrl.problem_sets import write_prompt_file
    click.echo(write_prompt_file(problems, out, strategy, domain_name))


@lrl.command("score")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--against", default=None, type=click.Path(dir_okay=False),
              help="a second results file on the same items: paired McNemar test and CI of the difference")
@click.option("--problems", default=None, type=click.Path(dir_okay=False),
              help="the problems file the results answer: adds how often each step of the worked solutions is right")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="also write the report as JSON")
def lrl_score(results, against, problems, json_out):
    """Accuracy with Wilson CI, majority baseline, breakdowns; optional paired comparison and per-step rates."""
    from lrl.evaluation import render_report, score_files, write_report
    report = score_files(results, against, problems)
    click.echo(render_report(report))
    if json_out:
        write_report(json_out, report)

@lrl.command("train-student")
@click.argument("model_path", type=click.Path())
@click.argument("train_jsonl", type=click.Path())
@click.option("--val", "val_jsonl", type=click.Path(), default=None, help="validation chat JSONL")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="adapter / checkpoint directory")
@click.option("--steps", type=int, default=None, help="optimizer steps (default: from --epochs)")
@click.option("--epochs", type=float, default=None,
              help=f"passes over the training chats; sets the steps (default: {DEFAULT_EPOCHS:g} unless --steps)")
@click.option("--seq-len", default=256, show_default=True)
@click.option("--batch-size", default=1, show_default=True)
@click.option("--grad-accum", default=1, show_default=True)
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--rank", default=8, show_default=True)
@click.option("--alpha", default=16.0, show_default=True)
@click.option("--dropout", default=0.0, show_default=True)
@click.option("--targets", default="q,k,v,o,gate,up,down", show_default=True)
@click.option("--lora-layers", "lora_layers", type=click.IntRange(min=1), default=None, help=LORA_LAYERS_HELP)
@click.option("--eval-every", default=20, show_default=True)
@click.option("--patience", default=0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--trainer", default=None,
              help="jax (GGUF or HF dir, resumable) or mlx (mlx-lm, HF dir); default: mlx on Apple silicon, else jax")
def train_student(model_path, train_jsonl, val_jsonl, out_dir, steps, epochs, seq_len, batch_size, grad_accum, lr,
                  rank, alpha, dropout, targets, lora_layers, eval_every, patience, seed, trainer):
    """LoRA-train a student (GGUF file or HF directory) on chat JSONL; the jax trainer resumes from OUT."""
    from backends.student.finetune import load_training_data
    from backends.student.lora import LoraConfig
    from backends.student.train_config import TrainConfig, lora_adamw
    from backends.student.trainers import default_trainer
    from backends.student.training_length import steps_or_epochs

    steps, epochs = steps_or_epochs(steps, epochs, ("--steps", "--epochs"))
    data = load_training_data(model_path, train_jsonl, val_jsonl, seq_len, trainer or default_trainer())
    length = data.length(batch_size, grad_accum, seed, steps, epochs)
    click.echo(length.describe())
    if length.shortfall():
        click.echo(length.shortfall())
    tcfg = TrainConfig(
        out_dir=out_dir, seq_len=seq_len, batch_size=batch_size, grad_accum=grad_accum, steps=length.steps,
        lora=LoraConfig(targets=tuple(t.strip() for t in targets.split(",") if t.strip()), rank=rank, alpha=alpha,
                        dropout=dropout, layers=lora_layers),
        optim=lora_adamw(lr, length.steps), eval_every=eval_every, patience=patience,
        checkpoint_every=max(1, eval_every), seed=seed)
    result = data.fit(tcfg)
    trained = data.length(batch_size, grad_accum, seed, steps=result.steps_done)
    click.echo(f"trained {result.steps_done} steps ({trained.epochs:.2f} epochs); best val loss {result.best_val:.4f}; "
               f"adapters in {out_dir}")

@lrl.command("run")
@unsafe_sandbox_option
@click.option("--teacher", default=RunConfig.teacher, show_default=True, help="model spec, e.g. anthropic:claude-3-5-haiku-latest")
@click.option("--student", default=RunConfig.student, show_default=True, help="model spec of the student")
@click.option("--domain", "domain_name", default=RunConfig.domain, show_default=True, help="scheduling, coding or arithmetic")
@click.option("--variant", default=None, help="domain variant (default: balanced for scheduling, else the domain's own)")
@click.option("--n-train", default=RunConfig.n_train, show_default=True, type=int, help="training problems (batches of 10)")
@click.option("--n-val", default=RunConfig.n_val, show_default=True, type=int, help="validation problems for scoring strategies")
@click.option("--n-test", default=RunConfig.n_test, show_default=True, type=int,
              help="test problems (the students answer all of them)")
@click.option("--teacher-items", default=RunConfig.teacher_items, show_default=True, type=int,
              help="stages 1 and 3: the teacher answers this many of the test problems (a seeded subset; "
              "all of them when it is at least --n-test)")
@click.option("--stages", "stages_text", default="default", show_default=True, help=stages_help())
@click.option("--curriculum-size", default=RunConfig.curriculum_size, show_default=True, type=int, help="stage 4: training problems")
@click.option("--teacher-fraction", default=RunConfig.teacher_fraction, show_default=True, type=float,
              help="stage 4: share of targets written by the teacher (kept only when verified)")
@click.option("--student-prompts", default=RunConfig.student_prompts, show_default=True,
              type=click.Choice(["both", "strategy", "zero-shot"]),
              help="stage 4: prompt formats the student trains on (both: half the curriculum each); it is tested in both")
@click.option("--traces", "trace_style", default=RunConfig.trace_style, show_default=True,
              type=click.Choice(["compact", "verbose"]),
              help="stage 4: the solver's worked solutions, one short line per step or every step in prose")
@click.option("--strategy", "strategy_file", default=None, type=click.Path(dir_okay=False),
              help="stage 4: teach this strategy file (recorded as user-supplied) instead of stage 2's adopted one")
@click.option("--rounds", default=RunConfig.rounds, show_default=True, type=int,
              help="2: the exported student's train/dev failures teach the teacher strategy v2, and stage 4 runs again")
@click.option("--lora-steps", default=None, type=int,
              help="stage 4: LoRA optimizer steps (one packed row each); default: from --lora-epochs")
@click.option("--lora-epochs", default=None, type=float,
              help=f"stage 4: passes over the curriculum's training chats, which set the steps "
              f"(default: {DEFAULT_EPOCHS:g} unless --lora-steps)")
@click.option("--lora-rank", default=RunConfig.lora_rank, show_default=True, type=int)
@click.option("--lora-layers", type=click.IntRange(min=1), default=None, help="stage 4: " + LORA_LAYERS_HELP)
@click.option("--lora-seq-len", default=RunConfig.lora_seq_len, show_default=True, type=int,
              help="stage 4: training row length (examples are packed into rows)")
@click.option("--export-quant", default=RunConfig.export_quant, show_default=True, help="stage 4: q4_k_m, q5_k_m, q8_0 or f16")
@click.option("--gate-items", default=RunConfig.gate_items, show_default=True, type=int,
              help="stage 4: run the fidelity gate on this many test items (a seeded subset; all of them when "
              "it is at least --n-test)")
@click.option("--ood-items", default=RunConfig.ood_items, show_default=True, type=int,
              help="stage 4b: problems of each out-of-distribution variant")
@click.option("--gate-report-only", is_flag=True,
              help="stage 4: report a failing fidelity gate instead of stopping (the deployed artifact is then unguarded)")
@click.option("--solve-max-tokens", default=RunConfig.solve_max_tokens, show_default=True, type=int,
              help="token limit of the solve calls of stages 0-3b (stage 4 answers within 1.5x its curriculum's longest target)")
@click.option("--out", default=str(RunConfig().out), show_default=True, type=click.Path(file_okay=False), help="run directory (re-run to resume)")
@click.option("--budget-usd", default=None, type=float, help="hard cap on dollars spent by this run")
@click.option("--offline", is_flag=True, help="replay from the run's response cache; a miss is an error")
@click.option("--review", is_flag=True, help="accept, edit or reject the distilled strategy before it is used")
@click.option("--seed", default=RunConfig.seed, show_default=True, type=int, help="problem and sampling seed")
@click.option("--baseline-prompt", default="zero-shot", show_default=True, type=click.Choice(["zero-shot", "published"]),
              help="'published' gives the teacher baseline the algorithm, as the published prompt did")
@click.option("--threads", "n_threads", default=None, type=int, help="llama.cpp threads (default: llama.cpp's)")
@click.option("--parallel", type=click.IntRange(min=1), default=None, help=PARALLEL_HELP)
@click.option("--anthropic-batches", is_flag=True,
              help="send bulk calls to Anthropic as Message Batches (half price, slower; resumable)")
def lrl_run(domain_name, stages_text, variant, **options):
    """Run (or resume) the LRL stages: baselines, bootstrap, teacher + strategy, transfer check."""
    from lrl.pipeline import run
    from lrl.review import ask_person, require_terminal

    if options["review"]:
        require_terminal(sys.stdin.isatty())
    if options["parallel"] is None:
        options.pop("parallel")  # RunConfig's default: chosen from this machine
    config = RunConfig(domain=domain_name, stages=parse_stages(stages_text), variant=variant, **options)

    def progress(label, total):
        from k1core.progress import ItemProgress

        return ItemProgress(label, total, sys.stderr)

    run(config, reviewer=ask_person if config.review else None, progress=progress, echo=click.echo,
        command=["k1", *sys.argv[1:]])
    click.echo(f"wrote {config.out}/report.md and results.json")
    click.echo((config.out / "report.md").read_text(encoding="utf-8"))


@lrl.command("publish")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="replace DEST when it already exists")
def lrl_publish(run_dir, dest, force):
    """Copy a `k1 lrl run` directory's shareable record (reports, tables, plot, test records, LoRA adapter;
    never GGUF files, checkpoints or files over 20 MB) into DEST, e.g. results/NAME, to commit."""
    from lrl.publish import publish

    click.echo(publish(run_dir, dest, force))


if __name__ == "__main__":
    main()
