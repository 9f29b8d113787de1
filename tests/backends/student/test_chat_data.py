import numpy as np
import pytest

from backends.student.chat_data import Example, encode_chat, make_batch, pack_rows, read_chat_jsonl
from backends.student.hf_loader import load_hf_dir
from k1core.errors import UserError


def test_only_answer_tokens_carry_loss(tiny_files):
    model = load_hf_dir(tiny_files["qwen2"][0])
    msgs = [{"role": "user", "content": "what is 2 + 3 ?"}, {"role": "assistant", "content": "5"}]
    ex = encode_chat(model.tokenizer, model.chat_template, msgs, 64)
    answer = model.tokenizer.decode(ex.ids[ex.n_prompt:])
    assert answer == "5<|im_end|>"
    assert model.tokenizer.decode(ex.ids[:ex.n_prompt]).endswith("<|im_start|>assistant\n")
    batch = make_batch([[ex]], 32, 8)
    w = batch["loss_weight"][0]
    n = int(w.sum())
    assert n == len(ex.ids) - ex.n_prompt
    # position p predicts token p + 1: exactly the answer tokens are targets
    assert list(batch["targets"][0, :n]) == list(ex.ids[ex.n_prompt:])
    assert list(batch["loss_index"][0, :n]) == list(range(ex.n_prompt - 1, len(ex.ids) - 1))


def test_packing_keeps_examples_apart():
    a, b, c = Example((1, 2, 3, 4), 2), Example((5, 6, 7), 1), Example((8, 9, 10, 11, 12), 3)
    rows = pack_rows([a, b, c], 8)
    assert rows == [[a, b], [c]]
    batch = make_batch(rows, 8, 4)
    np.testing.assert_array_equal(batch["segments"][0], [1, 1, 1, 1, 2, 2, 2, 0])
    np.testing.assert_array_equal(batch["positions"][0], [0, 1, 2, 3, 0, 1, 2, 0])
    np.testing.assert_array_equal(batch["targets"][0, :4], [3, 4, 6, 7])  # never a token of another example
    np.testing.assert_array_equal(batch["loss_index"][0, :4], [1, 2, 4, 5])
    assert batch["loss_index"].shape[1] % 4 == 0


def test_bad_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n{oops\n')
    with pytest.raises(UserError, match="d.jsonl:2: invalid JSON"):
        read_chat_jsonl(path)
    path.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    with pytest.raises(UserError, match="d.jsonl:1: the last message must be the assistant"):
        read_chat_jsonl(path)
