"""The reflection prompt shows the checker's facts under each wrong answer, and only there."""
from lrl.domain import get_domain
from lrl.evaluation import result_record
from lrl.prompts import reflection_messages


def _problem(meetings, rooms):
    return get_domain("scheduling").from_json({"id": "p", "payload": {"meetings": meetings, "rooms": rooms}}, "test")


def test_a_wrong_answer_is_shown_with_the_true_peak_and_the_peak_it_stated():
    domain = get_domain("scheduling")
    problem = _problem([[9, 12], [10, 11], [10, 12]], 2)  # three at once from 10 to 11: NO
    record = result_record(domain, problem, "The most at once is 2.\nANSWER: YES")
    text = reflection_messages({"p": problem}, [record], None, domain)[1]["content"]
    assert "WRONG" in text
    assert "Checker: at most 3 meetings are in progress at once (from 10 to 11), and 2 rooms are available; " \
           "the reasoning shown stated 2." in text


def test_a_response_without_a_peak_is_told_it_never_stated_one():
    domain = get_domain("scheduling")
    problem = _problem([[9, 10], [9, 11]], None)
    note = domain.checker_note(problem, "They overlap.\nANSWER: 1")
    assert note == ("Checker: at most 2 meetings are in progress at once (from 9 to 10); the reasoning shown never "
                    "stated how many meetings are in progress at once.")


def test_a_right_answer_gets_no_checker_line():
    domain = get_domain("scheduling")
    problem = _problem([[9, 10], [10, 11]], 1)  # back to back: one room suffices
    record = result_record(domain, problem, "At most 1 at once.\nANSWER: YES")
    text = reflection_messages({"p": problem}, [record], None, domain)[1]["content"]
    assert "CORRECT" in text and "Checker:" not in text


def test_arithmetic_shows_the_true_running_amounts():
    domain = get_domain("arithmetic")
    problem = domain.from_json({"id": "a", "payload": {"name": "Gus", "good": "rice", "unit": "kg", "start": 4,
                                                      "steps": [["scale", "4"], ["scale", "3/2"]], "share": 1}},
                               "test")
    record = result_record(domain, problem, "4 * 4 = 15\nANSWER: 22")
    text = reflection_messages({"a": problem}, [record], None, domain)[1]["content"]
    assert "Checker: the amount after each step is 16, 24." in text
