//! A training run's configuration: what the CLI resolves and what is saved next to the results.
//! Checked once by [`TrainConfig::validate`]; bad values are reported with the value itself.
//!
//! One name per setting: a flag `--channel-dropout` is the key `channel_dropout` of a settings
//! file (a run's `config.toml`, `rbp train --config FILE`, an experiment's `[train]` and
//! `[[variant]]`), every key at the top level, and a quantizer is the string its flag takes
//! (`quantize_signal = "8:1"`). Files of earlier versions are still read: their
//! `[channel_options]` table (`channel_options.dropout` for `channel_dropout`, the other keys
//! unchanged) and quantizer tables (`{ bits = 8, alpha = 1.0 }`); [`deprecations`] names what a
//! file still spells the old way, for the warnings of user-facing input.

use crate::channel::quantize::QuantizerTable;
use crate::channel::{ChannelOptions, ChannelSpec, FeedbackInit, MixSignal, Quantizer};
use crate::error::{Error, Result};
use crate::kernels::Activation;
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::path::Path;

mod settings;

pub use settings::{FlagValue, SETTINGS, Setting, places};

/// Largest number of epochs of a run.
pub const MAX_EPOCHS: usize = 1_000_000;
/// Largest minibatch.
pub const MAX_BATCH: usize = 1 << 20;
/// Most worker threads of a run (more only cost time to start).
pub const MAX_THREADS: usize = 1024;
/// Largest random translation, in pixels.
pub const MAX_TRANSLATE: usize = 1024;

/// Where a run's training steps run: the CPU backend, or the GPU backend of `rbprop-gpu` (the
/// best adapter, or the one `adapter` names; results differ from the CPU's by f32 rounding
/// only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    Gpu,
}

impl<'de> Deserialize<'de> for Device {
    /// `"cpu"` or `"gpu"`; anything else is an error naming the key.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Device::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Device::NAMES.iter().map(|n| format!("\"{n}\"")).collect();
                format!(
                    "device must be {}, got \"{}\"",
                    names.join(" or "),
                    crate::error::bounded(s)
                )
            })
    }
}

impl Device {
    /// Every device, in the order of [`Device::NAMES`].
    pub const ALL: [Device; 2] = [Device::Cpu, Device::Gpu];
    /// Their names on the command line and in files.
    pub const NAMES: [&'static str; 2] = ["cpu", "gpu"];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        Device::NAMES[match self {
            Device::Cpu => 0,
            Device::Gpu => 1,
        }]
    }
}

/// Everything that determines a training run (with the data, the seed fixes every number).
/// (De)serialized flat, each key named after its flag (see the module's documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Data directory, or `embedded:fashion-mnist-subset`.
    pub data: String,
    /// Learning channel (written by its canonical name: `bp`, `rbp`, `srbp-nof`, …).
    pub channel: ChannelSpec,
    /// Hidden layer sizes of a dense net, input to output (ignored when `arch` is set).
    pub hidden: Vec<usize>,
    /// Architecture spec (conv/pool/fc tokens or a preset name); overrides `hidden`.
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
    pub weight_decay: f64,
    /// Variants of the learning channel (distribution, averaging, adaptation, noise, precision):
    /// in a file, the top-level keys `feedback`, `average`, `adapt_factor`, `channel_dropout`,
    /// `quantize_signal`, `quantize_update` and `mix`.
    pub channel_options: ChannelOptions,
    /// Seed of every random stream.
    pub seed: u64,
    /// Worker threads for large matrix products.
    pub threads: usize,
    /// Where the steps run. Like `threads`, not part of the run's identity: the devices agree to
    /// f32 rounding, not to the bit, and a run may be continued on either.
    pub device: Device,
    /// With `device = "gpu"`: the adapter whose name contains this (case-insensitive); the best
    /// adapter if absent. Not part of the run's identity either.
    pub adapter: Option<String>,
    /// Augmentation: random translation of up to this many pixels (0 = none).
    pub translate: usize,
    /// Augmentation: horizontal flip with probability 1/2.
    pub flip: bool,
    /// Log per-layer alignment diagnostics each epoch (costs a few forward/backward passes).
    pub diagnostics: bool,
    /// Use only the first N training examples (all if absent).
    pub train_limit: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: crate::data::EMBEDDED_NAME.into(),
            channel: ChannelSpec::parse("bp", false).expect("bp is registered"),
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
            device: Device::Cpu,
            adapter: None,
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
        let spec = self.channel;
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
        if self.adapter.is_some() && self.device != Device::Gpu {
            return Err(Error::config(
                "adapter",
                "chooses a GPU adapter: it needs device = \"gpu\" (--device gpu)",
            ));
        }
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

    /// Reads a run's `config.toml` (every key; the layout of earlier versions too, silently: a
    /// results directory is read as it was written). Unknown keys and bad values are errors
    /// naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| invalid(path, e))
    }

    /// Reads a settings file over `base`: the file may hold any of the keys (a run's
    /// `config.toml` holds all), those it leaves out keep their value in `base`. Returns the
    /// settings and what the file spells the old way ([`deprecations`]), for the caller to warn
    /// about.
    pub fn load_over(path: &Path, base: &TrainConfig) -> Result<(Self, Vec<Deprecation>)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(path, e))?;
        let settings: Settings = toml::from_str(&text).map_err(|e| invalid(path, e))?;
        let mut config = base.clone();
        settings.apply(&mut config).map_err(|problem| Error::Data {
            path: path.to_path_buf(),
            problem: format!("invalid run configuration: {problem}"),
            hint: HINT.into(),
        })?;
        Ok((config, deprecations(&table)))
    }

    /// Settings given as a table of keys (the names of a settings file) over `base`: those the
    /// table leaves out keep their value in `base`. For settings that come from code rather than
    /// a file (the Python package's keyword arguments); the error names the key.
    pub fn with_settings(table: toml::Table, base: &TrainConfig) -> Result<Self> {
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::config("settings", e.message().trim_end()))?;
        let mut config = base.clone();
        settings
            .apply(&mut config)
            .map_err(|problem| Error::config("settings", problem))?;
        Ok(config)
    }

    /// The canonical text of the settings that fix a run's numbers ([`TrainConfig::identity`]),
    /// which checkpoints hash: the layout config.toml files had before the keys were flattened
    /// (channel options in a `[channel_options]` table, quantizers as tables), kept unchanged so
    /// that the hash does not depend on how files name the keys and checkpoints of every version
    /// still resume.
    pub fn identity_text(&self) -> String {
        toml::to_string(&Canonical::of(&self.identity())).expect("config serializes")
    }

    /// The settings that fix a run's numbers: this configuration with the thread count, the
    /// device (and its adapter) and the number of epochs set aside (results do not depend on the
    /// first, differ by f32 rounding only with the second; raising the third extends a run). Two
    /// configurations describe the same run when these are equal.
    pub fn identity(&self) -> TrainConfig {
        TrainConfig {
            threads: 1,
            device: Device::Cpu,
            adapter: None,
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

/// What a settings file is, for the errors about one.
const HINT: &str =
    "a run configuration has the keys of the config.toml that `rbp train --out` writes";

fn invalid(path: &Path, e: toml::de::Error) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        problem: format!("invalid run configuration: {}", e.to_string().trim_end()),
        hint: HINT.into(),
    }
}

/// The channel-option keys of earlier versions' `[channel_options]` table and their names now.
pub const LEGACY_KEYS: [(&str, &str); 7] = [
    ("feedback", "feedback"),
    ("average", "average"),
    ("adapt_factor", "adapt_factor"),
    ("dropout", "channel_dropout"),
    ("quantize_signal", "quantize_signal"),
    ("quantize_update", "quantize_update"),
    ("mix", "mix"),
];

/// Something a settings file spells the way of an earlier version: still read, with a new form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deprecation {
    /// What is deprecated, e.g. `key channel_options.dropout` (one warning per distinct one).
    pub what: String,
    /// What to write instead, e.g. `channel_dropout`.
    pub instead: String,
}

impl std::fmt::Display for Deprecation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is deprecated; use {}", self.what, self.instead)
    }
}

/// What a table of run settings (a settings file, an experiment's `[train]` or a `[[variant]]`)
/// spells the old way: keys of the `[channel_options]` table, quantizers as tables.
pub fn deprecations(table: &toml::Table) -> Vec<Deprecation> {
    // the string a quantizer table stands for, if it is a valid one
    let quantizer = |key: &str, v: &toml::Value| -> String {
        let example = v
            .clone()
            .try_into::<QuantizerTable>()
            .map(|t| format!(", a string such as \"{}\"", Quantizer::from(t)))
            .unwrap_or_default();
        format!("{key}{example}")
    };
    let mut out = Vec::new();
    match table.get("channel_options") {
        None => {}
        Some(toml::Value::Table(old)) if !old.is_empty() => {
            for (key, v) in old {
                let Some((_, new)) = LEGACY_KEYS.iter().find(|(o, _)| o == key) else {
                    continue; // an unknown key: reading the file says so
                };
                let instead = match v {
                    toml::Value::Table(_) => quantizer(new, v),
                    _ => new.to_string(),
                };
                out.push(Deprecation {
                    what: format!("key channel_options.{key}"),
                    instead,
                });
            }
        }
        Some(_) => out.push(Deprecation {
            what: "key channel_options".into(),
            instead: format!(
                "the top-level keys {}",
                LEGACY_KEYS.map(|(_, new)| new).join(", ")
            ),
        }),
    }
    for key in ["quantize_signal", "quantize_update"] {
        if let Some(v @ toml::Value::Table(_)) = table.get(key) {
            out.push(Deprecation {
                what: format!("the table form of {key}"),
                instead: quantizer(key, v),
            });
        }
    }
    out
}

/// The `[channel_options]` table of earlier versions (`dropout` is now `channel_dropout`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LegacyChannelOptions {
    pub(crate) feedback: Option<FeedbackInit>,
    pub(crate) average: Option<usize>,
    pub(crate) adapt_factor: Option<f64>,
    pub(crate) dropout: Option<f64>,
    pub(crate) quantize_signal: Option<Quantizer>,
    pub(crate) quantize_update: Option<Quantizer>,
    pub(crate) mix: Option<Vec<MixSignal>>,
}

impl<'de> Deserialize<'de> for TrainConfig {
    /// A complete configuration: the keys a run's `config.toml` always holds are required.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = Settings::deserialize(d)?;
        if let Some(key) = s.missing() {
            return Err(serde::de::Error::missing_field(key));
        }
        let mut c = TrainConfig::default();
        s.apply(&mut c).map_err(serde::de::Error::custom)?;
        Ok(c)
    }
}

fn is_empty<T>(v: &&[T]) -> bool {
    v.is_empty()
}

/// The canonical layout of [`TrainConfig::identity_text`]: config.toml as it was before the keys
/// were flattened, field for field. Frozen: a new setting is added here only with a
/// `skip_serializing_if` that leaves the text of every earlier configuration unchanged.
#[derive(Serialize)]
struct Canonical<'a> {
    data: &'a str,
    channel: String,
    hidden: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    arch: Option<&'a str>,
    activation: Activation,
    epochs: usize,
    batch: usize,
    lr: f64,
    decay: f64,
    momentum: f64,
    weight_decay: f64,
    channel_options: CanonicalOptions<'a>,
    seed: u64,
    threads: usize,
    translate: usize,
    flip: bool,
    diagnostics: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    train_limit: Option<usize>,
}

/// The `[channel_options]` table of [`Canonical`].
#[derive(Serialize)]
struct CanonicalOptions<'a> {
    feedback: &'a FeedbackInit,
    average: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    adapt_factor: Option<f64>,
    dropout: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantize_signal: Option<QuantizerTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantize_update: Option<QuantizerTable>,
    #[serde(skip_serializing_if = "is_empty")]
    mix: &'a [MixSignal],
}

impl<'a> Canonical<'a> {
    fn of(c: &'a TrainConfig) -> Self {
        // every field named: a new setting does not compile until it is placed here
        let TrainConfig {
            data,
            channel,
            hidden,
            arch,
            activation,
            epochs,
            batch,
            lr,
            decay,
            momentum,
            weight_decay,
            channel_options,
            seed,
            threads,
            // not part of a run's identity (see `identity`)
            device: _,
            adapter: _,
            translate,
            flip,
            diagnostics,
            train_limit,
        } = c;
        let ChannelOptions {
            feedback,
            average,
            adapt_factor,
            dropout,
            quantize_signal,
            quantize_update,
            mix,
            // the run's weight_decay, above
            weight_decay: _,
        } = channel_options;
        Canonical {
            data,
            channel: channel.canonical_name(),
            hidden,
            arch: arch.as_deref(),
            activation: *activation,
            epochs: *epochs,
            batch: *batch,
            lr: *lr,
            decay: *decay,
            momentum: *momentum,
            weight_decay: *weight_decay,
            channel_options: CanonicalOptions {
                feedback,
                average: *average,
                adapt_factor: *adapt_factor,
                dropout: *dropout,
                quantize_signal: quantize_signal.map(QuantizerTable::from),
                quantize_update: quantize_update.map(QuantizerTable::from),
                mix,
            },
            seed: *seed,
            threads: *threads,
            translate: *translate,
            flip: *flip,
            diagnostics: *diagnostics,
            train_limit: *train_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings hash of a checkpoint (`checkpoint::settings_hash`, which builds on this
    /// module: computed here from the same canonical text, so that the tests need no import
    /// back).
    fn settings_hash(config: &TrainConfig) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(config.identity_text().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// config.toml files written before the keys were flattened, with the settings hash their
    /// checkpoints hold (from that version's `rbp train --out`).
    const LEGACY: [(&str, &str); 5] = [
        (
            "data = \"embedded:fashion-mnist-subset\"\nchannel = \"bp\"\nhidden = [100, 100, 100, 100]\nactivation = \"tanh\"\nepochs = 1\nbatch = 100\nlr = 0.1\ndecay = 0.000001\nmomentum = 0.0\nweight_decay = 0.0\nseed = 1\nthreads = 1\ntranslate = 0\nflip = false\ndiagnostics = false\n\n[channel_options]\nfeedback = \"normal\"\naverage = 1\ndropout = 0.0\n",
            "ef5ce243aa57474d1f45401fd45da41c538d3474119a4366c365efbebe96249a",
        ),
        (
            "data = \"embedded:fashion-mnist-subset\"\nchannel = \"mix\"\nhidden = [7, 3]\nactivation = \"relu\"\nepochs = 1\nbatch = 100\nlr = 0.1\ndecay = 0.000001\nmomentum = 0.5\nweight_decay = 0.001\nseed = 7\nthreads = 2\ntranslate = 1\nflip = true\ndiagnostics = true\ntrain_limit = 200\n\n[channel_options]\nfeedback = \"normal\"\naverage = 1\ndropout = 0.0\nmix = [\"srbp\", \"bp\"]\n",
            "1de4c16d0313c9f4e95710c64c6e22b9c537fe78cde1398bc0efd7375a6f9e9c",
        ),
        (
            "data = \"embedded:fashion-mnist-subset\"\nchannel = \"kp\"\nhidden = [100, 100, 100, 100]\narch = \"fc8-fc4\"\nactivation = \"tanh\"\nepochs = 1\nbatch = 100\nlr = 0.1\ndecay = 0.000001\nmomentum = 0.0\nweight_decay = 0.0001\nseed = 1\nthreads = 1\ntranslate = 0\nflip = false\ndiagnostics = false\ntrain_limit = 100\n\n[channel_options]\nfeedback = \"normal\"\naverage = 1\ndropout = 0.0\n",
            "f765237886bde50e3784fa5681619827c817eb999c813c91221eff961bd629de",
        ),
        (
            "data = \"embedded:fashion-mnist-subset\"\nchannel = \"rbp\"\nhidden = [100, 100, 100, 100]\nactivation = \"tanh\"\nepochs = 1\nbatch = 100\nlr = 0.1\ndecay = 0.000001\nmomentum = 0.0\nweight_decay = 0.0\nseed = 1\nthreads = 1\ntranslate = 0\nflip = false\ndiagnostics = false\ntrain_limit = 100\n\n[channel_options]\nfeedback = \"shifted:0.5\"\naverage = 1\ndropout = 0.0\n\n[channel_options.quantize_signal]\nbits = 1\nalpha = \"auto\"\nform = \"mid-rise\"\n",
            "a89cc1d78c8bc9e496478963a6eab2cca888b5390658cd14ad2b12bd5581fe48",
        ),
        (
            "data = \"embedded:fashion-mnist-subset\"\nchannel = \"asrbp\"\nhidden = [6, 5]\nactivation = \"tanh\"\nepochs = 1\nbatch = 100\nlr = 0.1\ndecay = 0.0\nmomentum = 0.0\nweight_decay = 0.0\nseed = 1\nthreads = 1\ntranslate = 0\nflip = false\ndiagnostics = false\ntrain_limit = 300\n\n[channel_options]\nfeedback = \"sparse:2\"\naverage = 2\nadapt_factor = 0.2\ndropout = 0.1\n\n[channel_options.quantize_signal]\nbits = 2\nalpha = 0.5\nform = \"mid-tread\"\n\n[channel_options.quantize_update]\nbits = 4\nalpha = \"auto\"\nrounding = \"stochastic\"\n",
            "80d2d0117e11b07902c37feb008c801f7967e92408c447070d7c65e69dd237c1",
        ),
    ];

    /// Every device reads back from its name (flags, files and Python parse names through
    /// `Device::from_str`), and every name is a device's.
    #[test]
    fn device_names_read_back() {
        assert_eq!(Device::ALL.len(), Device::NAMES.len());
        for (d, n) in Device::ALL.into_iter().zip(Device::NAMES) {
            assert_eq!((d.name(), n.parse::<Device>()), (n, Ok(d)));
        }
        let e = "tpu".parse::<Device>().unwrap_err();
        assert_eq!(e, "device must be \"cpu\" or \"gpu\", got \"tpu\"");
    }

    #[test]
    fn old_files_read_and_hash_as_before_and_write_flat() {
        for (text, hash) in LEGACY {
            let c: TrainConfig = toml::from_str(text).unwrap();
            c.validate().unwrap();
            // the checkpoint hash of the version that wrote the file
            assert_eq!(settings_hash(&c), hash, "{text}");
            // written flat, read back to the same settings and hash
            let flat = toml::to_string_pretty(&c).unwrap();
            assert!(
                !flat.contains("channel_options") && !flat.contains("\n["),
                "no tables: {flat}"
            );
            let back: TrainConfig = toml::from_str(&flat).unwrap();
            assert_eq!(back, c);
            assert_eq!(settings_hash(&back), hash);
            // the canonical text is the old layout (with the identity's threads and epochs)
            let mut old: toml::Table = toml::from_str(text).unwrap();
            old.insert("threads".into(), 1.into());
            old.insert("epochs".into(), 1.into());
            assert_eq!(
                toml::from_str::<toml::Table>(&c.identity_text()).unwrap(),
                old
            );
        }
        let c: TrainConfig = toml::from_str(LEGACY[4].0).unwrap();
        let flat = toml::to_string_pretty(&c).unwrap();
        for line in [
            "feedback = \"sparse:2\"",
            "average = 2",
            "adapt_factor = 0.2",
            "channel_dropout = 0.1",
            "quantize_signal = \"2:0.5:mid-tread\"",
            "quantize_update = \"4:auto:stochastic\"",
        ] {
            assert!(flat.contains(line), "{line} missing: {flat}");
        }
    }

    #[test]
    fn old_and_new_names_of_one_setting() {
        let base = toml::to_string(&TrainConfig::default()).unwrap();
        let read = |extra: &str| toml::from_str::<TrainConfig>(&format!("{base}{extra}"));
        // the defaults of the new keys yield to the old table (an experiment's base merged with
        // an old-style [train])
        let c = read("[channel_options]\ndropout = 0.25\nfeedback = \"uniform\"\n").unwrap();
        assert_eq!(c.channel_options.dropout, 0.25);
        assert_eq!(c.channel_options.feedback, FeedbackInit::Uniform);
        // the same value twice is no conflict; two different values are
        let base2 = base.replace("channel_dropout = 0.0", "channel_dropout = 0.5");
        let c: TrainConfig =
            toml::from_str(&format!("{base2}[channel_options]\ndropout = 0.5\n")).unwrap();
        assert_eq!(c.channel_options.dropout, 0.5);
        let e =
            toml::from_str::<TrainConfig>(&format!("{base2}[channel_options]\ndropout = 0.25\n"))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("`channel_dropout` and `channel_options.dropout`"),
            "{e}"
        );
        let e =
            read("quantize_signal = \"2\"\n[channel_options]\nquantize_signal = { bits = 3 }\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("`quantize_signal` and `channel_options.quantize_signal`"),
            "{e}"
        );
        // unknown old keys are still errors
        let e = read("[channel_options]\ndropuot = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `dropuot`"), "{e}");
        let e = toml::from_str::<TrainConfig>("lr = 0.1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `data`"), "{e}");
    }

    #[test]
    fn deprecations_name_the_old_key_and_the_new() {
        let t: toml::Table = toml::from_str(
            "lr = 0.1\nquantize_update = { bits = 4 }\n[channel_options]\ndropout = 0.1\nfeedback = \"uniform\"\nquantize_signal = { bits = 2, alpha = 1.0 }\n",
        )
        .unwrap();
        let d: Vec<String> = deprecations(&t).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            d,
            [
                "key channel_options.dropout is deprecated; use channel_dropout",
                "key channel_options.feedback is deprecated; use feedback",
                "key channel_options.quantize_signal is deprecated; use quantize_signal, a string such as \"2:1\"",
                "the table form of quantize_update is deprecated; use quantize_update, a string such as \"4:auto\"",
            ]
        );
        let t: toml::Table =
            toml::from_str("lr = 0.1\nquantize_signal = \"2\"\nchannel_dropout = 0.1\n").unwrap();
        assert!(deprecations(&t).is_empty());
    }
}
