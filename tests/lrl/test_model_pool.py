from backends.spec import BackendOptions
from lrl.cache import ResponseCache
from lrl.ledger import Ledger
from lrl.model_pool import build_role_models


def test_roles_share_one_lazy_model_and_carry_batch_options(tmp_path):
    options = BackendOptions(n_threads=1, anthropic_batches=True, batch_dir=tmp_path / "batches")
    models = build_role_models({"teacher": "anthropic:claude-haiku-4-5", "student": "qwen0.5b"},
                               ResponseCache(tmp_path / "cache.sqlite"), Ledger(None), "v1",
                               offline=True, options=options)
    teacher, student = models["teacher"].llm, models["student"].llm
    assert teacher.options is options and teacher.batch_discount  # Message Batches: half price
    assert not student.batch_discount  # a local model has no batch price
    assert teacher._loaded is None and student._loaded is None  # nothing loads until a cache miss
