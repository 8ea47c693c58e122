//! `rbp train` and `rbp channels`.

use super::sayln;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressStyle};
use rbprop::channel::{CHANNELS, FeedbackInit, MixSignal, Quantizer};
use rbprop::config::{Device, TrainConfig};
use rbprop::data::{self, Split};
use rbprop::kernels::Activation;
use rbprop::run::{self, EpochMetrics, Observer, RunDir};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Read settings from a TOML file: the config.toml of an earlier run, or any of its keys
    /// (flags in snake_case: channel_dropout = 0.1, quantize_signal = "2:auto"). It overrides the
    /// defaults and --preset; flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the resolved settings as TOML — what the run's config.toml would hold — and exit
    /// without training.
    #[arg(long)]
    pub print_config: bool,
    /// Data directory: the four MNIST-format files (train-images-idx3-ubyte[.gz], …; MNIST,
    /// Fashion-MNIST, KMNIST) or CIFAR-10's binary version (data_batch_1.bin …, directly or in
    /// cifar-10-batches-bin/; `rbp data fetch cifar10 DIR`). Default: the embedded Fashion-MNIST
    /// subset (10,000 train / 2,000 test).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    // the help lists the channel registry, so that it cannot go stale
    #[arg(long, default_value = "bp", value_name = "NAME", help = channel_help())]
    pub channel: String,
    /// Use the no-derivative version of the channel (no f' in hidden layers), as the -nof suffix
    /// does; `--no-derivative false` leaves the channel as named.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub no_derivative: Option<bool>,
    /// Hidden layer sizes, comma-separated ("" for none).
    #[arg(long, default_value = "100,100,100,100", value_name = "N,N,…")]
    pub hidden: String,
    /// Architecture of a dense or convolutional net: layers like
    /// conv32k5-pool3s2-conv64k5-pool3s2-fc64 (conv{C}k{K}[s{S}][p{P}], pool{K}[s{S}][p{P}],
    /// fc{N}; the output layer is implied), or a preset name (paper-cifar10: the paper's CIFAR-10
    /// conv net; paper-mnist); overrides --hidden.
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<String>,
    /// Training preset of paper §2: paper-cifar10 (its conv net, lr 0.01, momentum 0.9, decay
    /// 1e-5, batch 128, translation 3 px, flips, 100 epochs) or paper-mnist (the defaults, 100
    /// epochs). --config FILE and the flags given override it.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Augment training images: random translation up to N pixels.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub translate: usize,
    /// Augment training images: horizontal flip with probability 1/2 (`--flip false` or
    /// `--no-flip`: off, e.g. under --preset paper-cifar10).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", overrides_with = "no_flip")]
    pub flip: Option<bool>,
    /// No horizontal flips: `--flip false`.
    #[arg(long, overrides_with = "flip")]
    pub no_flip: bool,
    /// Hidden activation.
    #[arg(long, default_value = "tanh", value_parser = PossibleValuesParser::new(Activation::NAMES).map(|s| s.parse::<Activation>().unwrap()))]
    pub activation: Activation,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Initial learning rate η_0.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Learning-rate decay per update: η_t = η_0 / (1 + decay·t).
    #[arg(long, default_value_t = 1e-6)]
    pub decay: f64,
    /// Momentum (0 = plain SGD).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Weight decay λ (every update also subtracts η_t·λ·W; Kolen-Pollack needs it > 0).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Distribution of random feedback matrices: normal, uniform, shifted[:MEAN] (mean in units of
    /// the standard deviation, default 1), sparse:N (0/1 entries, expected fan-out N), congruent.
    #[arg(long, default_value = "normal", value_name = "DIST")]
    pub feedback: String,
    /// Average K independent random feedback matrices.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub average: usize,
    /// Learning-rate factor of adaptive channels (arbp, asrbp): η_c = factor·η_t [default: 0.1].
    #[arg(long, value_name = "F")]
    pub adapt_factor: Option<f64>,
    /// Dropout rate of the signal arriving at hidden neurons (mask per example, scaled by 1/(1−r)).
    #[arg(long, default_value_t = 0.0, value_name = "R")]
    pub channel_dropout: f64,
    /// Quantize the signal arriving at hidden neurons to BITS bits: mid-rise levels (no zero
    /// level; 1 bit is the sign) or mid-tread; scale α fixed or auto (calibrated per layer from
    /// the first minibatch's max |signal|, then fixed) [default: mid-rise, auto].
    #[arg(long, value_name = "BITS[:ALPHA|auto][:mid-rise|mid-tread]")]
    pub quantize_signal: Option<String>,
    /// Quantize each example's weight update to BITS ≥ 2 bits, mid-tread levels, scale α fixed or
    /// auto (max |per-example update| of the first minibatch), nearest or stochastic rounding
    /// [default: auto, nearest]; needs --decay 0 and no momentum.
    #[arg(long, value_name = "BITS[:ALPHA|auto][:nearest|stochastic]")]
    pub quantize_update: Option<String>,
    /// For `--channel mix`: per hidden layer, bottom to top, `bp` or `srbp` (e.g. srbp,srbp,bp,bp).
    #[arg(long, value_name = "LIST")]
    pub mix: Option<String>,
    /// Seed of every random stream (weights, feedback matrices, data order).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads for large matrix products (results are identical for a given thread count).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Where the training steps and the evaluation run: cpu, or gpu (Vulkan, Metal or DX12,
    /// through wgpu: dense and conv nets, every channel and variant). Results agree with the
    /// CPU's to f32 rounding, not to the bit, so the device is not part of a run's identity (a
    /// run may be continued on the other).
    #[arg(long, default_value = "cpu", value_parser = PossibleValuesParser::new(["cpu", "gpu"]).map(|s| if s == "gpu" { Device::Gpu } else { Device::Cpu }))]
    pub device: Device,
    /// With --device gpu: the adapter whose name contains NAME (case-insensitive), instead of the
    /// best one.
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Log per-layer alignment with BP each epoch (angle of δ, angle and norm ratio of C vs Wᵀ,
    /// fraction of updates in the gradient's orthant) on a fixed probe batch (`--diagnostics
    /// false` or `--no-diagnostics`: off).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", overrides_with = "no_diagnostics")]
    pub diagnostics: Option<bool>,
    /// No alignment diagnostics: `--diagnostics false`.
    #[arg(long, overrides_with = "diagnostics")]
    pub no_diagnostics: bool,
    /// Train on the first N training examples only.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Directory for config.toml, metrics.jsonl and summary.json (not written if absent).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace results already in --out.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    pub overwrite: bool,
    /// Print only the per-epoch lines (no progress bar, no header).
    #[arg(long, short, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value_t = false)]
    pub quiet: bool,
}

/// The help of `--channel`: every channel of the registry with its aliases.
fn channel_help() -> String {
    let names: Vec<String> = CHANNELS
        .iter()
        .map(|k| match k.aliases.first() {
            Some(a) => format!("{} ({a})", k.name),
            None => k.name.to_string(),
        })
        .collect();
    format!(
        "Learning channel: {}; append -nof for the no-derivative version (e.g. rbp-nof). See `rbp channels`",
        names.join(", ")
    )
}

/// The order in which a run's settings are resolved, for `rbp train --help`.
pub const PRECEDENCE: &str = "Settings are resolved in this order, each level overriding the one before: built-in defaults < --preset < --config FILE < flags given on the command line. --print-config prints the result. Every on/off option takes a value (--flip true, --flip false) and has an off form (--no-flip).";

/// The run's configuration: the built-in defaults, overridden by `--preset`, overridden by
/// `--config FILE`, overridden by every flag given on the command line (`given`). Warns on
/// stderr of each deprecated key of the config file.
fn resolve_config(args: &TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<TrainConfig> {
    let mut c = TrainConfig::default();
    if let Some(name) = &args.preset {
        apply_preset(&mut c, name)?;
    }
    if let Some(path) = &args.config {
        let (file, deprecated) = TrainConfig::load_over(path, &c)?;
        super::warn_deprecated(path, deprecated);
        c = file;
    }
    if let Some(dir) = &args.data {
        c.data = dir.display().to_string();
    }
    if given("channel") {
        c.channel = args.channel.clone();
    }
    c.channel = rbprop::channel::ChannelSpec::parse(&c.channel, args.no_derivative == Some(true))?
        .canonical_name();
    macro_rules! take {
        ($($field:ident),*) => { $( if given(stringify!($field)) { c.$field = args.$field.clone(); } )* };
    }
    take!(
        activation,
        epochs,
        batch,
        lr,
        decay,
        momentum,
        weight_decay,
        seed,
        threads,
        device,
        translate
    );
    if let Some(flip) = args.flip {
        c.flip = flip;
    }
    if args.no_flip {
        c.flip = false;
    }
    if let Some(diagnostics) = args.diagnostics {
        c.diagnostics = diagnostics;
    }
    if args.no_diagnostics {
        c.diagnostics = false;
    }
    if args.arch.is_some() {
        c.arch = args.arch.clone();
    }
    if given("hidden") {
        c.hidden = TrainConfig::parse_hidden(&args.hidden)?;
    }
    if args.train_limit.is_some() {
        c.train_limit = args.train_limit;
    }
    if args.adapter.is_some() {
        c.adapter = args.adapter.clone();
    }
    let o = &mut c.channel_options;
    if given("feedback") {
        o.feedback = FeedbackInit::parse(&args.feedback)?;
    }
    if given("average") {
        o.average = args.average;
    }
    if args.adapt_factor.is_some() {
        o.adapt_factor = args.adapt_factor;
    }
    if given("channel_dropout") {
        o.dropout = args.channel_dropout;
    }
    if let Some(q) = args.quantize_signal.as_deref() {
        o.quantize_signal = Some(Quantizer::parse(q, "quantize-signal")?);
    }
    if let Some(q) = args.quantize_update.as_deref() {
        o.quantize_update = Some(Quantizer::parse(q, "quantize-update")?);
    }
    if let Some(m) = args.mix.as_deref() {
        o.mix = MixSignal::parse_list(m)?;
    }
    Ok(c)
}

/// The training presets of paper §2 (our defaults where the paper gives none).
fn apply_preset(c: &mut TrainConfig, name: &str) -> anyhow::Result<()> {
    match name {
        "paper-cifar10" => {
            c.arch = Some("paper-cifar10".into());
            (c.lr, c.momentum, c.decay, c.batch, c.epochs) = (0.01, 0.9, 1e-5, 128, 100);
            (c.translate, c.flip) = (3, true);
        }
        "paper-mnist" => {
            let d = TrainConfig::default();
            (c.arch, c.hidden) = (None, d.hidden);
            (c.lr, c.momentum, c.decay, c.batch, c.epochs) =
                (d.lr, d.momentum, d.decay, d.batch, 100);
        }
        other => anyhow::bail!(
            "invalid value for `preset`: unknown preset `{other}`; known: paper-cifar10, paper-mnist"
        ),
    }
    Ok(())
}

pub fn train(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    let config = resolve_config(&args, given)?;
    if args.print_config {
        config.validate()?;
        super::say(&toml::to_string_pretty(&config).expect("config serializes"));
        return Ok(());
    }
    let split = data::load(&config.data)?;
    config.validate()?;
    // one writer per run directory: the lock is taken before anything in it is read or removed
    let dir = args
        .out
        .as_deref()
        .map(|out| RunDir::new(out).lock())
        .transpose()?;
    if let Some(dir) = &dir {
        if args.overwrite {
            dir.clear();
        } else if dir.holds_complete(&config) {
            anyhow::bail!(
                "{}: this run is already complete\nHINT: choose another --out, pass --overwrite to redo it, or raise --epochs to continue it",
                dir.summary_file().display()
            );
        }
    }
    let mut observer = Console {
        quiet: args.quiet,
        epochs: config.epochs,
        bar: None,
    };
    if config.device == Device::Gpu {
        let adapter = run::device::open(&config)?;
        if !args.quiet {
            sayln!("device: gpu, adapter {adapter}");
        }
        if let Some(w) = adapter.warning() {
            eprintln!("warning: {w}");
        }
    }
    run::run_locked(&config, &split, dir.as_ref(), &mut observer)?;
    if let Some(out) = args.out.as_ref().filter(|_| !args.quiet) {
        sayln!("results in {}", out.display());
    }
    Ok(())
}

/// Prints a header, a progress bar per epoch (on a terminal), and one line per epoch.
struct Console {
    quiet: bool,
    epochs: usize,
    bar: Option<ProgressBar>,
}

impl Observer for Console {
    fn start(&mut self, config: &TrainConfig, split: &Split, net: &str, layers: &[String]) {
        if self.quiet {
            return;
        }
        sayln!(
            "data: {} ({} train / {} test examples of {} values, {} classes)",
            split.source,
            config
                .train_limit
                .map_or(split.train.len(), |n| n.min(split.train.len())),
            split.test.len(),
            split.train.dim,
            split.train.classes
        );
        if config.translate > 0 || config.flip {
            sayln!(
                "augmentation: translation up to {} px, horizontal flip {}",
                config.translate,
                if config.flip { "p = 0.5" } else { "off" }
            );
        }
        sayln!(
            "net: {net} {}, channel {}, lr {} decay {} momentum {} batch {} seed {}",
            config.activation.name(),
            config.channel,
            config.lr,
            config.decay,
            config.momentum,
            config.batch,
            config.seed
        );
        for l in layers {
            sayln!("  {l}");
        }
        sayln!("  top layer ← δ_L = O_L − T (softmax, cross-entropy)");
    }

    fn resumed(&mut self, epochs: usize) {
        if !self.quiet {
            sayln!("resuming after epoch {epochs} from the checkpoint in --out");
        }
    }

    fn start_epoch(&mut self, epoch: usize, examples: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(examples as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
    }

    fn batch(&mut self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn end_epoch(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        sayln!(
            "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  test loss {:.4} acc {:6.2}%  lr {:.5}  {:.2}s",
            m.epoch,
            self.epochs,
            m.train_loss,
            100.0 * m.train_acc,
            m.test_loss,
            100.0 * m.test_acc,
            m.lr,
            m.seconds
        );
        for l in m.layers.iter().flatten() {
            let mut line = format!(
                "    layer {}: δ angle to BP {:5.1}°, updates in gradient orthant {:5.1}%",
                l.layer,
                l.delta_angle,
                100.0 * l.orthant
            );
            if let (Some(a), Some(r)) = (l.weight_angle, l.norm_ratio) {
                line += &format!(", C∠Wᵀ {a:5.1}°, ‖C‖/‖W‖ {r:.2}");
            }
            if let (Some(z), Some(c)) = (l.signal_zero, l.signal_clipped) {
                line += &format!(
                    ", signal quantized to 0: {:.1}%, clipped {:.1}%",
                    100.0 * z,
                    100.0 * c
                );
            }
            if let (Some(z), Some(c)) = (l.update_zero, l.update_clipped) {
                line += &format!(
                    ", update entries quantized to 0: {:.1}%, clipped {:.1}%",
                    100.0 * z,
                    100.0 * c
                );
            }
            sayln!("{line}");
        }
    }
}

/// The text of `rbp channels`.
pub fn channels_table() -> String {
    let mut s = String::from(
        "Learning channels (hidden layer h receives δ_h; the top layer always uses δ_L = O_L − T):\n\n",
    );
    for k in CHANNELS {
        let aliases = if k.aliases.is_empty() {
            String::new()
        } else {
            format!(" (aliases: {})", k.aliases.join(", "))
        };
        s += &format!(
            "  {}{aliases}\n      {}\n      {}\n",
            k.name, k.summary, k.equation
        );
        if k.has_nof {
            s += &format!(
                "      {}-nof: the same without f' in any hidden layer\n",
                k.name
            );
        }
    }
    s += "\nNote: bp-nof and sbp-nof are the same algorithm by construction (both send W_{h+1}ᵀ···W_Lᵀ δ_L);\n\
          both names are kept. Any channel takes --no-derivative in place of the -nof suffix.\n\n\
          Variants, composable with the channels that have random feedback matrices:\n\
          \x20 --feedback normal|uniform|shifted[:MEAN]|sparse:N|sparse-signed:N|\n\
          \x20            sparse-gaussian:N|congruent   distribution of C\n\
          \x20 --average K                  mean of K independent C's\n\
          \x20 --adapt-factor F             η_c = F·η_t for arbp/asrbp (default 0.1)\n\
          With any channel that reaches hidden layers:\n\
          \x20 --channel-dropout R          dropout of the signal arriving at hidden neurons\n\
          \x20 --quantize-signal B[:α]      that signal quantized to B bits (mid-rise, α auto)\n\
          \x20 --quantize-update B[:α]      each example's weight update quantized (mid-tread, α auto)\n\
          See docs/channels.md for the equations and the quantizer.\n";
    s
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn the_defaults_shown_by_the_flags_are_the_built_in_ones() {
        // every flag taken as given, at the default its --help shows
        let m = Cli::command().get_matches_from(["rbp", "train"]);
        let Command::Train(args) = Cli::from_arg_matches(&m).unwrap().command else {
            unreachable!()
        };
        assert_eq!(
            resolve_config(&args, &|_| true).unwrap(),
            TrainConfig::default()
        );
    }
}
