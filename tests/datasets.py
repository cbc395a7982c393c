"""Small deterministic samples of the real taxi CSV, and corrupted copies."""
from __future__ import annotations

import csv
import os
from typing import Callable, Optional

from pipeline.config import load_config, resolve_path

Row = dict[str, str]
Change = Callable[[list[str], list[Row]], tuple[list[str], list[Row]]]


def taxi_csv() -> str:
    cfg = load_config()
    return cfg.resolve(cfg.data.path)


def read_rows(path: Optional[str] = None) -> tuple[list[str], list[Row]]:
    with open(path or taxi_csv(), newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: str, header: list[str], rows: list[Row]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def taxi_sample(directory: str, every: int = 3,
                change: Optional[Change] = None
                ) -> str:
    """Every `every`-th row of the shipped CSV (optionally changed) in `directory`."""
    header, rows = read_rows()
    rows = rows[::every]
    if change:
        header, rows = change(header, rows)
    return write_rows(os.path.join(directory, "data.csv"), header, rows)


def drop_column(name: str):
    def change(header, rows):
        return [h for h in header if h != name], [
            {k: v for k, v in r.items() if k != name} for r in rows]
    return change


def text_in_numeric_column(name: str, every: int = 10):
    def change(header, rows):
        return header, [dict(r, **{name: "n/a"}) if i % every == 0 else r
                        for i, r in enumerate(rows)]
    return change


def unseen_category(name: str, value: str, every: int = 20):
    def change(header, rows):
        return header, [dict(r, **{name: value}) if i % every == 0 else r
                        for i, r in enumerate(rows)]
    return change


__all__ = ["taxi_csv", "read_rows", "write_rows", "taxi_sample", "drop_column",
           "text_in_numeric_column", "unseen_category", "resolve_path"]
