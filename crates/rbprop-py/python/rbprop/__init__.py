"""rbprop: random backpropagation and the learning channels of Baldi, Sadowski & Lu, from Python.

The engine is rbp's (Rust): the same settings, the same trainer, the same run directories as
the ``rbp`` command line, so a seed gives the same numbers from both.

>>> import rbprop
>>> X, y, Xt, yt = rbprop.load_data()            # the embedded Fashion-MNIST subset
>>> net = rbprop.Net([784, 100, 100, 10], channel="srbp", seed=1)
>>> net = net.fit(X, y, epochs=2, validation=(Xt, yt))   # fit returns the net
>>> len(net.history_), net.score(Xt, yt) > 0.5
(2, True)
>>> net.evaluate(Xt, yt)["accuracy"] > 0.5
True

Results of ``rbp reproduce`` (or :func:`reproduce`) come back as pandas DataFrames when pandas
is installed (lists of dicts otherwise): :func:`results` (one row per run and epoch, the run's
settings as columns) and :func:`table` (the cells of ``rbp table``).
"""

from __future__ import annotations

import csv
import io
import json
from os import PathLike
from typing import Any, List, Optional, Tuple, Union

from . import dynamics
from ._rbprop import (
    EMBEDDED,
    DivergedError,
    FitIter,
    Net,
    __version__,
    channels,
    fit_together,
    load,
    load_data,
    settings,
    train,
)
from ._rbprop import reproduce as _reproduce
from . import _torch
from ._rbprop import result_columns as _result_columns
from ._rbprop import results_jsonl as _results_jsonl
from ._rbprop import table_csv as _table_csv

__all__ = [
    "EMBEDDED",
    "DivergedError",
    "FitIter",
    "Net",
    "__version__",
    "channels",
    "dynamics",
    "fit_together",
    "load",
    "load_data",
    "reproduce",
    "results",
    "settings",
    "table",
    "train",
]

Path = Union[str, "PathLike[str]"]

# PyTorch both ways (torch is imported only when these are called)
Net.to_torch = _torch.to_torch
Net.from_torch = staticmethod(_torch.from_torch)


def _frame(rows: List[dict], columns: List[str]) -> Any:
    """A pandas DataFrame of ``rows`` with ``columns`` in order, or the rows without pandas."""
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=columns)


def results(results: Path) -> Any:
    """The long format of ``rbp export RESULTS``: one row per run and finished epoch, with the
    experiment, run id, row and column labels, status, every resolved setting of the run
    (``channel``, ``feedback``, ``quantize_signal``, ``lr``, ``seed``, ...) and every metric
    (``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ...).

    A pandas DataFrame when pandas is installed, else a list of dicts.
    """
    return _frame(_rows(results), _result_columns())


def _rows(results: Path) -> List[dict]:
    text = _results_jsonl(str(results))
    return [json.loads(line) for line in text.splitlines() if line]


def table(results: Path) -> Any:
    """The cells of ``rbp table RESULTS`` (mean and sd over seeds of each setting), as the rows
    of its ``table.csv``. A pandas DataFrame when pandas is installed, else a list of dicts
    (values as text)."""
    text = _table_csv(str(results))
    try:
        import pandas
    except ImportError:
        return list(csv.DictReader(io.StringIO(text)))
    return pandas.read_csv(io.StringIO(text))


def reproduce(
    config: Path,
    results: Path,
    jobs: int = 1,
    quick: Optional[int] = None,
    data: Optional[str] = None,
    device: Optional[str] = None,
    adapter: Optional[str] = None,
    ensemble: Optional[int] = None,
) -> Any:
    """What ``rbp reproduce CONFIG --results RESULTS`` does: runs every run of the experiment
    file not finished yet (resuming interrupted ones), ``jobs`` at a time, ``quick`` capping the
    epochs, ``data`` replacing the experiment's data directory, ``device`` ("cpu" or "gpu",
    ``adapter`` choosing a GPU by name) replacing its device. With ``ensemble`` = K > 1, up to K
    runs train together: on the CPU runs that read the same minibatches (same seed, batch,
    subset, augmentation), sharing layer 0's products; on the GPU runs that differ only in their
    seeds, stacked (one dispatch per operation for all). Each still writes its own run directory
    with the bits of its solo run on its device. By default 8 with ``device="gpu"``, else 1. Returns :func:`results` of the experiment's directory. Ctrl-C stops
    the runs after their current update; finished epochs are kept and the next call continues
    them."""
    _reproduce(str(config), str(results), jobs, quick, data, device, adapter, ensemble)
    name = _experiment_name(config)
    rows = [r for r in _rows(results) if r.get("experiment") == name]
    return _frame(rows, _result_columns())


def _experiment_name(config: "PathLike[str]") -> str:
    """The ``name`` of an experiment file (its results go to ``RESULTS/<name>``)."""
    import pathlib

    path = pathlib.Path(config)
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        tomllib = None
    text = path.read_text()
    if tomllib is not None:
        return tomllib.loads(text).get("name", path.stem)
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "name":
            return value.strip().strip('"')
    return path.stem
