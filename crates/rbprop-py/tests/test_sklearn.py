"""The scikit-learn protocol of `rbprop.Net`: fit returns the net, score, classes_, get/set_params,
partial_fit, pickle and deepcopy round trips that predict and train on bit for bit, verbose and
progress. The tests that need scikit-learn itself skip (and say so) where it is not installed."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from conftest import without_timing

import rbprop


@pytest.fixture(scope="module")
def data():
    X, y, Xt, yt = rbprop.load_data()
    return X[:600], y[:600], Xt[:500], yt[:500]


def make(**kw):
    return rbprop.Net([784, 24, 10], **{"channel": "srbp", "seed": 3, "momentum": 0.5, **kw})


def test_fit_returns_the_net_with_its_history(data):
    X, y, Xt, yt = data
    net = make()
    assert net.fit(X, y, 2, validation=(Xt, yt)) is net  # epochs positional, too
    assert net.history_ == net.history and [m["epoch"] for m in net.history_] == [1, 2]
    assert net.score(Xt, yt) == net.evaluate(Xt, yt)["accuracy"] == net.history_[-1]["test_acc"]
    assert net.classes_.tolist() == list(range(10)) and net.classes_.dtype == np.int64
    assert net.n_features_in_ == 784


def test_the_old_list_result_still_works_with_a_deprecation_warning(data):
    X, y, _, _ = data
    net = make()
    net.fit(X, y, 1)
    with pytest.warns(DeprecationWarning, match="history_"):
        last = net.fit(X, y, 2)[-1]
    assert last == net.history_[-1]
    with pytest.warns(DeprecationWarning):
        assert list(net.fit(X, y, 1)) == net.history_[-1:]
    assert bool(net)  # no __len__: a net is never falsy


def test_get_params_rebuilds_the_same_net_and_set_params_rebuilds_it(data):
    X, y, Xt, yt = data
    net = make(lr=0.05)
    params = net.get_params()
    assert params["layers"] == [784, 24, 10] and params["lr"] == 0.05 and params["channel"] == "srbp"
    assert "data" not in params
    twin = rbprop.Net(**params)
    for a, b in zip(net.weights, twin.weights):
        assert np.array_equal(a, b)
    # every key of print_config but data is a parameter
    settings = {line.split(" = ")[0] for line in net.print_config().splitlines() if " = " in line}
    assert settings - {"data"} <= set(params)
    # the objects given are returned as given (scikit-learn's clone checks identity)
    hidden = [24]
    assert rbprop.Net(input_shape=784, classes=10, hidden=hidden).get_params()["hidden"] is hidden
    net.fit(X, y, 1)
    assert net.set_params(hidden=[8], lr=0.1) is net
    assert net.epochs == 0 and [w.shape for w in net.weights] == [(8, 784), (10, 8)]
    assert net.get_params()["input_shape"] == 784 and net.get_params()["lr"] == 0.1
    fresh = rbprop.Net(input_shape=784, classes=10, hidden=[8], channel="srbp", seed=3, momentum=0.5, lr=0.1)
    assert np.array_equal(net.weights[0], fresh.weights[0])
    with pytest.raises(ValueError, match="`hiden` is not a parameter of Net"):
        net.set_params(hiden=[3])


ROUND_TRIP_SETTINGS = [
    dict(momentum=0.9, weight_decay=1e-4, channel_dropout=0.2),
    dict(momentum=0.0, decay=0.0, quantize_update="8:auto:stochastic", quantize_signal="4:auto"),
]


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
@pytest.mark.parametrize("settings", ROUND_TRIP_SETTINGS, ids=["momentum-dropout", "quantized"])
def test_round_trips_predict_and_train_on_bit_for_bit(data, how, settings):
    X, y, Xt, yt = data
    net = make(**settings)
    net.fit(X, y, 1)
    net.step(X[:7], y[:7])  # a partial epoch: the step count and noise position travel too
    other = {
        "pickle": lambda n: pickle.loads(pickle.dumps(n)),
        "deepcopy": copy.deepcopy,
        "copy": copy.copy,
    }[how](net)
    assert other is not net and other.history_ == net.history_ and other.steps == net.steps
    assert np.array_equal(other.predict_proba(Xt), net.predict_proba(Xt))
    assert other.get_params() == net.get_params()
    net.fit(X, y, 1, validation=(Xt, yt))
    other.fit(X, y, 1, validation=(Xt, yt))
    assert without_timing(other.history_) == without_timing(net.history_)
    for a, b in zip(other.tensors().values(), net.tensors().values()):
        assert np.array_equal(a, b)


def test_partial_fit_is_one_more_epoch(data):
    X, y, Xt, yt = data
    whole = make().fit(X, y, 2)
    parts = make()
    assert parts.partial_fit(X, y, classes=np.arange(10)) is parts
    parts.partial_fit(X, y)
    assert without_timing(parts.history_) == without_timing(whole.history_)
    with pytest.raises(ValueError, match=r"classes: the net's classes are 0..10"):
        parts.partial_fit(X, y, classes=[0, 1])


def test_verbose_prints_a_line_per_epoch_and_progress_sees_every_update(data, capsys):
    X, y, Xt, yt = data
    seen = []
    make().fit(X, y, 2, validation=(Xt, yt), verbose=1, batch=200, progress=seen.append)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("epoch 1 (1/2)  train loss") and "test loss" in out[1]
    assert seen == [{"epoch": e, "done": d, "examples": 600} for e in (1, 2) for d in (200, 400, 600)]
    quiet = make().fit(X, y, 1)
    assert capsys.readouterr().out == "" and quiet.epochs == 1

    def fail(info):
        raise RuntimeError(f"stopped at {info['done']}")

    with pytest.raises(RuntimeError, match="stopped at 200"):
        make().fit(X, y, 1, batch=200, progress=fail)


def test_scikit_learn_clone_grid_search_and_checks(data):
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.utils.estimator_checks import check_estimator

    X, y, _, _ = data
    net = rbprop.Net(input_shape=784, classes=10, hidden=[16], seed=2, epochs=1)
    assert is_classifier(net)
    twin = clone(net)
    assert twin.get_params() == net.get_params()
    assert np.array_equal(twin.weights[0], net.weights[0])
    search = GridSearchCV(net, {"lr": [0.1, 0.02]}, cv=2).fit(X, y)
    assert search.best_params_["lr"] in (0.1, 0.02) and 0 < search.best_score_ <= 1
    assert len(cross_val_score(net, X, y, cv=3)) == 3
    # scikit-learn's own checks that apply to a net of fixed input shape and classes 0..k-1
    # (docs/python.md lists the others and why they do not apply)
    applicable = {
        "check_estimator_cloneable",
        "check_estimator_repr",
        "check_no_attributes_set_in_init",
        "check_mixin_order",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimator_tags_renamed",
        "check_valid_tag_types",
        "check_decision_proba_consistency",
        "check_non_transformer_estimators_n_iter",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(net, on_fail=None)
    ran = {r["check_name"]: r["status"] for r in results if r["check_name"] in applicable}
    assert ran and all(s == "passed" for s in ran.values()), ran
    print(f"scikit-learn {sklearn.__version__}: {len(ran)} applicable checks passed")
