"""The agreement bench takes any llama.cpp spec `k1 lrl eval` takes, and bad input is one line."""
import pytest

from bench import bench_llama_agreement


def test_a_missing_adapter_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench_llama_agreement.main(["--model", f"qwen0.5b+lora={tmp_path / 'missing.lora.gguf'}", "--items", "2",
                                    "--name", str(tmp_path / "agreement")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench_llama_agreement: error: ") and "\n" not in err
    assert not (tmp_path / "agreement.jsonl").exists()


class _Recorder:
    """Answers every request `ANSWER: YES` and records how many requests each bulk call carried."""

    def __init__(self, parallel: int):
        self.parallel, self.model, self.calls = parallel, f"fake-{parallel}", []

    def complete_many(self, requests, progress=None):
        from backends.llm import Completion
        self.calls.append(len(requests))
        return [Completion("ANSWER: YES", 1, 1, 0, 0, 0.0, 0.0, self.model, "fake", "stop") for _ in requests]


def test_each_chunk_reaches_the_batched_model_in_one_bulk_call(tmp_path, monkeypatch):
    import backends.spec
    made = {}
    monkeypatch.setattr(backends.spec, "build_llm",
                        lambda spec, options: made.setdefault(options.parallel, _Recorder(options.parallel)))
    chunks = bench_llama_agreement.run_chunks("qwen0.5b", 10, 8, 2, 5, 16, tmp_path / "a.jsonl", lambda done: None)
    assert len(chunks) == 2
    assert made[8].calls == [5, 5] and made[1].calls == [5, 5]
