"""The fidelity gate asks each artifact for all its items in one bulk call, so a batching model batches them."""
from __future__ import annotations

from contextlib import contextmanager

from lrl.domain import get_domain
from lrl.export_job import ExportConfig, gate_runs
from tests.lrl.rules_llm import RulesLLM


class BulkCountingLLM(RulesLLM):
    parallel = 4

    def __init__(self):
        super().__init__()
        self.bulk_sizes = []

    def complete_many(self, requests, progress=None, on_result=None):
        self.bulk_sizes.append(len(requests))
        return super().complete_many(requests, progress, on_result)


def test_every_artifact_answers_its_gate_items_in_one_bulk_call():
    domain = get_domain("scheduling")
    problems = domain.generate(6, seed=0, split="test", variant="balanced")
    models = {}

    @contextmanager
    def open_model(name, _entry, _config, drafts):
        models[name] = BulkCountingLLM()
        models[name].drafts = drafts
        yield models[name]

    files = {"adapter": {}, "f16": {}, "q8_0": {}}
    runs, seconds = gate_runs(files, domain, problems, ExportConfig(parallel=4), open_model=open_model)
    assert {name: m.bulk_sizes for name, m in models.items()} == {name: [6] for name in files}
    assert models["adapter"].drafts is None and len(models["f16"].drafts) == 6
    assert all(len(records) == 6 for records in runs.values()) and set(seconds) == set(files)
