//! A training run's configuration: what the CLI resolves and what is saved next to the results.
//! Checked once by [`TrainConfig::validate`]; bad values are reported with the value itself.

use crate::channel::{ChannelOptions, ChannelSpec};
use crate::error::{Error, Result};
use crate::kernels::Activation;
use serde::{Deserialize, Serialize};

/// Largest number of epochs of a run.
pub const MAX_EPOCHS: usize = 1_000_000;
/// Largest minibatch.
pub const MAX_BATCH: usize = 1 << 20;
/// Most worker threads of a run (more only cost time to start).
pub const MAX_THREADS: usize = 1024;
/// Largest random translation, in pixels.
pub const MAX_TRANSLATE: usize = 1024;

/// Everything that determines a training run (with the data, the seed fixes every number).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Data directory, or `embedded:fashion-mnist-subset`.
    pub data: String,
    /// Learning channel, canonical name (`bp`, `rbp`, `srbp-nof`, …).
    pub channel: String,
    /// Hidden layer sizes of a dense net, input to output (ignored when `arch` is set).
    pub hidden: Vec<usize>,
    /// Architecture spec (conv/pool/fc tokens or a preset name); overrides `hidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Hidden activation.
    pub activation: Activation,
    /// Passes over the training set.
    pub epochs: usize,
    /// Minibatch size B.
    pub batch: usize,
    /// Initial learning rate η_0.
    pub lr: f64,
    /// Per-update decay: η_t = η_0 / (1 + decay · t), t = updates so far.
    pub decay: f64,
    /// Momentum μ (0 = plain SGD).
    pub momentum: f64,
    /// Weight decay λ: every update also subtracts η_t·λ·W.
    #[serde(default)]
    pub weight_decay: f64,
    /// Variants of the learning channel (distribution, averaging, adaptation, noise, precision).
    #[serde(default)]
    pub channel_options: ChannelOptions,
    /// Seed of every random stream.
    pub seed: u64,
    /// Worker threads for large matrix products.
    pub threads: usize,
    /// Augmentation: random translation of up to this many pixels (0 = none).
    #[serde(default)]
    pub translate: usize,
    /// Augmentation: horizontal flip with probability 1/2.
    #[serde(default)]
    pub flip: bool,
    /// Log per-layer alignment diagnostics each epoch (costs a few forward/backward passes).
    #[serde(default)]
    pub diagnostics: bool,
    /// Use only the first N training examples (all if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: crate::data::EMBEDDED_NAME.into(),
            channel: "bp".into(),
            hidden: vec![100; 4],
            arch: None,
            activation: Activation::Tanh,
            epochs: 10,
            batch: 100,
            lr: 0.1,
            decay: 1e-6,
            momentum: 0.0,
            weight_decay: 0.0,
            channel_options: ChannelOptions::default(),
            seed: 1,
            threads: 1,
            translate: 0,
            flip: false,
            diagnostics: false,
            train_limit: None,
        }
    }
}

impl TrainConfig {
    /// Checks every value; the error names the key and the offending value.
    pub fn validate(&self) -> Result<ChannelSpec> {
        let spec = ChannelSpec::parse(&self.channel, false)?;
        if self.hidden.contains(&0) {
            return Err(Error::config(
                "hidden",
                format!("layer sizes must be ≥ 1, got {:?}", self.hidden),
            ));
        }
        let bounded = |key: &str, value: usize, max: usize| -> Result<()> {
            if value == 0 || value > max {
                return Err(Error::config(
                    key,
                    format!("must be in 1..={max}, got {value}"),
                ));
            }
            Ok(())
        };
        bounded("epochs", self.epochs, MAX_EPOCHS)?;
        bounded("batch", self.batch, MAX_BATCH)?;
        bounded("threads", self.threads, MAX_THREADS)?;
        if self.translate > MAX_TRANSLATE {
            return Err(Error::config(
                "translate",
                format!(
                    "must be in 0..={MAX_TRANSLATE} pixels, got {}",
                    self.translate
                ),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "lr",
                format!("learning rate must be > 0, got {}", self.lr),
            ));
        }
        if !(self.decay.is_finite() && self.decay >= 0.0) {
            return Err(Error::config(
                "decay",
                format!("must be ≥ 0, got {}", self.decay),
            ));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::config(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "weight-decay",
                format!("must be ≥ 0, got {}", self.weight_decay),
            ));
        }
        if self.channel_options.quantize_update.is_some()
            && (self.decay != 0.0 || self.momentum != 0.0)
        {
            return Err(Error::config(
                "quantize-update",
                format!(
                    "quantized updates use a constant learning rate and no momentum (paper §1): set --decay 0 --momentum 0 (got decay {}, momentum {})",
                    self.decay, self.momentum
                ),
            ));
        }
        self.resolved_options().validate_for(spec.kind)?;
        if let Some(arch) = &self.arch {
            crate::model::parse_arch(arch)?;
        }
        if self.train_limit == Some(0) {
            return Err(Error::config("train-limit", "must be ≥ 1, got 0"));
        }
        Ok(spec)
    }

    /// Reads a TOML run configuration; unknown keys and bad values are errors naming the file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            problem: format!("invalid run configuration: {}", e.to_string().trim_end()),
            hint:
                "a run configuration has the keys of the config.toml that `rbp train --out` writes"
                    .into(),
        })
    }

    /// The settings that fix a run's numbers: this configuration with the thread count and the
    /// number of epochs set aside (results do not depend on the first; raising the second
    /// extends a run). Two configurations describe the same run when these are equal.
    pub fn identity(&self) -> TrainConfig {
        TrainConfig {
            threads: 1,
            epochs: 1,
            ..self.clone()
        }
    }

    /// The channel options with the run's weight decay filled in.
    pub fn resolved_options(&self) -> ChannelOptions {
        ChannelOptions {
            weight_decay: self.weight_decay,
            ..self.channel_options.clone()
        }
    }

    /// Parses `--hidden 100,100,100` (an empty string means no hidden layer).
    pub fn parse_hidden(text: &str) -> Result<Vec<usize>> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|s| {
                s.trim().parse::<usize>().map_err(|_| {
                    Error::config(
                        "hidden",
                        format!(
                            "expected comma-separated layer sizes like 100,100; `{s}` is not a size"
                        ),
                    )
                })
            })
            .collect()
    }
}
