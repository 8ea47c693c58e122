#!/usr/bin/env python3
"""Regenerate crates/rbprop/data/fashion-mnist-subset/ from the full Fashion-MNIST IDX files.

The embedded subset is the first N_TRAIN training and the first N_TEST test examples of
Fashion-MNIST (Zalando Research, MIT licence), re-written in the same IDX format, gzip-compressed.

    python3 scripts/make_embedded_subset.py /usr/share/datasets/fashion-mnist crates/rbprop/data/fashion-mnist-subset
"""
import gzip
import struct
import sys
from pathlib import Path

N_TRAIN, N_TEST = 10000, 2000


def subset(src: Path, dst: Path, n: int) -> None:
    raw = gzip.open(src, "rb").read()
    magic, count = struct.unpack(">II", raw[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * (ndim - 1), raw[8 : 4 + 4 * ndim]) if ndim > 1 else ()
    item = 1
    for d in dims:
        item *= d
    header = struct.pack(">II", magic, n) + struct.pack(">" + "I" * len(dims), *dims)
    body = raw[4 + 4 * ndim : 4 + 4 * ndim + n * item]
    assert count >= n and len(body) == n * item
    with gzip.GzipFile(dst, "wb", compresslevel=9, mtime=0) as f:
        f.write(header + body)


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    for name, n in [("train-images-idx3-ubyte", N_TRAIN), ("train-labels-idx1-ubyte", N_TRAIN),
                    ("t10k-images-idx3-ubyte", N_TEST), ("t10k-labels-idx1-ubyte", N_TEST)]:
        subset(src / (name + ".gz"), dst / (name + ".gz"), n)


if __name__ == "__main__":
    main()
