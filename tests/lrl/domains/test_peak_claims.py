"""Peak claims in scheduling solutions: lenient on how the peak is said, strict on which number it is."""
from hypothesis import given, settings, strategies as st

from lrl.domain import rejection_reason
from lrl.domains.peak_claims import NUMBER_WORDS, peak_claims, stated_peak
from lrl.domains.scheduling import NO_PEAK, WRONG_PEAK, SchedulingDomain, peak_overlap

DOMAIN = SchedulingDomain()
PHRASES = ("The peak is {n}.", "Maximum overlap: {n}", "max simultaneous meetings = {n}",
           "{n} meetings overlap at 10.", "So {n} rooms are needed.", "We need at least {n} rooms.",
           "The most meetings in progress at once is {n}.", "Peak of {n} at 13:30.",
           "The maximum, reached at 10, is {n}.", "the minimum number of rooms required is {n}")
DECORATIONS = ("{}", "**{}**", "- {}", "1. {}", "> {}", "`{}`", "### {}")


@settings(max_examples=200, deadline=None)
@given(phrase=st.sampled_from(PHRASES), decoration=st.sampled_from(DECORATIONS), n=st.integers(0, 12),
       upper=st.booleans(), as_word=st.booleans())
def test_every_way_of_saying_the_peak_is_read(phrase, decoration, n, upper, as_word):
    count = next(w for w, d in NUMBER_WORDS.items() if d == str(n)) if as_word else str(n)
    text = decoration.format(phrase.format(n=count))
    assert stated_peak(text.upper() if upper else text) == n


@settings(max_examples=150, deadline=None)
@given(problem_index=st.integers(0, 59), phrase=st.sampled_from(PHRASES), offset=st.integers(-3, 3),
       filler=st.sampled_from(("", "Sorting the events by time.\n", "9 start 1, 10 start 2, 11 end 1\n")))
def test_a_right_answer_is_kept_only_with_the_solvers_peak(problem_index, phrase, offset, filler):
    problem = DOMAIN.generate(60, seed=3, split="train", variant="balanced")[problem_index]
    peak = peak_overlap(problem.payload["meetings"])
    if peak + offset < 0:
        return
    text = f"{filler}{phrase.format(n=peak + offset)}\nANSWER: {problem.answer}"
    assert rejection_reason(DOMAIN, problem, text) == (None if offset == 0 else WRONG_PEAK)


def test_times_running_counts_and_rooms_are_not_peak_claims():
    assert peak_claims("- 10 start: 2 in progress\n- 11 end: 1 in progress\nAvailable rooms: 3") == []
    assert stated_peak("Meetings run from 9 to 11 and from 10 to 12; the peak is 2.") == 2
    assert stated_peak("At first the maximum is 1, then it rises; the peak is 3 at 14:00.") == 3  # the last word


def test_a_solution_without_a_peak_is_rejected_for_that():
    problem = DOMAIN.generate(1, seed=0, split="train", variant="min-rooms")[0]
    assert rejection_reason(DOMAIN, problem, f"I counted.\nANSWER: {problem.answer}") == NO_PEAK
