//! # The learning channel
//!
//! Baldi, Sadowski & Lu (2018), §1: every algorithm of the family trains the top layer with the
//! true error `δ_L = O_L − T` and differs only in *how error information reaches the hidden
//! layers*. That path is the learning channel, and this module is the only place it lives.
//!
//! A [`Channel`] gives each hidden layer `i` a [`Route`]: the signal arriving at the layer,
//! before any derivative, is a sum of [`Term`]s
//!
//! ```text
//!   g_i = Σ_terms  input_k · carrierᵀ        (batch × N_i)
//!   δ_i = g_i ⊙ f'(S_i)    (or δ_i = g_i for the no-derivative versions)
//! ```
//!
//! where `input_k` is read from an upper layer `k` — its error `δ_k` or its un-differentiated
//! signal `g_k` — and the carrier is either the transposed forward weights `W_{i+1}ᵀ` (BP, SBP) or
//! a feedback matrix `C` owned by the channel (RBP, SRBP and their variants). A layer with no
//! route does not learn (top-only). Each named algorithm is a builder in [`registry`], which is
//! the one place to add a variant.

pub mod registry;

use crate::error::{Error, Result};
use crate::kernels::{Mat, gemm};
use crate::model::Mlp;
use crate::rng::{self, Rng};

pub use registry::{CHANNELS, ChannelKind, ChannelSpec};

/// Which signal of an upper layer `k` a term reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `δ_k`: the layer's error signal, derivative included (for the top layer, `O_L − T`).
    Delta,
    /// `g_k`: the signal that arrived at layer `k` before its derivative (SBP passes this down);
    /// for the top layer it is `δ_L`.
    Signal,
}

/// What carries a term's input down to the receiving layer `i`.
#[derive(Clone, Debug, PartialEq)]
pub enum Carrier {
    /// `W_{i+1}ᵀ`, the forward weights of the layer just above, transposed (needs `k = i + 1`).
    ForwardTranspose,
    /// A feedback matrix `C` (`N_i × N_k`, row-major) owned by the channel.
    Feedback(Vec<f32>),
}

/// One contribution `input_k · carrierᵀ` to a hidden layer's signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// The upper layer `k` the input comes from (0-based weight-layer index, `k > i`).
    pub from: usize,
    pub input: Input,
    pub carrier: Carrier,
}

/// The incoming channel of one hidden layer: its signal is the sum of the terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub terms: Vec<Term>,
}

/// A learning channel instantiated for one net: a route (or none) for every hidden layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Canonical name, e.g. `rbp` or `srbp-nof`.
    pub name: String,
    /// Whether hidden layers multiply their signal by `f'(S)`.
    pub derivative: bool,
    /// `routes[i]` feeds hidden layer `i` (`0 ≤ i < L − 1`); `None`: the layer does not learn.
    pub routes: Vec<Option<Route>>,
}

impl Channel {
    /// Builds the channel `spec` for `net`, drawing feedback matrices from `rng`.
    pub fn new(spec: &ChannelSpec, net: &Mlp, rng: &mut Rng) -> Result<Self> {
        let routes = (spec.kind.build)(net, rng);
        let channel = Channel {
            name: spec.canonical_name(),
            derivative: spec.derivative,
            routes,
        };
        channel.validate(net)?;
        Ok(channel)
    }

    /// Checks that every route is well-formed for `net`.
    pub fn validate(&self, net: &Mlp) -> Result<()> {
        let top = net.depth() - 1;
        let sizes = net.sizes();
        if self.routes.len() != top {
            return Err(Error::config(
                "channel",
                format!(
                    "`{}` has {} routes for a net with {top} hidden layers",
                    self.name,
                    self.routes.len()
                ),
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            let Some(route) = route else { continue };
            for t in &route.terms {
                let ok_source = t.from > i && (t.from == top || self.routes[t.from].is_some());
                let ok_carrier = match &t.carrier {
                    Carrier::ForwardTranspose => t.from == i + 1,
                    Carrier::Feedback(c) => c.len() == sizes[i + 1] * sizes[t.from + 1],
                };
                if !ok_source || !ok_carrier {
                    return Err(Error::config(
                        "channel",
                        format!(
                            "`{}`: hidden layer {} cannot receive from layer {} this way",
                            self.name,
                            i + 1,
                            t.from + 1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether weight layer `i` learns (the top layer always does).
    pub fn learns(&self, i: usize) -> bool {
        i >= self.routes.len() || self.routes[i].is_some()
    }

    /// One line per hidden layer saying what it receives, for the run log.
    pub fn describe(&self, net: &Mlp) -> Vec<String> {
        let sizes = net.sizes();
        let top = net.depth() - 1;
        let layer = |k: usize| {
            if k == top {
                "top".to_string()
            } else {
                format!("{}", k + 1)
            }
        };
        self.routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let what = match r {
                    None => "nothing (frozen)".to_string(),
                    Some(r) => r
                        .terms
                        .iter()
                        .map(|t| {
                            let x = match t.input {
                                Input::Delta => format!("δ[{}]", layer(t.from)),
                                Input::Signal => format!("g[{}]", layer(t.from)),
                            };
                            match t.carrier {
                                Carrier::ForwardTranspose => format!("W[{}]ᵀ·{x}", layer(t.from)),
                                Carrier::Feedback(_) => {
                                    format!("C({}×{})·{x}", sizes[i + 1], sizes[t.from + 1])
                                }
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" + "),
                };
                let d = if r.is_some() && self.derivative {
                    " ⊙ f'"
                } else {
                    ""
                };
                format!(
                    "hidden layer {} ({} units) ← {what}{d}",
                    i + 1,
                    sizes[i + 1]
                )
            })
            .collect()
    }

    /// Runs the channel over a batch: given the forward outputs `acts` (`acts[i]` = `O_i`) and
    /// `deltas[L−1] = δ_L`, fills `signals[i]` and `deltas[i]` for every hidden layer that learns,
    /// from the top down. Reads the forward weights of `net` (not yet updated).
    pub fn backward(
        &self,
        net: &Mlp,
        acts: &[Vec<f32>],
        deltas: &mut [Vec<f32>],
        signals: &mut [Vec<f32>],
        batch: usize,
    ) {
        let sizes = net.sizes();
        let top = net.depth() - 1;
        for i in (0..top).rev() {
            let Some(route) = &self.routes[i] else {
                continue;
            };
            let n_i = sizes[i + 1];
            let (sig_lo, sig_hi) = signals.split_at_mut(i + 1);
            let (del_lo, del_hi) = deltas.split_at_mut(i + 1);
            let g = &mut sig_lo[i][..batch * n_i];
            for (t_idx, t) in route.terms.iter().enumerate() {
                let n_k = sizes[t.from + 1];
                let src = if t.from == top || t.input == Input::Delta {
                    &del_hi[t.from - i - 1]
                } else {
                    &sig_hi[t.from - i - 1]
                };
                let x = Mat::new(&src[..batch * n_k], batch, n_k);
                let beta = if t_idx == 0 { 0.0 } else { 1.0 };
                match &t.carrier {
                    // g += x · W_{i+1}        (W_{i+1}: N_k × N_i)
                    Carrier::ForwardTranspose => {
                        gemm(1.0, x, Mat::new(&net.layers[t.from].w, n_k, n_i), beta, g)
                    }
                    // g += x · Cᵀ             (C: N_i × N_k)
                    Carrier::Feedback(c) => gemm(1.0, x, Mat::t(c, n_i, n_k), beta, g),
                }
            }
            let d = &mut del_lo[i][..batch * n_i];
            d.copy_from_slice(g);
            if self.derivative {
                net.activation
                    .mul_derivative(&acts[i + 1][..batch * n_i], d);
            }
        }
    }

    /// All feedback matrices, as (receiving hidden layer, sending layer, `C`).
    pub fn feedback_matrices(&self) -> Vec<(usize, usize, &[f32])> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            for t in r.iter().flat_map(|r| &r.terms) {
                if let Carrier::Feedback(c) = &t.carrier {
                    out.push((i, t.from, c.as_slice()));
                }
            }
        }
        out
    }
}

/// A feedback matrix `C` (`rows × cols`) with entries `N(0, 1/rows)`: the scale of the forward
/// weights that feed a layer of `rows` units (paper §1 default for RBP and SRBP).
pub fn gaussian_feedback(rows: usize, cols: usize, rng: &mut Rng) -> Vec<f32> {
    let sd = (1.0 / rows as f64).sqrt();
    rng::normal_vec(rows * cols, sd, rng)
}
