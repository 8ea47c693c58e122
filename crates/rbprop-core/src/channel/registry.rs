//! The registry of learning channels: every named algorithm, its aliases, its equation, the rules
//! its options follow and the builder that lays its routes. `rbp channels`, the `--channel`
//! help, the tables of the README and the docs ([`markdown_table`]), the option checks, the
//! benchmarks, the complexity counts and the conformance tests all read [`CHANNELS`]; adding a
//! variant means adding one entry here (and its expectation in the tests).

use super::mix::MixSignal;
use super::{
    Adapt, Carrier, ChannelOptions, Feedback, FeedbackInit, Input, Route, SignScale, Term,
};
use crate::error::{Error, Result};
use crate::model::{Kind, Net};
use crate::rng::Rng;

/// A named learning channel.
#[derive(Debug)]
pub struct ChannelKind {
    /// Canonical name.
    pub name: &'static str,
    /// Other names it is known by.
    pub aliases: &'static [&'static str],
    /// What it is, in a few words.
    pub summary: &'static str,
    /// The signal a hidden layer h receives (paper notation, layers 1..L).
    pub equation: &'static str,
    /// Where it is defined.
    pub source: &'static str,
    /// Whether it has a no-derivative version (`NAME-nof`).
    pub has_nof: bool,
    /// Whether it uses random feedback matrices (so `--feedback` and `--average` apply).
    pub random: bool,
    /// Whether its feedback matrices learn with a factor (`--adapt-factor`).
    pub adaptive: bool,
    /// Whether hidden layers receive a signal at all (so channel dropout and signal quantization
    /// apply); false only for top-only learning.
    pub hidden_signal: bool,
    /// Whether it takes a per-layer choice (`--mix`, one entry per hidden layer).
    pub per_layer_mix: bool,
    /// Whether it needs weight decay > 0 (Kolen-Pollack: decay makes C and Wᵀ converge).
    pub needs_weight_decay: bool,
    /// Lays the routes for a net.
    pub build: fn(&mut Build) -> Result<Vec<Option<Route>>>,
}

impl ChannelKind {
    /// The defaults of an entry: a random, non-adaptive channel with a no-derivative version,
    /// sending a signal to every hidden layer, needing no extra option.
    const BASE: ChannelKind = ChannelKind {
        name: "",
        aliases: &[],
        summary: "",
        equation: "",
        source: "",
        has_nof: true,
        random: true,
        adaptive: false,
        hidden_signal: true,
        per_layer_mix: false,
        needs_weight_decay: false,
        build: |_| {
            Err(Error::config(
                "channel",
                "this registry entry lays no routes",
            ))
        },
    };

    /// Options with which the channel builds for a net with `hidden` hidden layers and
    /// demonstrates what it is (benchmarks, complexity counts, conformance tests): `--mix`
    /// alternating srbp and bp from the bottom, weight decay 10⁻⁴ where it is needed.
    pub fn example_options(&self, hidden: usize) -> ChannelOptions {
        ChannelOptions {
            mix: if self.per_layer_mix {
                (0..hidden)
                    .map(|i| {
                        if i % 2 == 0 {
                            MixSignal::Srbp
                        } else {
                            MixSignal::Bp
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            },
            weight_decay: if self.needs_weight_decay { 1e-4 } else { 0.0 },
            ..ChannelOptions::default()
        }
    }
}

/// The registry as a Markdown table (channel, aliases, δ_h, source), as the README and
/// `docs/channels.md` show it (`rbp channels --markdown` prints it; a test keeps them equal).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| `--channel` | aliases | δ_h of hidden layer h | source |\n|---|---|---|---|\n",
    );
    for k in CHANNELS {
        let cell = |s: &str| s.replace('|', "\\|");
        out += &format!(
            "| `{}`{} | {} | {} | {} |\n",
            k.name,
            if k.has_nof { " (`-nof`)" } else { "" },
            k.aliases.join(", "),
            cell(k.equation),
            cell(k.source)
        );
    }
    out
}

/// Every learning channel, in the order `rbp channels` lists them.
pub const CHANNELS: &[ChannelKind] = &[
    ChannelKind {
        name: "bp",
        aliases: &["backprop"],
        summary: "backpropagation: the transposed forward weights carry δ down layer by layer",
        equation: "δ_h = f'(S_h) ⊙ W_{h+1}ᵀ δ_{h+1}",
        source: "paper §1",
        random: false,
        build: |b| b.hidden(|_, i| Ok(vec![term(i + 1, Input::Delta, Carrier::ForwardTranspose)])),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "rbp",
        aliases: &["fa", "feedback-alignment"],
        summary: "random backpropagation: a fixed random C_{h+1} (N_h × N_{h+1}) replaces W_{h+1}ᵀ",
        equation: "δ_h = f'(S_h) ⊙ C_{h+1} δ_{h+1},  C ~ N(0, 1/N_h)",
        source: "paper §1; Lillicrap et al. 2016",
        build: |b| b.adjacent_random(None),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "srbp",
        aliases: &["dfa", "direct-feedback-alignment"],
        summary: "skipped random backpropagation: δ_L goes straight to every hidden layer through a fixed random C_h (N_h × N_L)",
        equation: "δ_h = f'(S_h) ⊙ C_h δ_L,  C ~ N(0, 1/N_h)",
        source: "paper §1; Nøkland 2016",
        build: |b| b.direct(Input::Delta, None),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "sbp",
        aliases: &["skipped-bp"],
        summary: "skipped backpropagation: the product of transposed forward weights, no derivatives of upper layers",
        equation: "δ_h = f'(S_h) ⊙ W_{h+1}ᵀ ··· W_Lᵀ δ_L",
        source: "paper §1",
        random: false,
        build: |b| b.hidden(|_, i| Ok(vec![term(i + 1, Input::Signal, Carrier::ForwardTranspose)])),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "top",
        aliases: &["top-only", "shallow"],
        summary: "only the top layer learns; hidden layers keep their random initial weights",
        equation: "δ_h = 0 (hidden weights never change)",
        source: "paper §1",
        has_nof: false,
        random: false,
        hidden_signal: false,
        build: |b| Ok(vec![None; b.top()]),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "arbp",
        aliases: &["adaptive-rbp"],
        summary: "adaptive RBP: C_{h+1} starts random and learns from the signals at its two ends",
        equation: "δ_h = f'(S_h) ⊙ C_{h+1} δ_{h+1};  ΔC_{h+1} = −η_c · mean(O_h δ_{h+1}ᵀ), η_c = factor·η_t",
        source: "paper §1",
        adaptive: true,
        build: |b| {
            let a = b.adapt();
            b.adjacent_random(Some(a))
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "asrbp",
        aliases: &["adaptive-srbp", "adaptive-dfa"],
        summary: "adaptive SRBP: C_h starts random and learns from O_h and δ_L",
        equation: "δ_h = f'(S_h) ⊙ C_h δ_L;  ΔC_h = −η_c · mean(O_h δ_Lᵀ), η_c = factor·η_t",
        source: "paper §1",
        adaptive: true,
        build: |b| {
            let a = b.adapt();
            b.direct(Input::Delta, Some(a))
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "kp",
        aliases: &["kolen-pollack"],
        summary: "Kolen-Pollack: C_{h+1} gets the same update as W_{h+1}ᵀ, and weight decay on both makes them converge",
        equation: "δ_h = f'(S_h) ⊙ C_{h+1} δ_{h+1};  ΔC_{h+1} = −η_t · (mean(O_h δ_{h+1}ᵀ) + λ C_{h+1})",
        source: "Kolen & Pollack 1994; Akrout et al. 2019",
        needs_weight_decay: true,
        build: |b| {
            let a = Adapt {
                factor: 1.0,
                decay: b.options.weight_decay,
            };
            b.adjacent_random(Some(a))
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "cascade",
        aliases: &["cascading"],
        summary: "cascading RBP: random matrices from every upper layer, signals summed",
        equation: "δ_h = f'(S_h) ⊙ Σ_{k>h} C_{h,k} δ_k,  C_{h,k} ~ N(0, 1/N_h)",
        source: "paper §1",
        build: |b| {
            let top = b.top();
            b.hidden(|b, i| {
                ((i + 1)..=top)
                    .rev()
                    .map(|k| Ok(term(k, Input::Delta, b.random(i, k, None)?)))
                    .collect()
            })
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "mix",
        aliases: &["srbp+bp"],
        summary: "SRBP+BP mixture: per hidden layer (--mix), the skipped random signal or the BP signal from the layer above",
        equation: "δ_h = f'(S_h) ⊙ (C_h δ_L  or  W_{h+1}ᵀ δ_{h+1}, per layer)",
        source: "paper §1",
        per_layer_mix: true,
        build: |b| {
            let top = b.top();
            if b.options.mix.len() != top {
                return Err(Error::config(
                    "mix",
                    format!(
                        "gives {} entries for a net with {top} hidden layers",
                        b.options.mix.len()
                    ),
                ));
            }
            b.hidden(|b, i| {
                Ok(vec![if b.options.mix[i] == MixSignal::Bp {
                    term(i + 1, Input::Delta, Carrier::ForwardTranspose)
                } else {
                    term(top, Input::Delta, b.random(i, top, None)?)
                }])
            })
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "usf",
        aliases: &["sign-symmetry"],
        summary: "uniform sign-concordant feedback: sign(W_{h+1})ᵀ scaled to the forward weights' standard deviation, tracked every step",
        equation: "δ_h = f'(S_h) ⊙ σ(W_{h+1}) sign(W_{h+1})ᵀ δ_{h+1}",
        source: "Liao, Leibo & Poggio 2016; Moskovitz et al. 2018",
        random: false,
        build: |b| {
            b.hidden(|_, i| {
                Ok(vec![term(
                    i + 1,
                    Input::Delta,
                    Carrier::SignOfForward(SignScale::Uniform),
                )])
            })
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "frsf",
        aliases: &[],
        summary: "fixed random-magnitude sign-concordant feedback: |B0| ⊙ sign(W_{h+1})ᵀ, B0 drawn once",
        equation: "δ_h = f'(S_h) ⊙ (|B0| ⊙ sign(W_{h+1}))ᵀ δ_{h+1}",
        source: "Moskovitz et al. 2018",
        build: |b| {
            b.hidden(|b, i| {
                // |B0| in W_{h+1}'s shape, at its scale
                let m = b.random_like(i + 1)?;
                Ok(vec![term(
                    i + 1,
                    Input::Delta,
                    Carrier::SignOfForward(SignScale::Fixed(m)),
                )])
            })
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "brsf",
        aliases: &[],
        summary: "batchwise random-magnitude sign-concordant feedback: |R_t| ⊙ sign(W_{h+1})ᵀ, R_t drawn afresh at every step",
        equation: "δ_h = f'(S_h) ⊙ (|R_t| ⊙ sign(W_{h+1}))ᵀ δ_{h+1},  R_t ~ N(0, 1/fan_in) redrawn every step",
        source: "Moskovitz et al. 2018; BioTorch (Sanfiz & Akrout 2021)",
        random: false,
        build: |b| {
            b.hidden(|_, i| {
                Ok(vec![term(
                    i + 1,
                    Input::Delta,
                    Carrier::SignOfForward(SignScale::Redrawn),
                )])
            })
        },
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "drtp",
        aliases: &["direct-random-target-projection"],
        summary: "direct random target projection: the targets, not the error, go through fixed random C_h",
        equation: "δ_h = f'(S_h) ⊙ C_h (−T)",
        source: "Frenkel, Lefebvre & Bol 2021",
        build: |b| b.direct(Input::Target, None),
        ..ChannelKind::BASE
    },
    ChannelKind {
        name: "sdfa",
        aliases: &["sign-dfa"],
        summary: "sign-of-error SRBP: only the sign of δ_L goes through fixed random C_h",
        equation: "δ_h = f'(S_h) ⊙ C_h sign(δ_L)",
        source: "Frenkel, Lefebvre & Bol 2021",
        build: |b| b.direct(Input::ErrorSign, None),
        ..ChannelKind::BASE
    },
];

fn term(from: usize, input: Input, carrier: Carrier) -> Term {
    Term {
        from,
        input,
        carrier,
    }
}

/// What a channel's builder works with: the net, the feedback stream and the options.
pub struct Build<'a> {
    pub net: &'a Net,
    pub rng: &'a mut Rng,
    pub options: &'a ChannelOptions,
}

impl Build<'_> {
    /// Layer sizes `[N0, …, NL]`.
    pub fn sizes(&self) -> Vec<usize> {
        self.net.sizes()
    }

    /// Index of the top weight layer (= number of hidden layers).
    pub fn top(&self) -> usize {
        self.net.depth() - 1
    }

    /// The adaptation rule of ARBP/ASRBP with the configured factor.
    pub fn adapt(&self) -> Adapt {
        Adapt {
            factor: self.options.adapt_factor(),
            decay: 0.0,
        }
    }

    /// One route per hidden layer, built from the top down (so random draws for the upper
    /// layers come first in the stream).
    pub fn hidden(
        &mut self,
        mut terms: impl FnMut(&mut Self, usize) -> Result<Vec<Term>>,
    ) -> Result<Vec<Option<Route>>> {
        let top = self.top();
        let mut routes: Vec<Option<Route>> = vec![None; top];
        for i in (0..top).rev() {
            routes[i] = Some(Route {
                terms: terms(self, i)?,
            });
        }
        Ok(routes)
    }

    /// Every hidden layer receives δ of the layer above through random weights in the place of
    /// that layer's Wᵀ (RBP, ARBP, Kolen-Pollack).
    pub fn adjacent_random(&mut self, adapt: Option<Adapt>) -> Result<Vec<Option<Route>>> {
        self.hidden(|b, i| {
            Ok(vec![term(
                i + 1,
                Input::Delta,
                b.random_adjacent(i, adapt)?,
            )])
        })
    }

    /// Every hidden layer receives `input` of the top layer through its own random matrix
    /// (the skipped channels: SRBP, ASRBP, DRTP, sign-DFA).
    pub fn direct(&mut self, input: Input, adapt: Option<Adapt>) -> Result<Vec<Option<Route>>> {
        let top = self.top();
        self.hidden(|b, i| Ok(vec![term(top, input, b.random(i, top, adapt)?)]))
    }

    /// A random feedback matrix for hidden layer `i` receiving from layer `k`: drawn from the
    /// configured distribution, the mean of `average` draws, adaptive if `adapt` is given.
    pub fn random(&mut self, i: usize, k: usize, adapt: Option<Adapt>) -> Result<Carrier> {
        let sizes = self.sizes();
        let (rows, cols) = (sizes[i + 1], sizes[k + 1]);
        if rows * cols > MAX_FEEDBACK {
            return Err(Error::config(
                "channel",
                format!(
                    "a dense feedback matrix from layer {} to hidden layer {} would be {rows}×{cols}, too large; this channel does not fit layers this big",
                    k + 1,
                    i + 1
                ),
            ));
        }
        if self.options.feedback == FeedbackInit::Congruent && !self.net.is_dense() {
            return Err(Error::config(
                "feedback",
                "congruent feedback takes the signs of products of dense weight matrices; it is defined for dense nets without pooling",
            ));
        }
        let path = (self.options.feedback == FeedbackInit::Congruent)
            .then(|| forward_path(self.net, i, k));
        let n = self.options.average;
        let mut c = vec![0.0f32; rows * cols];
        for _ in 0..n {
            let draw = self
                .options
                .feedback
                .draw(rows, cols, path.as_deref(), self.rng)?;
            c.iter_mut().zip(draw).for_each(|(c, d)| *c += d);
        }
        if n > 1 {
            let inv = 1.0 / n as f32;
            c.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(Carrier::Feedback(Feedback { c, adapt }))
    }

    /// Random weights in the place of W_{i+1}ᵀ for hidden layer `i`: a matrix C (N_i × N_{i+1},
    /// [`Build::random`]) where layer i does not pool and layer i+1 is dense, else random weights
    /// of W_{i+1}'s shape (a kernel for a convolution) sent through its transposed operation.
    pub fn random_adjacent(&mut self, i: usize, adapt: Option<Adapt>) -> Result<Carrier> {
        let (layer, next) = (&self.net.layers[i], &self.net.layers[i + 1]);
        if layer.pool.is_none() && next.kind == Kind::Dense {
            return self.random(i, i + 1, adapt);
        }
        if self.options.feedback == FeedbackInit::Congruent {
            return Err(Error::config(
                "feedback",
                "congruent feedback is defined for dense nets without pooling",
            ));
        }
        Ok(Carrier::Kernel(Feedback {
            c: self.random_like(i + 1)?,
            adapt,
        }))
    }

    /// Random weights of layer `k`'s shape and scale (σ = 1/√fan_in), from the configured
    /// distribution (sparse: p = n / fan_in), the mean of `average` draws.
    pub fn random_like(&mut self, k: usize) -> Result<Vec<f32>> {
        let layer = &self.net.layers[k];
        let (fan_in, len) = (layer.fan_in(), layer.w.len());
        let n = self.options.average;
        let mut c = vec![0.0f32; len];
        for _ in 0..n {
            let draw = self
                .options
                .feedback
                .draw(fan_in, len / fan_in, None, self.rng)?;
            c.iter_mut().zip(draw).for_each(|(c, d)| *c += d);
        }
        if n > 1 {
            let inv = 1.0 / n as f32;
            c.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(c)
    }
}

/// Largest dense feedback matrix built (entries).
const MAX_FEEDBACK: usize = 50_000_000;

/// `W_{i+1}ᵀ ··· W_kᵀ` (N_i × N_k, f64): the forward path from hidden layer `i` up to layer `k`,
/// in a feedback matrix's orientation.
fn forward_path(net: &Net, i: usize, k: usize) -> Vec<f64> {
    let sizes = net.sizes();
    let rows = sizes[i + 1];
    // start with the identity on layer i's units
    let mut m: Vec<f64> = (0..rows * rows)
        .map(|x| if x % (rows + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut cols = rows;
    for j in i + 1..=k {
        let layer = &net.layers[j];
        debug_assert_eq!(layer.n_in, cols);
        // m (rows × n_in) · W_jᵀ (n_in × n_out)
        let mut next = vec![0.0; rows * layer.n_out];
        for r in 0..rows {
            for o in 0..layer.n_out {
                next[r * layer.n_out + o] = (0..cols)
                    .map(|c| m[r * cols + c] * layer.w[o * layer.n_in + c] as f64)
                    .sum();
            }
        }
        m = next;
        cols = layer.n_out;
    }
    m
}

/// A parsed `--channel` value: an algorithm and whether hidden layers use `f'`.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSpec {
    pub kind: &'static ChannelKind,
    pub derivative: bool,
}

/// Suffix naming the no-derivative version of a channel.
pub const NOF_SUFFIX: &str = "-nof";

impl ChannelSpec {
    /// Parses `NAME` or `NAME-nof` (any alias); `no_derivative` forces the no-f' version.
    pub fn parse(text: &str, no_derivative: bool) -> Result<Self> {
        let lower = text.trim().to_ascii_lowercase();
        let (base, nof) = match lower.strip_suffix(NOF_SUFFIX) {
            Some(b) => (b, true),
            None => (lower.as_str(), false),
        };
        let kind = CHANNELS
            .iter()
            .find(|k| k.name == base || k.aliases.contains(&base))
            .ok_or_else(|| {
                let names: Vec<_> = CHANNELS.iter().map(|k| k.name).collect();
                Error::config(
                    "channel",
                    format!(
                        "unknown channel `{text}`; known: {} (see `rbp channels`)",
                        names.join(", ")
                    ),
                )
            })?;
        let derivative = !(nof || no_derivative);
        if !derivative && !kind.has_nof {
            return Err(Error::config(
                "channel",
                format!(
                    "`{}` has no no-derivative version: its hidden layers receive no signal",
                    kind.name
                ),
            ));
        }
        Ok(ChannelSpec { kind, derivative })
    }

    /// `NAME` or `NAME-nof`.
    pub fn canonical_name(&self) -> String {
        if self.derivative {
            self.kind.name.to_string()
        } else {
            format!("{}{NOF_SUFFIX}", self.kind.name)
        }
    }

    /// The no-derivative version of this channel (an error for a channel without one).
    pub fn without_derivative(self) -> Result<Self> {
        ChannelSpec::parse(self.kind.name, true)
    }
}

/// Two specs are equal when they name the same algorithm and version.
impl PartialEq for ChannelSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name && self.derivative == other.derivative
    }
}

impl std::str::FromStr for ChannelSpec {
    type Err = Error;
    /// [`ChannelSpec::parse`] as named (`rbp-nof`, any alias).
    fn from_str(s: &str) -> Result<Self> {
        ChannelSpec::parse(s, false)
    }
}

/// The canonical name ([`ChannelSpec::canonical_name`]).
impl std::fmt::Display for ChannelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical_name())
    }
}

impl serde::Serialize for ChannelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChannelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ChannelSpec::parse(&text, false).map_err(|e| match e {
            Error::Config { problem, .. } => serde::de::Error::custom(problem),
            e => serde::de::Error::custom(e),
        })
    }
}
