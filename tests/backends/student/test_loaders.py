import numpy as np
import orjson
import pytest

from backends.student.forward_numpy import numpy_logits
from backends.student.gguf_loader import load_gguf
from backends.student.hf_loader import load_hf_dir
from backends.student.layer_stack import stack_layers
from backends.student.tokenizer import render_chat
from k1core.errors import UserError

ARCHS = ["qwen2", "llama", "gemma3"]


@pytest.mark.parametrize("arch", ARCHS)
def test_gguf_and_hf_give_the_same_model(tiny_files, arch):
    hf_dir, gguf_path, weights = tiny_files[arch]
    hf, gg = load_hf_dir(hf_dir), load_gguf(gguf_path, with_tokenizer=False)
    assert hf.config.n_layers == gg.config.n_layers and hf.config.query_scale() == pytest.approx(gg.config.query_scale())
    assert gg.config.sliding_window == hf.config.sliding_window and gg.config.tied_embeddings == hf.config.tied_embeddings
    assert set(hf.weights) == set(gg.weights) == set(weights)
    for name, w in weights.items():  # llama's q/k permutation undone, gemma3's (1 + w) norms agree
        np.testing.assert_allclose(gg.weights[name], w, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(hf.weights[name], w, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("arch", ARCHS)
def test_numpy_forward_matches_transformers(tiny_files, tiny_tok, arch):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf_dir = tiny_files[arch][0]
    model = load_hf_dir(hf_dir)
    ids = np.array([model.tokenizer.encode("the cat sat on the mat. what is 2 + 3 ?")[:13]])
    assert ids.shape[1] > 2 * model.config.sliding_window or arch != "gemma3"  # local layers really are local
    ours = numpy_logits(model.config, *stack_layers(model), ids)
    net = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    ref = net(torch.tensor(ids)).logits.detach().numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())


def test_gguf_vocab_is_accepted_by_llama_cpp(tiny_files, tiny_tok):
    pytest.importorskip("llama_cpp")
    model = load_gguf(tiny_files["qwen2"][1])
    text = render_chat(model.chat_template, [{"role": "user", "content": "the cat"}], add_generation_prompt=True)
    ids = model.tokenizer.encode(text)
    assert ids[0] == tiny_tok.token_to_id("<|im_start|>")
    assert model.tokenizer.decode(ids) == text


def test_chat_template_renders_messages(tiny_files):
    model = load_hf_dir(tiny_files["llama"][0])
    text = render_chat(model.chat_template, [{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(UserError, match="no chat template"):
        render_chat(None, [])


def test_bad_gguf_files_are_clear_user_errors(tiny_files, tmp_path):
    good = tiny_files["qwen2"][1].read_bytes()
    random_bytes = tmp_path / "random.gguf"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match="random.gguf: not a GGUF file"):
        load_gguf(random_bytes)
    for cut in (10, 200, len(good) // 2, len(good) - 7):
        truncated = tmp_path / f"cut{cut}.gguf"
        truncated.write_bytes(good[:cut])
        with pytest.raises(UserError, match=f"cut{cut}.gguf"):
            load_gguf(truncated, with_tokenizer=False)
    with pytest.raises(UserError, match="no such model file"):
        load_gguf(tmp_path / "absent.gguf")


def test_unsupported_gguf_architecture(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "phi.gguf"
    w = gguf.GGUFWriter(str(path), "phi3")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UserError, match="phi.gguf: unsupported architecture 'phi3'"):
        load_gguf(path)


def test_bad_hf_directories_are_clear_user_errors(tiny_files, tmp_path):
    import shutil

    src = tiny_files["gemma3"][0]
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    cfg = orjson.loads((bad / "config.json").read_bytes())
    (bad / "config.json").write_bytes(orjson.dumps(dict(cfg, model_type="mamba")))
    with pytest.raises(UserError, match="unsupported model_type 'mamba'"):
        load_hf_dir(bad)
    (bad / "config.json").write_bytes(orjson.dumps(cfg))
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(UserError, match="model.safetensors: truncated"):
        load_hf_dir(bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(UserError, match="truncated safetensors"):
        load_hf_dir(bad)
    (bad / "config.json").write_bytes(b"{not json")
    with pytest.raises(UserError, match="config.json: not valid JSON"):
        load_hf_dir(bad)
    (bad / "config.json").write_bytes(b"[1, 2]")
    with pytest.raises(UserError, match="config.json: a JSON list, not an object"):
        load_hf_dir(bad)
