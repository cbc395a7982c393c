"""The error a component raises when the data it reads breaks the contract.

Shared by ingestion (rows without a label, with `label.missing: reject`) and
the data gate (anomalies): a module of its own, so that neither component's
code digest includes the other's code, and editing one re-runs only it and
what follows it.
"""
from __future__ import annotations


class DataRejectedError(RuntimeError):
    """The data broke the schema; `problems` lists (split, feature, description)."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"  [{split}] {feature}: {text}" for split, feature, text in problems]
        super().__init__("data rejected, anomalies found:\n" + "\n".join(lines))


__all__ = ["DataRejectedError"]
