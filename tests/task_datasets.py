"""Small CSVs of the three tasks, written by the tests (and by anyone trying
configs/churn.yaml, configs/penguins.yaml, configs/houses.yaml):

    python -m tests.task_datasets configs/data

churn: a binary label from a class value ("yes"/"no"), some labels empty;
penguins: three species as strings, "NA" in numeric cells; houses: a price.
Deterministic: the same rows on every call.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import Any, Callable

import numpy as np


def write_csv(path: str, header: list[str], rows: list[list[Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def churn_rows(n: int = 300) -> list[list[Any]]:
    """Subscribers; long tenure and the yearly plan keep them. Label "yes"/"no"."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        tenure = int(rng.integers(1, 60))
        plan = str(rng.choice(["monthly", "yearly"]))
        charge = round(float(rng.normal(50, 15)), 2)
        churned = "yes" if tenure < 20 and plan == "monthly" else "no"
        rows.append([tenure, charge, plan, "" if i % 50 == 7 else churned])
    return rows


def penguin_rows(n: int = 360) -> list[list[Any]]:
    """Three species told apart by bill and flipper; some cells "NA"."""
    rng = np.random.default_rng(5)
    centers = {"Adelie": (39.0, 18.5, 190.0), "Chinstrap": (49.0, 18.5, 196.0),
               "Gentoo": (47.5, 15.0, 217.0)}
    rows = []
    for i in range(n):
        species = list(centers)[i % 3]
        bill, depth, flipper = (c + rng.normal(0, s) for c, s in
                                zip(centers[species], (1.5, 0.6, 4.0)))
        island = str(rng.choice(["Biscoe", "Dream", "Torgersen"]))
        row = [round(bill, 1), round(depth, 1), round(flipper), island, species]
        if i % 17 == 0:
            row[0] = "NA"
        if i % 23 == 0:
            row[2] = "NA"
        rows.append(row)
    return rows


def house_rows(n: int = 300) -> list[list[Any]]:
    """House prices in thousands: size, rooms and the region set the price."""
    rng = np.random.default_rng(9)
    rows = []
    for _ in range(n):
        size = round(float(rng.uniform(40, 200)), 1)
        rooms = int(rng.integers(1, 6))
        region = str(rng.choice(["city", "suburb", "rural"]))
        price = 2.0 * size + 10 * rooms + {"city": 120, "suburb": 60, "rural": 0}[region]
        rows.append([size, rooms, region, round(price + float(rng.normal(0, 10)), 1)])
    return rows


# name -> (header, rows)
DATASETS: dict[str, tuple[list[str], Callable[[], list[list[Any]]]]] = {
    "churn": (["tenure", "charge", "plan", "churned"], churn_rows),
    "penguins": (["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "island",
                  "species"], penguin_rows),
    "houses": (["size_m2", "rooms", "region", "price"], house_rows),
}


def write_dataset(name: str, directory: str) -> tuple[str, list[str], list[list[Any]]]:
    """Writes DIRECTORY/<name>.csv; returns (path, header, rows)."""
    header, make = DATASETS[name]
    rows = make()
    path = os.path.join(directory, f"{name}.csv")
    write_csv(path, header, rows)
    return path, header, rows


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("configs", "data")
    for dataset in DATASETS:
        print(write_dataset(dataset, out)[0])
