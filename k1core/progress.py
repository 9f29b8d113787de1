"""A line-based progress bar (step, loss, tokens/s, ETA) that works in terminals and log files alike."""
from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 20


def format_seconds(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Prints about 50 lines per run, plus one at every validation."""

    def __init__(self, name: str, total_steps: int, tokens_per_step: int, out: TextIO):
        self.name, self.total, self.tokens_per_step, self.out = name, total_steps, tokens_per_step, out
        self.every = max(1, total_steps // 50)
        self.window_start, self.window_steps, self.window_s = time.perf_counter(), 0, 0.0

    def update(self, step: int, loss: float, val: float | None, step_s: float) -> None:
        """Record one finished step; print when due."""
        self.window_steps += 1
        self.window_s += step_s
        if step % self.every and val is None and step != self.total:
            return
        tok_s = self.window_steps * self.tokens_per_step / max(self.window_s, 1e-9)
        eta = (self.total - step) * (time.perf_counter() - self.window_start) / self.window_steps
        filled = BAR_WIDTH * step // self.total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        val_txt = f"  val {val:.4f}" if val is not None else ""
        print(f"{self.name:>4} [{bar}] step {step:>6}/{self.total}  loss {loss:.4f}{val_txt}  "
              f"{tok_s:>8.0f} tok/s  ETA {format_seconds(eta)}", file=self.out, flush=True)
        self.window_start, self.window_steps, self.window_s = time.perf_counter(), 0, 0.0


class ItemProgress:
    """Items done of a total, with items/s and ETA: one line rewritten in place in a terminal, else a
    new line every `every_percent` (log files and pipes get a readable record, not a wall of updates).

    Used as a context manager with `update(n)`, like click.progressbar.
    """

    def __init__(self, label: str, total: int, out: TextIO, every_percent: float = 5.0):
        self.label, self.total, self.out = label, max(0, total), out
        self.terminal = bool(getattr(out, "isatty", lambda: False)())
        self.step = max(1, int(self.total * every_percent / 100))
        self.done, self.shown, self.start = 0, 0, time.perf_counter()
        self.first: tuple[int, float] | None = None  # (items, time) at the first update: rates count from there

    def __enter__(self) -> "ItemProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the in-place line in a terminal."""
        if self.terminal and self.shown:
            print(file=self.out, flush=True)
            self.terminal = False

    def update(self, n: int) -> None:
        """Count `n` more finished items; print when due."""
        self.done = min(self.total, self.done + n)
        if self.first is None:
            self.first = (self.done, time.perf_counter())
        if self.terminal or self.done - self.shown >= self.step or self.done == self.total:
            self._print()

    def line(self) -> str:
        """Items/s and ETA count from the first update on: its items may have come at once (answers
        from a cache, a resumed run), which says nothing of the pace of the rest."""
        now = time.perf_counter()
        pct = 100 * self.done / self.total if self.total else 100.0
        head = f"{self.label} {self.done}/{self.total} ({pct:.0f}%)"
        first_done, first_time = self.first or (self.done, now)
        if self.done == first_done or now <= first_time:
            return f"{head}  {format_seconds(now - self.start)}"
        rate = (self.done - first_done) / (now - first_time)
        eta = f"  ETA {format_seconds((self.total - self.done) / rate)}" if self.done < self.total else ""
        return f"{head}  {rate:.2f} items/s  {format_seconds(now - self.start)}{eta}"

    def _print(self) -> None:
        if self.done == self.shown and self.shown:
            return
        if self.terminal:
            print(f"\r{self.line()}\033[K", end="", file=self.out, flush=True)
        else:
            print(self.line(), file=self.out, flush=True)
        self.shown = self.done
