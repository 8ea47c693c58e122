"""Run a small grid of experiments and analyse it with pandas.

    pip install ./crates/rbprop-py pandas
    python examples/python/results.py

Runs configs/smoke/table1.toml (seconds) into results/, then prints the mean final test accuracy
per channel and the test-accuracy curve of each run as a pivot table.
"""

import pathlib

import rbprop

REPO = pathlib.Path(__file__).resolve().parents[2]

df = rbprop.reproduce(REPO / "configs" / "smoke" / "table1.toml", REPO / "results", jobs=2)
last = df[df["epoch"] == df["epoch"].max()]
print(last.groupby(["row", "column"])["test_acc"].agg(["mean", "std", "count"]))
print(df.pivot_table(index="epoch", columns="run_id", values="test_acc"))
print(rbprop.table(REPO / "results"))
