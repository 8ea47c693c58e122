//! `rbp train` and `rbp channels`.

use super::sayln;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args};
use indicatif::{ProgressBar, ProgressStyle};
use rbprop::channel::CHANNELS;
use rbprop::config::{Device, SETTINGS, Setting, TrainConfig};
use rbprop::data::{self, Split};
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
    /// Training preset of paper §2: paper-cifar10 (its conv net, lr 0.01, momentum 0.9, decay
    /// 1e-5, batch 128, translation 3 px, flips, 100 epochs) or paper-mnist (the defaults, 100
    /// epochs). --config FILE and the flags given override it.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// A flag for every setting of a run (`--channel`, `--lr`, `--channel-dropout`, …), made
    /// from the settings' one declaration.
    #[command(flatten)]
    pub settings: SettingFlags,
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

/// The flags of a run's settings, one per entry of [`SETTINGS`] (its key in kebab-case, its
/// help, value name and default; an on/off setting also has its `--no-…` form), and
/// `--no-derivative` beside `--channel`. Holds the texts given on the command line, in the
/// settings' order, each checked by its setting's parser.
#[derive(Debug, Default)]
pub struct SettingFlags {
    pub given: Vec<(&'static str, String)>,
    pub no_derivative: Option<bool>,
}

/// The id of an on/off setting's off form.
fn off_id(s: &Setting) -> String {
    format!("no_{}", s.key)
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags {
            no_derivative: m.get_one::<bool>("no_derivative").copied(),
            ..SettingFlags::default()
        };
        for s in SETTINGS {
            // of an on/off pair the one given last is kept (each overrides the other)
            if s.switch && m.get_flag(&off_id(s)) {
                flags.given.push((s.key, "false".into()));
            } else if let Some(text) = m.get_one::<String>(s.key) {
                flags.given.push((s.key, text.clone()));
            }
        }
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for SettingFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        let defaults = TrainConfig::default();
        for s in SETTINGS {
            let mut help = match s.key {
                // the registry's names, so that the help cannot go stale
                "channel" => channel_help(),
                _ => s.help_text(),
            };
            if let Some(d) = defaults
                .flag_text(s.key)
                .filter(|_| !help.contains("[default"))
            {
                help += &format!(" [default: {}]", if d.is_empty() { "\"\"" } else { &d });
            }
            let check = s.check;
            let parser = move |text: &str| -> Result<String, String> {
                check(text).map(|_| text.to_string()).map_err(|e| match e {
                    rbprop::error::Error::Config { problem, .. } => problem,
                    e => e.to_string(),
                })
            };
            let arg = Arg::new(s.key)
                .long(s.flag())
                .value_name(s.value_name)
                .help(help)
                .action(ArgAction::Set);
            // a fixed list of values is offered as such (help, completions); any other text is
            // checked by the setting's parser
            let mut arg = match s.choices {
                Some(choices) => {
                    arg.value_parser(PossibleValuesParser::new(choices.iter().copied()))
                }
                None => arg.value_parser(parser),
            };
            if s.switch {
                let off = off_id(s);
                arg = arg
                    .num_args(0..=1)
                    .default_missing_value("true")
                    .overrides_with(off.clone());
                cmd = cmd.arg(arg).arg(
                    Arg::new(off)
                        .long(format!("no-{}", s.flag()))
                        .help(format!("Off: `--{} false`.", s.flag()))
                        .action(ArgAction::SetTrue)
                        .overrides_with(s.key),
                );
            } else {
                cmd = cmd.arg(arg);
            }
            if s.key == "channel" {
                cmd = cmd.arg(
                    Arg::new("no_derivative")
                        .long("no-derivative")
                        .value_name("BOOL")
                        .help("Use the no-derivative version of the channel (no f' in hidden layers), as the -nof suffix does; `--no-derivative false` leaves the channel as named.")
                        .num_args(0..=1)
                        .default_missing_value("true")
                        .value_parser(clap::value_parser!(bool)),
                );
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The order in which a run's settings are resolved, for `rbp train --help`.
pub const PRECEDENCE: &str = "Settings are resolved in this order, each level overriding the one before: built-in defaults < --preset < --config FILE < flags given on the command line. --print-config prints the result. Every on/off option takes a value (--flip true, --flip false) and has an off form (--no-flip).";

/// The run's configuration: the built-in defaults, overridden by `--preset`, overridden by
/// `--config FILE`, overridden by every flag given on the command line. Warns on
/// stderr of each deprecated key of the config file.
fn resolve_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut c = TrainConfig::default();
    if let Some(name) = &args.preset {
        apply_preset(&mut c, name)?;
    }
    if let Some(path) = &args.config {
        let (file, deprecated) = TrainConfig::load_over(path, &c)?;
        super::warn_deprecated(path, deprecated);
        c = file;
    }
    for (key, text) in &args.settings.given {
        c.set_flag(key, text)?;
    }
    if args.settings.no_derivative == Some(true) {
        c.channel = c.channel.without_derivative()?;
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

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    let config = resolve_config(&args)?;
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
          \x20 --feedback normal|scaled:GAIN|uniform|shifted[:MEAN]|sparse:N|sparse-signed:N|\n\
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
        let resolve = |argv: &[&str]| {
            let m = Cli::command().get_matches_from([&["rbp", "train"], argv].concat());
            let Command::Train(args) = Cli::from_arg_matches(&m).unwrap().command else {
                unreachable!()
            };
            resolve_config(&args).unwrap()
        };
        assert_eq!(resolve(&[]), TrainConfig::default());
        // every flag given the default its --help shows leaves the built-in configuration
        let help = Cli::command()
            .find_subcommand_mut("train")
            .unwrap()
            .render_long_help()
            .to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let defaults = TrainConfig::default();
        let mut shown = 0;
        for s in SETTINGS {
            let Some(text) = defaults.flag_text(s.key) else {
                continue;
            };
            let flag = format!("--{}", s.flag());
            let part = [format!("{flag} <"), format!("{flag} [<")]
                .iter()
                .find_map(|f| help.split(f.as_str()).nth(1))
                .unwrap_or_else(|| panic!("{flag} missing"));
            let part = part.split(" --").next().unwrap();
            let shown_text = if text.is_empty() {
                "\"\"".into()
            } else {
                text.clone()
            };
            assert!(
                part.contains(&format!("[default: {shown_text}]")),
                "{flag}: {part}"
            );
            assert_eq!(resolve(&[&flag, &text]), defaults, "{flag} {text}");
            shown += 1;
        }
        assert!(shown >= 18, "{shown}");
    }
}
