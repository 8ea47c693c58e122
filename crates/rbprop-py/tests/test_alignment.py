"""`Net.alignment` against the same quantities computed with numpy from the net's own weights,
biases and feedback matrices (tanh net, softmax cross-entropy)."""

import numpy as np
import pytest

import rbprop


def angle(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    c = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def rows(table):
    return table.to_dict("records") if hasattr(table, "to_dict") else table


def reference(net, X, y, channel):
    """δ angles, update angles, orthants and (C, Wᵀ) of every hidden layer, by hand."""
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    C = {k: v.astype(np.float64) for k, v in net.feedback.items()}
    h = [X.reshape(len(X), -1).astype(np.float64)]
    for i in range(len(W) - 1):
        h.append(np.tanh(h[-1] @ W[i].T + b[i]))
    logits = h[-1] @ W[-1].T + b[-1]
    o = np.exp(logits - logits.max(1, keepdims=True))
    o /= o.sum(1, keepdims=True)
    top = o - np.eye(W[-1].shape[0])[y]
    hidden = len(W) - 1
    bp, mine = [None] * hidden, [None] * hidden
    below_bp, below = top, top
    for i in reversed(range(hidden)):
        fprime = 1 - h[i + 1] ** 2
        bp[i] = (below_bp @ W[i + 1]) * fprime
        if channel == "rbp":
            mine[i] = (below @ C[(i, i + 1)].T) * fprime
        else:  # srbp: the top layer's error, straight to every hidden layer
            mine[i] = (top @ C[(i, hidden)].T) * fprime
        below_bp, below = bp[i], mine[i]
    out = []
    for i in range(hidden):
        up, up_bp = -(mine[i].T @ h[i]), -(bp[i].T @ h[i])
        moving = up_bp != 0
        row = dict(
            layer=i,
            delta_angle=angle(mine[i], bp[i]),
            update_angle=angle(up, up_bp),
            orthant=np.mean((np.sign(up) == np.sign(up_bp))[moving]),
        )
        if (i, i + 1) in C:  # C stands in W_{i+1}ᵀ's place (RBP; SRBP's last hidden layer)
            row["feedback_angle"] = angle(C[(i, i + 1)], W[i + 1].T)
            row["feedback_norm_ratio"] = np.linalg.norm(C[(i, i + 1)]) / np.linalg.norm(W[i + 1])
        else:
            row["feedback_angle"] = row["feedback_norm_ratio"] = None
        out.append(row)
    return out


@pytest.mark.parametrize("channel", ["rbp", "srbp"])
def test_alignment_matches_numpy(channel):
    X, y, _, _ = rbprop.load_data()
    X, y = X[:300], y[:300]
    net = rbprop.Net([784, 24, 16, 10], channel=channel, seed=7)
    net.fit(X, y, 1, batch=50)  # away from the initial weights
    got = rows(net.alignment(X, y))
    want = reference(net, X, y, channel)
    assert [r["layer"] for r in got] == [0, 1] and all(r["learns"] for r in got)
    for g, w in zip(got, want):
        for key, value in w.items():
            if value is None:  # None in a list of dicts, NaN in a DataFrame
                assert g[key] is None or np.isnan(g[key]), (channel, g["layer"], key)
            else:
                assert g[key] == pytest.approx(value, abs=1e-3), (channel, g["layer"], key)
        assert g["signal_zero"] is None or np.isnan(g["signal_zero"])
    if channel == "srbp":  # only the last hidden layer's route comes from the layer above
        assert want[0]["feedback_angle"] is None and want[1]["feedback_angle"] is not None


def test_bp_is_aligned_with_itself_and_layers_match_the_weights_numbering():
    X, y, _, _ = rbprop.load_data()
    net = rbprop.Net([784, 20, 20, 10], channel="bp", seed=1)
    got = rows(net.alignment(X[:200], y[:200]))
    assert [r["layer"] for r in got] == [0, 1]
    for r in got:
        assert r["delta_angle"] == pytest.approx(0, abs=1e-3)
        assert r["update_angle"] == pytest.approx(0, abs=1e-3)
        assert r["orthant"] == 1.0
    # the rows are numbered as net.weights and the keys of net.feedback
    rbp = rbprop.Net([784, 20, 20, 10], channel="rbp", seed=1)
    assert sorted(rbp.feedback) == [(r["layer"], r["layer"] + 1) for r in rows(rbp.alignment(X[:50], y[:50]))]


def test_alignment_is_a_dataframe_with_pandas():
    pd = pytest.importorskip("pandas")
    X, y, _, _ = rbprop.load_data()
    table = rbprop.Net([784, 20, 10], channel="rbp", seed=1).alignment(X[:100], y[:100])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns[:6]) == ["layer", "learns", "delta_angle", "update_angle", "orthant", "feedback_angle"]
