//! Every setting of a run, declared once ([`SETTINGS`], from the one `settings!` table below).
//!
//! A setting is a key (`channel_dropout`), the place of its value in [`TrainConfig`], its type,
//! and its help. From that one entry come: the key of a settings file and of a run's
//! `config.toml` (read and written in the table's order), the `rbp train` flag of the same name
//! in kebab-case (`--channel-dropout`, with its help, value name, default and the parser that
//! checks its text), `--print-config`, the columns of `rbp export` and the words of a grid's
//! row labels (`key=value` where no word is defined), and the Python package's keyword
//! arguments (a file's keys). Adding a setting: a field of [`TrainConfig`] (or of
//! `ChannelOptions`) and its default, one entry here, and its checks in
//! [`TrainConfig::validate`]; `settings_cover_every_field` fails until the entry exists.

use super::{Device, TrainConfig};
use crate::channel::{ChannelSpec, FeedbackInit, MixSignal, Quantizer};
use crate::error::{Error, Result};
use crate::kernels::Activation;
use serde::Deserialize;
use serde::ser::SerializeMap;

/// One setting as the command line and the help show it.
#[derive(Debug)]
pub struct Setting {
    /// The key of a settings file; the flag is its kebab-case form.
    pub key: &'static str,
    /// The help, one line of the declaration's documentation each.
    pub help: &'static [&'static str],
    /// What the flag's value is called in the help.
    pub value_name: &'static str,
    /// A complete configuration (a run's `config.toml`) must hold it; a `--config` file or a
    /// table of settings may leave it out.
    pub required: bool,
    /// An on/off setting: the flag's value may be left out (`--flip` is `--flip true`) and it has
    /// an off form (`--no-flip`).
    pub switch: bool,
    /// The values the flag takes, where they are a fixed list.
    pub choices: Option<&'static [&'static str]>,
    /// Parses the flag's text as the setting's type: `Err` is the problem, naming the key.
    pub check: fn(&str) -> Result<()>,
}

impl Setting {
    /// The flag's name, without its dashes: `channel-dropout`.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The help as one paragraph.
    pub fn help_text(&self) -> String {
        self.help
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A setting's type as a flag gives it: parsed from the flag's text (the error names the key)
/// and written back as that text (for the defaults the help shows).
pub trait FlagValue: Sized {
    /// An on/off value (see [`Setting::switch`]).
    const SWITCH: bool = false;
    /// The values it can take, where they are a fixed list.
    const CHOICES: Option<&'static [&'static str]> = None;
    fn parse_flag(text: &str, key: &str) -> Result<Self>;
    fn flag_text(&self) -> String;
}

/// `text` parsed by `FromStr`; the error names `key` and says what was `expected`.
fn parsed<T: std::str::FromStr>(text: &str, key: &str, what: &str) -> Result<T> {
    text.trim().parse().map_err(|_| {
        Error::config(
            key,
            format!("expected {what}, got `{}`", crate::error::bounded(text)),
        )
    })
}

impl FlagValue for String {
    fn parse_flag(text: &str, _: &str) -> Result<Self> {
        Ok(text.to_string())
    }
    fn flag_text(&self) -> String {
        self.clone()
    }
}

/// Numbers: parsed by `FromStr`, written by `Display`.
macro_rules! number_flags {
    ($($ty:ty: $what:literal),*) => {$(
        impl FlagValue for $ty {
            fn parse_flag(text: &str, key: &str) -> Result<Self> {
                parsed(text, key, $what)
            }
            fn flag_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

number_flags!(usize: "a whole number ≥ 0", u64: "a whole number ≥ 0", f64: "a number");

impl FlagValue for bool {
    const SWITCH: bool = true;
    const CHOICES: Option<&'static [&'static str]> = Some(&["true", "false"]);
    fn parse_flag(text: &str, key: &str) -> Result<Self> {
        parsed(text, key, "true or false")
    }
    fn flag_text(&self) -> String {
        self.to_string()
    }
}

/// Layer sizes, comma-separated (`100,100`; an empty text is no layer).
impl FlagValue for Vec<usize> {
    fn parse_flag(text: &str, _: &str) -> Result<Self> {
        TrainConfig::parse_hidden(text)
    }
    fn flag_text(&self) -> String {
        self.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One entry per hidden layer, comma-separated (`bp,srbp`).
impl FlagValue for Vec<MixSignal> {
    fn parse_flag(text: &str, _: &str) -> Result<Self> {
        MixSignal::parse_list(text)
    }
    fn flag_text(&self) -> String {
        self.iter()
            .map(MixSignal::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FlagValue for Activation {
    const CHOICES: Option<&'static [&'static str]> = Some(&Activation::NAMES);
    fn parse_flag(text: &str, key: &str) -> Result<Self> {
        text.parse().map_err(|e: String| Error::config(key, e))
    }
    fn flag_text(&self) -> String {
        self.name().into()
    }
}

impl FlagValue for Device {
    const CHOICES: Option<&'static [&'static str]> = Some(&Device::NAMES);
    fn parse_flag(text: &str, key: &str) -> Result<Self> {
        text.parse().map_err(|e: String| Error::config(key, e))
    }
    fn flag_text(&self) -> String {
        self.name().into()
    }
}

impl FlagValue for ChannelSpec {
    fn parse_flag(text: &str, _: &str) -> Result<Self> {
        ChannelSpec::parse(text, false)
    }
    fn flag_text(&self) -> String {
        self.canonical_name()
    }
}

impl FlagValue for FeedbackInit {
    fn parse_flag(text: &str, _: &str) -> Result<Self> {
        FeedbackInit::parse(text)
    }
    fn flag_text(&self) -> String {
        self.to_string()
    }
}

impl FlagValue for Quantizer {
    fn parse_flag(text: &str, key: &str) -> Result<Self> {
        Quantizer::parse(text, &key.replace('_', "-"))
    }
    fn flag_text(&self) -> String {
        self.to_string()
    }
}

/// The table of settings. Each entry: its documentation (the flag's help), `key: Type =
/// place`, then how a file holds it (`always`: every file written holds it; `some`: an
/// `Option` field, written when set; `nonempty`: a list, written when not empty), whether a
/// complete configuration must hold it (`required` or `optional`), and the flag's value name.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident : $ty:ty = $($field:ident).+ ; $form:ident, $need:ident, $value_name:literal ;
    )*) => {
        /// Every setting, in the order files hold them.
        pub static SETTINGS: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                help: &[$($doc),*],
                value_name: $value_name,
                required: settings!(@required $need),
                switch: <$ty as FlagValue>::SWITCH,
                choices: <$ty as FlagValue>::CHOICES,
                check: |text| <$ty as FlagValue>::parse_flag(text, stringify!($key)).map(|_| ()),
            },
        )*];

        /// A set of run settings as a file holds them: any of the keys, and the
        /// `[channel_options]` table of earlier versions.
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct Settings {
            $( pub(super) $key: Option<$ty>, )*
            /// Deprecated: the channel options of earlier versions.
            pub(super) channel_options: Option<super::LegacyChannelOptions>,
        }

        impl Settings {
            /// Sets every key given in `c` (the legacy table already merged).
            fn set_given(self, c: &mut TrainConfig) {
                $( if let Some(v) = self.$key { settings!(@set $form c.$($field).+, v); } )*
            }

            /// The first key a complete configuration needs that is not given.
            pub(super) fn missing(&self) -> Option<&'static str> {
                $( if settings!(@required $need) && self.$key.is_none() {
                    return Some(stringify!($key));
                } )*
                None
            }
        }

        impl TrainConfig {
            /// Sets the setting `key` from its flag's text.
            pub fn set_flag(&mut self, key: &str, text: &str) -> Result<()> {
                match key {
                    $( stringify!($key) => {
                        let v = <$ty as FlagValue>::parse_flag(text, key)?;
                        settings!(@set $form self.$($field).+, v);
                    } )*
                    _ => return Err(Error::config(key, "no such setting")),
                }
                Ok(())
            }

            /// The value of the setting `key` as its flag's text (`None` for an unset option or
            /// an empty list, and for a key that is no setting).
            pub fn flag_text(&self, key: &str) -> Option<String> {
                match key {
                    $( stringify!($key) => settings!(@get $form self.$($field).+).map(FlagValue::flag_text), )*
                    _ => None,
                }
            }
        }

        /// Where each setting lives in [`TrainConfig`]: `(key, field path)`.
        pub fn places() -> Vec<(&'static str, &'static str)> {
            vec![$( (stringify!($key), stringify!($($field).+)), )*]
        }

        impl serde::Serialize for TrainConfig {
            /// Flat, every key named after its flag, in [`SETTINGS`]' order.
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(None)?;
                $( if let Some(v) = settings!(@get $form self.$($field).+) {
                    map.serialize_entry(stringify!($key), v)?;
                } )*
                map.end()
            }
        }
    };
    (@required required) => { true };
    (@required optional) => { false };
    (@set always $place:expr, $v:expr) => { $place = $v };
    (@set some $place:expr, $v:expr) => { $place = Some($v) };
    (@set nonempty $place:expr, $v:expr) => { $place = $v };
    (@get always $place:expr) => { Some(&$place) };
    (@get some $place:expr) => { $place.as_ref() };
    (@get nonempty $place:expr) => { Some(&$place).filter(|v| !v.is_empty()) };
}

settings! {
    /// Data directory: the four MNIST-format files (train-images-idx3-ubyte[.gz], …; MNIST,
    /// Fashion-MNIST, KMNIST) or CIFAR-10's binary version (data_batch_1.bin …, directly or in
    /// cifar-10-batches-bin/; `rbp data fetch cifar10 DIR`), or embedded:fashion-mnist-subset,
    /// the embedded Fashion-MNIST subset (10,000 train / 2,000 test).
    data: String = data; always, required, "DIR";
    /// Learning channel (see `rbp channels`); append -nof for the no-derivative version (e.g.
    /// rbp-nof).
    channel: ChannelSpec = channel; always, required, "NAME";
    /// Distribution of random feedback matrices: normal, scaled:GAIN, uniform, shifted[:MEAN] (mean in units
    /// of the standard deviation, default 1), sparse:N (0/1 entries, expected fan-out N),
    /// sparse-signed:N, sparse-gaussian:N, congruent.
    feedback: FeedbackInit = channel_options.feedback; always, optional, "DIST";
    /// Average K independent random feedback matrices.
    average: usize = channel_options.average; always, optional, "K";
    /// Learning-rate factor of adaptive channels (arbp, asrbp): η_c = factor·η_t [default: 0.1].
    adapt_factor: f64 = channel_options.adapt_factor; some, optional, "F";
    /// Dropout rate of the signal arriving at hidden neurons (mask per example, scaled by
    /// 1/(1−r)).
    channel_dropout: f64 = channel_options.dropout; always, optional, "R";
    /// Quantize the signal arriving at hidden neurons to BITS bits: mid-rise levels (no zero
    /// level; 1 bit is the sign) or mid-tread; scale α fixed or auto (calibrated per layer from
    /// the first minibatch's max |signal|, then fixed) [default: mid-rise, auto].
    quantize_signal: Quantizer = channel_options.quantize_signal; some, optional, "BITS[:ALPHA|auto][:mid-rise|mid-tread]";
    /// Quantize each example's weight update to BITS ≥ 2 bits, mid-tread levels, scale α fixed
    /// or auto (max |per-example update| of the first minibatch), nearest or stochastic rounding
    /// [default: auto, nearest]; needs --decay 0 and no momentum.
    quantize_update: Quantizer = channel_options.quantize_update; some, optional, "BITS[:ALPHA|auto][:nearest|stochastic]";
    /// For `--channel mix`: per hidden layer, bottom to top, `bp` or `srbp` (e.g.
    /// srbp,srbp,bp,bp).
    mix: Vec<MixSignal> = channel_options.mix; nonempty, optional, "LIST";
    /// Hidden layer sizes of a dense net, comma-separated ("" for none).
    hidden: Vec<usize> = hidden; always, required, "N,N,…";
    /// Architecture of a dense or convolutional net: layers like
    /// conv32k5-pool3s2-conv64k5-pool3s2-fc64 (conv{C}k{K}[s{S}][p{P}], pool{K}[s{S}][p{P}],
    /// fc{N}; the output layer is implied), or a preset name (paper-cifar10: the paper's
    /// CIFAR-10 conv net; paper-mnist); overrides --hidden.
    arch: String = arch; some, optional, "SPEC";
    /// Hidden activation.
    activation: Activation = activation; always, required, "NAME";
    /// Passes over the training set.
    epochs: usize = epochs; always, required, "N";
    /// Minibatch size.
    batch: usize = batch; always, required, "N";
    /// Initial learning rate η_0.
    lr: f64 = lr; always, required, "RATE";
    /// Learning-rate decay per update: η_t = η_0 / (1 + decay·t).
    decay: f64 = decay; always, required, "D";
    /// Momentum (0 = plain SGD).
    momentum: f64 = momentum; always, required, "M";
    /// Weight decay λ (every update also subtracts η_t·λ·W; Kolen-Pollack needs it > 0).
    weight_decay: f64 = weight_decay; always, optional, "λ";
    /// Seed of every random stream (weights, feedback matrices, data order).
    seed: u64 = seed; always, required, "N";
    /// Threads for large matrix products (results are identical for a given thread count).
    threads: usize = threads; always, required, "N";
    /// Where the training steps and the evaluation run: cpu, or gpu (Vulkan, Metal or DX12,
    /// through wgpu: dense and conv nets, every channel and variant). Results agree with the
    /// CPU's to f32 rounding, not to the bit, so the device is not part of a run's identity (a
    /// run may be continued on the other).
    device: Device = device; always, optional, "DEVICE";
    /// With --device gpu: the adapter whose name contains NAME (case-insensitive), instead of
    /// the best one.
    adapter: String = adapter; some, optional, "NAME";
    /// Augment training images: random translation up to N pixels.
    translate: usize = translate; always, optional, "N";
    /// Augment training images: horizontal flip with probability 1/2.
    flip: bool = flip; always, optional, "BOOL";
    /// Log per-layer alignment with BP each epoch (angle of δ, angle and norm ratio of C vs Wᵀ,
    /// fraction of updates in the gradient's orthant) on a fixed probe batch.
    diagnostics: bool = diagnostics; always, optional, "BOOL";
    /// Train on the first N training examples only.
    train_limit: usize = train_limit; some, optional, "N";
}

impl Settings {
    /// Sets every key given in `c`; keys of the `[channel_options]` table of earlier versions
    /// stand for their names today ([`super::LEGACY_KEYS`]).
    pub(super) fn apply(mut self, c: &mut TrainConfig) -> std::result::Result<(), String> {
        if let Some(old) = self.channel_options.take() {
            let d = TrainConfig::default().channel_options;
            self.feedback = pick(
                self.feedback,
                old.feedback,
                d.feedback,
                "feedback",
                "feedback",
            )?;
            self.average = pick(self.average, old.average, d.average, "average", "average")?;
            self.adapt_factor = pick(
                self.adapt_factor,
                old.adapt_factor,
                f64::NAN, // no default: a value is never the default
                "adapt_factor",
                "adapt_factor",
            )?;
            self.channel_dropout = pick(
                self.channel_dropout,
                old.dropout,
                d.dropout,
                "channel_dropout",
                "dropout",
            )?;
            self.quantize_signal =
                pick_option(self.quantize_signal, old.quantize_signal, "quantize_signal")?;
            self.quantize_update =
                pick_option(self.quantize_update, old.quantize_update, "quantize_update")?;
            self.mix = pick(self.mix, old.mix, d.mix, "mix", "mix")?;
        }
        self.set_given(c);
        Ok(())
    }
}

/// A setting given under its name (`new`) and its old name (`old`): the same value is no
/// conflict; a new name holding only the built-in default yields to the old one (what an
/// experiment's defaults merged with an old-style `[train]` look like); otherwise an error.
fn pick<T: PartialEq>(
    new: Option<T>,
    old: Option<T>,
    default: T,
    new_key: &str,
    old_key: &str,
) -> std::result::Result<Option<T>, String> {
    match (new, old) {
        (Some(n), Some(o)) if n != o => {
            if n == default {
                Ok(Some(o))
            } else {
                Err(conflict(new_key, old_key))
            }
        }
        (n, o) => Ok(n.or(o)),
    }
}

/// [`pick`] for a setting without a default (a quantizer).
fn pick_option<T: PartialEq>(
    new: Option<T>,
    old: Option<T>,
    key: &str,
) -> std::result::Result<Option<T>, String> {
    match (new, old) {
        (Some(n), Some(o)) if n != o => Err(conflict(key, key)),
        (n, o) => Ok(n.or(o)),
    }
}

fn conflict(new_key: &str, old_key: &str) -> String {
    format!(
        "`{new_key}` and `channel_options.{old_key}` (its deprecated name) are both set, to different values; keep `{new_key}` only"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of [`TrainConfig`] (and of its channel options) is the place of one setting:
    /// a field added without its entry in the table fails here. Fields are read from the
    /// configuration's debug form, which names each one.
    #[test]
    fn settings_cover_every_field() {
        let debug = format!("{:#?}", TrainConfig::default());
        let mut fields = Vec::new();
        let mut path: Vec<String> = Vec::new();
        for line in debug.lines().skip(1) {
            let depth = (line.len() - line.trim_start().len()) / 4;
            let t = line.trim();
            if t.starts_with('}') || t.starts_with(']') || t.starts_with(')') {
                continue;
            }
            let Some((name, rest)) = t.split_once(": ") else {
                continue;
            };
            if !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') || depth == 0 {
                continue;
            }
            path.truncate(depth - 1);
            if rest.ends_with(" {") && name == "channel_options" {
                path.push(name.to_string());
                continue;
            }
            if depth == 1 || path.first().is_some_and(|p| p == "channel_options") {
                fields.push([path.clone(), vec![name.to_string()]].concat().join("."));
            }
        }
        // the run's weight decay is filled into the channel options (`resolved_options`)
        fields.retain(|f| f != "channel_options.weight_decay");
        let mut declared: Vec<String> = places().iter().map(|(_, p)| p.to_string()).collect();
        fields.sort();
        declared.sort();
        assert!(fields.len() > 20, "{fields:?}");
        assert_eq!(fields, declared, "fields of TrainConfig without a setting");
    }

    #[test]
    fn every_flag_text_reads_back_to_its_value() {
        let mut c = TrainConfig::default();
        c.set_flag("quantize_signal", "2:0.5:mid-tread").unwrap();
        c.set_flag("mix", "bp,srbp").unwrap();
        c.set_flag("adapter", "x").unwrap();
        c.set_flag("train_limit", "5").unwrap();
        c.set_flag("adapt_factor", "0.25").unwrap();
        c.set_flag("arch", "fc8").unwrap();
        c.set_flag("quantize_update", "4:auto:stochastic").unwrap();
        for s in SETTINGS {
            let text = c
                .flag_text(s.key)
                .unwrap_or_else(|| panic!("{} unset", s.key));
            (s.check)(&text).unwrap();
            let mut d = TrainConfig::default();
            d.set_flag(s.key, &text).unwrap();
            assert_eq!(
                d.flag_text(s.key).as_deref(),
                Some(text.as_str()),
                "{}",
                s.key
            );
        }
        // a file written holds every setting, flat (no tables: `rbp export`'s columns are the
        // keys), in the declaration's order
        let written: toml::Table = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert!(written.values().all(|v| !v.is_table()), "{written:?}");
        let text = toml::to_string(&c).unwrap();
        let keys: Vec<&str> = text.lines().filter_map(|l| l.split(" = ").next()).collect();
        assert_eq!(keys, SETTINGS.iter().map(|s| s.key).collect::<Vec<_>>());
        let e = c.set_flag("epochs", "ten").unwrap_err().to_string();
        assert!(e.contains("epochs") && e.contains("`ten`"), "{e}");
        assert!(c.set_flag("nope", "1").is_err());
    }
}
