"""The canonical encoding is unambiguous: it decodes back to the inputs."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reflex_buildd_client.keys.schema import (
    KEY_SCHEMA,
    KeyInputs,
    canonical_bytes,
    digest_env_value,
    key_of,
)

# Any string Python can hold, including lone surrogates (undecodable file names).
text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()))

inputs = st.builds(
    KeyInputs,
    files=st.dictionaries(text, text, max_size=6),
    versions=st.dictionaries(text, text, max_size=4),
    js_runtime=text,
    env=st.dictionaries(text, st.none() | text, max_size=4),
    settings=st.dictionaries(text, text, max_size=3),
)


@given(inputs)
def test_encoding_round_trips(value: KeyInputs) -> None:
    # decode(encode(x)) == x makes encode injective: no two input sets share bytes.
    data = canonical_bytes(value)
    assert KeyInputs.from_json(json.loads(data)) == value
    assert data.isascii()


@given(inputs, inputs)
def test_different_inputs_have_different_keys(a: KeyInputs, b: KeyInputs) -> None:
    assert (canonical_bytes(a) == canonical_bytes(b)) == (a == b)
    if a == b:
        assert key_of(a) == key_of(b)


@given(inputs)
def test_key_independent_of_insertion_order(value: KeyInputs) -> None:
    reordered = KeyInputs(
        files=dict(reversed(value.files.items())),
        versions=dict(reversed(value.versions.items())),
        js_runtime=value.js_runtime,
        env=dict(reversed(value.env.items())),
        settings=dict(reversed(value.settings.items())),
    )
    assert key_of(reordered) == key_of(value)


def test_separator_games() -> None:
    assert key_of(KeyInputs(files={"a": "b,c"})) != key_of(KeyInputs(files={"a,b": "c"}))
    assert key_of(KeyInputs(files={'a":"b': "c"})) != key_of(KeyInputs(files={"a": 'b":"c'}))
    assert digest_env_value("AB", "C") != digest_env_value("A", "BC")
    assert key_of(KeyInputs(env={"X": None})) != key_of(KeyInputs(env={"X": ""}))


def test_schema_is_in_the_key() -> None:
    assert key_of(KeyInputs()) != key_of(KeyInputs(schema=KEY_SCHEMA - 1))
    assert KeyInputs.from_json(KeyInputs().to_json()).schema == KEY_SCHEMA
