"""The configuration of one `k1 lrl run`, validated once at the edge.

Defaults are sized for the CPU default (qwen0.5b as teacher and student, 2 shared cores, about
30 minutes). Measured on the 2-core development machine under heavy load (load average 12-18):
20-30 s for a solve call (about 155 prompt and 48 output tokens) with one llama.cpp thread, and
3-4 times slower with two threads, which spin against the other processes. The default run makes
about 55 model calls: stage 1 repeats stage 0's prompts and stage 3b repeats stages 0 and 3 when
teacher and student are the same model, so the response cache serves those. Real runs raise
--n-train/--n-val/--n-test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from backends.spec import parse_spec
from backends.threads import default_parallel
from k1core.errors import UserError
from lrl.prompts import BASELINE_PROMPTS
from lrl.student_prompt import TRAINING_PROMPTS

STAGES = ("0", "1", "2", "3", "3b", "4")
DEFAULT_STAGES = ("0", "1", "2", "3", "3b")  # stage 4 trains and exports a model: hours on a CPU, asked for by name
STAGE_NAMES = {
    "0": "student_baseline",
    "1": "teacher_baseline",
    "2": "bootstrap",
    "3": "teacher_strategy",
    "3b": "transfer_check",
    "4": "lora_transfer",
}

# Fields that change no stage's result: a resumed or extended run may differ in them.
RUNTIME_FIELDS = ("out", "budget_usd", "offline", "review", "n_threads", "parallel", "anthropic_batches", "stages")

# The scheduling domain's own default is the published generator, whose sets are 88% YES; a run
# there would mostly measure the YES bias. Balanced sets make always-YES score 50%.
DEFAULT_VARIANTS = {"scheduling": "balanced"}


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. `identity()` is what config.json stores and a resume must match."""

    teacher: str = "qwen0.5b"
    student: str = "qwen0.5b"
    domain: str = "scheduling"
    variant: str | None = None  # None: DEFAULT_VARIANTS for the domain, else the domain's own default
    n_train: int = 20
    n_val: int = 6
    n_test: int = 10
    stages: tuple[str, ...] = DEFAULT_STAGES
    seed: int = 0
    baseline_prompt: str = "zero-shot"
    batch_size: int = 10
    distill_every: int = 5
    solve_max_tokens: int = 96
    reflect_max_tokens: int = 160
    distill_max_tokens: int = 160
    curriculum_size: int = 200  # stage 4: train-split problems with worked solutions
    teacher_fraction: float = 0.5  # stage 4: share of curriculum targets the teacher writes (verified)
    student_prompts: str = "both"  # stage 4: prompt formats the student trains on (both: half the lines each)
    lora_steps: int = 100
    lora_rank: int = 8
    lora_seq_len: int = 512
    export_quant: str = "q4_k_m"
    gate_items: int | None = None  # stage 4: the fidelity gate runs on this many test items (seeded subset); None: all
    out: Path = field(default_factory=lambda: Path("runs/lrl"))
    budget_usd: float | None = None
    offline: bool = False
    review: bool = False
    n_threads: int | None = None
    parallel: int = field(default_factory=default_parallel)  # requests a local model or server answers at once
    anthropic_batches: bool = False  # bulk calls through Message Batches: half price, minutes to hours of latency

    def __post_init__(self):
        for key in ("n_train", "n_val", "n_test", "batch_size", "distill_every",
                    "solve_max_tokens", "reflect_max_tokens", "distill_max_tokens",
                    "curriculum_size", "lora_steps", "lora_rank", "lora_seq_len"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"--{key.replace('_', '-')} must be a positive integer, got {value!r}")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise UserError(f"--stages must be a comma list of {', '.join(STAGES)}; got {','.join(self.stages) or 'nothing'}")
        object.__setattr__(self, "stages", tuple(s for s in STAGES if s in self.stages))
        if self.baseline_prompt not in BASELINE_PROMPTS:
            raise UserError(f"--baseline-prompt must be one of {', '.join(BASELINE_PROMPTS)}, got {self.baseline_prompt!r}")
        if self.budget_usd is not None and not self.budget_usd >= 0:
            raise UserError(f"--budget-usd must be a non-negative number, got {self.budget_usd!r}")
        if self.n_threads is not None and self.n_threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.n_threads}")
        if isinstance(self.parallel, bool) or not isinstance(self.parallel, int) or self.parallel < 1:
            raise UserError(f"--parallel must be a positive integer, got {self.parallel!r}")
        if self.student_prompts not in TRAINING_PROMPTS:
            raise UserError(f"--student-prompts must be one of {', '.join(TRAINING_PROMPTS)}, got {self.student_prompts!r}")
        if self.gate_items is not None and (isinstance(self.gate_items, bool) or not isinstance(self.gate_items, int)
                                            or self.gate_items < 1):
            raise UserError(f"--gate-items must be a positive integer, got {self.gate_items!r}")
        if not 0.0 <= self.teacher_fraction <= 1.0:
            raise UserError(f"--teacher-fraction must be in [0, 1], got {self.teacher_fraction!r}")
        from backends.export.quantize import check_quant

        object.__setattr__(self, "export_quant", check_quant(self.export_quant))
        object.__setattr__(self, "out", Path(self.out))
        if self.variant is None:
            object.__setattr__(self, "variant", DEFAULT_VARIANTS.get(self.domain))
        parse_spec(self.teacher)  # syntax only: UserError naming the accepted forms
        parse_spec(self.student)

    def identity(self) -> dict:
        """The JSON-ready fields that determine results (not where they go or how they are paid)."""
        data = asdict(self)
        for key in RUNTIME_FIELDS:
            data.pop(key)
        return data


def parse_stages(text: str) -> tuple[str, ...]:
    """'0,1,2' -> ('0', '1', '2'); 'default' -> 0-3b; 'all' -> every stage, 4 included."""
    if text.strip() == "all":
        return STAGES
    if text.strip() == "default":
        return DEFAULT_STAGES
    return tuple(part.strip() for part in text.split(",") if part.strip())
