"""Run a small grid of experiments and analyse it with pandas.

    pip install ./crates/rbprop-py pandas
    python results.py [RESULTS_DIR]

Writes a seconds-long experiment file (BP, RBP and SRBP on the embedded Fashion-MNIST subset,
two seeds; the same rows as the repository's configs/smoke/table1.toml) into RESULTS_DIR
(default: ./rbprop-results), runs it there, then prints the mean final test accuracy per
channel, the test-accuracy curve of each run as a pivot table, and the grid's table. Runs from
any folder; a second run finds the finished runs and only prints.
"""

import pathlib
import sys
import textwrap

import rbprop

EXPERIMENT = textwrap.dedent(
    """\
    name = "example-table1"
    dataset = "fashion-mnist-subset"
    data = "embedded:fashion-mnist-subset"
    seeds = [1, 2]

    [train]
    epochs = 2
    train_limit = 1000
    hidden = [32, 32]

    [[variant]]
    channel = ["bp", "rbp", "srbp"]

    [[variant]]
    channel = "srbp"
    feedback = "sparse:2"
    """
)


def main():
    results = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "rbprop-results").resolve()
    results.mkdir(parents=True, exist_ok=True)
    config = results / "example-table1.toml"
    config.write_text(EXPERIMENT)
    df = rbprop.reproduce(config, results, jobs=2)
    last = df[df["epoch"] == df["epoch"].max()]
    print(last.groupby(["row", "column"])["test_acc"].agg(["mean", "std", "count"]))
    print(df.pivot_table(index="epoch", columns="run_id", values="test_acc"))
    print(rbprop.table(results))


if __name__ == "__main__":
    main()
