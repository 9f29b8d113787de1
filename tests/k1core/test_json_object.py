"""json_object: any bytes give either a dict or a ValueError that says why, never another exception."""
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from k1core.json_object import json_object


def test_an_object_comes_back_and_other_json_says_what_it_is():
    assert json_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        json_object(b"[1, 2]")
    with pytest.raises(ValueError, match="not valid JSON"):
        json_object(b"{not json")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.recursive(st.none() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=5),
                                             lambda inner: st.lists(inner, max_size=3)
                                             | st.dictionaries(st.text(max_size=3), inner, max_size=3)).map(orjson.dumps))
def test_fuzz_any_bytes_give_a_dict_or_a_value_error(raw):
    try:
        assert isinstance(json_object(raw), dict)
    except ValueError as err:
        assert "JSON" in str(err)
