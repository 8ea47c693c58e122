"""Bad input gets a clear exception naming the argument, never a crash or silent garbage."""

import numpy as np
import pytest

import rbprop


@pytest.fixture(scope="module")
def data():
    X, y, _, _ = rbprop.load_data()
    return X[:200], y[:200]


@pytest.fixture
def net():
    return rbprop.Net([784, 16, 10], seed=1)


def test_wrong_shape(net, data):
    X, y = data
    with pytest.raises(ValueError, match=r"X: shape \[200, 783\]"):
        net.fit(X.reshape(200, -1)[:, :783], y, epochs=1)
    with pytest.raises(ValueError, match="X has 200 examples but y has 199 labels"):
        net.fit(X, y[:199], epochs=1)
    with pytest.raises(ValueError, match="y: expected a 1-d array"):
        net.fit(X, y.reshape(-1, 1), epochs=1)


def test_dtypes(net, data):
    X, y = data
    with pytest.raises(TypeError, match="X: expected floating-point values"):
        net.fit((X * 255).astype(np.uint8), y, epochs=1)
    with pytest.raises(TypeError, match="y: expected integer class labels, got dtype float64"):
        net.fit(X, y.astype(np.float64), epochs=1)
    with pytest.raises(TypeError, match="X: expected floating-point values"):
        net.predict(np.array([["a"] * 784]))


def test_any_float_dtype_and_layout_gives_the_same_numbers(data):
    X, y = data
    flat = X.reshape(len(X), -1)
    runs = []
    for x in [X, flat.astype(np.float64), np.asfortranarray(flat), flat[:, ::-1][:, ::-1], flat.astype(np.float16).astype(np.float32)]:
        net = rbprop.Net([784, 16, 10], seed=1)
        runs.append(net.fit(x, y.astype(np.int32), epochs=1).history_[0]["train_loss"])
    assert runs[0] == runs[1] == runs[2] == runs[3]


def test_labels_out_of_range(net, data):
    X, y = data
    bad = y.copy()
    bad[7] = 10
    with pytest.raises(ValueError, match="y: label 10 at index 7 is out of range: the net has 10 classes"):
        net.fit(X, bad, epochs=1)
    bad[7] = -1
    with pytest.raises(ValueError, match="y: label -1 at index 7"):
        net.evaluate(X, bad)


def test_nan_inputs(net, data):
    X, y = data
    bad = X.copy()
    bad[3, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="X: holds a non-finite value"):
        net.fit(bad, y, epochs=1)
    with pytest.raises(ValueError, match="validation X: holds a non-finite value"):
        net.fit(X, y, epochs=1, validation=(bad, y))


def test_bad_settings():
    with pytest.raises(ValueError, match="lrr"):
        rbprop.Net([784, 10], lrr=0.1)
    with pytest.raises(ValueError, match="channel"):
        rbprop.Net([784, 10], channel="nope")
    with pytest.raises(ValueError, match="layers"):
        rbprop.Net([784, 10], input_shape=784)
    with pytest.raises(ValueError, match="input_shape"):
        rbprop.Net(hidden=[10])
    with pytest.raises(ValueError, match="device"):
        rbprop.Net([784, 10], device="tpu")
    with pytest.raises(ValueError, match="adapter"):
        rbprop.Net([784, 10], adapter="llvmpipe")
    with pytest.raises(ValueError, match="device.*no-such-adapter-anywhere"):
        rbprop.Net([784, 10], device="gpu", adapter="no-such-adapter-anywhere")
    with pytest.raises(ValueError, match="device.*no-such-adapter-anywhere"):
        rbprop.train(device="gpu", adapter="no-such-adapter-anywhere", epochs=1)
    with pytest.raises(ValueError, match="`channel` is fixed when the net is made"):
        rbprop.Net([784, 10]).fit(np.zeros((1, 784), np.float32), np.zeros(1, int), channel="rbp")


def test_file_problems(tmp_path):
    with pytest.raises(OSError, match="nowhere"):
        rbprop.load(tmp_path / "nowhere")
    with pytest.raises(OSError, match="nowhere"):
        rbprop.train(data=str(tmp_path / "nowhere"), epochs=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text("channel = 3\n")
    with pytest.raises(OSError, match="config.toml"):
        rbprop.load(tmp_path / "run")
    with pytest.raises(OSError, match="no-such-results"):
        rbprop.results(tmp_path / "no-such-results")


def test_divergence_is_reported(data):
    X, y = data
    net = rbprop.Net([784, 100, 100, 100, 100, 10], seed=1, lr=0.5, activation="linear")
    with pytest.raises(rbprop.DivergedError, match="diverged"):
        net.fit(X, y, epochs=50)
    assert isinstance(rbprop.DivergedError("x"), ArithmeticError)


def test_errors_speak_python_keywords_not_command_line_flags():
    with pytest.raises(ValueError) as e:
        rbprop.Net([784, 10], quantize_update="8", momentum=0.5)
    text = str(e.value)
    assert "`quantize_update`" in text and "decay=0 momentum=0" in text and "--" not in text
    with pytest.raises(ValueError, match="invalid value for `channel_dropout`"):
        rbprop.Net([784, 10], channel_dropout=2)
