"""Quickstart: BP, RBP and SRBP on Fashion-MNIST from Python, learning curves with matplotlib.

    pip install ./crates/rbprop-py matplotlib
    python examples/python/quickstart.py                         # the embedded subset, seconds
    python examples/python/quickstart.py --data /usr/share/datasets/fashion-mnist --epochs 20

Writes quickstart.png (test accuracy per epoch of each channel).
"""

import argparse

import rbprop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=rbprop.EMBEDDED, help="a Fashion-MNIST/MNIST directory (IDX files)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default="quickstart.png")
    a = ap.parse_args()

    X, y, Xt, yt = rbprop.load_data(a.data)
    curves = {}
    for channel in ["bp", "rbp", "srbp"]:
        net = rbprop.Net([784, 100, 100, 100, 100, 10], channel=channel, seed=1)
        curves[channel] = []
        # one epoch per iteration: the curve grows while it trains
        for m in net.fit_iter(X, y, epochs=a.epochs, validation=(Xt, yt)):
            curves[channel].append(m["test_acc"])
            print(f"{channel:5s} epoch {m['epoch']:3d}  test accuracy {100 * m['test_acc']:.2f}%")
        angles = net.alignment(X[:1000], y[:1000])  # a DataFrame with pandas, else dicts
        rows = angles.to_dict("records") if hasattr(angles, "to_dict") else angles
        print(f"{channel:5s} angle of δ to BP's per hidden layer:",
              ", ".join(f"{r['delta_angle']:.0f}°" for r in rows))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for channel, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), [100 * v for v in accs], marker="o", label=channel.upper())
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out, dpi=150)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
