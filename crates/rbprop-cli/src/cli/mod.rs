//! The command line: argument definitions and the thin glue from them to the library.

mod cluster;
mod complexity;
mod data;
mod dynamics;
mod experiment;
mod ls;
mod train;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Train neural networks with random backpropagation and the other learning channels of
/// Baldi, Sadowski & Lu (2018), and explore their theory.
#[derive(Parser, Debug)]
#[command(name = "rbp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a dense or convolutional net on MNIST-format data or CIFAR-10 with one learning
    /// channel.
    #[command(allow_negative_numbers = true, after_help = train::PRECEDENCE)]
    Train(Box<train::TrainArgs>),
    /// List every learning channel with its aliases and equation.
    Channels {
        /// Print the registry as the Markdown table of the README and docs/channels.md.
        #[arg(long)]
        markdown: bool,
    },
    /// The expected learning dynamics of paper §3: integrate, predict fixed points, draw.
    #[command(subcommand)]
    Dynamics(dynamics::DynamicsCommand),
    /// Multiplications per example of each channel (paper §4), optionally next to measured times.
    Complexity(complexity::ComplexityArgs),
    /// Run experiment grids (variant × seed) from TOML files, resumably, N runs at a time.
    Reproduce(experiment::ReproduceArgs),
    /// Regenerate the paper's Table 1 (Markdown and CSV) from a results directory.
    Table(experiment::TableArgs),
    /// Draw accuracy curves, the sparsity curve and alignment angles from a results directory.
    Plot(experiment::TableArgs),
    /// Every run and epoch of a results directory in long format (CSV or JSON Lines): the run's
    /// settings as columns beside the epoch's metrics.
    Export(experiment::ExportArgs),
    /// Every run of a results directory, one line each: its state, epochs, final test accuracy
    /// and the settings that tell it from the other runs of its experiment.
    Ls(ls::LsArgs),
    /// Datasets: download and verify.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Print a shell completion script, generated from these commands and flags: e.g.
    /// `rbp completions bash > ~/.local/share/bash-completion/completions/rbp`, `rbp completions
    /// zsh > ~/.zfunc/_rbp`, `rbp completions fish > ~/.config/fish/completions/rbp.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Writes to stdout; a closed pipe (`rbp train | head`) silences further output instead of
/// panicking, and the run goes on writing its result files.
pub fn say(text: &str) {
    say_bytes(text.as_bytes())
}

/// [`say`] for bytes.
fn say_bytes(bytes: &[u8]) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Standard output as a writer for the library's reports, through [`say`] (each line of a
/// report is one write).
pub struct Out;

impl std::io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        say_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Warns on stderr of what the settings file `path` spells the old way, once per deprecated key.
fn warn_deprecated(
    path: &std::path::Path,
    found: impl IntoIterator<Item = rbprop::config::Deprecation>,
) {
    let mut seen = Vec::new();
    for d in found {
        if !seen.contains(&d.what) {
            eprintln!("warning: {}: {d}", path.display());
            seen.push(d.what);
        }
    }
}

/// `println!` through [`say`].
macro_rules! sayln {
    ($($arg:tt)*) => { $crate::cli::say(&format!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use sayln;

/// Parses the command line and runs the command.
pub fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Channels { markdown } => {
            if markdown {
                say(&rbprop::channel::registry::markdown_table());
            } else {
                say(&train::channels_table());
            }
            Ok(())
        }
        Command::Train(args) => train::train(*args),
        Command::Dynamics(cmd) => dynamics::run(cmd),
        Command::Complexity(args) => complexity::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Reproduce(args) if args.cluster.active() && !args.print_config => {
            cluster::run(&args)
        }
        Command::Reproduce(args) => experiment::reproduce(args),
        Command::Table(args) => experiment::table(args),
        Command::Plot(args) => experiment::plot(args),
        Command::Export(args) => experiment::export(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rbp", &mut Out);
            Ok(())
        }
        Command::Ls(args) => ls::run(args),
    }
}
