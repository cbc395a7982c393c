"""A version's input contract: the raw columns its signatures read, and how.

Scoring and monitoring read a CSV by the version they score, not by today's
configuration: a canary that reads one more column, or a stable version
trained before a feature was added, each types rows by its own contract.
The Trainer writes it beside the SavedModel it exports
(`assets.extra/input_contract.json`; TF Serving ignores `assets.extra/`), so
a push carries it.  A version exported before the file existed gets the same
contract derived from its SavedModel: the keys, types and defaults of the
tf.Example parsing inside each signature are what the model can read.

A column "may be missing" where the model's parsing accepts a row without
it (a VarLenFeature, or a default): Transform imputes it.  A fixed-length
column without a default cannot be parsed without a value.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    import tensorflow_transform as tft

    from models.features import ModelInputs

CONTRACT_FILE = os.path.join("assets.extra", "input_contract.json")
FORMAT = 1
SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
_KINDS = {"int64": "INT", "float32": "FLOAT", "string": "BYTES"}


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: str  # INT | FLOAT | BYTES
    may_be_missing: bool


@dataclasses.dataclass(frozen=True)
class InputContract:
    """What a version's signatures parse; `serving` never holds the label."""

    serving: tuple[Column, ...]
    evaluation: tuple[Column, ...]  # what the transform signature (TFMA) parses
    label: Optional[str]
    na_values: tuple[str, ...] = ()
    source: str = "recorded"  # or "derived from the SavedModel"

    def columns(self, which: str = "serving") -> tuple[Column, ...]:
        return self.serving if which == "serving" else self.evaluation

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["source"]
        return {"format": FORMAT, **out}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "recorded") -> "InputContract":
        def cols(items: list[dict]) -> tuple[Column, ...]:
            return tuple(Column(c["name"], c["kind"], bool(c["may_be_missing"])) for c in items)
        return cls(cols(data["serving"]), cols(data["evaluation"]), data.get("label"),
                   tuple(data.get("na_values", ())), source)


def columns_of(feature_spec: dict[str, Any]) -> tuple[Column, ...]:
    """Contract columns of a tf.io feature spec, in name order."""
    import tensorflow as tf
    out = []
    for name in sorted(feature_spec):
        spec = feature_spec[name]
        optional = (not isinstance(spec, tf.io.FixedLenFeature)
                    or spec.default_value is not None)
        out.append(Column(name, _KINDS.get(spec.dtype.name, "BYTES"), optional))
    return tuple(out)


def build(tft_output: "tft.TFTransformOutput", inputs: "ModelInputs") -> InputContract:
    """The contract of a model exported with models/signatures.py's signatures."""
    raw = tft_output.raw_feature_spec()
    serving = {k: raw[k] for k in inputs.serving_columns()}
    return InputContract(columns_of(serving), columns_of(raw), inputs.label.column,
                         tuple(inputs.na_values))


def write(model_dir: str, contract: InputContract) -> str:
    """Writes the contract beside the SavedModel; returns the file's path."""
    import tensorflow as tf
    path = os.path.join(model_dir, CONTRACT_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(contract.to_json(), indent=2, sort_keys=True) + "\n")
    return path


class ContractError(ValueError):
    """A version whose input contract can be neither read nor derived."""


def read(version_dir: str, label: Optional[str] = None,
         na_values: Sequence[str] = ()) -> InputContract:
    """The version's recorded contract, else the one derived from its SavedModel.

    `label` and `na_values` complete a derived contract (a SavedModel says
    neither which raw column its label came from nor which cells were missing).
    """
    path = os.path.join(version_dir, CONTRACT_FILE)
    if os.path.exists(path):
        try:
            with open(path) as f:
                return InputContract.from_json(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ContractError(f"{path}: not an input contract ({e}); remove it to derive "
                                f"the contract from the SavedModel") from None
    return dataclasses.replace(derive(version_dir, label), na_values=tuple(na_values))


def derive(version_dir: str, label: Optional[str] = None) -> InputContract:
    """The contract read off the tf.Example parsing inside each signature."""
    import tensorflow as tf
    try:
        loaded = tf.saved_model.load(version_dir)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ContractError(f"{version_dir}: not a SavedModel "
                            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                            ) from None
    signatures = loaded.signatures
    if SERVING_SIGNATURE not in signatures:
        raise ContractError(f"{version_dir}: no {SERVING_SIGNATURE} signature")
    serving = _parsed(signatures[SERVING_SIGNATURE])
    evaluation = (_parsed(signatures[TRANSFORM_SIGNATURE])
                  if TRANSFORM_SIGNATURE in signatures else serving)
    return InputContract(serving, evaluation, label, (), "derived from the SavedModel")


def _parsed(function: Any) -> tuple[Column, ...]:
    """Columns of the ParseExampleV2 operations in a signature's functions.

    A loaded signature calls its traced function; the parsing is a node of
    that function's FunctionDef, with its keys and defaults as Const nodes.
    """
    import tensorflow as tf
    found: dict[str, Column] = {}
    for fdef in function.graph.as_graph_def().library.function:
        nodes = {n.name: n for n in fdef.node_def}

        def const(ref: str) -> Any:
            """The constant behind an input, through Reshape/Identity nodes."""
            node = nodes[ref.split(":")[0]]
            while node.op != "Const":
                node = nodes[node.input[0].split(":")[0]]
            return tf.make_ndarray(node.attr["value"].tensor)

        for node in fdef.node_def:
            if node.op != "ParseExampleV2":
                continue
            inputs = [i for i in node.input if not i.startswith("^")]
            sparse = [v.decode() for v in const(inputs[2]).reshape(-1)]
            dense = [v.decode() for v in const(inputs[3]).reshape(-1)]
            for name, dtype in zip(sparse, node.attr["sparse_types"].list.type):
                found[name] = Column(name, _KINDS.get(tf.as_dtype(dtype).name, "BYTES"), True)
            for i, (name, dtype) in enumerate(zip(dense, node.attr["Tdense"].list.type)):
                has_default = const(inputs[5 + i]).size > 0
                found[name] = Column(name, _KINDS.get(tf.as_dtype(dtype).name, "BYTES"),
                                     has_default)
    if not found:
        raise ContractError("a signature that parses no tf.Example")
    return tuple(found[k] for k in sorted(found))


__all__ = ["CONTRACT_FILE", "Column", "ContractError", "InputContract", "build", "columns_of",
           "derive", "read", "write"]
