import pytest

from tiny_models import random_weights, tiny_config, tiny_tokenizer, write_gguf, write_hf_dir

ARCHS = ("qwen2", "llama", "gemma3")


@pytest.fixture(scope="session")
def tiny_tok():
    pytest.importorskip("tokenizers")
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory, tiny_tok):
    """{arch: (hf_dir, gguf_path, canonical weights)} for a tiny random model of each architecture."""
    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for arch in ARCHS:
        cfg = tiny_config(arch, tiny_tok.get_vocab_size() + 8)
        w = random_weights(cfg, seed=ARCHS.index(arch))
        out[arch] = (write_hf_dir(cfg, w, tiny_tok, root / arch), write_gguf(cfg, w, tiny_tok, root / f"{arch}.gguf"), w)
    return out


@pytest.fixture(scope="session")
def real_qwen_gguf(qwen_gguf):
    """Path of the real Qwen2.5-Coder-0.5B-Instruct GGUF (the shipped, hash-checked asset)."""
    return str(qwen_gguf)
