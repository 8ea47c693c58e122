//! Hidden-layer activation functions `f`, applied in place, and the derivative factor `f'(S)`
//! computed from the layer's output `O = f(S)` (so `S` need not be kept).

use super::simd::{self, dispatch};
use serde::{Deserialize, Serialize};

/// A hidden unit's transfer function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh(s)`; f' = 1 − O².
    Tanh,
    /// `1 / (1 + e^{−s})`; f' = O(1 − O).
    Logistic,
    /// `max(0, s)`; f' = [O > 0].
    Relu,
    /// `s`; f' = 1.
    Linear,
}

impl Activation {
    /// `x ← f(x)` elementwise.
    pub fn forward(self, x: &mut [f32]) {
        match self {
            Activation::Tanh => tanh_slice(x),
            Activation::Logistic => logistic_slice(x),
            Activation::Relu => relu_slice(x),
            Activation::Linear => {}
        }
    }

    /// `g ← g ⊙ f'(S)`, where `o = f(S)` is the layer's output.
    pub fn mul_derivative(self, o: &[f32], g: &mut [f32]) {
        assert_eq!(o.len(), g.len());
        match self {
            Activation::Tanh => mul_dtanh(o, g),
            Activation::Logistic => mul_dlogistic(o, g),
            Activation::Relu => mul_drelu(o, g),
            Activation::Linear => {}
        }
    }

    /// Every activation, in the order the command line lists them.
    pub const ALL: [Activation; 4] = [
        Activation::Tanh,
        Activation::Logistic,
        Activation::Relu,
        Activation::Linear,
    ];

    /// The names of [`Activation::ALL`].
    pub const NAMES: [&'static str; 4] = ["tanh", "logistic", "relu", "linear"];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Logistic => "logistic",
            Activation::Relu => "relu",
            Activation::Linear => "linear",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown activation `{s}` (one of: {})",
                    Activation::NAMES.join(", ")
                )
            })
    }
}

dispatch! {
    /// `x ← tanh(x)`.
    pub fn tanh_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = simd::tanh(*v));
    }
}

dispatch! {
    /// `x ← 1 / (1 + e^{−x})`.
    pub fn logistic_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = simd::logistic(*v));
    }
}

dispatch! {
    /// `x ← max(0, x)` (NaN stays NaN).
    pub fn relu_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v });
    }
}

dispatch! {
    /// `g ← g ⊙ (1 − o²)`.
    pub fn mul_dtanh(o: &[f32], g: &mut [f32]) {
        g.iter_mut().zip(o).for_each(|(g, o)| *g *= 1.0 - o * o);
    }
}

dispatch! {
    /// `g ← g ⊙ o(1 − o)`.
    pub fn mul_dlogistic(o: &[f32], g: &mut [f32]) {
        g.iter_mut().zip(o).for_each(|(g, o)| *g *= o * (1.0 - o));
    }
}

dispatch! {
    /// `g ← g ⊙ [o > 0]`.
    pub fn mul_drelu(o: &[f32], g: &mut [f32]) {
        g.iter_mut().zip(o).for_each(|(g, o)| *g = if *o > 0.0 { *g } else { 0.0 });
    }
}
