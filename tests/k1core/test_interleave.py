"""Interleaved timing: rotated order, every call run, calls that return False not counted."""
from k1core.interleave import interleaved


def test_rounds_rotate_the_order_and_skip_uncounted_calls():
    order = []

    def work(name):
        order.append(name)
        return not (name == "b" and order.count("b") == 1)  # b's first call "compiled"

    times = interleaved({"a": "a", "b": "b", "c": "c"}, rounds=3, work=work, per_round=2)
    assert order == ["a", "a", "b", "b", "c", "c", "b", "b", "c", "c", "a", "a", "c", "c", "a", "a", "b", "b"]
    assert {name: len(t) for name, t in times.items()} == {"a": 6, "b": 5, "c": 6}
    assert all(s >= 0 for t in times.values() for s in t)
