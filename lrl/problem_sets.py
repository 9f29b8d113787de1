"""Writing problem sets to disk, disjoint from other files: what `k1 lrl problems` does."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from k1core.errors import UserError
from lrl.domain import get_domain, read_problems, split_overlap, write_jsonl, write_problems
from lrl.output_file import writable_file

# Generous for any experiment here (a test split is hundreds of problems), and small enough that a
# slip of the keyboard cannot run for hours: 100,000 scheduling problems take seconds.
MAX_PROBLEMS = 100_000


def generate_problem_file(domain_name: str, variant: str | None, split: str, n: int, seed: int,
                          difficulty: str | None, out: str | Path, others: Sequence[str | Path] = ()) -> str:
    """Generate problems avoiding every problem in `others`, verify, write JSONL; returns a summary.

    The generator skips the canonical keys of `others` while drawing; the overlap check afterwards
    is the independent verification (and the only guard for the reproduce-exactly `seed` variant).
    """
    if not 1 <= n <= MAX_PROBLEMS:
        raise UserError(f"--n must be between 1 and {MAX_PROBLEMS} problems per file, got {n}")
    writable_file(out)
    domain = get_domain(domain_name)
    existing = [p for path in others for p in read_problems(path, domain)]
    exclude = frozenset(domain.canonical_key(p) for p in existing)
    problems = domain.generate(n, seed, split, variant, difficulty, exclude=exclude)
    own = {domain.canonical_key(p) for p in problems}
    clashes = {k: v for k, v in split_overlap(domain, [*existing, *problems]).duplicates.items() if k in own}
    if clashes:
        raise UserError(f"{len(clashes)} generated problems also appear in {', '.join(map(str, others))} "
                        f"(e.g. {next(iter(clashes.values()))})")
    write_problems(out, problems)
    answers = Counter(str(p.answer) for p in problems if p.answer is not None)
    shown = ", ".join(f"{a} {c}" for a, c in answers.most_common(6)) if len(answers) <= 12 else f"{len(answers)} distinct"
    return (f"wrote {len(problems)} {domain_name} problems ({split}, variant {problems[0].variant}, seed {seed}) "
            f"to {out}" + (f"; answers: {shown}" if answers else ""))


def write_prompt_file(problems_path: str | Path, out: str | Path, strategy_path: str | Path | None = None,
                      domain_name: str | None = None) -> str:
    """One `{"id", "prompt"}` line per problem, optionally with a strategy text from a file."""
    writable_file(out)
    strategy = None
    if strategy_path is not None:
        try:
            strategy = Path(strategy_path).read_text()
        except OSError as err:
            raise UserError(f"{strategy_path}: cannot read strategy ({err.strerror})") from None
    fixed = get_domain(domain_name) if domain_name else None
    problems = read_problems(problems_path, fixed)
    write_jsonl(out, ({"id": p.id, "prompt": (fixed or get_domain(p.domain)).render_prompt(p, strategy)}
                      for p in problems))
    return f"wrote {len(problems)} prompts to {out}"
