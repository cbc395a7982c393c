"""`tfxp schema` names the numeric columns drafted as strings, and the tokens."""
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.local.schema_draft import non_numeric_tokens, token_notes
from tests.test_tasks_config import load

DRAFT = text_format.Parse("""
feature { name: "bill" type: BYTES }
feature { name: "flipper" type: FLOAT }
feature { name: "island" type: BYTES }
feature { name: "species" type: BYTES }
""", schema_pb2.Schema())


def test_numbers_with_tokens_are_named_with_their_tokens(tmp_path):
    cfg = load(tmp_path, {"column": "species", "task": "multiclass"})
    (tmp_path / "rows.csv").write_text(
        (tmp_path / "rows.csv").read_text().replace("\n41,", "\n?,", 1))
    found = non_numeric_tokens(cfg, DRAFT)
    # island and species are words, not numbers with tokens.
    assert found == {"bill": ["NA", "?"]}
    notes = token_notes(cfg, DRAFT)
    assert "bill: 'NA', '?'" in notes[1] and "data.na_values" in notes[-1]


def test_nothing_to_say_when_strings_are_words(tmp_path):
    cfg = load(tmp_path, {"column": "species", "task": "multiclass"})
    words = text_format.Parse('feature { name: "island" type: BYTES }', schema_pb2.Schema())
    assert token_notes(cfg, words) == []


def test_model_inputs_are_drafted_optional_and_the_label_required(tmp_path):
    # SchemaGen fixes the shape of a column present in every row it saw; a model
    # input with a fixed shape could never be scored with that cell empty,
    # though Transform imputes it.
    from pipeline.local.schema_draft import optional_features
    cfg = load(tmp_path, {"column": "species", "task": "multiclass"})
    draft = schema_pb2.Schema()
    for name in ["bill", "flipper", "island", "species", "unused"]:
        draft.feature.add(name=name, type=schema_pb2.FLOAT).shape.dim.add(size=1)
    inputs = set(cfg.model_inputs().serving_columns())
    assert "flipper" in inputs and "species" not in inputs
    shaped = {f.name for f in optional_features(draft, cfg).feature if f.HasField("shape")}
    assert shaped == {f.name for f in draft.feature} - inputs
