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
