"""The configuration of one `k1 lrl run`, validated once at the edge.

The offline default is a larger teacher distilling into a smaller student: qwen1.5b teaches
qwen0.5b. Sizes are a smoke run on 2 cores: the pre-run estimate (lrl/run_estimate.py) prints
the minutes each stage's local calls take at the models' measured speed (backends/local_speed.py:
on a quiet machine the 1.5B teacher costs 1.5x the student per prompt token and 1.8x per
generated token). On a heavily shared machine llama.cpp's two threads spin against the other
processes and everything runs many times slower. Real runs raise --n-train/--n-val/--n-test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from backends.spec import parse_spec
from backends.student.training_length import steps_or_epochs
from backends.threads import default_parallel
from k1core.errors import UserError
from lrl.curriculum import TRACE_STYLES
from lrl.prompts import BASELINE_PROMPTS
from lrl.student_prompt import TRAINING_PROMPTS

# Fields that change no stage's result: a resumed or extended run may differ in them.
# strategy_file is one of them so that a run whose stage 2 adopted nothing can be resumed with
# --strategy FILE; stage 4 records the file and its sha256 in its result and the manifest.
RUNTIME_FIELDS = ("out", "budget_usd", "offline", "review", "n_threads", "parallel", "anthropic_batches", "stages",
                  "strategy_file")

# The scheduling domain's own default is the published generator, whose sets are 88% YES; a run
# there would mostly measure the YES bias. Balanced sets make always-YES score 50%.
DEFAULT_VARIANTS = {"scheduling": "balanced"}
# Positive integers, or None for their defaults' "all": every layer, every test item, --n-test.
OPTIONAL_COUNTS = ("lora_layers", "gate_items", "teacher_items", "ood_items")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. `identity()` is what config.json stores and a resume must match."""

    teacher: str = "qwen1.5b"
    student: str = "qwen0.5b"
    domain: str = "scheduling"
    variant: str | None = None  # None: DEFAULT_VARIANTS for the domain, else the domain's own default
    n_train: int = 20
    n_val: int = 6
    n_test: int = 120  # >= 103 items separate a 20-point gain over the base student (lrl.run_estimate)
    teacher_items: int | None = 20  # stages 1 and 3: the teacher answers this many test items (seeded); None: all
    stages: tuple[str, ...] | None = None  # stage ids (lrl.stages); None: the default run's
    seed: int = 0
    baseline_prompt: str = "zero-shot"
    batch_size: int = 10
    distill_every: int = 5
    # qwen1.5b writes markdown lists before it answers: on scheduling/balanced validation 160 tokens
    # cut off 10 of 10 zero-shot answers before their answer line, 320 cut off 10 of 40, 640 1 of 60.
    solve_max_tokens: int = 640
    reflect_max_tokens: int = 160
    distill_max_tokens: int = 160
    curriculum_size: int = 200  # stage 4: train-split problems with worked solutions
    teacher_fraction: float = 0.5  # stage 4: share of curriculum targets the teacher writes (verified)
    student_prompts: str = "both"  # stage 4: prompt formats the student trains on (both: half the lines each)
    trace_style: str = "compact"  # stage 4: the solver's worked solutions, compact or verbose
    strategy_file: Path | None = None  # stage 4: teach this strategy instead of stage 2's adopted one
    rounds: int = 1  # 2: the exported student's train/dev failures give strategy v2, and stage 4 runs again
    lora_steps: int | None = None  # stage 4: given steps; None: the steps of lora_epochs
    lora_epochs: float | None = None  # stage 4: passes over the curriculum that set the steps (default 1); None with steps
    lora_rank: int = 8
    lora_layers: int | None = None  # stage 4: LoRA on the top N decoder layers only; None: every layer
    lora_seq_len: int = 512
    export_quant: str = "q4_k_m"
    # stage 4: the fidelity gate runs on this many test items (seeded subset); None: all. On all 120 of
    # the default split it took a third of stage 4 (four artifacts answer each item).
    gate_items: int | None = 40
    ood_items: int | None = 40  # stage 4b: problems of each out-of-distribution variant; None: --n-test
    gate_report_only: bool = False  # stage 4: a failing gate is reported instead of stopping the run
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
                    "curriculum_size", "lora_rank", "lora_seq_len", "parallel", *OPTIONAL_COUNTS):
            value = getattr(self, key)
            if value is None and key in OPTIONAL_COUNTS:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"--{key.replace('_', '-')} must be a positive integer, got {value!r}")
        lora_steps, lora_epochs = steps_or_epochs(self.lora_steps, self.lora_epochs, ("--lora-steps", "--lora-epochs"))
        object.__setattr__(self, "lora_steps", lora_steps)
        object.__setattr__(self, "lora_epochs", lora_epochs)
        from lrl.stages import stage_ids

        known = stage_ids()
        asked = stage_ids(default_only=True) if self.stages is None else self.stages
        if not asked or any(s not in known for s in asked):
            raise UserError(f"--stages must be a comma list of {', '.join(known)}; got {','.join(asked) or 'nothing'}")
        object.__setattr__(self, "stages", tuple(s for s in known if s in asked))
        if self.baseline_prompt not in BASELINE_PROMPTS:
            raise UserError(f"--baseline-prompt must be one of {', '.join(BASELINE_PROMPTS)}, got {self.baseline_prompt!r}")
        if self.budget_usd is not None and not self.budget_usd >= 0:
            raise UserError(f"--budget-usd must be a non-negative number, got {self.budget_usd!r}")
        if self.n_threads is not None and self.n_threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.n_threads}")
        if self.student_prompts not in TRAINING_PROMPTS:
            raise UserError(f"--student-prompts must be one of {', '.join(TRAINING_PROMPTS)}, got {self.student_prompts!r}")
        if not 0.0 <= self.teacher_fraction <= 1.0:
            raise UserError(f"--teacher-fraction must be in [0, 1], got {self.teacher_fraction!r}")
        from backends.export.quantize import check_quant

        object.__setattr__(self, "export_quant", check_quant(self.export_quant))
        if self.rounds not in (1, 2):
            raise UserError(f"--rounds must be 1 or 2, got {self.rounds!r}")
        if self.rounds == 2 and "4" not in self.stages:
            raise UserError("--rounds 2 repeats stage 4 with a second strategy; include 4 in --stages")
        if self.trace_style not in TRACE_STYLES:
            raise UserError(f"--traces must be one of {', '.join(TRACE_STYLES)}, got {self.trace_style!r}")
        object.__setattr__(self, "out", Path(self.out))
        if self.strategy_file is not None:
            object.__setattr__(self, "strategy_file", Path(self.strategy_file))
        if self.variant is None:
            object.__setattr__(self, "variant", DEFAULT_VARIANTS.get(self.domain))
        parse_spec(self.teacher)  # syntax only: UserError naming the accepted forms
        parse_spec(self.student)

    def identity(self) -> dict:
        """The JSON-ready fields that determine results (not where they go or how they are paid)."""
        data = asdict(self)
        for key in RUNTIME_FIELDS:
            data.pop(key)
        if data["lora_epochs"] is None:
            data.pop("lora_epochs")  # steps given: epochs play no part, so a run recorded with steps alone resumes
        if data["lora_layers"] is None:
            data.pop("lora_layers")  # every layer: the identity of a config.json that does not name the option
        # As a config.json written before these options says: the teacher on the whole test split,
        # --n-test problems of each out-of-distribution variant.
        if data["teacher_items"] is None or data["teacher_items"] >= data["n_test"]:
            data.pop("teacher_items")
        if data["gate_items"] is not None and data["gate_items"] >= data["n_test"]:
            data["gate_items"] = None  # the whole split, which config.json has always written as null
        if data["ood_items"] in (None, data["n_test"]):
            data.pop("ood_items")
        return data


def parse_stages(text: str) -> tuple[str, ...] | None:
    """'0,1,2' -> ('0', '1', '2'); 'default' -> None (the default run's stages); 'all' -> every stage."""
    from lrl.stages import stage_ids

    if text.strip() == "all":
        return stage_ids()
    if text.strip() == "default":
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())
