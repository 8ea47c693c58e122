"""The API's promises: the registry, shapes and orientation of weights and feedback, predictions,
the GIL released while training, Ctrl-C between steps, results as DataFrames, dynamics."""

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

import rbprop
from conftest import REPO


def test_channels_registry():
    names = {c["name"]: c for c in rbprop.channels()}
    for n in ["bp", "rbp", "srbp", "arbp", "asrbp", "sbp", "brsf"]:
        assert n in names, n
        assert names[n]["equation"]
    assert "fa" in names["rbp"]["aliases"] or "fa" in sum((c["aliases"] for c in names.values()), [])


def test_weights_orientation_and_softmax():
    """A net with no hidden layer computes softmax(W @ x + b) with W of shape (classes, n_in)."""
    X, y, _, _ = rbprop.load_data()
    net = rbprop.Net([784, 10], seed=1)
    net.fit(X[:500], y[:500], epochs=1)
    (W,), (b,) = net.weights, net.biases
    assert W.shape == (10, 784) and b.shape == (10,)
    x = X[:20].reshape(20, -1).astype(np.float64)
    z = x @ W.T.astype(np.float64) + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    got = net.predict_proba(X[:20])
    assert got.shape == (20, 10)
    np.testing.assert_allclose(got, p, rtol=1e-4, atol=1e-6)
    assert np.array_equal(net.predict(X[:20]), got.argmax(axis=1))


def test_feedback_shapes():
    net = rbprop.Net([784, 50, 40, 10], channel="srbp", seed=1)
    fb = net.feedback
    assert set(fb) == {(0, 2), (1, 2)}
    assert fb[(0, 2)].shape == (50, 10) and fb[(1, 2)].shape == (40, 10)
    rbp = rbprop.Net([784, 50, 40, 10], channel="rbp", seed=1).feedback
    assert rbp[(0, 1)].shape == (50, 40) and rbp[(1, 2)].shape == (40, 10)
    assert rbprop.Net([784, 50, 10], channel="bp").feedback == {}
    # RBP on a conv net: random kernels in place of the next layer's weights, stored as those are
    conv = rbprop.Net(arch="conv4k5-conv6k3-fc8", input_shape=(1, 12, 12), classes=3, channel="rbp")
    weights = [w.shape for w in conv.weights]
    # the conv kernel's place: its 4-d kernel shape; dense matrices: receiving × sending
    # (the second conv's 6 × 12 × 12 outputs receive from the 8 units of the dense layer)
    assert {k: v.shape for k, v in conv.feedback.items()} == {
        (0, 1): weights[1],
        (1, 2): (6 * 12 * 12, 8),
        (2, 3): (8, 3),
    }


def test_step_and_settings():
    X, y, _, _ = rbprop.load_data()
    net = rbprop.Net([784, 32, 10], channel="rbp", seed=1, lr=0.05)
    out = net.step(X[:100], y[:100])
    assert set(out) == {"loss", "accuracy"} and net.steps == 1
    assert net.config["lr"] == 0.05 and net.config["channel"] == "rbp"
    assert 'channel = "rbp"' in net.print_config()


def test_gil_released_while_training():
    X, y, _, _ = rbprop.load_data()
    net = rbprop.Net([784, 256, 256, 10], channel="srbp", seed=1)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    net.fit(X, y, epochs=2)
    elapsed = time.perf_counter() - start
    stop.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + elapsed]
    # a thread that held the GIL for the whole fit would leave the counter a handful of ticks
    assert len(during) > 0.2 * elapsed / 0.001 / 2, (len(during), elapsed)


def test_ctrl_c_stops_between_steps(tmp_path):
    script = textwrap.dedent(
        """
        import signal, sys, threading, os
        import rbprop
        # Python's own Ctrl-C handler, even where the test runs with SIGINT ignored (a
        # background job of a non-interactive shell inherits SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        X, y, Xt, yt = rbprop.load_data()
        net = rbprop.Net([784, 256, 256, 10], channel="rbp", seed=1)
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            net.fit(X, y, epochs=1000)
        except KeyboardInterrupt:
            acc = net.evaluate(Xt, yt)["accuracy"]
            # back at the end of the last finished epoch: the next epoch is a clean run's
            done = net.epochs
            net.fit(X, y, epochs=1)
            clean = rbprop.Net([784, 256, 256, 10], channel="rbp", seed=1).fit(X, y, epochs=done + 1)
            same = net.history_[-1]["train_loss"] == clean.history_[-1]["train_loss"]
            print("interrupted", done, net.steps - 100, acc, same)
            sys.exit(0)
        print("not interrupted")
        sys.exit(1)
        """
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    words = done.stdout.split()
    assert words[0] == "interrupted"
    epochs, steps = int(words[1]), int(words[2])
    # stopped between two updates, then back where the last finished epoch left the net
    assert steps == epochs * 100 and words[4] == "True", done.stdout
    assert time.perf_counter() - start < 60


def test_train_on_embedded_data_and_arrays(tmp_path):
    net = rbprop.train(channel="rbp", hidden=[32], epochs=2, train_limit=3000)
    assert len(net.history) == 2 and net.history[-1]["test_acc"] > 0.5
    X, y, Xt, yt = rbprop.load_data()
    again = rbprop.train(data=(X[:3000], y[:3000], Xt, yt), channel="rbp", hidden=[32], epochs=2)
    assert again.history == net.history or [m["test_acc"] for m in again.history] == [
        m["test_acc"] for m in net.history
    ]
    assert again.config["data"] == "arrays"


def test_fit_together_gives_each_net_its_solo_fit():
    X, y, Xt, yt = rbprop.load_data()
    X, y = X[:1500], y[:1500]
    make = lambda ch: rbprop.Net([784, 24, 16, 10], channel=ch, seed=3, batch=50)
    channels = ["bp", "rbp", "srbp", "top"]
    alone = [make(ch) for ch in channels]
    for net in alone:
        net.fit(X, y, epochs=2, validation=(Xt, yt))
    together = [make(ch) for ch in channels]
    out = rbprop.fit_together(together, X, y, epochs=2, validation=(Xt, yt))
    assert [len(o) for o in out] == [2] * len(channels)
    for a, b, o in zip(alone, together, out):
        for wa, wb in zip(a.weights, b.weights):
            assert np.array_equal(wa, wb)
        strip = lambda h: [{k: v for k, v in m.items() if k != "seconds"} for m in h]
        assert strip(a.history) == strip(b.history) == strip(o)
    # nets that cannot share the minibatches are refused by index
    other = rbprop.Net([784, 24, 16, 10], channel="bp", seed=4, batch=50)
    with pytest.raises(ValueError, match=r"nets\[1\].*seed"):
        rbprop.fit_together([make("bp"), other], X, y, epochs=1)
    net = make("bp")
    with pytest.raises(ValueError, match="twice"):
        rbprop.fit_together([net, net], X, y, epochs=1)


def test_load_data_takes_a_path(tmp_path):
    import pathlib

    X, y, Xt, yt = rbprop.load_data("embedded:fashion-mnist-subset")
    assert X.ndim == 4 and len(X) == len(y)
    # a pathlib.Path is a path like a str: an empty directory is refused with the same error
    with pytest.raises(OSError) as by_path:
        rbprop.load_data(pathlib.Path(tmp_path))
    with pytest.raises(OSError) as by_str:
        rbprop.load_data(str(tmp_path))
    assert str(by_path.value) == str(by_str.value)


def test_reproduce_results_and_table(tmp_path):
    df = rbprop.reproduce(REPO / "configs" / "smoke" / "table1.toml", tmp_path, jobs=2)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == rbprop._result_columns()
    assert set(df["channel"]) >= {"bp", "rbp", "srbp"}
    assert len(df) == df.groupby(["run_id"]).ngroups * 2  # 2 epochs per run
    assert (df["epoch"].max(), df["seed"].nunique()) == (2, 2)
    again = rbprop.results(tmp_path)
    pd.testing.assert_frame_equal(df.reset_index(drop=True), again.reset_index(drop=True))
    table = rbprop.table(tmp_path)
    assert isinstance(table, pd.DataFrame) and len(table) > 0


def test_dynamics_chain_reaches_the_prediction():
    out = rbprop.dynamics.chain([0.5, 0.5], algo="rbp", c=[1.0])
    assert out["states"].shape == (len(out["t"]), 2)
    assert np.allclose(out["states"][0], [0.5, 0.5])
    assert abs(out["end"].prod() - out["target"]) < 1e-6
    assert np.allclose(out["end"], out["predicted"], atol=1e-6)
    wide = rbprop.dynamics.wide(5)
    assert abs(wide["sum"] - wide["target"]) < 1e-6
    s = rbprop.dynamics.sgd([0.5, 0.5])
    assert s["sgd"].shape == s["ode"].shape
    assert abs(rbprop.dynamics.autoencoder(4)["cosine"] - 1) < 1e-3
    g = rbprop.dynamics.general((3, 2, 2))
    assert g["start"].shape == g["end"].shape == (2, 3) and g["speed"] < 1e-3


def test_docstrings():
    for f in [rbprop.Net, rbprop.Net.fit, rbprop.train, rbprop.load, rbprop.results, rbprop.dynamics.chain]:
        assert f.__doc__ and len(f.__doc__) > 40, f


def test_ctrl_c_stops_reproduce_and_the_next_call_finishes(tmp_path):
    (tmp_path / "exp.toml").write_text(
        textwrap.dedent(
            """
            name = "interrupted"
            dataset = "fashion-mnist-subset"
            data = "embedded:fashion-mnist-subset"
            seeds = [1, 2]
            [train]
            epochs = 15
            train_limit = 4000
            hidden = [256, 256]
            [[variant]]
            channel = ["rbp", "srbp"]
            """
        )
    )
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading
        import rbprop
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            rbprop.reproduce({str(tmp_path / "exp.toml")!r}, {str(tmp_path / "results")!r}, jobs=2)
        except KeyboardInterrupt:
            sys.exit(0)
        sys.exit(1)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    partial = rbprop.results(tmp_path / "results")
    assert len(partial) < 4 * 15  # stopped before the end, finished epochs kept
    df = rbprop.reproduce(tmp_path / "exp.toml", tmp_path / "results", jobs=2)
    assert len(df) == 4 * 15 and set(df["status"]) == {"completed"}


def test_the_stubs_list_what_the_module_has():
    """`_rbprop.pyi` names every public function, class, method and property of the compiled
    module, and nothing it lacks."""
    import ast
    import pathlib

    stub = pathlib.Path(rbprop.__file__).parent / "_rbprop.pyi"
    tree = ast.parse(stub.read_text())
    engine = rbprop._rbprop
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    top |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    public = {k for k in dir(engine) if not k.startswith("_")} | {"__version__"}
    assert public == top, (public - top, top - public)
    for cls in [n for n in tree.body if isinstance(n, ast.ClassDef) and hasattr(getattr(engine, n.name), "__dict__")]:
        if issubclass(getattr(engine, cls.name), BaseException):
            continue
        stubbed = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        real = {k for k in vars(getattr(engine, cls.name)) if not k.startswith("_") or k in stubbed}
        real -= {k for k in real if k.startswith("__") and k not in stubbed}
        assert real == {k for k in stubbed if k != "__init__"} | ({"__init__"} & real), (
            cls.name,
            real - stubbed,
            stubbed - real,
        )


def test_the_package_docstring_runs():
    import doctest

    failures, tried = doctest.testmod(rbprop, verbose=False)
    assert tried > 0 and failures == 0


def test_the_examples_run_from_any_folder(tmp_path):
    """Each example copied alone into an empty folder runs there (pandas for results.py;
    quickstart.py needs matplotlib and is skipped without it)."""
    import shutil

    shutil.copy(REPO / "examples" / "python" / "results.py", tmp_path)
    run = subprocess.run([sys.executable, "results.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "rbprop-results" / "example-table1").is_dir()
    assert "sparse n=2" in run.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("matplotlib is not installed: quickstart.py not run")
    shutil.copy(REPO / "examples" / "python" / "quickstart.py", tmp_path)
    run = subprocess.run(
        [sys.executable, "quickstart.py", "--epochs", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "quickstart.png").is_file()


def test_settings_are_the_declaration_and_net_takes_every_key():
    """`rbprop.settings()` lists every key of a run's configuration, with the CLI's defaults,
    and `Net` takes each key as a keyword argument."""
    settings = {s["key"]: s for s in rbprop.settings()}
    net = rbprop.Net([4, 3, 2])
    written = net.config
    # every key a configuration writes is a setting, with the built-in default
    for key, value in written.items():
        assert key in settings, key
        if key not in ("data", "hidden"):
            assert settings[key]["default"] == value, (key, settings[key]["default"], value)
    assert settings["channel_dropout"]["flag"] == "--channel-dropout"
    assert settings["lr"]["default"] == 0.1 and settings["lr"]["required"]
    assert settings["adapt_factor"]["default"] is None
    assert all(s["help"] for s in settings.values())
    # a key from the list is a keyword of Net; one not in it is refused by name
    net = rbprop.Net([4, 3, 2], channel_dropout=0.25, channel="rbp")
    assert net.config["channel_dropout"] == 0.25
    with pytest.raises(ValueError, match="chanel_dropout"):
        rbprop.Net([4, 3, 2], chanel_dropout=0.25)
