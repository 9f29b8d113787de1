"""LoRA training progress in a log file: whole lines every 5% of the steps, no carriage returns."""
import time

from backends.student.jax_trainer import _progress


def test_a_log_gets_a_line_every_five_percent(capsys):
    started = time.time()
    for step in range(1, 101):
        _progress(step, 100, 1.0, 50.0, started, step)
    err = capsys.readouterr().err
    assert "\r" not in err and len(err.splitlines()) == 20 and err.splitlines()[-1].startswith("step 100/100")
