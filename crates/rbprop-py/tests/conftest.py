"""Shared fixtures: the repository, the command line `rbp` to compare with, and a reader of
checkpoints written independently of the package (the safetensors layout, with numpy)."""

import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def rbp_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("RBP_BIN", REPO / "target" / "release" / "rbp"))
    if not path.is_file():
        pytest.fail(f"{path}: the rbp command line is needed to compare with; run `cargo build --release` first (or set RBP_BIN)")
    return path


@pytest.fixture(scope="session")
def rbp():
    binary = rbp_binary()

    def run(*args, check=True):
        done = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, cwd=REPO)
        if check and done.returncode != 0:
            raise AssertionError(f"rbp {' '.join(map(str, args))} failed:\n{done.stderr}")
        return done

    return run


def read_metrics(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]


def without_timing(metrics):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]


def read_safetensors(path):
    """name -> float32 array of a safetensors file: 8-byte header length, JSON header, data."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"])
    return out


def fashion_mnist_dir():
    path = os.environ.get("RBP_FASHION_MNIST")
    return pathlib.Path(path) if path else None
