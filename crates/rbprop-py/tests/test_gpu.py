"""The GPU backend from Python: `device="gpu"` trains like the CPU to f32 rounding, repeats
exactly on one adapter, and reaches the command line's run loop and grids. Skipped without a GPU
adapter (lavapipe will do), unless RBP_GPU=1 makes that a failure."""

import os

import numpy as np
import pytest

import rbprop


@pytest.fixture(scope="module")
def gpu():
    try:
        rbprop.Net([4, 2], device="gpu")
    except ValueError as e:
        if os.environ.get("RBP_GPU") == "1":
            pytest.fail(f"RBP_GPU=1 requires a GPU adapter: {e}")
        pytest.skip(f"no GPU adapter: {e}")


def data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
    y = (x[:, 0, :6].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, :, :6].sum(axis=(1, 2)) > 0)
    return x, y


def close(cpu, gpu, rel):
    for c, g in zip(cpu, gpu):
        for key in ("train_loss", "test_loss"):
            assert abs(c[key] - g[key]) <= rel * c[key], (key, c, g)
        assert (c["steps"], c["lr"]) == (g["steps"], g["lr"])


@pytest.mark.parametrize(
    "settings",
    [
        dict(layers=[144, 32, 16, 4], channel="srbp"),
        dict(arch="conv4k3p1-pool2s2-fc16", input_shape=(1, 12, 12), classes=4, channel="rbp"),
        dict(layers=[144, 32, 4], channel="rbp", quantize_update="8:auto:stochastic", decay=0.0),
    ],
)
def test_fit_on_the_gpu_agrees_with_the_cpu_and_repeats(gpu, settings):
    x, y = data(400, 1)
    xt, yt = data(100, 2)
    common = dict(settings, lr=0.05, batch=20, seed=3)
    cpu = rbprop.Net(**common).fit(x, y, epochs=2, validation=(xt, yt)).history_
    a = rbprop.Net(**common, device="gpu")
    got = a.fit(x, y, epochs=2, validation=(xt, yt)).history_
    close(cpu, got, 1e-2 if "quantize_update" in settings else 1e-3)
    again = rbprop.Net(**common, device="gpu").fit(x, y, epochs=2, validation=(xt, yt)).history_
    assert [m["train_loss"] for m in got] == [m["train_loss"] for m in again]
    # the weights came back to the host: predictions read them
    assert a.predict(xt).shape == (100,)
    assert a.evaluate(xt, yt)["loss"] == pytest.approx(got[-1]["test_loss"], rel=1e-6)
    # one update on the device
    step = a.step(x[:20], y[:20])
    assert np.isfinite(step["loss"])


def test_train_and_reproduce_take_the_device(gpu, tmp_path):
    net = rbprop.train(device="gpu", hidden=[16], epochs=1, train_limit=300, out=tmp_path / "run")
    assert len(net.history) == 1
    assert 'device = "gpu"' in (tmp_path / "run" / "config.toml").read_text()
    repo = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    config = os.path.join(repo, "configs", "smoke", "basic.toml")
    rbprop.reproduce(config, tmp_path / "grid", quick=1, device="gpu")
    # found finished whichever device asks
    done = rbprop.reproduce(config, tmp_path / "grid", quick=1, device="cpu")
    assert len(done) > 0
    with pytest.raises(ValueError, match="adapter"):
        rbprop.reproduce(config, tmp_path / "grid", adapter="x")


def test_gpu_grids_stack_their_seeds_and_keep_the_solo_results(gpu, tmp_path):
    """On the GPU `reproduce` stacks each cell's seeds by default; every run's metrics are
    those of its run alone on the GPU, to the bit (the epochs' seconds aside)."""
    import json
    import pathlib

    repo = pathlib.Path(__file__).resolve().parents[3]
    config = repo / "configs" / "smoke" / "basic.toml"
    rbprop.reproduce(config, tmp_path / "ens", quick=1, device="gpu")
    rbprop.reproduce(config, tmp_path / "solo", quick=1, device="gpu", ensemble=1)

    def metrics(path):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for r in rows:
            r.pop("seconds")
        return rows

    found = sorted((tmp_path / "ens").rglob("metrics.jsonl"))
    assert len(found) >= 10
    for m in found:
        solo = tmp_path / "solo" / m.relative_to(tmp_path / "ens")
        assert metrics(m) == metrics(solo), m


@pytest.mark.parametrize("settings", [dict(channel="srbp"), dict(channel="rbp", momentum=0.9)])
def test_steps_stay_on_the_device_and_reads_see_every_one(gpu, settings):
    x, y = data(120, 4)
    x = x.reshape(120, -1)
    common = dict(settings, layers=[144, 24, 4], lr=0.05, seed=5, device="gpu")
    batches = [(x[i : i + 20], y[i : i + 20]) for i in range(0, 120, 20)]
    # a loop of steps only
    plain = rbprop.Net(**common)
    losses = [plain.step(bx, by)["loss"] for bx, by in batches]
    # the same steps with every kind of read between them
    mixed = rbprop.Net(**common)
    got = []
    for i, (bx, by) in enumerate(batches):
        got.append(mixed.step(bx, by)["loss"])
        assert mixed.steps == i + 1
        reads = [mixed.predict, lambda v: mixed.evaluate(v, by), lambda v: mixed.weights, lambda v: repr(mixed)]
        reads[i % 4](bx)
    assert got == losses
    for a, b in zip(plain.tensors().items(), mixed.tensors().items()):
        assert a[0] == b[0] and np.array_equal(a[1], b[1]), a[0]
    # the host sees all six updates: the same weights as the CPU's to f32 rounding
    cpu = rbprop.Net(**dict(common, device="cpu"))
    for bx, by in batches:
        cpu.step(bx, by)
    for a, b in zip(cpu.weights, plain.weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert plain.steps == 6
    # fit continues from the steps done on the device
    more = plain.fit(x, y, epochs=1, batch=20).history_
    assert more[-1]["steps"] == 6 + 6


def test_an_emulated_adapter_is_named_and_warned_about(gpu, rbp, tmp_path):
    """The command line names the adapter it opens; Python warns exactly when that adapter is a
    CPU emulation of a GPU (lavapipe in CI: then the warning must come)."""
    import warnings

    done = rbp("train", "--device", "gpu", "--hidden", "4", "--train-limit", "100", "--epochs", "1",
               "--out", tmp_path / "run")
    line = next(l for l in done.stdout.splitlines() if l.startswith("device: gpu, adapter "))
    emulated = line.endswith(", Cpu)")
    assert ("CPU emulation" in done.stderr) == emulated, done.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rbprop.Net([4, 2], device="gpu")
    warned = [w for w in caught if issubclass(w.category, RuntimeWarning) and "CPU emulation" in str(w.message)]
    assert bool(warned) == emulated, (line, [str(w.message) for w in caught])
    if warned:
        assert line.removeprefix("device: gpu, adapter ") in str(warned[0].message)
