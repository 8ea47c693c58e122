"""The same seed gives the same bits from Python and from the command line: metrics, checkpoint
tensors, predictions of a loaded checkpoint, and runs continued by the other side."""

import numpy as np
import pytest

import rbprop
from conftest import read_metrics, read_safetensors, without_timing

SETTINGS = dict(channel="srbp", hidden=[64, 32], epochs=2, seed=3, train_limit=2000)
FLAGS = ["--channel", "srbp", "--hidden", "64,32", "--epochs", "2", "--seed", "3", "--train-limit", "2000"]


@pytest.fixture(scope="module")
def cli_run(rbp, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    rbp("train", *FLAGS, "--out", out)
    return out


def test_train_matches_cli_metrics_and_tensors(cli_run, tmp_path):
    net = rbprop.train(out=tmp_path / "py", **SETTINGS)
    assert without_timing(net.history) == without_timing(read_metrics(cli_run / "metrics.jsonl"))
    # the files themselves, byte for byte but for the timing
    assert without_timing(read_metrics(tmp_path / "py" / "metrics.jsonl")) == without_timing(
        read_metrics(cli_run / "metrics.jsonl")
    )
    cli = read_safetensors(cli_run / "checkpoint.safetensors")
    mine = net.tensors()
    assert set(cli) == set(mine)
    for name, value in cli.items():
        assert np.array_equal(value, mine[name]), name


def test_fit_on_arrays_matches_cli(cli_run):
    X, y, Xt, yt = rbprop.load_data()
    net = rbprop.Net([784, 64, 32, 10], channel="srbp", seed=3)
    history = net.fit(X[:2000], y[:2000], epochs=2, validation=(Xt, yt)).history_
    assert without_timing(history) == without_timing(read_metrics(cli_run / "metrics.jsonl"))
    cli = read_safetensors(cli_run / "checkpoint.safetensors")
    for i, w in enumerate(net.weights):
        assert np.array_equal(w, cli[f"layers.{i}.weight"])


def test_fit_iter_and_fit_in_parts_equal_one_fit():
    X, y, Xt, yt = rbprop.load_data()
    X, y = X[:1000], y[:1000]
    whole = rbprop.Net([784, 32, 10], channel="rbp", seed=2).fit(X, y, epochs=3, validation=(Xt, yt)).history_
    net = rbprop.Net([784, 32, 10], channel="rbp", seed=2)
    parts = [m for m in net.fit_iter(X, y, epochs=2, validation=(Xt, yt))]
    parts += net.fit(X, y, epochs=1, validation=(Xt, yt)).history_[-1:]
    assert without_timing(parts) == without_timing(whole)


def test_load_cli_checkpoint_predicts_identically(cli_run, rbp):
    X, y, Xt, yt = rbprop.load_data()
    net = rbprop.load(cli_run)
    assert net.epochs == 2
    last = read_metrics(cli_run / "metrics.jsonl")[-1]
    assert net.evaluate(Xt, yt) == {"loss": last["test_loss"], "accuracy": last["test_acc"]}
    twin = rbprop.Net([784, 64, 32, 10], channel="srbp", seed=3)
    twin.fit(X[:2000], y[:2000], epochs=2)
    assert np.array_equal(net.predict(Xt), twin.predict(Xt))
    assert np.array_equal(net.predict_proba(Xt), twin.predict_proba(Xt))


def test_cli_continues_a_python_run(tmp_path, rbp):
    """A run written from Python (epoch 1) continued by the command line to epoch 2 equals the
    command line's uninterrupted run."""
    rbprop.train(out=tmp_path / "run", **{**SETTINGS, "epochs": 1})
    rbp("train", *FLAGS, "--out", tmp_path / "run")
    rbp("train", *FLAGS, "--out", tmp_path / "whole")
    assert without_timing(read_metrics(tmp_path / "run" / "metrics.jsonl")) == without_timing(
        read_metrics(tmp_path / "whole" / "metrics.jsonl")
    )


def test_python_continues_a_saved_net(tmp_path):
    X, y, Xt, yt = rbprop.load_data()
    X, y = X[:1000], y[:1000]
    net = rbprop.Net([784, 32, 10], channel="arbp", seed=5, momentum=0.9)
    net.fit(X, y, epochs=1, validation=(Xt, yt))
    net.save(tmp_path / "saved")
    again = rbprop.load(tmp_path / "saved")
    rest = again.fit(X, y, epochs=1, validation=(Xt, yt)).history_[-1:]
    whole = rbprop.Net([784, 32, 10], channel="arbp", seed=5, momentum=0.9).fit(
        X, y, epochs=2, validation=(Xt, yt)
    ).history_
    assert without_timing(again.history) == without_timing(whole)
    assert without_timing(rest) == without_timing(whole[1:])


def test_conv_net_matches_cli(rbp, tmp_path):
    arch = "conv8k5-pool2s2-fc32"
    rbp("train", "--arch", arch, "--channel", "rbp", "--epochs", "1", "--train-limit", "500",
        "--seed", "4", "--out", tmp_path / "cli")
    X, y, Xt, yt = rbprop.load_data()
    net = rbprop.Net(arch=arch, input_shape=(1, 28, 28), classes=10, channel="rbp", seed=4)
    history = net.fit(X[:500], y[:500], epochs=1, validation=(Xt, yt)).history_
    assert without_timing(history) == without_timing(read_metrics(tmp_path / "cli" / "metrics.jsonl"))
    loaded = rbprop.load(tmp_path / "cli")
    assert loaded.input_shape == (1, 28, 28)
    assert np.array_equal(loaded.predict(Xt), net.predict(Xt))


def test_net_without_validation_saves_and_loads(tmp_path):
    X, y, _, _ = rbprop.load_data()
    net = rbprop.Net([784, 16, 10], seed=1)
    net.fit(X[:500], y[:500], epochs=2)
    assert net.history[0]["test_acc"] is None  # no test set: null in metrics.jsonl
    net.save(tmp_path / "run")
    again = rbprop.load(tmp_path / "run")
    assert again.history == net.history
    assert np.array_equal(again.predict(X[:50]), net.predict(X[:50]))


def test_save_refuses_a_non_empty_directory_and_leaves_no_lock(tmp_path):
    X, y, _, _ = rbprop.load_data()
    small = rbprop.Net([784, 16, 10], seed=1)
    small.fit(X[:300], y[:300], epochs=1)
    small.save(tmp_path / "run")
    assert not (tmp_path / "run" / "rbp.lock").exists()
    other = rbprop.Net([784, 32, 10], seed=2)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(tmp_path / "run")
    # the first net is still what the directory holds
    assert rbprop.load(tmp_path / "run").history == small.history
    other.save(tmp_path / "run", overwrite=True)
    assert rbprop.load(tmp_path / "run").weights[0].shape == (32, 784)
