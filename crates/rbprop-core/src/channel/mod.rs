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

pub mod diagnostics;
pub mod feedback;
pub mod options;
pub mod quantize;
pub mod registry;

use crate::error::{Error, Result};
use crate::kernels::simd::dispatch;
use crate::kernels::{Mat, gemm};
use crate::model::{Activations, Net};
use crate::rng::Rng;
use rand::Rng as _;

pub use feedback::FeedbackInit;
pub use options::ChannelOptions;
pub use quantize::Quantizer;
pub use registry::{Build, CHANNELS, ChannelKind, ChannelSpec};

/// Which signal of an upper layer `k` a term reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `δ_k`: the layer's error signal, derivative included (for the top layer, `O_L − T`).
    Delta,
    /// `g_k`: the signal that arrived at layer `k` before its derivative (SBP passes this down);
    /// for the top layer it is `δ_L`.
    Signal,
    /// `−T`: the negated one-hot targets instead of the error (DRTP; only from the top layer).
    Target,
    /// `sign(δ_L)`: the sign of the output error (sign-DFA; only from the top layer).
    ErrorSign,
}

/// What carries a term's input down to the receiving layer `i`.
#[derive(Clone, Debug, PartialEq)]
pub enum Carrier {
    /// `W_{i+1}ᵀ`, the forward weights of the layer just above, transposed (needs `k = i + 1`).
    ForwardTranspose,
    /// A feedback matrix `C` (`N_i × N_k`, row-major) owned by the channel, fixed or adaptive,
    /// projecting straight onto layer i's output (before its pooling).
    Feedback(Feedback),
    /// Random weights in the place of `W_{i+1}` (same shape: a kernel for a convolution), sent
    /// through the transposed operation of layer i+1 and routed back through layer i's pooling
    /// like BP's signal (needs `k = i + 1`). RBP uses it wherever layer i pools or layer i+1 is
    /// not dense; for dense layers without pooling it is the same algorithm as `Feedback`.
    Kernel(Feedback),
    /// `sign(W_{i+1})ᵀ` scaled, recomputed from the current forward weights at every step
    /// (sign-symmetry; needs `k = i + 1`).
    SignOfForward(SignScale),
}

/// A feedback matrix and, for adaptive channels, how it learns.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback {
    /// `C`: `N_i × N_k` row-major (`Carrier::Feedback`), or W_{i+1}'s shape (`Carrier::Kernel`).
    pub c: Vec<f32>,
    /// `None`: fixed. `Some`: `C ← C − η_t·factor/B · O_iᵀ δ_k − η_t·decay·C` after every step.
    pub adapt: Option<Adapt>,
}

/// Learning rule of an adaptive feedback matrix (ARBP, ASRBP, Kolen-Pollack).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapt {
    /// η_c = factor · η_t.
    pub factor: f64,
    /// Weight decay on C (Kolen-Pollack).
    pub decay: f64,
}

/// Magnitudes of a sign-symmetric carrier.
#[derive(Clone, Debug, PartialEq)]
pub enum SignScale {
    /// uSF: every entry has the standard deviation of the current forward weights.
    Uniform,
    /// frSF: fixed random magnitudes `|B0|` (`N_{i+1} × N_i`, in W's orientation).
    Fixed(Vec<f32>),
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

/// A learning channel instantiated for one net: a route (or none) for every hidden layer, and
/// the noise and precision of the channel.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Canonical name, e.g. `rbp` or `srbp-nof`.
    pub name: String,
    /// Whether hidden layers multiply their signal by `f'(S)`.
    pub derivative: bool,
    /// `routes[i]` feeds hidden layer `i` (`0 ≤ i < L − 1`); `None`: the layer does not learn.
    pub routes: Vec<Option<Route>>,
    /// Dropout rate r of the signal arriving at hidden neurons (0 = none).
    pub dropout: f32,
    /// Quantizer of the signal arriving at hidden neurons (after dropout, before f').
    pub quantize_signal: Option<Quantizer>,
    /// Quantizer of each example's weight update, before the minibatch average.
    pub quantize_update: Option<Quantizer>,
    /// Scale of the signal quantizer per hidden layer: fixed, or calibrated at the first update
    /// (0 until then).
    pub signal_alpha: Vec<f32>,
    /// Scale of the update quantizer per weight layer, likewise.
    pub update_alpha: Vec<f32>,
    /// When set, [`Channel::backward`] counts per hidden layer how many signal entries the
    /// quantizer sends to zero and how many it clips: (zero, clipped, total).
    pub census: Option<Vec<(usize, usize, usize)>>,
    /// Stream of the dropout masks and of the keys of stochastic rounding.
    noise: Rng,
}

/// The scale a quantizer starts with: its fixed α, or 0 (calibrated at the first update).
fn fixed_alpha(q: Option<Quantizer>) -> f32 {
    match q.map(|q| q.alpha) {
        Some(quantize::Alpha::Fixed(a)) => a,
        _ => 0.0,
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.derivative == other.derivative
            && self.routes == other.routes
            && self.dropout == other.dropout
            && self.quantize_signal == other.quantize_signal
            && self.quantize_update == other.quantize_update
    }
}

impl Channel {
    /// Builds the channel `spec` for `net` with `options`, drawing feedback matrices from `rng`
    /// and dropout masks from `noise`.
    pub fn new(
        spec: &ChannelSpec,
        options: &ChannelOptions,
        net: &Net,
        rng: &mut Rng,
        noise: Rng,
    ) -> Result<Self> {
        options.validate_for(spec.kind)?;
        let routes = (spec.kind.build)(&mut Build { net, rng, options })?;
        let channel = Channel {
            name: spec.canonical_name(),
            derivative: spec.derivative,
            dropout: options.dropout as f32,
            quantize_signal: options.quantize_signal,
            quantize_update: options.quantize_update,
            signal_alpha: vec![fixed_alpha(options.quantize_signal); routes.len()],
            update_alpha: vec![fixed_alpha(options.quantize_update); routes.len() + 1],
            census: None,
            routes,
            noise,
        };
        channel.validate(net)?;
        Ok(channel)
    }

    /// Checks that every route is well-formed for `net`.
    pub fn validate(&self, net: &Net) -> Result<()> {
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
                let ok_source = t.from > i
                    && (t.from == top || self.routes[t.from].is_some())
                    && (t.from == top || matches!(t.input, Input::Delta | Input::Signal));
                let ok_carrier = match &t.carrier {
                    Carrier::ForwardTranspose | Carrier::SignOfForward(SignScale::Uniform) => {
                        t.from == i + 1
                    }
                    Carrier::SignOfForward(SignScale::Fixed(m))
                    | Carrier::Kernel(Feedback { c: m, .. }) => {
                        t.from == i + 1 && m.len() == net.layers[i + 1].w.len()
                    }
                    Carrier::Feedback(f) => f.c.len() == sizes[i + 1] * sizes[t.from + 1],
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
    pub fn describe(&self, net: &Net) -> Vec<String> {
        let sizes = net.sizes();
        let top = net.depth() - 1;
        let layer = |k: usize| {
            if k == top {
                "top".to_string()
            } else {
                format!("{}", k + 1)
            }
        };
        let mut noise = String::new();
        if self.dropout > 0.0 {
            noise += &format!(", dropout r={}", self.dropout);
        }
        if let Some(q) = self.quantize_signal {
            noise += &format!(", quantized ({})", q.describe(quantize::Form::MidRise));
        }
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
                                Input::Target => "(−T)".to_string(),
                                Input::ErrorSign => "sign(δ[top])".to_string(),
                            };
                            match &t.carrier {
                                Carrier::ForwardTranspose => format!("W[{}]ᵀ·{x}", layer(t.from)),
                                Carrier::SignOfForward(SignScale::Uniform) => {
                                    format!("σ(W)·sign(W[{}])ᵀ·{x}", layer(t.from))
                                }
                                Carrier::SignOfForward(SignScale::Fixed(_)) => {
                                    format!("(|B0|⊙sign(W[{}]))ᵀ·{x}", layer(t.from))
                                }
                                Carrier::Feedback(f) => format!(
                                    "{}({}×{})·{x}",
                                    if f.adapt.is_some() { "adaptive C" } else { "C" },
                                    sizes[i + 1],
                                    sizes[t.from + 1]
                                ),
                                Carrier::Kernel(f) => format!(
                                    "{} in W[{}]'s place, transposed·{x}",
                                    if f.adapt.is_some() {
                                        "adaptive random weights"
                                    } else {
                                        "random weights"
                                    },
                                    layer(t.from)
                                ),
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
                let n = if r.is_some() { noise.as_str() } else { "" };
                format!(
                    "hidden layer {} ({} units) ← {what}{d}{n}",
                    i + 1,
                    sizes[i + 1]
                )
            })
            .collect()
    }

    /// Runs the channel over a batch: given the forward outputs `acts` (`acts[i]` = `O_i`),
    /// `deltas[L−1] = δ_L` and the batch's `labels`, fills `signals[i]` and `deltas[i]` for every
    /// hidden layer that learns, from the top down. Reads the forward weights of `net` (not yet
    /// updated).
    pub fn backward(
        &mut self,
        net: &Net,
        acts: &Activations,
        labels: &[u8],
        deltas: &mut [Vec<f32>],
        signals: &mut [Vec<f32>],
    ) {
        let batch = labels.len();
        let sizes = net.sizes();
        let top = net.depth() - 1;
        let classes = sizes[top + 1];
        let mut scratch: Vec<f32> = Vec::new();
        let mut routed: Vec<f32> = Vec::new();
        let mut mask: Vec<u32> = Vec::new();
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
                let src: &[f32] = match t.input {
                    Input::Delta => &del_hi[t.from - i - 1],
                    Input::Signal if t.from == top => &del_hi[t.from - i - 1],
                    Input::Signal => &sig_hi[t.from - i - 1],
                    Input::Target => {
                        scratch.clear();
                        scratch.resize(batch * classes, 0.0);
                        for (e, &l) in labels.iter().enumerate() {
                            scratch[e * classes + l as usize] = -1.0;
                        }
                        &scratch
                    }
                    Input::ErrorSign => {
                        scratch.clear();
                        let d = &del_hi[top - i - 1][..batch * classes];
                        scratch.extend(d.iter().map(|v| {
                            if *v > 0.0 {
                                1.0
                            } else if *v < 0.0 {
                                -1.0
                            } else {
                                0.0
                            }
                        }));
                        &scratch
                    }
                };
                let src = &src[..batch * n_k];
                let beta = if t_idx == 0 { 0.0 } else { 1.0 };
                // the weights sent through layer i+1's transposed operation, if any
                let through: Option<std::borrow::Cow<[f32]>> = match &t.carrier {
                    // g += x · Cᵀ             (C: N_i × N_k), straight onto layer i's output
                    Carrier::Feedback(f) => {
                        gemm(
                            1.0,
                            Mat::new(src, batch, n_k),
                            Mat::t(&f.c, n_i, n_k),
                            beta,
                            g,
                        );
                        None
                    }
                    Carrier::ForwardTranspose => {
                        Some(std::borrow::Cow::Borrowed(&net.layers[t.from].w))
                    }
                    Carrier::Kernel(f) => Some(std::borrow::Cow::Borrowed(&f.c)),
                    Carrier::SignOfForward(scale) => Some(std::borrow::Cow::Owned(sign_carrier(
                        &net.layers[t.from].w,
                        scale,
                    ))),
                };
                if let Some(w) = through {
                    // g += weightsᵀ ⊛ x, at layer i+1's input, then back through layer i's pooling
                    let next = &net.layers[t.from];
                    if net.layers[i].pool.is_some() {
                        routed.resize(batch * next.n_in, 0.0);
                        next.backward_data(&w, src, &mut routed, batch, 0.0);
                        net.unpool(i, acts, &routed, g, batch, beta);
                    } else {
                        next.backward_data(&w, src, g, batch, beta);
                    }
                }
            }
            if self.dropout > 0.0 {
                // keep with probability 1 − r: a uniform u32 below (1 − r)·2³²
                let keep = 1.0 - self.dropout as f64;
                let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
                let inv = (1.0 / keep) as f32;
                mask.resize(g.len(), 0);
                self.noise.fill(&mut mask[..]);
                apply_dropout(g, &mask, threshold, inv);
            }
            if let Some(q) = self.quantize_signal {
                if self.signal_alpha[i] == 0.0
                    && let Some(a) = quantize::calibrate(g)
                {
                    self.signal_alpha[i] = a;
                }
                let alpha = self.signal_alpha[i];
                if alpha > 0.0 {
                    let levels = q.levels(alpha, quantize::Form::MidRise);
                    if let Some(c) = &mut self.census {
                        let (zero, clipped) = levels.census(g);
                        c[i] = (zero, clipped, g.len());
                    }
                    levels.apply_slice(g);
                }
            }
            let d = &mut del_lo[i][..batch * n_i];
            d.copy_from_slice(g);
            if self.derivative {
                net.activation
                    .mul_derivative(&acts.out[i + 1][..batch * n_i], d);
            }
        }
    }

    /// Updates the adaptive feedback matrices after [`Channel::backward`], at learning rate
    /// `rate`: `C ← C − rate·factor/B · O_iᵀ δ_k − rate·decay·C`, where `O_i` is the output of
    /// the receiving layer (before pooling) and `δ_k` the error of the sending layer; random
    /// weights in W_{i+1}'s place get W_{i+1}'s own gradient form, `δ_{i+1} ⊛ input_{i+1}`.
    pub fn adapt(
        &mut self,
        net: &Net,
        acts: &Activations,
        deltas: &[Vec<f32>],
        batch: usize,
        rate: f64,
    ) {
        let sizes = net.sizes();
        for (i, r) in self.routes.iter_mut().enumerate() {
            for t in r.iter_mut().flat_map(|r| r.terms.iter_mut()) {
                let (n_i, n_k) = (sizes[i + 1], sizes[t.from + 1]);
                match &mut t.carrier {
                    Carrier::Feedback(Feedback { c, adapt: Some(a) }) => {
                        let keep = (1.0 - rate * a.decay) as f32;
                        // C ← keep·C − rate·factor/B · O_iᵀ δ_k
                        gemm(
                            (-rate * a.factor / batch as f64) as f32,
                            Mat::t(&acts.out[i + 1][..batch * n_i], batch, n_i),
                            Mat::new(&deltas[t.from][..batch * n_k], batch, n_k),
                            keep,
                            c,
                        );
                    }
                    Carrier::Kernel(Feedback { c, adapt: Some(a) }) => {
                        let keep = (1.0 - rate * a.decay) as f32;
                        let next = &net.layers[t.from];
                        let mut unused_bias = vec![0.0; next.b.len()];
                        next.weight_grad(
                            &deltas[t.from][..batch * n_k],
                            acts.input_of(net, t.from, batch),
                            batch,
                            (-rate * a.factor / batch as f64) as f32,
                            keep,
                            c,
                            &mut unused_bias,
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// Position of the channel-noise stream (dropout masks), for checkpoints.
    pub fn noise_position(&self) -> u128 {
        self.noise.get_word_pos()
    }

    /// Restores the position of the channel-noise stream.
    pub fn set_noise_position(&mut self, pos: u128) {
        self.noise.set_word_pos(pos);
    }

    /// A fresh key for stochastic rounding, from the channel-noise stream.
    pub fn noise_key(&mut self) -> u64 {
        use rand::RngCore;
        self.noise.next_u64()
    }

    /// Every matrix the channel owns and may change or draw (feedback matrices, random weights,
    /// sign magnitudes, the quantizers' calibrated scales), with a stable name per route and
    /// term, for checkpoints.
    pub fn matrices_mut(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out = Vec::new();
        if self.quantize_signal.is_some() {
            out.push(("quantize.signal.alpha".to_string(), &mut self.signal_alpha));
        }
        if self.quantize_update.is_some() {
            out.push(("quantize.update.alpha".to_string(), &mut self.update_alpha));
        }
        for (i, r) in self.routes.iter_mut().enumerate() {
            for (j, t) in r.iter_mut().flat_map(|r| r.terms.iter_mut()).enumerate() {
                match &mut t.carrier {
                    Carrier::Feedback(f) | Carrier::Kernel(f) => {
                        out.push((format!("feedback.{i}.{j}"), &mut f.c))
                    }
                    Carrier::SignOfForward(SignScale::Fixed(m)) => {
                        out.push((format!("feedback.{i}.{j}.magnitude"), m))
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Multiplications per example of the backward signal (a dense term N_i·N_k, paper §4; a
    /// term through layer i+1's transposed operation, that operation's multiplications) and of
    /// the updates of adaptive feedback matrices, for `net`.
    pub fn multiplications(&self, net: &Net) -> (usize, usize) {
        let sizes = net.sizes();
        let (mut signal, mut adapt) = (0, 0);
        for (i, r) in self.routes.iter().enumerate() {
            for t in r.iter().flat_map(|r| &r.terms) {
                let n = match &t.carrier {
                    Carrier::Feedback(_) => sizes[i + 1] * sizes[t.from + 1],
                    _ => net.layers[t.from].macs(),
                };
                signal += n;
                if let Carrier::Feedback(Feedback { adapt: Some(_), .. })
                | Carrier::Kernel(Feedback { adapt: Some(_), .. }) = t.carrier
                {
                    adapt += n;
                }
            }
        }
        (signal, adapt)
    }

    /// All feedback matrices, as (receiving hidden layer, sending layer, `C`); `C` is
    /// `N_i × N_k`, or W_{i+1}'s shape for random weights in its place.
    pub fn feedback_matrices(&self) -> Vec<(usize, usize, &[f32])> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            for t in r.iter().flat_map(|r| &r.terms) {
                if let Carrier::Feedback(f) | Carrier::Kernel(f) = &t.carrier {
                    out.push((i, t.from, f.c.as_slice()));
                }
            }
        }
        out
    }
}

dispatch! {
    /// `g ← g · inv` where `mask < threshold`, else 0.
    pub fn apply_dropout(g: &mut [f32], mask: &[u32], threshold: u32, inv: f32) {
        g.iter_mut().zip(mask).for_each(|(v, m)| *v = if *m < threshold { *v * inv } else { 0.0 });
    }
}

/// The sign-symmetric carrier in W's orientation: `σ(W)·sign(W)` (uSF) or `|B0| ⊙ sign(W)` (frSF).
fn sign_carrier(w: &[f32], scale: &SignScale) -> Vec<f32> {
    let sign = |v: f32| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    match scale {
        SignScale::Uniform => {
            let n = w.len() as f64;
            let mean = w.iter().map(|v| *v as f64).sum::<f64>() / n;
            let sd = (w.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32;
            w.iter().map(|v| sd * sign(*v)).collect()
        }
        SignScale::Fixed(m) => w.iter().zip(m).map(|(v, m)| m.abs() * sign(*v)).collect(),
    }
}
