//! The registry of learning channels: every named algorithm, its aliases, its equation and the
//! builder that lays its routes. `rbp channels`, the CLI parser, the docs and the conformance
//! tests all read [`CHANNELS`]; adding a variant means adding one entry here.

use super::{Carrier, Input, Route, Term, gaussian_feedback};
use crate::error::{Error, Result};
use crate::model::Mlp;
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
    /// Whether it has a no-derivative version (`NAME-nof`).
    pub has_nof: bool,
    /// Lays the routes for a net, drawing feedback matrices from the stream.
    pub build: fn(&Mlp, &mut Rng) -> Vec<Option<Route>>,
}

/// Every learning channel, in the order `rbp channels` lists them.
pub const CHANNELS: &[ChannelKind] = &[
    ChannelKind {
        name: "bp",
        aliases: &["backprop"],
        summary: "backpropagation: the transposed forward weights carry δ down layer by layer",
        equation: "δ_h = f'(S_h) ⊙ W_{h+1}ᵀ δ_{h+1}",
        has_nof: true,
        build: |net, _| {
            hidden(net, |i| {
                vec![term(i + 1, Input::Delta, Carrier::ForwardTranspose)]
            })
        },
    },
    ChannelKind {
        name: "rbp",
        aliases: &["fa", "feedback-alignment"],
        summary: "random backpropagation: a fixed random C_{h+1} (N_h × N_{h+1}) replaces W_{h+1}ᵀ",
        equation: "δ_h = f'(S_h) ⊙ C_{h+1} δ_{h+1},  C ~ N(0, 1/N_h)",
        has_nof: true,
        build: |net, rng| {
            let s = net.sizes();
            hidden(net, |i| {
                let c = gaussian_feedback(s[i + 1], s[i + 2], rng);
                vec![term(i + 1, Input::Delta, Carrier::Feedback(c))]
            })
        },
    },
    ChannelKind {
        name: "srbp",
        aliases: &["dfa", "direct-feedback-alignment"],
        summary: "skipped random backpropagation: δ_L goes straight to every hidden layer through a fixed random C_h (N_h × N_L)",
        equation: "δ_h = f'(S_h) ⊙ C_h δ_L,  C ~ N(0, 1/N_h)",
        has_nof: true,
        build: |net, rng| {
            let s = net.sizes();
            let top = net.depth() - 1;
            hidden(net, |i| {
                let c = gaussian_feedback(s[i + 1], s[top + 1], rng);
                vec![term(top, Input::Delta, Carrier::Feedback(c))]
            })
        },
    },
    ChannelKind {
        name: "sbp",
        aliases: &["skipped-bp"],
        summary: "skipped backpropagation: the product of transposed forward weights, no derivatives of upper layers",
        equation: "δ_h = f'(S_h) ⊙ W_{h+1}ᵀ ··· W_Lᵀ δ_L",
        has_nof: true,
        build: |net, _| {
            hidden(net, |i| {
                vec![term(i + 1, Input::Signal, Carrier::ForwardTranspose)]
            })
        },
    },
    ChannelKind {
        name: "top",
        aliases: &["top-only", "shallow"],
        summary: "only the top layer learns; hidden layers keep their random initial weights",
        equation: "δ_h = 0 (hidden weights never change)",
        has_nof: false,
        build: |net, _| vec![None; net.depth() - 1],
    },
];

fn term(from: usize, input: Input, carrier: Carrier) -> Term {
    Term {
        from,
        input,
        carrier,
    }
}

/// One route per hidden layer, built from the top down (so random draws for the upper layers
/// come first in the stream).
fn hidden(net: &Mlp, mut terms: impl FnMut(usize) -> Vec<Term>) -> Vec<Option<Route>> {
    let mut routes: Vec<Option<Route>> = vec![None; net.depth() - 1];
    for i in (0..net.depth() - 1).rev() {
        routes[i] = Some(Route { terms: terms(i) });
    }
    routes
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
}
