"""Time per epoch of training driven from Python (rbprop.Net.fit on numpy arrays) against the
command line (`rbp train`), same net, data, channel, seed and thread count.

The command line's time per epoch is (wall(E epochs) - wall(1 epoch)) / (E - 1), which removes
start-up and data loading; Python's is the wall time of epochs 2..E of fit_iter (the arrays are
checked and copied once, when the iterator is made: that one-time cost is printed apart, with a
numpy copy of the same arrays for scale). Both include the test-set evaluation after each epoch.
Prints one line per channel.

    python bench/python_vs_cli.py --data /usr/share/datasets/fashion-mnist --epochs 4
"""

import argparse
import gzip
import pathlib
import subprocess
import tempfile
import time

import numpy as np

import rbprop

REPO = pathlib.Path(__file__).resolve().parents[1]


def idx(path):
    raw = gzip.decompress(pathlib.Path(path).read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(shape)


def cli_wall(binary, data, channel, epochs, threads):
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [binary, "train", "--data", data, "--channel", channel, "--epochs", str(epochs),
             "--threads", str(threads), "--out", f"{tmp}/run"],
            check=True, capture_output=True,
        )
        return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--channels", default="bp,rbp,srbp")
    ap.add_argument("--rbp", default=str(REPO / "target" / "release" / "rbp"))
    a = ap.parse_args()
    d = pathlib.Path(a.data)
    X = idx(d / "train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    Xt = idx(d / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    yt = idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    print(f"784-100x4-10 tanh, batch 100, full Fashion-MNIST, {a.threads} thread(s), "
          f"median of {a.rounds} rounds, seconds per epoch (train + test evaluation)")
    for channel in a.channels.split(","):
        cli, py, conversion, copy = [], [], [], []
        for _ in range(a.rounds):
            many = cli_wall(a.rbp, a.data, channel, a.epochs, a.threads)
            one = cli_wall(a.rbp, a.data, channel, 1, a.threads)
            cli.append((many - one) / (a.epochs - 1))
            net = rbprop.Net([784, 100, 100, 100, 100, 10], channel=channel, seed=1, threads=a.threads)
            start = time.perf_counter()
            epochs = net.fit_iter(X, y, epochs=a.epochs, validation=(Xt, yt))
            conversion.append(time.perf_counter() - start)
            next(epochs)
            start = time.perf_counter()
            for _ in epochs:
                pass
            py.append((time.perf_counter() - start) / (a.epochs - 1))
            start = time.perf_counter()
            np.ascontiguousarray(X).copy(), np.ascontiguousarray(Xt).copy()
            copy.append(time.perf_counter() - start)
        c, p = float(np.median(cli)), float(np.median(py))
        print(f"{channel:5s}  rbp {c:.3f} s  python {p:.3f} s  python/rbp {p / c:.3f}  "
              f"(once per fit: arrays checked and copied {np.median(conversion):.3f} s; "
              f"numpy copy {np.median(copy):.3f} s)")


if __name__ == "__main__":
    main()
