"""ItemProgress: a line every few percent in a log, one line rewritten in place in a terminal."""
import io

from k1core.progress import ItemProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_every_five_percent_and_the_last_one():
    out = io.StringIO()
    with ItemProgress("stage 0", 200, out) as bar:
        for _ in range(200):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 20 and lines[0].startswith("stage 0 10/200 (5%)") and lines[-1].startswith("stage 0 200/200 (100%)")
    assert "items/s" in lines[0] and "ETA" in lines[0] and "ETA" not in lines[-1] and "\r" not in out.getvalue()


def test_a_terminal_gets_every_item_on_one_line():
    out = Terminal()
    with ItemProgress("eval", 3, out) as bar:
        bar.update(2)
        bar.update(1)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1 and "eval 3/3 (100%)" in text


def test_items_that_came_at_once_do_not_count_in_the_rate(monkeypatch):
    clock = iter([0.0, 0.0, 0.0, 10.0, 10.0])  # start; 90 cached items at t=0; 10 more by t=10
    monkeypatch.setattr("k1core.progress.time.perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = ItemProgress("eval", 200, out)
    bar.update(90)
    bar.update(10)
    first, second = out.getvalue().splitlines()
    assert first == "eval 90/200 (45%)  0m00s"
    assert second == "eval 100/200 (50%)  1.00 items/s  0m10s  ETA 1m40s"
