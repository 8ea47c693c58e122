"""PyTorch both ways: `Net.to_torch()` and `Net.from_torch(module, ...)`.

torch is optional: it is imported only when one of these is called.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ._rbprop import Net

_ACTIVATIONS = {"tanh": "Tanh", "logistic": "Sigmoid", "relu": "ReLU", "linear": "Identity"}


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("this needs PyTorch (pip install torch); rbprop itself does not") from e
    return torch


def to_torch(net: Net) -> Any:
    """A ``torch.nn.Sequential`` that computes what ``net`` computes: the same layers
    (``Linear``, ``Conv2d``, ``MaxPool2d``, the hidden activation, ``Flatten`` before the first
    dense layer) with copies of its weights and biases, returning the logits (``predict_proba``
    is their softmax). The feedback path has no counterpart in torch and is not copied."""
    torch = _torch()
    nn = torch.nn
    act_name = net.config["activation"]
    act = getattr(nn, _ACTIVATIONS[act_name])
    specs = net.layer_specs
    modules = []
    flat = False
    for i, (spec, w, b) in enumerate(zip(specs, net.weights, net.biases)):
        last = i == len(specs) - 1
        if spec["kind"] == "conv":
            m = nn.Conv2d(spec["c_in"], spec["c_out"], spec["k"], stride=spec["stride"], padding=spec["pad"])
        else:
            if not flat:
                modules.append(nn.Flatten())
                flat = True
            m = nn.Linear(spec["n_in"], spec["n_out"])
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            m.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(m)
        if not last:
            modules.append(act())
        pool = spec["pool"]
        if pool is not None:
            if 2 * pool["pad"] > pool["k"]:
                raise ValueError(
                    f"layer {i}: pooling pad {pool['pad']} is more than half its window {pool['k']}, "
                    "which torch's MaxPool2d does not allow"
                )
            modules.append(nn.MaxPool2d(pool["k"], stride=pool["stride"], padding=pool["pad"]))
    return nn.Sequential(*modules)


def _pair(v: Union[int, Tuple[int, ...]], what: str, where: str) -> int:
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(set(v)) == 1:
        return int(v[0])
    raise ValueError(f"{where}: {what} {v} is not square; rbp's layers are")


def from_torch(
    module: Any,
    *,
    input_shape: Optional[Union[int, Sequence[int]]] = None,
    **settings: Any,
) -> Net:
    """A ``Net`` with the layers and weights of a torch module, to train with a learning
    channel (``channel="srbp"``, … in ``settings``, with every other setting of ``Net``).

    The module is read as the sequence of its leaf modules: ``Linear`` (with bias),
    ``Conv2d`` (with bias, square kernel, stride and padding, no dilation or groups, zero
    padding), ``MaxPool2d`` (square, after a hidden layer's activation), one kind of hidden
    activation (``Tanh``, ``Sigmoid``, ``ReLU`` or ``Identity``) after every hidden layer,
    ``Flatten``; the last layer is ``Linear`` and its outputs are the classes. Anything else
    (dropout, normalization, residual blocks, …) is refused, naming the first module rbp cannot
    express. Conv nets need ``input_shape=(C, H, W)``; dense nets take it from the first
    ``Linear``. The weights are copied; the net's feedback matrices come from its seed.
    """
    torch = _torch()
    nn = torch.nn
    leaves = [(name, m) for name, m in module.named_modules() if not list(m.children())]
    if not leaves and isinstance(module, nn.Module):
        leaves = [("", module)]
    names = {v: k for k, v in _ACTIVATIONS.items()}
    tokens = []
    layers = []  # (module, kind)
    activation = None
    expect_act = False  # a hidden layer waits for its activation
    pool_ok = False
    for index, (name, m) in enumerate(leaves):
        where = f"module {index} ({name or type(m).__name__}: {m})"
        kind = type(m).__name__
        if isinstance(m, nn.Flatten):
            continue
        if kind in names:
            if not expect_act:
                raise ValueError(f"{where}: an activation must follow a Linear or Conv2d layer, once")
            this = names[kind]
            if activation is not None and this != activation:
                raise ValueError(f"{where}: every hidden layer of a Net has the same activation ({activation})")
            activation, expect_act, pool_ok = this, False, True
            continue
        if expect_act:
            raise ValueError(f"{where}: the hidden layer before it needs an activation first")
        if isinstance(m, nn.Linear):
            if m.bias is None:
                raise ValueError(f"{where}: a Linear layer without bias; rbp's layers have one")
            layers.append((m, "dense"))
            tokens.append(f"fc{m.out_features}")
            expect_act, pool_ok = True, False
        elif isinstance(m, nn.Conv2d):
            if m.bias is None or m.groups != 1 or _pair(m.dilation, "dilation", where) != 1:
                raise ValueError(f"{where}: rbp's convolutions have a bias, no groups and no dilation")
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ValueError(f"{where}: give the padding as a number of zeros")
            k = _pair(m.kernel_size, "kernel", where)
            s = _pair(m.stride, "stride", where)
            p = _pair(m.padding, "padding", where)
            layers.append((m, "conv"))
            tokens.append(f"conv{m.out_channels}k{k}s{s}p{p}")
            expect_act, pool_ok = True, False
        elif isinstance(m, nn.MaxPool2d):
            if not pool_ok:
                raise ValueError(f"{where}: rbp pools only right after a hidden layer's activation")
            if m.ceil_mode or _pair(m.dilation, "dilation", where) != 1 or m.return_indices:
                raise ValueError(f"{where}: rbp's pooling has no ceil mode, dilation or returned indices")
            k = _pair(m.kernel_size, "kernel", where)
            s = _pair(m.stride if m.stride is not None else k, "stride", where)
            p = _pair(m.padding, "padding", where)
            tokens.append(f"pool{k}s{s}p{p}")
            pool_ok = False
        else:
            raise ValueError(f"{where}: rbp has no layer like {kind}")
    if not layers or layers[-1][1] != "dense":
        raise ValueError("the module must end with a Linear layer (its outputs are the classes)")
    if expect_act:
        # the output layer has no activation; its pending slot is the softmax of the loss
        pass
    else:
        raise ValueError("the output Linear layer must not be followed by an activation (the loss applies the softmax)")
    classes = layers[-1][0].out_features
    first = layers[0][0]
    if input_shape is None:
        if layers[0][1] == "conv":
            raise ValueError("input_shape: needed for a conv net, e.g. input_shape=(1, 28, 28)")
        input_shape = first.in_features
    arch = "-".join(tokens[:-1])
    kwargs = dict(settings)
    if activation is not None:
        kwargs.setdefault("activation", activation)
    net = Net(arch=arch, input_shape=input_shape, classes=classes, **kwargs) if arch else Net(
        input_shape=input_shape, classes=classes, hidden=[], **kwargs
    )
    specs = net.layer_specs
    if len(specs) != len(layers):  # pragma: no cover - the arch string mirrors the layers
        raise ValueError("the net built has another number of layers than the module")
    for i, ((m, _), spec) in enumerate(zip(layers, specs)):
        want = tuple(m.weight.shape)
        if spec["kind"] == "dense" and want != (spec["n_out"], spec["n_in"]):
            raise ValueError(
                f"layer {i} ({m}): takes {want[1]} inputs where the layer below gives {spec['n_in']}"
            )
    net.weights = [m.weight.detach().cpu().numpy() for m, _ in layers]
    net.biases = [m.bias.detach().cpu().numpy() for m, _ in layers]
    return net
