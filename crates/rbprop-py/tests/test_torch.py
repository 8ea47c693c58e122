"""Weights, biases and feedback written from numpy (no torch needed), and PyTorch both ways:
`to_torch`, `from_torch`, and the recipe of docs/python.md that checks one BP step of rbp
against torch's autograd. The torch tests run where torch is importable and skip, saying so,
elsewhere."""

import numpy as np
import pytest

import rbprop


@pytest.fixture(scope="module")
def data():
    X, y, Xt, yt = rbprop.load_data()
    return X[:400], y[:400], Xt[:300], yt[:300]


def test_weights_biases_and_feedback_are_writable_with_shape_checks(data):
    X, y, Xt, yt = data
    a = rbprop.Net([784, 20, 16, 10], channel="rbp", seed=1).fit(X, y, 1)
    b = rbprop.Net([784, 20, 16, 10], channel="rbp", seed=2)
    assert not np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    b.weights = a.weights
    b.biases = a.biases
    b.feedback = a.feedback
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    for k, c in a.feedback.items():
        assert np.array_equal(b.feedback[k], c)
    # None keeps a layer; any float dtype is taken
    w1 = np.full((16, 20), 0.01, dtype=np.float64)
    b.weights = [None, w1, None]
    assert np.array_equal(b.weights[1], w1.astype(np.float32))
    assert np.array_equal(b.weights[0], a.weights[0])
    b.feedback = {(0, 1): np.zeros((20, 16))}
    assert not b.feedback[(0, 1)].any() and np.array_equal(b.feedback[(1, 2)], a.feedback[(1, 2)])
    with pytest.raises(ValueError, match=r"weights\[1\]: shape \[20, 16\], expected \[16, 20\]"):
        b.weights = [None, np.zeros((20, 16)), None]
    with pytest.raises(ValueError, match=r"biases: expected a list of 3 arrays"):
        b.biases = [np.zeros(20)]
    with pytest.raises(ValueError, match=r"weights\[0\]: holds a non-finite value"):
        b.weights = [np.full((20, 784), np.nan), None, None]
    with pytest.raises(ValueError, match=r"feedback\[\(0, 2\)\]: this channel has no such matrix; its keys are \(0, 1\), \(1, 2\)"):
        b.feedback = {(0, 2): np.zeros((20, 10))}
    with pytest.raises(TypeError, match="weights"):
        b.weights = [np.zeros((20, 784), dtype=np.int64), None, None]
    # nothing changed on an error
    assert np.array_equal(b.weights[1], w1.astype(np.float32))


def test_layer_specs_describe_dense_and_conv_layers():
    net = rbprop.Net(arch="conv4k3-pool2-fc8", input_shape=(1, 12, 12), classes=3)
    specs = net.layer_specs
    assert [s["kind"] for s in specs] == ["conv", "dense", "dense"]
    assert specs[0]["c_out"] == 4 and specs[0]["k"] == 3 and specs[0]["pad"] == 1
    assert specs[0]["pool"] == {"k": 2, "stride": 2, "pad": 0}
    assert specs[1]["n_in"] == 4 * 6 * 6 and specs[2]["n_out"] == 3


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: the torch bridge is not tested here")


def conv_data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, 2, 12, 12), dtype=np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize(
    "settings",
    [
        dict(layers=[784, 32, 16, 10], activation="tanh"),
        dict(arch="conv6k3-pool2-conv8k3s1p0-pool3s2-fc12", input_shape=(2, 12, 12), classes=4, activation="relu"),
    ],
    ids=["dense", "conv"],
)
def test_to_torch_predicts_as_rbp_and_from_torch_gives_the_net_back(torch, data, settings):
    settings = dict(settings)
    layers = settings.pop("layers", None)
    net = rbprop.Net(layers, channel="srbp", seed=3, **settings)
    if layers:
        X, y, Xt, _ = data
    else:
        (X, y), (Xt, _) = conv_data(200, 1), conv_data(100, 2)
    net.fit(X, y, 1, batch=50)
    module = net.to_torch()
    with torch.no_grad():
        logits = module(torch.from_numpy(np.ascontiguousarray(Xt)))
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), net.predict_proba(Xt), rtol=1e-4, atol=1e-6)
    back = rbprop.Net.from_torch(module, input_shape=net.input_shape, channel="srbp", seed=3)
    assert [s["kind"] for s in back.layer_specs] == [s["kind"] for s in net.layer_specs]
    for a, b in zip(back.weights + back.biases, net.weights + net.biases):
        assert np.array_equal(a, b)
    assert np.array_equal(back.predict_proba(Xt), net.predict_proba(Xt))


def test_from_torch_names_the_first_module_it_cannot_express(torch):
    nn = torch.nn
    with pytest.raises(ValueError, match=r"module 2 \(2: Dropout.*rbp has no layer like Dropout"):
        rbprop.Net.from_torch(nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Dropout(0.5), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="the same activation"):
        rbprop.Net.from_torch(nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="without bias"):
        rbprop.Net.from_torch(nn.Sequential(nn.Linear(8, 4, bias=False), nn.Tanh(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="input_shape: needed for a conv net"):
        rbprop.Net.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)))


def test_one_bp_step_equals_torch_autograd(torch, data):
    """The recipe of docs/python.md: one SGD step of rbp's BP equals torch's on the same
    minibatch (mean cross-entropy, the same learning rate, no momentum or decay)."""
    X, y, _, _ = data
    net = rbprop.Net([784, 32, 16, 10], channel="bp", seed=5, lr=0.1, decay=0.0)
    module = net.to_torch()
    xb, yb = X[:50], y[:50]
    net.step(xb, yb)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(np.ascontiguousarray(xb))), torch.from_numpy(yb))
    loss.backward()
    opt.step()
    params = [p.detach().numpy() for p in module.parameters()]
    mine = [v for pair in zip(net.weights, net.biases) for v in pair]
    for a, b in zip(mine, params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
