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
//!
//! The module by concern: the types of a channel (here), what each [`Carrier`] does
//! ([`carrier`]: its signal, its learning, its description, its tensors — one place per
//! carrier), the backward pass and the adaptation of a step ([`engine`]), the run log's words
//! ([`describe`]), the registry and its options, the quantizer, feedback distributions and the
//! alignment diagnostics. Everything runs on a [`Backend`]; channels are built on the host
//! (`Channel<Cpu>`) and moved with [`Channel::to_backend`].

pub mod carrier;
pub mod describe;
pub mod diagnostics;
pub mod engine;
pub mod feedback;
pub mod mix;
pub mod options;
pub use crate::quantize;
pub mod registry;

use crate::backend::{Backend, Cpu};
use crate::error::{Error, Result};
use crate::model::Net;
use crate::rng::Rng;

pub use feedback::FeedbackInit;
pub use mix::MixSignal;
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

/// What carries a term's input down to the receiving layer `i` (its behaviour: [`carrier`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Carrier<B: Backend = Cpu> {
    /// `W_{i+1}ᵀ`, the forward weights of the layer just above, transposed (needs `k = i + 1`).
    ForwardTranspose,
    /// A feedback matrix `C` (`N_i × N_k`, row-major) owned by the channel, fixed or adaptive,
    /// projecting straight onto layer i's output (before its pooling).
    Feedback(Feedback<B>),
    /// Random weights in the place of `W_{i+1}` (same shape: a kernel for a convolution), sent
    /// through the transposed operation of layer i+1 and routed back through layer i's pooling
    /// like BP's signal (needs `k = i + 1`). RBP uses it wherever layer i pools or layer i+1 is
    /// not dense; for dense layers without pooling it is the same algorithm as `Feedback`.
    Kernel(Feedback<B>),
    /// `sign(W_{i+1})ᵀ` scaled, recomputed from the current forward weights at every step
    /// (sign-symmetry; needs `k = i + 1`).
    SignOfForward(SignScale<B>),
}

/// A feedback matrix and, for adaptive channels, how it learns.
#[derive(Clone, Debug, PartialEq)]
pub struct Feedback<B: Backend = Cpu> {
    /// `C`: `N_i × N_k` row-major (`Carrier::Feedback`), or W_{i+1}'s shape (`Carrier::Kernel`).
    pub c: B::Buf,
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
pub enum SignScale<B: Backend = Cpu> {
    /// uSF: every entry has the standard deviation of the current forward weights.
    Uniform,
    /// frSF: fixed random magnitudes `|B0|` (`N_{i+1} × N_i`, in W's orientation).
    Fixed(B::Buf),
    /// brSF: fresh random magnitudes `|R|`, `R ~ N(0, 1/fan_in)` in W's shape, drawn from the
    /// channel-noise stream at every step.
    Redrawn,
}

/// One contribution `input_k · carrierᵀ` to a hidden layer's signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Term<B: Backend = Cpu> {
    /// The upper layer `k` the input comes from (0-based weight-layer index, `k > i`).
    pub from: usize,
    pub input: Input,
    pub carrier: Carrier<B>,
}

/// The incoming channel of one hidden layer: its signal is the sum of the terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Route<B: Backend = Cpu> {
    pub terms: Vec<Term<B>>,
}

/// A learning channel instantiated for one net: a route (or none) for every hidden layer, and
/// the noise and precision of the channel.
#[derive(Clone, Debug)]
pub struct Channel<B: Backend = Cpu> {
    /// Canonical name, e.g. `rbp` or `srbp-nof`.
    pub name: String,
    /// Whether hidden layers multiply their signal by `f'(S)`.
    pub derivative: bool,
    /// `routes[i]` feeds hidden layer `i` (`0 ≤ i < L − 1`); `None`: the layer does not learn.
    pub routes: Vec<Option<Route<B>>>,
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
    /// Stream of the dropout masks, of redrawn feedback magnitudes and of the keys of
    /// stochastic rounding.
    noise: Rng,
}

/// The scale a quantizer starts with: its fixed α, or 0 (calibrated at the first update).
fn fixed_alpha(q: Option<Quantizer>) -> f32 {
    match q.map(|q| q.alpha) {
        Some(quantize::Alpha::Fixed(a)) => a,
        _ => 0.0,
    }
}

impl<B: Backend> PartialEq for Channel<B> {
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
    /// Builds the channel `spec` for the host net `net` with `options`, drawing feedback
    /// matrices from `rng` and dropout masks from `noise`.
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
}

impl<B: Backend> Channel<B> {
    /// The same channel, its matrices on backend `C` (the noise stream continues where it is).
    pub fn to_backend<C: Backend>(&self) -> Channel<C> {
        Channel {
            name: self.name.clone(),
            derivative: self.derivative,
            routes: self
                .routes
                .iter()
                .map(|r| {
                    r.as_ref().map(|r| Route {
                        terms: r
                            .terms
                            .iter()
                            .map(|t| Term {
                                from: t.from,
                                input: t.input,
                                carrier: t.carrier.to_backend(),
                            })
                            .collect(),
                    })
                })
                .collect(),
            dropout: self.dropout,
            quantize_signal: self.quantize_signal,
            quantize_update: self.quantize_update,
            signal_alpha: self.signal_alpha.clone(),
            update_alpha: self.update_alpha.clone(),
            census: self.census.clone(),
            noise: self.noise.clone(),
        }
    }

    /// Checks that every route is well-formed for `net`.
    pub fn validate(&self, net: &Net<B>) -> Result<()> {
        let top = net.depth() - 1;
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
                if !ok_source || !t.carrier.fits(net, i, t.from) {
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

    /// Position of the channel-noise stream (dropout masks), for checkpoints.
    pub fn noise_position(&self) -> u128 {
        self.noise.get_word_pos()
    }

    /// Restores the position of the channel-noise stream.
    pub fn set_noise_position(&mut self, pos: u128) {
        self.noise.set_word_pos(pos);
    }

    /// A copy of the channel-noise stream at its current position: what the channel's next
    /// draws (dropout masks, redrawn magnitudes, rounding keys) will be made from.
    pub fn noise_stream(&self) -> Rng {
        self.noise.clone()
    }

    /// A fresh key for stochastic rounding, from the channel-noise stream.
    pub fn noise_key(&mut self) -> u64 {
        use rand::RngCore;
        self.noise.next_u64()
    }

    /// Whether the channel's step keeps to the backend: it draws nothing on the host and reads
    /// nothing back (no dropout, signal or update quantizer, census, or magnitudes redrawn
    /// every step), so several nets with copies of it can take their steps as one, their
    /// buffers stacked ([`crate::train::Trainer::step_stacked`]).
    pub fn stacks(&self) -> bool {
        self.dropout == 0.0
            && self.quantize_signal.is_none()
            && self.quantize_update.is_none()
            && self.census.is_none()
            && self
                .routes
                .iter()
                .flatten()
                .flat_map(|r| &r.terms)
                .all(|t| !matches!(t.carrier, Carrier::SignOfForward(SignScale::Redrawn)))
    }

    /// Every tensor the channel owns and may change or draw (feedback matrices, random weights,
    /// sign magnitudes), with a stable name per route and term (`feedback.{i}.{j}` plus the
    /// carrier's suffix), for checkpoints. The quantizers' calibrated scales are
    /// [`Channel::signal_alpha`] and [`Channel::update_alpha`].
    pub fn tensors_mut(&mut self) -> Vec<(String, &mut B::Buf)> {
        route_tensors(&mut self.routes)
    }

    /// Multiplications per example of the backward signal (a dense term N_i·N_k, paper §4; a
    /// term through layer i+1's transposed operation, that operation's multiplications) and of
    /// the updates of adaptive feedback matrices, for `net`.
    pub fn multiplications(&self, net: &Net<B>) -> (usize, usize) {
        let (mut signal, mut adapt) = (0, 0);
        for (i, r) in self.routes.iter().enumerate() {
            for t in r.iter().flat_map(|r| &r.terms) {
                let (s, a) = t.carrier.multiplications(net, i, t.from);
                signal += s;
                adapt += a;
            }
        }
        (signal, adapt)
    }

    /// All feedback matrices, as (receiving hidden layer, sending layer, `C`); `C` is
    /// `N_i × N_k`, or W_{i+1}'s shape for random weights in its place.
    pub fn feedback_matrices(&self) -> Vec<(usize, usize, &B::Buf)> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            for t in r.iter().flat_map(|r| &r.terms) {
                if let Carrier::Feedback(f) | Carrier::Kernel(f) = &t.carrier {
                    out.push((i, t.from, &f.c));
                }
            }
        }
        out
    }
}

impl Channel {
    /// The feedback matrix carrying layer `k`'s error to hidden layer `i` (as
    /// [`Channel::feedback_matrices`] lists it), to replace its values.
    pub fn feedback_matrix_mut(&mut self, i: usize, k: usize) -> Option<&mut Vec<f32>> {
        self.routes
            .get_mut(i)?
            .as_mut()?
            .terms
            .iter_mut()
            .find_map(|t| match &mut t.carrier {
                Carrier::Feedback(f) | Carrier::Kernel(f) if t.from == k => Some(&mut f.c),
                _ => None,
            })
    }

    /// Every host tensor the channel owns and may change or draw (feedback matrices, random
    /// weights, sign magnitudes, the quantizers' calibrated scales), with a stable name per
    /// route and term, for checkpoints.
    pub fn matrices_mut(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out = Vec::new();
        if self.quantize_signal.is_some() {
            out.push(("quantize.signal.alpha".to_string(), &mut self.signal_alpha));
        }
        if self.quantize_update.is_some() {
            out.push(("quantize.update.alpha".to_string(), &mut self.update_alpha));
        }
        out.extend(route_tensors(&mut self.routes));
        out
    }
}

/// The tensors of every route's carriers, named `feedback.{i}.{j}` plus the carrier's suffix.
fn route_tensors<B: Backend>(routes: &mut [Option<Route<B>>]) -> Vec<(String, &mut B::Buf)> {
    let mut out = Vec::new();
    for (i, r) in routes.iter_mut().enumerate() {
        for (j, t) in r.iter_mut().flat_map(|r| r.terms.iter_mut()).enumerate() {
            if let Some((suffix, m)) = t.carrier.tensor_mut() {
                out.push((format!("feedback.{i}.{j}{suffix}"), m));
            }
        }
    }
    out
}
