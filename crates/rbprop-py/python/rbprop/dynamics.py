"""The learning dynamics of paper §3, executable: the expected ODEs of BP, RBP and SRBP in small
linear networks, integrated as ``rbp dynamics`` does, returned as numpy arrays.

Each function also returns ``report``, the text ``rbp dynamics`` prints.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from ._rbprop import dynamics_autoencoder as _autoencoder
from ._rbprop import dynamics_chain as _chain
from ._rbprop import dynamics_general as _general
from ._rbprop import dynamics_sgd as _sgd
from ._rbprop import dynamics_wide as _wide

__all__ = ["chain", "wide", "sgd", "autoencoder", "general"]


def chain(
    start: Sequence[float],
    algo: str = "rbp",
    c: Optional[Sequence[float]] = None,
    mu: float = 1.0,
    signed_power: bool = False,
    adaptive: bool = False,
    alpha: float = 1.0,
    beta: float = 1.0,
    t_end: float = 1000.0,
    method: str = "auto",
    step: float = 1e-3,
    rtol: float = 1e-10,
) -> Dict[str, Any]:
    """The chain A[1,...,1] with weights a_1..a_L starting at ``start`` under ``algo``
    (``bp``, ``rbp`` or ``srbp``; channel weights ``c``, default 1), data moments
    α = E[T·I] and β = E[I²], or the non-linear A[1,1,1] with f(x) = x^mu.

    Returns ``t`` (times, ``(steps,)``), ``states`` (``(steps, L)``: a_1..a_L, then the
    channel's c when ``adaptive``), ``end``, ``target`` (α/β), ``predicted`` (the fixed point
    the theory predicts, or None) and ``roots``, and the ``report`` text.
    """
    return _chain(
        list(start), algo, None if c is None else list(c), mu, signed_power, adaptive,
        alpha, beta, t_end, method, step, rtol,
    )


def wide(
    n: int,
    algo: str = "rbp",
    c: Optional[Sequence[float]] = None,
    start: Optional[Sequence[float]] = None,
    seed: int = 1,
    alpha: float = 1.0,
    beta: float = 1.0,
    t_end: float = 1000.0,
    method: str = "auto",
    step: float = 1e-3,
    rtol: float = 1e-10,
) -> Dict[str, Any]:
    """A[1,N,1]: returns the end weights ``a`` (input side) and ``b`` (output side), ``sum``
    (Σ a_i b_i) and ``target`` (α/β) it converges to, and the ``report`` text."""
    return _wide(
        n, algo, None if c is None else list(c), None if start is None else list(start), seed,
        alpha, beta, t_end, method, step, rtol,
    )


def sgd(
    start: Sequence[float],
    algo: str = "rbp",
    c: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    noise: float = 0.1,
    eta: float = 1e-3,
    time: float = 10.0,
    seed: int = 1,
) -> Dict[str, Any]:
    """The per-example learning rule of A[1,1,1] against its expected ODE: returns ``t``,
    ``sgd`` and ``ode`` (``(rows, 2)``: a_1, a_2 of each) and the ``report`` text."""
    return _sgd(list(start), algo, c, alpha, beta, noise, eta, time, seed)


def autoencoder(
    n: int,
    algo: str = "rbp",
    c: Optional[Sequence[float]] = None,
    start: Optional[Sequence[float]] = None,
    seed: int = 1,
    t_end: float = 1000.0,
) -> Dict[str, Any]:
    """The linear autoencoder A[N,1,N] on decorrelated data: returns ``cosine``, cos(a, c) at
    the end (BP: cos(a, b)), which converges to 1 (a ∝ c), and the ``report`` text."""
    return _autoencoder(
        n, algo, None if c is None else list(c), None if start is None else list(start), seed, t_end
    )


def general(sizes: Sequence[int], algo: str = "rbp", seed: int = 1, t_end: float = 1000.0) -> Dict[str, Any]:
    """The general linear A[N0,N1,N2] from a seeded start on synthetic data (Σ_II = Id, Σ_TI a
    seeded matrix): returns the product B·A at the ``start`` and the ``end`` (``(N2, N0)``
    arrays), ``speed`` (how far from a fixed point at the end) and the ``report`` text."""
    n0, n1, n2 = sizes
    return _general((n0, n1, n2), algo, seed, t_end)
