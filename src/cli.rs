//! The command line: argument definitions and the thin glue from them to the library.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rbp::channel::options::{DEFAULT_SIGNAL_ALPHA, DEFAULT_UPDATE_ALPHA};
use rbp::channel::{CHANNELS, ChannelOptions, FeedbackInit, Quantizer};
use rbp::config::TrainConfig;
use rbp::data::{self, Split};
use rbp::kernels::Activation;
use rbp::run::{self, EpochMetrics, Observer};
use std::path::PathBuf;

/// Train neural networks with random backpropagation and the other learning channels of
/// Baldi, Sadowski & Lu (2018).
#[derive(Parser, Debug)]
#[command(name = "rbp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a dense net on an MNIST-format dataset with one learning channel.
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// List every learning channel with its aliases and equation.
    Channels,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Directory with the four MNIST-format files (train-images-idx3-ubyte[.gz], …), e.g. MNIST
    /// or Fashion-MNIST. Default: the embedded Fashion-MNIST subset (10,000 train / 2,000 test).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Learning channel: bp, rbp (fa), srbp (dfa), sbp, top, arbp, asrbp, kp, cascade, mix, usf,
    /// frsf, drtp; append -nof for the no-derivative version (e.g. rbp-nof). See
    /// `rbp channels`.
    #[arg(long, default_value = "bp", value_name = "NAME")]
    pub channel: String,
    /// Use the no-derivative version of the channel (no f' in hidden layers).
    #[arg(long)]
    pub no_derivative: bool,
    /// Hidden layer sizes, comma-separated ("" for none).
    #[arg(long, default_value = "100,100,100,100", value_name = "N,N,…")]
    pub hidden: String,
    /// Hidden activation.
    #[arg(long, value_enum, default_value_t = Activation::Tanh)]
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
    /// Quantize the signal arriving at hidden neurons to BITS bits with scale α [default α: 1].
    #[arg(long, value_name = "BITS[:ALPHA]")]
    pub quantize_signal: Option<String>,
    /// Quantize each example's weight update to BITS bits with scale α [default α: 2^-4];
    /// needs --decay 0.
    #[arg(long, value_name = "BITS[:ALPHA]")]
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
    /// Train on the first N training examples only.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Directory for config.toml, metrics.jsonl and summary.json (not written if absent).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace results already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Print only the per-epoch lines (no progress bar, no header).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Channels => {
            print!("{}", channels_table());
            Ok(())
        }
        Command::Train(args) => train(*args),
    }
}

fn channels_table() -> String {
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
          \x20 --feedback normal|uniform|shifted[:MEAN]|sparse:N|congruent   distribution of C\n\
          \x20 --average K                  mean of K independent C's\n\
          \x20 --adapt-factor F             η_c = F·η_t for arbp/asrbp (default 0.1)\n\
          With any channel that reaches hidden layers:\n\
          \x20 --channel-dropout R          dropout of the signal arriving at hidden neurons\n\
          \x20 --quantize-signal B[:α]      that signal quantized to B bits (α = 1)\n\
          \x20 --quantize-update B[:α]      each example's weight update quantized (α = 2^-4)\n\
          See docs/channels.md for the equations and the quantizer.\n";
    s
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let split = match &args.data {
        Some(dir) => data::load_mnist_dir(dir)?,
        None => data::embedded(),
    };
    let channel = rbp::channel::ChannelSpec::parse(&args.channel, args.no_derivative)?;
    let config = TrainConfig {
        data: split.source.clone(),
        channel: channel.canonical_name(),
        hidden: TrainConfig::parse_hidden(&args.hidden)?,
        activation: args.activation,
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        decay: args.decay,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        channel_options: ChannelOptions {
            feedback: FeedbackInit::parse(&args.feedback)?,
            average: args.average,
            adapt_factor: args.adapt_factor,
            dropout: args.channel_dropout,
            quantize_signal: args
                .quantize_signal
                .as_deref()
                .map(|q| Quantizer::parse(q, DEFAULT_SIGNAL_ALPHA, "quantize-signal"))
                .transpose()?,
            quantize_update: args
                .quantize_update
                .as_deref()
                .map(|q| Quantizer::parse(q, DEFAULT_UPDATE_ALPHA, "quantize-update"))
                .transpose()?,
            mix: args
                .mix
                .as_deref()
                .map(|m| {
                    m.split(',')
                        .map(|x| x.trim().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default(),
            weight_decay: 0.0,
        },
        seed: args.seed,
        threads: args.threads,
        train_limit: args.train_limit,
    };
    config.validate()?;
    if let Some(out) = &args.out {
        let existing = out.join("metrics.jsonl");
        if existing.exists() && !args.overwrite {
            anyhow::bail!(
                "{}: results of an earlier run are already there\nHINT: choose another --out, or pass --overwrite to replace them",
                existing.display()
            );
        }
    }
    let mut observer = Console {
        quiet: args.quiet,
        epochs: config.epochs,
        bar: None,
    };
    run::run(&config, &split, args.out.as_deref(), &mut observer)?;
    if let Some(out) = args.out.as_ref().filter(|_| !args.quiet) {
        println!("results in {}", out.display());
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
    fn start(&mut self, config: &TrainConfig, split: &Split, layers: &[String]) {
        if self.quiet {
            return;
        }
        println!(
            "data: {} ({} train / {} test examples of {} values, {} classes)",
            split.source,
            config
                .train_limit
                .map_or(split.train.len(), |n| n.min(split.train.len())),
            split.test.len(),
            split.train.dim,
            split.train.classes
        );
        println!(
            "net: {}-{}-{} {}, channel {}, lr {} decay {} momentum {} batch {} seed {}",
            split.train.dim,
            config
                .hidden
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            split.train.classes,
            config.activation.name(),
            config.channel,
            config.lr,
            config.decay,
            config.momentum,
            config.batch,
            config.seed
        );
        for l in layers {
            println!("  {l}");
        }
        println!("  top layer ← δ_L = O_L − T (softmax, cross-entropy)");
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
        println!(
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
    }
}
