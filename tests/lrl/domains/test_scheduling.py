from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from k1core.errors import UserError
from lrl.domain import read_problems, split_overlap, write_problems
from lrl.domains.scheduling import PEAK_STATED, SchedulingDomain, peak_overlap

DOMAIN = SchedulingDomain()


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]  # half-open: touching intervals do not overlap


def fits_by_search(meetings, rooms):
    """Brute force: try every room assignment (backtracking), independent of the sweep line."""
    assigned = [[] for _ in range(rooms)]

    def place(i):
        if i == len(meetings):
            return True
        for room in assigned:
            if not any(overlaps(meetings[i], other) for other in room):
                room.append(meetings[i])
                if place(i + 1):
                    return True
                room.pop()
        return False

    return place(0)


meeting = st.tuples(st.integers(0, 30), st.integers(1, 6)).map(lambda sd: [sd[0], sd[0] + sd[1]])


@settings(max_examples=300, deadline=None)
@given(st.lists(meeting, min_size=1, max_size=7), st.integers(1, 5))
def test_sweep_line_agrees_with_brute_force_assignment(meetings, rooms):
    assert (peak_overlap(meetings) <= rooms) == fits_by_search(meetings, rooms)
    peak = peak_overlap(meetings)
    assert fits_by_search(meetings, peak) and (peak == 1 or not fits_by_search(meetings, peak - 1))


def test_touching_meetings_share_a_room():
    assert peak_overlap([[9, 10], [10, 11], [11, 12]]) == 1
    assert peak_overlap([[9, 11], [10, 11], [11, 12]]) == 2


def test_published_test_set_statistics_are_reproduced():
    problems = DOMAIN.generate(150, 123, "test", "seed")
    assert len(problems) == 150
    assert sum(p.answer == "YES" for p in problems) == 132  # 88.0%: the always-YES baseline
    peaks = Counter(peak_overlap(p.payload["meetings"]) for p in problems)
    assert dict(peaks) == {1: 40, 2: 69, 3: 33, 4: 8}
    assert Counter(p.difficulty for p in problems) == {"easy": 50, "medium": 50, "hard": 50}
    assert problems[0].id.endswith("_0") and all(p.variant == "seed" for p in problems)


def test_published_train_and_test_sets_overlap_and_the_check_reports_it():
    train = DOMAIN.generate(100, 42, "train", "seed")
    test = DOMAIN.generate(150, 123, "test", "seed")
    report = split_overlap(DOMAIN, train + test)
    assert not report.clean and len(report.duplicates) == 8
    assert all(set(splits) == {"train", "test"} for splits in report.duplicates.values())


@pytest.mark.parametrize("variant", ["balanced", "min-rooms", "large", "minutes"])
def test_generated_splits_are_disjoint_and_deterministic(variant):
    sets = [DOMAIN.generate(60, 7, split, variant) for split in ("train", "dev", "test")]
    assert split_overlap(DOMAIN, [p for s in sets for p in s]).clean
    assert DOMAIN.generate(60, 7, "test", variant) == sets[2]


@pytest.mark.parametrize("variant", ["balanced", "large", "minutes"])
def test_balanced_variants_have_equal_yes_and_no_per_difficulty(variant):
    counts = Counter((p.difficulty, p.answer) for p in DOMAIN.generate(90, 3, "test", variant))
    for diff in ("easy", "medium", "hard"):
        assert counts[diff, "YES"] == counts[diff, "NO"] == 15


@pytest.mark.parametrize("variant", ["balanced", "min-rooms"])
def test_a_1000_item_test_set_exists_once_easy_problems_run_dry(variant):
    """The seed-sized profile holds only ~30-50 distinct easy test problems; the rest of a large set
    comes from medium and hard, still distinct, still owned by the test split, still balanced."""
    problems = DOMAIN.generate(1000, 123, "test", variant)
    assert len({DOMAIN.canonical_key(p) for p in problems}) == 1000
    assert split_overlap(DOMAIN, problems + DOMAIN.generate(200, 123, "train", variant)).clean
    by_difficulty = Counter(p.difficulty for p in problems)
    assert by_difficulty["easy"] < 100 and min(by_difficulty["medium"], by_difficulty["hard"]) > 400
    if variant == "balanced":
        answers = Counter((p.difficulty, p.answer) for p in problems)
        assert all(abs(answers[d, "YES"] - answers[d, "NO"]) <= 1 for d in by_difficulty)


def test_a_difficulty_that_runs_dry_on_its_own_is_a_clear_error():
    with pytest.raises(UserError, match="could not draw 200 distinct balanced problems"):
        DOMAIN.generate(200, 1, "test", "balanced", difficulty="easy")


def test_min_rooms_answers_are_integers_and_exclude_masks_problems():
    problems = DOMAIN.generate(30, 1, "dev", "min-rooms")
    assert all(isinstance(p.answer, int) and p.payload["rooms"] is None for p in problems)
    again = DOMAIN.generate(30, 1, "dev", "min-rooms", exclude=frozenset(DOMAIN.canonical_key(p) for p in problems))
    assert not {DOMAIN.canonical_key(p) for p in again} & {DOMAIN.canonical_key(p) for p in problems}


@pytest.mark.parametrize("variant", ["seed", "balanced", "min-rooms", "large", "minutes"])
def test_worked_solutions_parse_and_check_correct(variant):
    for p in DOMAIN.generate(15, 5, "train" if variant != "seed" else "test", variant):
        text = DOMAIN.worked_solution(p, ["list events", "sweep"])
        assert DOMAIN.check(p, DOMAIN.parse(text, p)).outcome == "correct"
        assert "ANSWER" in DOMAIN.render_prompt(p, "a strategy") and "a strategy" in DOMAIN.render_prompt(p, "a strategy")


def test_user_calendar_files_load(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"meetings": [[540, 600], [570, 660], [600, 630]], "rooms": 1, "unit": "minute", "note": "x"}\n'
                    '\n{"id": "b", "meetings": [[1, 2]], "rooms": 1, "difficulty": "easy"}\n')
    first, second = read_problems(path, DOMAIN)
    assert first.answer == "NO" and first.id == "1" and first.payload["unit"] == "minute"
    assert second.answer == "YES" and second.id == "b" and second.difficulty == "easy"
    write_problems(tmp_path / "out.jsonl", [first, second])
    assert read_problems(tmp_path / "out.jsonl") == [first, second]


@pytest.mark.parametrize("line, message", [
    ('{"rooms": 2}', "missing key 'meetings'"),
    ('{"meetings": [[3, 1]], "rooms": 2}', "not after its start"),
    ('{"meetings": [[1, 2.5]], "rooms": 2}', "must be an integer"),
    ('{"meetings": [[1, 2]], "rooms": 0}', "at least 1"),
    ('{"meetings": [[1, 2, 3]], "rooms": 1}', "[start, end] pair"),
    ('[1, 2]', "a JSON list, not an object"),
])
def test_bad_user_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"meetings": [[1, 2]], "rooms": 1}\n' + line + "\n")
    with pytest.raises(UserError, match=f"bad.jsonl:2: .*{__import__('re').escape(message)}"):
        read_problems(path, DOMAIN)


YES_PROBLEM = DOMAIN.from_json({"meetings": [[1, 2]], "rooms": 1}, "x:1")
MIN_PROBLEM = DOMAIN.from_json({"meetings": [[1, 3], [2, 4]]}, "x:1")


@pytest.mark.parametrize("response, outcome", [
    ("Peak is 1.\nANSWER: YES", "correct"),
    ("**ANSWER:** yes", "correct"),
    ("answer: **No**", "wrong"),
    ("YES, they fit.", "parse_failure"),          # the published parser would have said YES
    ("I am not sure.", "parse_failure"),          # ... and this would silently have been NO
    ("ANSWER: YES\nANSWER: NO", "parse_failure"),
    ("ANSWER: maybe", "parse_failure"),
    ("ANSWER: 1", "parse_failure"),               # an integer for a yes/no question
])
def test_parser_is_lenient_on_format_and_strict_on_meaning(response, outcome):
    assert DOMAIN.check(YES_PROBLEM, DOMAIN.parse(response, YES_PROBLEM)).outcome == outcome


def test_min_rooms_parser():
    assert DOMAIN.check(MIN_PROBLEM, DOMAIN.parse("ANSWER: 2 rooms", MIN_PROBLEM)).outcome == "correct"
    assert DOMAIN.check(MIN_PROBLEM, DOMAIN.parse("ANSWER: 3", MIN_PROBLEM)).outcome == "wrong"
    assert DOMAIN.check(MIN_PROBLEM, DOMAIN.parse("ANSWER: YES", MIN_PROBLEM)).outcome == "parse_failure"
    assert DOMAIN.check(MIN_PROBLEM, DOMAIN.parse("ANSWER: YES")).outcome == "parse_failure"


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    for problem in (YES_PROBLEM, MIN_PROBLEM, None):
        parsed = DOMAIN.parse(text, problem)
        assert parsed.ok or parsed.failure
        if problem is not None:
            assert DOMAIN.check(problem, parsed).outcome in ("correct", "wrong", "parse_failure")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(["YES", "no", " Yes ", "**NO**"]))
def test_a_marked_answer_after_arbitrary_reasoning_is_found(prefix, value):
    text = prefix.replace("answer", "").replace("ANSWER", "").replace("Answer", "")
    parsed = DOMAIN.parse(f"{text}\nANSWER: {value}", YES_PROBLEM)
    if all("answer" not in line.lower() for line in text.splitlines()):
        assert parsed.answer == value.strip(" *").upper()


NO_PROBLEM = DOMAIN.from_json({"meetings": [[1, 3], [2, 4]], "rooms": 1}, "x:1")  # peak 2 > 1 room: NO


def steps(problem, response):
    return tuple(DOMAIN.step_checks(problem, response).values())


@pytest.mark.parametrize("problem, response, expected", [
    # (peak stated, stated peak = true peak, answer follows from the stated peak, answer right)
    (NO_PROBLEM, "Peak: 2 at once.\n2 > 1 rooms, so NO.\nANSWER: NO", (True, True, True, True)),
    (NO_PROBLEM, "Peak: 2 at once.\n2 <= 1 available rooms, so the answer is YES\nANSWER: YES",
     (True, True, False, False)),                             # right peak, wrong comparison
    (NO_PROBLEM, "The peak is 1.\n1 <= 1 rooms, so YES.\nANSWER: YES", (True, False, True, False)),
    (YES_PROBLEM, "The peak is 3, more than 1 room.\nANSWER: YES", (True, False, False, True)),  # lucky
    (NO_PROBLEM, "I checked the calendar.\nANSWER: NO", (False, None, None, True)),            # no peak stated
    (NO_PROBLEM, "Peak: 2 at once.\nSo it does not fit.", (True, True, None, None)),           # no answer
    (MIN_PROBLEM, "Peak: 2 at once.\nSo 2 rooms are needed.\nANSWER: 2", (True, True, True, True)),
    (MIN_PROBLEM, "Peak: 2 at once.\nANSWER: 3", (True, True, False, False)),
    (MIN_PROBLEM, "Maximum overlap: 1.\nANSWER: 1", (True, False, True, False)),            # wrong peak, consistent
    (MIN_PROBLEM, "Peak: 2 at once.\nANSWER: YES", (True, True, None, None)),              # wrong kind of answer
])
def test_step_checks_say_which_step_of_a_solution_is_wrong(problem, response, expected):
    assert steps(problem, response) == expected


@pytest.mark.parametrize("variant", ["balanced", "min-rooms", "minutes"])
def test_the_solvers_worked_solutions_are_right_at_every_step(variant):
    for problem in DOMAIN.generate(20, 5, "test", variant):
        for verbose in (False, True):
            assert steps(problem, DOMAIN.worked_solution(problem, verbose=verbose)) == (True,) * 4


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_step_checks_never_raise_on_arbitrary_text(text):
    for problem in (NO_PROBLEM, MIN_PROBLEM):
        checks = DOMAIN.step_checks(problem, text)
        assert all(value in (True, False, None) for value in checks.values())


def test_step_checks_never_raise_on_absurdly_long_numbers():
    digits = "9" * 5000
    for text in (f"ANSWER: {digits}", f"{digits} rooms are needed.\nANSWER: 2", f"peak {digits}"):
        assert DOMAIN.step_checks(MIN_PROBLEM, text)[PEAK_STATED] is False
    assert DOMAIN.parse(f"ANSWER: {digits}", MIN_PROBLEM).failure
