"""Meeting-room scheduling: can these meetings fit in N rooms (or: how many rooms are needed)?

The `seed` variant reproduces the published experiment's generator draw for draw (integer hours,
start 9-15, duration 1-3; EASY 2 meetings / 2-3 rooms, MEDIUM 3-4 / 2-3, HARD 4-6 / 2-4; a
stratified difficulty list shuffled first). Its seed-123 test set is 88% YES, so "always YES"
scores 88.0% there; the other variants exist to make that trick worthless:

- `balanced`: the same meetings, rooms chosen so YES and NO are equally common per difficulty;
- `min-rooms`: the answer is the minimum number of rooms (an integer), not a yes/no;
- `large`: many more meetings; `minutes`: minute resolution rendered as HH:MM (both balanced),
  for out-of-distribution tests; `min-rooms-large` and `min-rooms-minutes` ask min-rooms of those.

Intervals are half-open: a meeting ending at T does not conflict with one starting at T.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from k1core.errors import UserError
from lrl.domain import (CORRECT, NO_FINAL_ANSWER, NO_REASONING, PARSE_FAILURE, WRONG, WRONG_FINAL_ANSWER, Parsed,
                        Problem, Verdict, check_choice, owner_split, problem_fields, reasoning_lines, split_salt,
                        strategy_header, strategy_preamble)
from lrl.domains.peak_claims import stated_peak
from lrl.final_answer import answer_line, final_value

DIFFICULTIES = ("easy", "medium", "hard")
YES, NO = "YES", "NO"
MAX_DIGITS = 18  # longer digit strings are no room count (and past 4300 digits int() refuses them)
NO_PEAK, WRONG_PEAK = "no peak stated", "right answer, wrong peak"
# The steps of a worked solution, in order (see `step_checks`).
PEAK_STATED, PEAK_RIGHT = "peak stated", "stated peak = true peak"
ANSWER_FOLLOWS, ANSWER_RIGHT = "answer follows from the stated peak", "answer right"


@dataclass(frozen=True)
class SizeProfile:
    """How big and how fine-grained generated problems are; times are integers in `unit`."""

    meetings: dict          # difficulty -> tuple of meeting counts to choose from
    rooms: dict             # difficulty -> tuple of room counts (feasibility questions)
    start: tuple[int, int]  # inclusive range of start times
    duration: tuple[int, int]
    unit: str


SEED_PROFILE = SizeProfile(
    meetings={"easy": (2,), "medium": (3, 4), "hard": (4, 5, 6)},
    rooms={"easy": (2, 3), "medium": (2, 3), "hard": (2, 3, 4)},
    start=(9, 15), duration=(1, 3), unit="hour")
LARGE_PROFILE = SizeProfile(
    meetings={"easy": (8, 9, 10), "medium": (12, 14, 16), "hard": (20, 25, 30)},
    rooms={}, start=(8, 17), duration=(1, 4), unit="hour")
MINUTES_PROFILE = SizeProfile(
    meetings={"easy": (3, 4), "medium": (5, 6), "hard": (7, 8, 9)},
    rooms={}, start=(9 * 60, 16 * 60 - 1), duration=(15, 180), unit="minute")

# variant -> (profile, question kind, balanced)
VARIANTS = {
    "seed": (SEED_PROFILE, "feasible", False),
    "balanced": (SEED_PROFILE, "feasible", True),
    "min-rooms": (SEED_PROFILE, "min-rooms", False),
    "large": (LARGE_PROFILE, "feasible", True),
    "minutes": (MINUTES_PROFILE, "feasible", True),
    "min-rooms-large": (LARGE_PROFILE, "min-rooms", False),
    "min-rooms-minutes": (MINUTES_PROFILE, "min-rooms", False),
}
# variant -> the variants asking its question of problems unlike its own (stage 4b's out-of-distribution tests)
OUT_OF_DISTRIBUTION = {"seed": ("large", "minutes"), "balanced": ("large", "minutes"),
                       "min-rooms": ("min-rooms-large", "min-rooms-minutes")}


# ---------------------------------------------------------------- the exact solver

def sweep_events(meetings: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """(time, +1 start / -1 end) events sorted by time, ends before starts at equal times."""
    events = [(s, +1) for s, _ in meetings] + [(e, -1) for _, e in meetings]
    return sorted(events)  # -1 < +1, so at a tie the end is processed first (half-open intervals)


def running_counts(meetings: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    """(time, +1/-1, meetings in progress after it) for each sweep event, in sweep order."""
    counts, current = [], 0
    for t, delta in sweep_events(meetings):
        current += delta
        counts.append((t, delta, current))
    return counts


def peak_overlap(meetings: Sequence[Sequence[int]]) -> int:
    """The largest number of meetings in progress at one instant = the minimum rooms needed."""
    return max((current for _, _, current in running_counts(meetings)), default=0)


def peak_interval(meetings: Sequence[Sequence[int]]) -> tuple[int, int] | None:
    """(start, end) of the first stretch during which the peak number of meetings is in progress."""
    counts = running_counts(meetings)
    peak = max((current for _, _, current in counts), default=0)
    for (t, _, current), (after, _, _) in zip(counts, counts[1:]):
        if current == peak and after > t:
            return t, after
    return None


def response_peak(response: str) -> int | None:
    """The peak a response's reasoning states (its marked answer lines left out), or None."""
    return stated_peak("\n".join(reasoning_lines(response)))


def checker_note(problem: Problem, response: str) -> str:
    """What the checker knows and a reflection needs: the true peak and when it happens, the rooms,
    and the peak the response stated (if any); the procedure that finds the peak is left out."""
    p, unit = problem.payload, problem.payload["unit"]
    peak, stretch = peak_overlap(p["meetings"]), peak_interval(p["meetings"])
    when = f" (from {format_time(stretch[0], unit)} to {format_time(stretch[1], unit)})" if stretch else ""
    rooms = "" if p["rooms"] is None else f", and {p['rooms']} room{'' if p['rooms'] == 1 else 's'} are available"
    stated = response_peak(response)
    said = "never stated how many meetings are in progress at once" if stated is None else f"stated {stated}"
    return (f"Checker: at most {peak} {'meeting is' if peak == 1 else 'meetings are'} in progress at once{when}"
            f"{rooms}; the reasoning shown {said}.")


# ---------------------------------------------------------------- generation

def _draw_meetings(rng: random.Random, count: int, profile: SizeProfile) -> list[list[int]]:
    """`count` meetings; per meeting one start then one duration draw (the published order)."""
    meetings = []
    for _ in range(count):
        start = rng.randint(*profile.start)
        meetings.append([start, start + rng.randint(*profile.duration)])
    return meetings


def _stratified_difficulties(rng: random.Random, n: int, only: str | None) -> list[str]:
    """n//3 easy, n//3 medium, the rest hard, shuffled (the published layout), or all `only`."""
    if only is not None:
        return [only] * n
    third = n // 3
    order = ["easy"] * third + ["medium"] * third + ["hard"] * (n - 2 * third)
    rng.shuffle(order)
    return order


def generate_seed(n: int, seed: int, split: str, difficulty: str | None = None) -> list[Problem]:
    """The published generator: rooms (and meeting count) drawn before the meetings.

    Splits are NOT disjoint here: the published train (seed 42) and test (seed 123) sets were
    drawn independently, and reproducing them exactly rules out rejection. `split_overlap`
    reports the collisions.
    """
    rng = random.Random(seed)
    problems = []
    for index, diff in enumerate(_stratified_difficulties(rng, n, difficulty)):
        count = SEED_PROFILE.meetings[diff][0] if diff == "easy" else rng.choice(SEED_PROFILE.meetings[diff])
        rooms = rng.choice(SEED_PROFILE.rooms[diff])
        meetings = _draw_meetings(rng, count, SEED_PROFILE)
        problems.append(_make(f"{diff}_{index}", split, diff, "seed", meetings, rooms, "hour"))
    return problems


def generate_disjoint(n: int, seed: int, split: str, variant: str,
                      difficulty: str | None = None, exclude: frozenset = frozenset()) -> list[Problem]:
    """Rejection-sampled problems owned by `split` (disjoint by construction), optionally balanced.

    Difficulties are stratified in thirds while each has unseen problems left. The small profiles
    hold few distinct easy problems (about 30 balanced ones per test split), so once a difficulty
    runs dry its remaining slots go to the difficulties that still have problems: a 1000-item test
    set is then mostly medium and hard, which the per-difficulty report shows.
    """
    profile, kind, balanced = VARIANTS[variant]
    rng = random.Random(seed * 1000 + split_salt(split))
    problems, seen, drawn, dry = [], set(), {d: 0 for d in DIFFICULTIES}, set()
    for index, diff in enumerate(_stratified_difficulties(rng, n, difficulty)):
        while True:
            if diff in dry:
                left = [] if difficulty else [d for d in DIFFICULTIES if d not in dry]
                if not left:
                    raise UserError(f"could not draw {n} distinct {variant} problems for split {split} "
                                    f"(the {variant} variant holds only {len(problems)} here)")
                diff = rng.choice(left)
            meetings, rooms = _draw_unseen(rng, profile, kind, balanced, diff, drawn[diff], split, seen, exclude)
            if meetings is not None:
                break
            dry.add(diff)
        drawn[diff] += 1
        seen.add(canonical_meetings_key(meetings, rooms))
        problems.append(_make(f"{variant}-{split}-{diff}_{index}", split, diff, variant, meetings, rooms, profile.unit))
    return problems


def _draw_unseen(rng, profile, kind, balanced, diff, drawn, split, seen, exclude, tries=100_000):
    """(meetings, rooms) of a `diff` problem owned by `split` and not in `seen` or `exclude`; (None, None) when
    `tries` draws find none (the difficulty has run dry). Balanced sets alternate YES/NO per difficulty."""
    target = (YES, NO)[drawn % 2] if balanced else None
    for _ in range(tries):
        meetings = _draw_meetings(rng, rng.choice(profile.meetings[diff]), profile)
        if balanced:
            rooms = _rooms_for(rng, peak_overlap(meetings), target)
            if rooms is None:
                continue
        else:
            rooms = rng.choice(profile.rooms[diff]) if kind == "feasible" else None
        key = canonical_meetings_key(meetings, rooms)
        if key not in seen and key not in exclude and owner_split(key) == split:
            return meetings, rooms
    return None, None


def _rooms_for(rng: random.Random, peak: int, target: str) -> int | None:
    """Rooms making the answer `target`: YES -> peak or peak+1, NO -> 1..2 rooms short (None if impossible)."""
    if target == YES:
        return peak + rng.randint(0, 1)
    if peak < 2:
        return None
    return max(1, peak - rng.randint(1, 2))


def _make(pid, split, difficulty, variant, meetings, rooms, unit) -> Problem:
    payload = {"meetings": meetings, "rooms": rooms, "unit": unit}
    return Problem(pid, "scheduling", split, difficulty, variant, payload, _answer(payload))


def _answer(payload: dict):
    peak = peak_overlap(payload["meetings"])
    if payload["rooms"] is None:
        return peak
    return YES if peak <= payload["rooms"] else NO


def canonical_meetings_key(meetings, rooms) -> str:
    """Meetings as a sorted multiset plus rooms: order of listing does not make a new problem."""
    return f"{sorted(tuple(m) for m in meetings)}|rooms={rooms}"


# ---------------------------------------------------------------- parsing user files

def _int(value, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where}: {what} must be an integer, got {value!r}")
    return value


def payload_from_json(obj: dict, where: str) -> dict:
    """Validated {meetings, rooms, unit} from our files or a user's `{"meetings", "rooms"}` line."""
    source = obj.get("payload", obj)
    if not isinstance(source, dict) or "meetings" not in source:
        raise UserError(f"{where}: missing key 'meetings' (a list of [start, end] pairs)")
    raw = source["meetings"]
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{where}: 'meetings' must be a non-empty list of [start, end] pairs")
    meetings = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, list) or len(pair) != 2:
            raise UserError(f"{where}: meetings[{i}] must be a [start, end] pair, got {pair!r}")
        start, end = (_int(t, f"meetings[{i}] time", where) for t in pair)
        if end <= start:
            raise UserError(f"{where}: meetings[{i}] ends at {end}, not after its start {start}")
        meetings.append([start, end])
    rooms = source.get("rooms")
    if rooms is not None and _int(rooms, "'rooms'", where) < 1:
        raise UserError(f"{where}: 'rooms' must be at least 1, got {rooms}")
    unit = source.get("unit", obj.get("unit", "unit"))
    return {"meetings": meetings, "rooms": rooms, "unit": str(unit)}


# ---------------------------------------------------------------- rendering and solutions

def format_time(t: int, unit: str) -> str:
    return f"{t // 60:02d}:{t % 60:02d}" if unit == "minute" else str(t)


def render_meetings(meetings, unit: str) -> str:
    return ", ".join(f"[{format_time(s, unit)}-{format_time(e, unit)}]" for s, e in meetings)


def _unit_phrase(unit: str) -> str:
    return {"hour": "integer hours, e.g. 9-11 means 9:00 to 11:00",
            "minute": "clock times HH:MM"}.get(unit, f"integer times in {unit}s")


def render_prompt(problem: Problem, strategy: str | None = None) -> str:
    p = problem.payload
    head = strategy_header(strategy)
    if p["rooms"] is None:
        question = "What is the minimum number of rooms needed so that no two overlapping meetings share a room?"
        fmt = "End your response with a final line `ANSWER: <integer>`."
        rooms = ""
    else:
        question = "Can all meetings be scheduled without conflicts?"
        fmt = "End your response with a final line `ANSWER: YES` or `ANSWER: NO`."
        rooms = f"Available rooms: {p['rooms']}\n"
    return (f"{head}SCHEDULING PROBLEM:\n"
            f"Meetings (start-end, {_unit_phrase(p['unit'])}): {render_meetings(p['meetings'], p['unit'])}\n"
            f"{rooms}"
            "Each meeting needs one room for its whole interval. A meeting ending at time T does "
            "not conflict with a meeting starting at time T.\n\n"
            f"{question}\n{fmt}")


def worked_solution(problem: Problem, strategy_steps: Sequence[str] | None = None, verbose: bool = False) -> str:
    """The sweep line written out: events in order (ends first at a tie) with the running count, the
    peak, and for a yes/no question the rooms left over (YES unless negative). Compact: three numbered
    lines. The comparison is a subtraction because a LoRA-trained 0.5B student wrote '3 > 3 rooms' and
    '2 > 3 rooms' (the relation at chance, 19 of 40 answers following from its own right peak), while
    single-digit differences and the sign of the result are what such a model already gets right."""
    if verbose:
        return verbose_worked_solution(problem, strategy_steps)
    p, unit = problem.payload, problem.payload["unit"]
    peak = peak_overlap(p["meetings"])
    sweep = [f"{format_time(t, unit)} {'start' if delta > 0 else 'end'} {current}"
             for t, delta, current in running_counts(p["meetings"])]
    lines = [f"1. Sweep, ends before starts at a tie: {', '.join(sweep)}", f"2. Peak: {peak} at once."]
    if p["rooms"] is None:
        return "\n".join(lines + [f"3. So {peak} room{'' if peak == 1 else 's'} are needed.", answer_line(str(peak))])
    verdict = YES if peak <= p["rooms"] else NO
    lines.append(f"3. Spare rooms: {p['rooms']} - {peak} = {p['rooms'] - peak}, so {verdict}.")
    return "\n".join(lines + [answer_line(verdict)])


def verbose_worked_solution(problem: Problem, strategy_steps: Sequence[str] | None = None) -> str:
    """Every event on its own line in prose, after the strategy's steps restated."""
    p, unit = problem.payload, problem.payload["unit"]
    lines = strategy_preamble(strategy_steps)
    lines.append(f"Meetings: {render_meetings(p['meetings'], unit)}")
    lines.append("Events sorted by time (at equal times an end comes before a start, since a meeting "
                 "ending at T frees its room for one starting at T):")
    for t, delta, current in running_counts(p["meetings"]):
        lines.append(f"- {format_time(t, unit)} {'start' if delta > 0 else 'end'}: {current} in progress")
    peak = peak_overlap(p["meetings"])
    lines.append(f"Most meetings in progress at once: {peak}.")
    if p["rooms"] is None:
        lines.append(f"So {peak} rooms are needed and enough.")
        return "\n".join(lines + [answer_line(str(peak))])
    verdict = YES if peak <= p["rooms"] else NO
    relation = "<=" if verdict == YES else ">"
    lines.append(f"{peak} {relation} {p['rooms']} available rooms, so the answer is {verdict}.")
    return "\n".join(lines + [answer_line(verdict)])


def check_reasoning(problem: Problem, response: str) -> str | None:
    """A solution must state the peak (most meetings at once, or the rooms needed) and it must be the solver's."""
    reasoning = "\n".join(reasoning_lines(response))
    if not reasoning:
        return NO_REASONING
    stated = stated_peak(reasoning)
    if stated is None:
        return NO_PEAK
    return None if stated == peak_overlap(problem.payload["meetings"]) else WRONG_PEAK


def step_checks(problem: Problem, parsed: Parsed, response: str) -> dict[str, bool | None]:
    """Each step of the solution right (True), wrong (False) or not stated (None), in order: the peak
    stated; it is the true peak; the marked answer is what the stated peak implies (YES iff the peak
    fits in the rooms, or the peak itself as the rooms needed); the answer is right. A step whose
    premise is missing (no peak, no parsable answer) is not stated."""
    stated = response_peak(response)
    answer = parsed.answer if parsed.ok else None
    rooms = problem.payload["rooms"]
    implied = None if stated is None else stated if rooms is None else YES if stated <= rooms else NO
    return {PEAK_STATED: stated is not None,
            PEAK_RIGHT: None if stated is None else stated == peak_overlap(problem.payload["meetings"]),
            ANSWER_FOLLOWS: None if implied is None or answer is None else answer == implied,
            ANSWER_RIGHT: None if answer is None else answer == _answer(problem.payload)}


# ---------------------------------------------------------------- parsing and checking

def parse_value(value: str, kind: str | None) -> Parsed:
    """YES/NO or a non-negative integer (optionally followed by 'rooms'); `kind` restricts which."""
    word = value.strip().casefold()
    if word.endswith(" rooms") or word.endswith(" room"):
        word = word.rsplit(" ", 1)[0].strip()
    if word in ("yes", "no") and kind != "min-rooms":
        return Parsed(word.upper())
    if word.isascii() and word.isdigit() and len(word) <= MAX_DIGITS and kind != "feasible":
        return Parsed(int(word))
    wanted = {"feasible": "YES or NO", "min-rooms": "an integer"}.get(kind, "YES, NO or an integer")
    return Parsed.fail(f"marked answer {value[:40]!r} is not {wanted}")


def question_kind(problem: Problem) -> str:
    return "min-rooms" if problem.payload["rooms"] is None else "feasible"


class SchedulingDomain:
    """Meeting-room scheduling as a TransferDomain (see the module docstring for variants)."""

    name = "scheduling"
    variants = tuple(VARIANTS)
    ood_variants = OUT_OF_DISTRIBUTION
    rejections = (NO_FINAL_ANSWER, WRONG_FINAL_ANSWER, NO_REASONING, NO_PEAK, WRONG_PEAK)
    # A right peak with a wrong answer is the comparison (or the copying of the peak) that broke.
    step_conditions = ((ANSWER_FOLLOWS, PEAK_RIGHT), (ANSWER_RIGHT, PEAK_RIGHT))

    def generate(self, n, seed, split="test", variant=None, difficulty=None, exclude=frozenset()):
        variant = variant or "seed"
        check_choice(variant, tuple(VARIANTS), "scheduling variant")
        check_choice(difficulty, DIFFICULTIES, "difficulty")
        split_salt(split)  # validates the split name
        if variant == "seed":
            if exclude:
                raise UserError("the seed variant reproduces the published sets draw for draw and cannot "
                                "exclude problems; use --variant balanced (or another) for a disjoint set")
            return generate_seed(n, seed, split, difficulty)
        return generate_disjoint(n, seed, split, variant, difficulty, exclude)

    def from_json(self, obj, where):
        payload = payload_from_json(obj, where)
        fields = problem_fields(obj, where, self.name)
        return Problem(payload=payload, answer=_answer(payload), **fields)

    def canonical_key(self, problem):
        return canonical_meetings_key(problem.payload["meetings"], problem.payload["rooms"])

    def render_prompt(self, problem, strategy=None):
        return render_prompt(problem, strategy)

    def parse(self, response, problem=None):
        value, reason = final_value(response)
        if reason:
            return Parsed.fail(reason)
        return parse_value(value, question_kind(problem) if problem else None)

    def check(self, problem, parsed):
        if not parsed.ok:
            return Verdict(PARSE_FAILURE, parsed.failure)
        kind = question_kind(problem)
        if isinstance(parsed.answer, int) != (kind == "min-rooms"):
            return Verdict(PARSE_FAILURE, f"answer {parsed.answer!r} has the wrong type for a {kind} question")
        truth = self.solve(problem)
        return Verdict(CORRECT if parsed.answer == truth else WRONG, f"expected {truth}")

    def solve(self, problem):
        return _answer(problem.payload)

    def worked_solution(self, problem, strategy_steps=None, verbose=False):
        return worked_solution(problem, strategy_steps, verbose)

    def check_reasoning(self, problem, response):
        return check_reasoning(problem, response)

    def step_checks(self, problem, response):
        return step_checks(problem, self.parse(response, problem), response)

    def checker_note(self, problem, response):
        return checker_note(problem, response)
