//! How random feedback matrices are drawn (paper §1, "Distributions of C").
//!
//! With σ = 1/√N_h (N_h = units of the receiving layer, the scale of the forward weights into it):
//!
//! | `--feedback` | entries of C |
//! |---|---|
//! | `normal` (default) | N(0, σ²) |
//! | `scaled:g` | N(0, (g·σ)²): the normal matrices times a gain g > 0 |
//! | `uniform` | U(−√3σ, √3σ) (same variance) |
//! | `shifted[:μ]` | N(μ, σ²), μ in units of σ (default 1, i.e. μ = σ) |
//! | `sparse:n` | 1 with probability p = n/N_h, else 0 (unscaled): each sending neuron reaches n receiving neurons on average |
//! | `sparse-signed:n` | the same random support, each entry ±1 with a random sign: zero mean, the control of `sparse:n` |
//! | `sparse-gaussian:n` | the same random support, each entry N(0, 1) |
//! | `congruent` | |R| ⊙ sign(W_{h+1}ᵀ ··· W_Lᵀ restricted to the sender), R ~ N(0, σ²), at initialisation |
//!
//! `k` averaged channels draw k matrices and use their mean.

use crate::error::{Error, Result};
use crate::rng::{self, Rng};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The distribution of a feedback matrix's entries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FeedbackInit {
    Normal,
    /// N(0, (g·σ)²): `normal` times the gain `g`.
    Scaled(f64),
    Uniform,
    /// Mean `μ = shift · σ`.
    Shifted(f64),
    /// Expected fan-out `n` of each sending neuron, entries 1 on the support.
    Sparse(f64),
    /// The same support, entries ±1 with random signs (zero mean).
    SparseSigned(f64),
    /// The same support, entries N(0, 1).
    SparseGaussian(f64),
    /// Signs of the forward path, magnitudes random.
    Congruent,
}

impl FeedbackInit {
    /// Parses `normal`, `scaled:g`, `uniform`, `shifted[:μ]`, `sparse:n`, `congruent`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::config("feedback", format!("{why}, got `{text}`"));
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text.trim(), None),
        };
        let num = |a: Option<&str>| -> Result<Option<f64>> {
            a.map(|a| {
                a.parse::<f64>()
                    .map_err(|_| bad("expected a number after `:`"))
            })
            .transpose()
        };
        Ok(match name {
            "normal" | "gaussian" if arg.is_none() => FeedbackInit::Normal,
            "uniform" if arg.is_none() => FeedbackInit::Uniform,
            "congruent" if arg.is_none() => FeedbackInit::Congruent,
            "scaled" => {
                let g = num(arg)?.ok_or_else(|| bad("scaled needs the gain, e.g. scaled:4"))?;
                if !(g.is_finite() && g > 0.0) {
                    return Err(bad("the gain of scaled must be a finite number > 0"));
                }
                FeedbackInit::Scaled(g)
            }
            "shifted" | "mean" => {
                let mu = num(arg)?.unwrap_or(1.0);
                if !mu.is_finite() {
                    return Err(bad("the shift must be a finite number"));
                }
                FeedbackInit::Shifted(mu)
            }
            "sparse" | "sparse-signed" | "sparse-gaussian" => {
                let n = num(arg)?
                    .ok_or_else(|| bad("sparse needs the expected fan-out, e.g. sparse:2"))?;
                if !(n.is_finite() && n >= 0.0) {
                    return Err(bad("sparse fan-out n must be a finite number ≥ 0"));
                }
                if n == 0.0 {
                    return Err(bad(
                        "sparse:0 gives all-zero feedback matrices: no signal reaches the hidden layers, which is top-only learning (use --channel top for that)",
                    ));
                }
                match name {
                    "sparse" => FeedbackInit::Sparse(n),
                    "sparse-signed" => FeedbackInit::SparseSigned(n),
                    _ => FeedbackInit::SparseGaussian(n),
                }
            }
            _ => {
                return Err(bad(
                    "expected normal, scaled:GAIN, uniform, shifted[:MEAN], sparse:N, sparse-signed:N, sparse-gaussian:N or congruent",
                ));
            }
        })
    }

    /// Draws a `rows × cols` matrix (rows = receiving units). `forward_signs`, for `congruent`,
    /// is the forward path's matrix in C's orientation.
    pub fn draw(
        &self,
        rows: usize,
        cols: usize,
        forward_signs: Option<&[f64]>,
        rng: &mut Rng,
    ) -> Result<Vec<f32>> {
        let sigma = (1.0 / rows as f64).sqrt();
        Ok(match *self {
            FeedbackInit::Normal => rng::normal_vec(rows * cols, sigma, rng),
            FeedbackInit::Scaled(g) => rng::normal_vec(rows * cols, g * sigma, rng),
            FeedbackInit::Uniform => {
                let a = 3f64.sqrt() * sigma;
                (0..rows * cols)
                    .map(|_| rng.random_range(-a..a) as f32)
                    .collect()
            }
            FeedbackInit::Shifted(mu) => rng::normal_vec(rows * cols, sigma, rng)
                .into_iter()
                .map(|v| v + (mu * sigma) as f32)
                .collect(),
            FeedbackInit::Sparse(n)
            | FeedbackInit::SparseSigned(n)
            | FeedbackInit::SparseGaussian(n) => {
                let p = n / rows as f64;
                if p > 1.0 {
                    return Err(Error::config(
                        "feedback",
                        format!(
                            "sparse fan-out n = {n} exceeds the {rows} units of a receiving layer"
                        ),
                    ));
                }
                let value = |rng: &mut Rng| -> f32 {
                    match *self {
                        FeedbackInit::SparseSigned(_) => {
                            if rng.random_bool(0.5) {
                                1.0
                            } else {
                                -1.0
                            }
                        }
                        FeedbackInit::SparseGaussian(_) => rng::normal_vec(1, 1.0, rng)[0],
                        _ => 1.0,
                    }
                };
                (0..rows * cols)
                    .map(|_| if rng.random_bool(p) { value(rng) } else { 0.0 })
                    .collect()
            }
            FeedbackInit::Congruent => {
                let signs = forward_signs.expect("congruent feedback needs the forward path");
                assert_eq!(signs.len(), rows * cols);
                rng::normal_vec(rows * cols, sigma, rng)
                    .into_iter()
                    .zip(signs)
                    .map(|(r, s)| {
                        if *s == 0.0 {
                            0.0
                        } else {
                            r.abs() * s.signum() as f32
                        }
                    })
                    .collect()
            }
        })
    }
}

impl fmt::Display for FeedbackInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedbackInit::Normal => write!(f, "normal"),
            FeedbackInit::Scaled(g) => write!(f, "scaled:{g}"),
            FeedbackInit::Uniform => write!(f, "uniform"),
            FeedbackInit::Shifted(m) => write!(f, "shifted:{m}"),
            FeedbackInit::Sparse(n) => write!(f, "sparse:{n}"),
            FeedbackInit::SparseSigned(n) => write!(f, "sparse-signed:{n}"),
            FeedbackInit::SparseGaussian(n) => write!(f, "sparse-gaussian:{n}"),
            FeedbackInit::Congruent => write!(f, "congruent"),
        }
    }
}

impl TryFrom<String> for FeedbackInit {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        FeedbackInit::parse(&s)
    }
}

impl From<FeedbackInit> for String {
    fn from(f: FeedbackInit) -> String {
        f.to_string()
    }
}
