//! Settings that shape a channel beyond its name: the distribution of its random matrices,
//! averaging, adaptation, noise and precision (paper §1 variants). Checked against the chosen
//! algorithm once; an impossible combination says why.

use super::mix::MixSignal;
use super::quantize::{Form, Rounding};
use super::registry::{CHANNELS, ChannelKind};
use super::{FeedbackInit, Quantizer};
use crate::error::{Error, Result};

/// Most random matrices averaged per term (`--average`).
pub const MAX_AVERAGE: usize = 1000;
/// Default factor of an adaptive channel's learning rate, η_c = factor · η_t (our default).
pub const DEFAULT_ADAPT_FACTOR: f64 = 0.1;

/// Channel variants, composable with any algorithm where they make sense. The in-memory form:
/// a run's settings file holds them as top-level keys named after their flags (`feedback`,
/// `average`, `adapt_factor`, `channel_dropout`, `quantize_signal`, `quantize_update`, `mix`;
/// see `rbprop::config`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelOptions {
    /// Distribution of random feedback matrices (`--feedback`).
    pub feedback: FeedbackInit,
    /// k independent random matrices per term, averaged (`--average`).
    pub average: usize,
    /// η_c / η_t of adaptive channels (arbp, asrbp); default 0.1 (`--adapt-factor`).
    pub adapt_factor: Option<f64>,
    /// Dropout rate r of the signal arriving at hidden neurons (`--channel-dropout`).
    pub dropout: f64,
    /// Quantizer of the signal arriving at hidden neurons (`--quantize-signal`).
    pub quantize_signal: Option<Quantizer>,
    /// Quantizer of each example's weight update (`--quantize-update`).
    pub quantize_update: Option<Quantizer>,
    /// Per hidden layer (bottom to top), the signal of the `mix` channel (`--mix`).
    pub mix: Vec<MixSignal>,
    /// Weight decay λ of the training run, copied from the run's settings (Kolen-Pollack applies
    /// it to its feedback matrices too).
    pub weight_decay: f64,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            feedback: FeedbackInit::Normal,
            average: 1,
            adapt_factor: None,
            dropout: 0.0,
            quantize_signal: None,
            quantize_update: None,
            mix: Vec::new(),
            weight_decay: 0.0,
        }
    }
}

impl ChannelOptions {
    /// η_c / η_t for adaptive channels.
    pub fn adapt_factor(&self) -> f64 {
        self.adapt_factor.unwrap_or(DEFAULT_ADAPT_FACTOR)
    }

    /// Checks the options on their own and against the algorithm `kind`.
    pub fn validate_for(&self, kind: &ChannelKind) -> Result<()> {
        let name = kind.name;
        if !kind.random && self.feedback != FeedbackInit::Normal {
            return Err(Error::config(
                "feedback",
                format!(
                    "`{name}` has no random feedback matrices, so --feedback {} does not apply",
                    self.feedback
                ),
            ));
        }
        if self.average == 0 || self.average > MAX_AVERAGE {
            return Err(Error::config(
                "average",
                format!("k must be in 1..={MAX_AVERAGE}, got {}", self.average),
            ));
        }
        if !kind.random && self.average != 1 {
            return Err(Error::config(
                "average",
                format!(
                    "`{name}` has no random feedback matrices to average (k = {})",
                    self.average
                ),
            ));
        }
        if let Some(f) = self.adapt_factor {
            if !kind.adaptive {
                let adaptive: Vec<&str> = CHANNELS
                    .iter()
                    .filter(|k| k.adaptive)
                    .map(|k| k.name)
                    .collect();
                return Err(Error::config(
                    "adapt-factor",
                    format!("`{name}` is not adaptive; use {}", adaptive.join(" or ")),
                ));
            }
            if !(f.is_finite() && f >= 0.0) {
                return Err(Error::config(
                    "adapt-factor",
                    format!("must be ≥ 0, got {f}"),
                ));
            }
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(Error::config(
                "channel-dropout",
                format!("rate must be in [0, 1), got {}", self.dropout),
            ));
        }
        if let Some(q) = &self.quantize_signal {
            q.check("quantize-signal")?;
            if q.rounding == Rounding::Stochastic {
                return Err(Error::config(
                    "quantize-signal",
                    "stochastic rounding applies to weight updates (--quantize-update); error signals round to the nearest level",
                ));
            }
        }
        if let Some(q) = &self.quantize_update {
            q.check("quantize-update")?;
            if q.form == Some(Form::MidRise) {
                return Err(Error::config(
                    "quantize-update",
                    "weight updates are quantized mid-tread (small updates vanish, as on low-precision hardware); mid-rise applies to error signals",
                ));
            }
            if q.bits < 2 {
                return Err(Error::config(
                    "quantize-update",
                    "mid-tread quantized updates need at least 2 bits (1 bit has only the zero level)",
                ));
            }
        }
        if !kind.hidden_signal && (self.dropout > 0.0 || self.quantize_signal.is_some()) {
            return Err(Error::config(
                "channel",
                format!(
                    "`{name}` sends no signal to hidden layers: channel dropout and signal quantization do not apply"
                ),
            ));
        }
        if kind.per_layer_mix {
            if self.mix.is_empty() {
                return Err(Error::config(
                    "mix",
                    format!(
                        "the `{name}` channel needs --mix with bp or srbp for every hidden layer, e.g. --mix srbp,srbp,bp,bp"
                    ),
                ));
            }
        } else if !self.mix.is_empty() {
            return Err(Error::config(
                "mix",
                format!(
                    "--mix applies to {}, not `{name}`",
                    CHANNELS
                        .iter()
                        .filter(|k| k.per_layer_mix)
                        .map(|k| format!("`{}`", k.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "weight-decay",
                format!("must be ≥ 0, got {}", self.weight_decay),
            ));
        }
        if kind.needs_weight_decay && self.weight_decay == 0.0 {
            return Err(Error::config(
                "weight-decay",
                format!(
                    "`{name}` needs weight decay > 0 (it is what makes C and Wᵀ converge), e.g. --weight-decay 1e-4"
                ),
            ));
        }
        Ok(())
    }
}
