"""The one evaluation loop: ask a model every problem and score its answers.

The stages run it resumably in chunks of a batch (lrl.stages.context.evaluate); `k1 lrl eval` and
the export's fidelity gate run it too. Every prompt comes from `prompts.solve_messages`, which is
also the prompt a trained student saw (`student_prompt.student_messages`), so the numbers are those
of the prompt format the student was trained with. Greedy decoding by default. A failed model call
(the prompt does not fit the context window, a server error) is an error of the run, never a wrong
answer of the model: the run stops there and says so. A backend with `parallel` > 1 answers a
whole chunk's bulk call together.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from backends.llm import Completion, LLMError, Request, SamplingParams
from k1core.errors import UserError
from lrl.domain import Problem, TransferDomain, get_domain, read_problems
from lrl.evaluation import render_table, result_record, summarize
from lrl.output_file import append_jsonl, read_finished_records, writable_file
from lrl.prompts import solve_messages
from lrl.sandbox import code_sandbox, sandbox_line
from lrl.student_prompt import read_strategy

# (problems, messages, completions, records) of one chunk, once it is scored
ChunkDone = Callable[[list[Problem], list[list[dict]], list[Completion], list[dict]], None]


@dataclass(frozen=True)
class EvalConfig:
    """How each item is asked: the strategy in the prompt or not, the baseline prompt, and the sampling."""

    strategy: str | None = None
    params: SamplingParams = SamplingParams(temperature=0.0, max_tokens=512)
    baseline_prompt: str = "zero-shot"  # without a strategy: "published" adds the published hint


def evaluate_model(llm, domain: TransferDomain, problems: Sequence[Problem], config: EvalConfig = EvalConfig(),
                   stage: str | None = None, progress=None, chunk_size: int | None = None,
                   on_chunk: ChunkDone | None = None) -> list[dict]:
    """One result record per problem (see `lrl.evaluation.result_record`), plus tokens and latency.

    Problems go to the model's bulk call `chunk_size` at a time (default: four batches' worth for a
    model that decodes `parallel` requests at once, else one), so a batching model is never fed one
    request at a time; `on_chunk` sees each chunk as soon as it is scored (to save it),
    `progress(done, total)` counts items. A failed model call raises a UserError naming the chunk's
    first item: scoring it would charge the model for a fault of the run.
    """
    if chunk_size is None:
        parallel = getattr(llm, "parallel", 1)
        chunk_size = 4 * parallel if parallel > 1 else 1
    records = []
    for start in range(0, len(problems), chunk_size):
        chunk = list(problems[start:start + chunk_size])
        messages = [solve_messages(domain, p, config.strategy, config.baseline_prompt) for p in chunk]
        shifted = (lambda done, _total, start=start: progress(start + done, len(problems))) if progress else None
        requests = [Request(m, config.params, custom_id=p.id) for m, p in zip(messages, chunk)]
        try:
            completions = llm.complete_many(requests, shifted)
        except LLMError as err:
            raise UserError(f"item {chunk[0].id}: the model call failed, an error of this run and not an answer "
                            f"of the model ({err})") from None
        scored = [{**result_record(domain, p, c.text, model=llm.model, stage=stage),
                   "output_tokens": c.output_tokens, "latency_s": round(c.latency_s, 4)}
                  for p, c in zip(chunk, completions)]
        if on_chunk:
            on_chunk(chunk, messages, completions, scored)
        records += scored
    return records


def _problems(problems_file, domain_name: str | None) -> tuple[TransferDomain, list[Problem]]:
    domain = get_domain(domain_name) if domain_name else None
    problems = read_problems(problems_file, domain)
    if not problems:
        raise UserError(f"{problems_file}: no problems")
    domains = {p.domain for p in problems}
    if len(domains) > 1:
        raise UserError(f"{problems_file}: mixes domains {sorted(domains)}; evaluate one domain per file")
    return domain or get_domain(problems[0].domain), problems


def _finished(out: Path, problems: list[Problem]) -> dict[str, dict]:
    """The records already in `out`, by id; UserError if they answer other problems."""
    done = {str(r.get("id")): r for r in read_finished_records(out)}
    ids = {p.id for p in problems}
    foreign = [i for i in done if i not in ids]
    if foreign:
        raise UserError(f"{out} holds answers to items not in this problems file (e.g. {foreign[0]!r}); "
                        "choose another --out")
    return done


def _check_same_run(out: Path, done: dict[str, dict], model: str, settings: dict) -> None:
    """Answers continue only answers of the same model under the same settings."""
    other = next((r for r in done.values() if r.get("model") != model or r.get("settings") != settings), None)
    if other is not None:
        raise UserError(f"{out} holds answers of model {other.get('model')!r} with settings {other.get('settings')}; "
                        f"this run is {model!r} with {settings}: choose another --out to keep both")


def eval_file(model_spec: str, problems_file, out, domain_name: str | None = None, strategy_file=None,
              max_tokens: int = 512, threads: int | None = None, parallel: int = 1, progress=None) -> str:
    """`k1 lrl eval`: answer every problem not yet in `out`, appending each record as it is scored;
    returns the report (accuracy with CI, majority baseline, parse failures) over all of them. With
    `parallel` > 1 a chunk is four rounds of the batch: a kill loses at most that chunk."""
    from backends.spec import BackendOptions, build_llm

    out = writable_file(out)
    domain, problems = _problems(problems_file, domain_name)
    sandbox = code_sandbox([domain])
    strategy = read_strategy(strategy_file)
    config = EvalConfig(strategy, SamplingParams(temperature=0.0, max_tokens=max_tokens))
    settings = {"max_tokens": max_tokens,
                "strategy_sha256": hashlib.sha256(strategy.encode()).hexdigest()[:16] if strategy else None}
    done = _finished(out, problems)  # checked before the model loads
    llm = build_llm(model_spec, BackendOptions(n_threads=threads, parallel=parallel))
    _check_same_run(out, done, llm.model, settings)
    todo = [p for p in problems if p.id not in done]
    shifted = (lambda n, _total: progress(len(done) + n, len(problems))) if progress else None
    new = []

    def save(_chunk, _messages, _completions, records: list[dict]) -> None:
        for record in records:
            record["settings"] = settings
            append_jsonl(out, record)
            new.append(record)

    try:
        evaluate_model(llm, domain, todo, config, stage="eval", progress=shifted, on_chunk=save)
    except UserError as err:
        raise UserError(f"{err}; {len(done) + len(new)} of {len(problems)} answers are saved in {out}: "
                        "run the same command again to continue") from None
    by_id = {**done, **{r["id"]: r for r in new}}
    records = [by_id[p.id] for p in problems]
    resumed = f"\n({len(done)} answers were already in {out}; {len(new)} new)" if done else ""
    return render_table(summarize(records), title=f"{model_spec} on {problems_file}") + resumed + sandbox_line(sandbox)
