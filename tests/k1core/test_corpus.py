import numpy as np
import pytest

from k1core.corpus import decode, encode, load_corpus, sample_batch, split_corpus
from k1core.errors import UserError


def test_embedded_corpus_is_tinyshakespeare():
    data = load_corpus()
    assert len(data) == 1_115_394
    assert decode(data[:9]) == "First Cit"


def test_split_is_positional_and_complete():
    data = np.arange(1000, dtype=np.int64) % 256
    s = split_corpus(data)
    assert (len(s.train), len(s.val), len(s.test)) == (900, 50, 50)
    assert np.array_equal(np.concatenate([s.train, s.val, s.test]), data)


def test_batches_are_seeded_and_shifted():
    data = load_corpus()[:5000]
    x1, y1 = sample_batch(data, 4, 8, np.random.default_rng(1))
    x2, _ = sample_batch(data, 4, 8, np.random.default_rng(1))
    assert x1.shape == (4, 8) and np.array_equal(x1, x2)
    assert np.array_equal(x1[:, 1:], y1[:, :-1])


def test_missing_file_and_tiny_corpus_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(UserError, match="too small"):
        split_corpus(np.zeros(10, dtype=np.uint8), min_len=5)


def test_encode_decode_round_trip_and_bad_bytes():
    assert decode(encode("héllo")) == "héllo"
    assert decode([0xFF, 0x41]) == "\ufffdA"
