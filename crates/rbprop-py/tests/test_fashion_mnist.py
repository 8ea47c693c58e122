"""Training on numpy arrays of the full Fashion-MNIST (read here with Python's own gzip and the
IDX layout) reaches the command line's accuracy: the same bits."""

import gzip
import pathlib

import numpy as np
import pytest

import rbprop
from conftest import fashion_mnist_dir, read_metrics, without_timing

DATA = fashion_mnist_dir()
pytestmark = pytest.mark.skipif(DATA is None, reason="set RBP_FASHION_MNIST to the Fashion-MNIST directory")


def idx(path: pathlib.Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(shape)


def test_full_fashion_mnist_from_numpy_matches_cli(rbp, tmp_path):
    X = idx(DATA / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = idx(DATA / "train-labels-idx1-ubyte.gz").astype(np.int64)
    Xt = idx(DATA / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    yt = idx(DATA / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    assert X.shape == (60000, 28, 28)
    net = rbprop.Net([784, 100, 100, 100, 100, 10], channel="srbp", seed=1)
    history = net.fit(X, y, epochs=2, validation=(Xt, yt)).history_
    rbp("train", "--data", DATA, "--channel", "srbp", "--epochs", "2", "--seed", "1", "--out", tmp_path / "cli")
    cli = read_metrics(tmp_path / "cli" / "metrics.jsonl")
    assert without_timing(history) == without_timing(cli)
    assert history[-1]["test_acc"] > 0.8
