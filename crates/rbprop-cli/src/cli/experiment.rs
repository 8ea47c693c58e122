//! `rbp reproduce`, `rbp table`, `rbp plot` and `rbp export`.

use super::sayln;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbprop::config::{Device, TrainConfig};
use rbprop::data::Split;
use rbprop::experiment::export::{self, Format};
use rbprop::experiment::runner::{self, GridObserver, Options, Outcome, Progress};
use rbprop::experiment::{Experiment, Run, table};
use rbprop::run::dir::{TABLE_CSV, TABLE_MD, write_atomic};
use rbprop::run::{EpochMetrics, Observer};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Experiment files (TOML; see configs/).
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
    /// Results root; each experiment writes RESULTS/<name>/<run-id>/.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Data directory replacing the experiments' own.
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Runs at a time, the cores shared out between them [default: the number of cores, one
    /// thread per run].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Train up to K runs together as one ensemble; every run still writes its own directory
    /// with the bits of its solo run on its device. On the CPU, runs that read the same
    /// minibatches (same seed, batch, subset and augmentation) share layer 0's products; on the
    /// GPU, runs that differ only in their seeds are stacked, one dispatch per operation for all
    /// of them. 1: every run alone [default: 8 with --device gpu, else 1].
    #[arg(long, value_name = "K")]
    pub ensemble: Option<usize>,
    /// Shorten every run to N epochs (2 if no N); tables mark such runs.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2")]
    pub quick: Option<usize>,
    /// Where every run trains, whatever its experiment says: cpu, or gpu (wgpu: Vulkan, Metal or
    /// DX12). Not part of a run's identity: results on either are found and continued on either.
    #[arg(long, value_parser = PossibleValuesParser::new(["cpu", "gpu"]).map(|s| if s == "gpu" { Device::Gpu } else { Device::Cpu }))]
    pub device: Option<Device>,
    /// With --device gpu: the adapter whose name contains NAME (case-insensitive), instead of the
    /// best one.
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Print each run's resolved settings — what its config.toml would hold, --data, --quick and
    /// --jobs applied — as a TOML document headed by a comment with its experiment and run id,
    /// and exit without running anything.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Args, Debug, Default)]
pub struct ClusterArgs {
    /// Submit the grid to Slurm as a job array, one task per run (each task runs `--only` its
    /// index: finished runs are skipped, interrupted ones resume, so requeueing is safe).
    #[arg(long, help_heading = "Clusters")]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long, value_name = "P", requires = "slurm", help_heading = "Clusters")]
    pub partition: Option<String>,
    /// Wall-time limit per task, in Slurm's format (e.g. 2:00:00).
    #[arg(long, value_name = "T", requires = "slurm", help_heading = "Clusters")]
    pub time: Option<String>,
    /// Cores per task (each run uses that many threads).
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Clusters")]
    pub cpus_per_task: usize,
    /// At most K tasks at once.
    #[arg(long, value_name = "K", requires = "slurm", help_heading = "Clusters")]
    pub max_concurrent: Option<usize>,
    /// A further #SBATCH option, verbatim (repeatable), e.g. --sbatch-arg=--mem=4G.
    #[arg(
        long,
        value_name = "ARG",
        requires = "slurm",
        allow_hyphen_values = true,
        help_heading = "Clusters"
    )]
    pub sbatch_arg: Vec<String>,
    /// With --slurm: print the sbatch script instead of submitting it.
    #[arg(long, requires = "slurm", help_heading = "Clusters")]
    pub dry_run: bool,
    /// Run only run I of the grid (0-based: the files in the order given, each file's runs in
    /// grid order), as one task of an array does.
    #[arg(long, value_name = "I", help_heading = "Clusters")]
    pub only: Option<usize>,
    /// Print every run's state (finished, running, failed, interrupted, missing) and, where
    /// Slurm is reachable, the submitted arrays' tasks.
    #[arg(long, help_heading = "Clusters")]
    pub status: bool,
    /// Print one shell command per run (for GNU parallel, Kubernetes Jobs or any other runner).
    #[arg(long, help_heading = "Clusters")]
    pub emit_commands: bool,
}

impl ClusterArgs {
    pub fn active(&self) -> bool {
        self.slurm || self.only.is_some() || self.status || self.emit_commands
    }
}

#[derive(Args, Debug)]
pub struct TableArgs {
    /// A results directory written by `rbp reproduce`.
    pub results: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A results directory written by `rbp reproduce`.
    pub results: PathBuf,
    /// Output format: csv (a header line, then one row per run and epoch) or jsonl (one JSON
    /// object per run and epoch, with the same keys).
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

pub fn reproduce(a: ReproduceArgs) -> anyhow::Result<()> {
    if a.print_config {
        return print_configs(&a);
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs >= 1, "--jobs must be ≥ 1");
    anyhow::ensure!(
        a.ensemble != Some(0),
        "--ensemble must be ≥ 1 (1 trains every run alone)"
    );
    let (exps, opts) = load(&a, jobs)?;
    let mut diverged = 0;
    let mut unfinished: Vec<String> = Vec::new();
    for exp in &exps {
        let runs = exp.runs()?;
        let root = a.results.join(&exp.name);
        let at_a_time = if opts.ensemble > 1 {
            format!(
                "ensembles of up to {} runs, {jobs} at a time",
                opts.ensemble
            )
        } else {
            format!("{jobs} at a time")
        };
        sayln!(
            "{}: {} runs ({} cells × {} seeds), {at_a_time}, results in {}",
            exp.name,
            runs.len(),
            runs.len() / exp.seeds.len(),
            exp.seeds.len(),
            root.display()
        );
        let legacy = runs
            .iter()
            .filter(|r| r.dir(&root) != root.join(&r.id))
            .count();
        if legacy > 0 {
            sayln!(
                "{legacy} run(s) found under their legacy ids (row--column--seedN), used where they are"
            );
        }
        let console =
            GridConsole::new(std::io::stdout().is_terminal() && std::io::stderr().is_terminal());
        let out = runner::reproduce(exp, &opts, &console)?;
        console.close();
        diverged += out
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Diverged(_)))
            .count();
        for (id, o) in &out {
            match o {
                Outcome::Failed(e) => {
                    unfinished.push(format!("{}/{id}: failed: {}", exp.name, first_line(e)))
                }
                Outcome::Busy(e) => {
                    unfinished.push(format!("{}/{id}: {}", exp.name, first_line(e)))
                }
                _ => {}
            }
        }
    }
    if diverged > 0 {
        sayln!(
            "{diverged} run(s) diverged; their finished epochs are kept and the table shows them"
        );
    }
    sayln!("make the table: rbp table {}", a.results.display());
    if !unfinished.is_empty() {
        anyhow::bail!(
            "{} run(s) did not finish (the others did):\n  {}\nHINT: each failed run's summary.json holds its error; run the same command again to retry them",
            unfinished.len(),
            unfinished.join("\n  ")
        );
    }
    Ok(())
}

/// `rbp reproduce --print-config`: every run's settings as it would be run here.
fn print_configs(a: &ReproduceArgs) -> anyhow::Result<()> {
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs >= 1, "--jobs must be ≥ 1");
    let (exps, opts) = load(a, jobs)?;
    // as the runner shares the cores out and applies --data and --quick
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let mut first = true;
    for exp in &exps {
        let mut exp = exp.clone();
        if let Some(d) = &opts.data {
            exp.data = d.clone();
        }
        for mut run in exp.runs()? {
            run.config.threads = threads;
            opts.apply(&mut run.config);
            let toml = toml::to_string_pretty(&run.config).expect("config serializes");
            let gap = if first { "" } else { "\n" };
            first = false;
            super::say(&format!("{gap}# {}/{}\n{toml}", exp.name, run.id));
        }
    }
    Ok(())
}

/// Warns on stderr, once per key, of each deprecated key of an experiment file's `[train]` and
/// `[[variant]]` tables (an unreadable file is left to [`Experiment::load`] to report).
fn warn_deprecated(path: &std::path::Path) {
    let Some(table) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return;
    };
    let train = table.get("train").and_then(|t| t.as_table());
    let variants = table
        .get("variant")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_table());
    let found = train
        .into_iter()
        .chain(variants)
        .flat_map(rbprop::config::deprecations);
    super::warn_deprecated(path, found);
}

/// The experiment files of `rbp reproduce` and the options to run them with, `jobs` at a time.
pub fn load(a: &ReproduceArgs, jobs: usize) -> anyhow::Result<(Vec<Experiment>, Options)> {
    if a.adapter.is_some() && a.device != Some(Device::Gpu) {
        anyhow::bail!("--adapter chooses a GPU adapter: it needs --device gpu");
    }
    let exps: Vec<Experiment> = a
        .configs
        .iter()
        .map(|p| {
            warn_deprecated(p);
            Experiment::load(p)
        })
        .collect::<Result<_, _>>()?;
    let opts = Options {
        results: a.results.clone(),
        jobs,
        quick: a.quick,
        data: a.data.clone(),
        device: a.device,
        adapter: a.adapter.clone(),
        ensemble: a.ensemble.unwrap_or(runner::default_ensemble(a.device)),
    };
    Ok((exps, opts))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Follows a grid: on a terminal, one progress bar per running job (its epoch and ETA) under a
/// bar of the grid (its ETA); otherwise plain lines, one per finished epoch of each run with the
/// grid's ETA. Either way one line per finished run.
struct GridConsole {
    /// The bars, on a terminal.
    bars: Option<(MultiProgress, ProgressBar)>,
    state: Mutex<GridState>,
    clock: Instant,
}

/// How far the grid is, in epochs.
#[derive(Default)]
struct GridState {
    /// Epochs of each run.
    epochs: Vec<usize>,
    /// Epochs of each run done (before or by this invocation; fractional while it trains).
    done: Vec<f64>,
    /// Epochs trained by this invocation: the rate the ETA is estimated from.
    trained: f64,
}

impl GridState {
    /// Seconds left, from the epochs left and the rate so far; none before the first batch.
    fn eta(&self, elapsed: f64) -> Option<f64> {
        let total: usize = self.epochs.iter().sum();
        let left = total as f64 - self.done.iter().sum::<f64>();
        if left <= 1e-9 {
            Some(0.0)
        } else if self.trained > 0.0 {
            Some(elapsed * left / self.trained)
        } else {
            None
        }
    }

    /// Marks run `k` as `epochs` epochs done (fractional), counting what it trained.
    fn advance(&mut self, k: usize, epochs: f64, trained: bool) {
        if trained {
            self.trained += (epochs - self.done[k]).max(0.0);
        }
        self.done[k] = epochs;
    }

    /// `epochs x/y, elapsed …, eta …` (no ETA before anything trained).
    fn describe(&self, elapsed: f64) -> String {
        let total: usize = self.epochs.iter().sum();
        let eta = self
            .eta(elapsed)
            .map_or(String::new(), |s| format!(", eta {}", duration(s)));
        format!(
            "epochs {:.0}/{total}, elapsed {}{eta}",
            self.done.iter().sum::<f64>().floor(),
            duration(elapsed)
        )
    }
}

/// `42s`, `3m05s`, `2h07m`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

impl GridConsole {
    fn new(terminal: bool) -> Self {
        let bars = terminal.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let top = multi.add(ProgressBar::new(0));
            top.set_style(
                ProgressStyle::with_template("runs [{bar:25}] {pos}/{len}  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            (multi, top)
        });
        GridConsole {
            bars,
            state: Mutex::new(GridState::default()),
            clock: Instant::now(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GridState> {
        // a panic while holding the lock (caught by the runner) leaves counts still usable
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints a line (above the bars on a terminal).
    fn line(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => multi.suspend(|| sayln!("{text}")),
            None => sayln!("{text}"),
        }
    }

    /// Updates the grid's bar after a change of `state`.
    fn redraw(&self, state: &GridState) {
        if let Some((_, top)) = &self.bars {
            top.set_message(state.describe(self.clock.elapsed().as_secs_f64()));
        }
    }

    fn close(self) {
        if let Some((multi, top)) = self.bars {
            top.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

impl GridObserver for GridConsole {
    fn start(&self, runs: &[Run]) {
        let mut st = self.state();
        st.epochs = runs.iter().map(|r| r.config.epochs).collect();
        st.done = vec![0.0; runs.len()];
        if let Some((_, top)) = &self.bars {
            top.set_length(runs.len() as u64);
        }
        self.redraw(&st);
    }

    fn run(&self, k: usize, run: &Run) -> Box<dyn Observer + '_> {
        Box::new(RunConsole {
            grid: self,
            k,
            id: run.id.clone(),
            epochs: run.config.epochs,
            epoch: 0,
            examples: 1,
            bar: None,
        })
    }

    fn finished(&self, p: &Progress) {
        let what = match &p.outcome {
            Outcome::Skipped => "already complete".to_string(),
            Outcome::Completed { test_acc } => format!("test acc {:.2}%", 100.0 * test_acc),
            Outcome::Diverged(e) => format!("diverged: {}", first_line(e)),
            Outcome::Failed(e) => format!("FAILED: {}", first_line(e)),
            Outcome::Busy(e) => format!("not run: {}", first_line(e)),
        };
        // the run's observer, dropped before this, marked its epochs done
        let grid = self.state().describe(self.clock.elapsed().as_secs_f64());
        let line = format!("[{}/{}] {}: {what}  ({grid})", p.done, p.total, p.id);
        if let Some((_, top)) = &self.bars {
            top.set_position(p.done as u64);
        }
        self.line(&line);
    }
}

/// Follows one run of a grid for [`GridConsole`].
struct RunConsole<'a> {
    grid: &'a GridConsole,
    /// The run's index in the grid.
    k: usize,
    id: String,
    epochs: usize,
    epoch: usize,
    examples: usize,
    /// The run's bar, on a terminal, once it trains.
    bar: Option<ProgressBar>,
}

impl Observer for RunConsole<'_> {
    fn start(&mut self, _config: &TrainConfig, _split: &Split, _net: &str, _layers: &[String]) {
        if let Some((multi, _)) = &self.grid.bars {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix} epoch {msg} [{bar:25}] eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(self.id.clone());
            self.bar = Some(bar);
        }
    }

    fn resumed(&mut self, epochs: usize) {
        let mut st = self.grid.state();
        st.advance(self.k, epochs as f64, false);
        self.grid.redraw(&st);
    }

    fn start_epoch(&mut self, epoch: usize, examples: usize) {
        self.epoch = epoch;
        self.examples = examples.max(1);
        if let Some(bar) = &self.bar {
            bar.set_length((self.epochs * self.examples) as u64);
            bar.set_position(((epoch - 1) * self.examples) as u64);
            bar.set_message(format!("{epoch}/{}", self.epochs));
        }
    }

    fn batch(&mut self, done: usize) {
        let at = (self.epoch - 1) as f64 + done as f64 / self.examples as f64;
        let mut st = self.grid.state();
        st.advance(self.k, at, true);
        self.grid.redraw(&st);
        drop(st);
        if let Some(bar) = &self.bar {
            bar.set_position(((self.epoch - 1) * self.examples + done) as u64);
        }
    }

    fn end_epoch(&mut self, m: &EpochMetrics) {
        let mut st = self.grid.state();
        st.advance(self.k, m.epoch as f64, true);
        self.grid.redraw(&st);
        let grid = st.describe(self.grid.clock.elapsed().as_secs_f64());
        drop(st);
        if self.bar.is_none() {
            self.grid.line(&format!(
                "  {}: epoch {}/{}  train loss {:.4}  test acc {:.2}%  {:.2}s  (grid: {grid})",
                self.id,
                m.epoch,
                self.epochs,
                m.train_loss,
                100.0 * m.test_acc,
                m.seconds
            ));
        }
    }
}

impl Drop for RunConsole<'_> {
    fn drop(&mut self) {
        if let (Some(bar), Some((multi, _))) = (self.bar.take(), &self.grid.bars) {
            bar.finish_and_clear();
            multi.remove(&bar);
        }
        // the run ended, however: none of its epochs are left to do
        let mut st = self.grid.state();
        let epochs = self.epochs as f64;
        st.advance(self.k, epochs, false);
        self.grid.redraw(&st);
    }
}

pub fn table(a: TableArgs) -> anyhow::Result<()> {
    let cells = table::collect(&a.results)?;
    let (md, csv) = table::render(&cells);
    let (md_file, csv_file) = (a.results.join(TABLE_MD), a.results.join(TABLE_CSV));
    write_atomic(&md_file, md.as_bytes())?;
    write_atomic(&csv_file, csv.as_bytes())?;
    super::say(&md);
    sayln!("wrote {} and {}", md_file.display(), csv_file.display());
    Ok(())
}

pub fn plot(a: TableArgs) -> anyhow::Result<()> {
    let files = rbprop::experiment::plot::plot(&a.results)?;
    for f in files {
        sayln!("wrote {}", f.display());
    }
    Ok(())
}

pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    let format = match a.format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Jsonl => Format::Jsonl,
    };
    let mut bytes = Vec::new();
    let rows = export::export(&a.results, format, &mut bytes)?;
    match &a.out {
        Some(path) => {
            write_atomic(path, &bytes)?;
            sayln!("wrote {rows} rows to {}", path.display());
        }
        None => super::say(&String::from_utf8(bytes).expect("the export is UTF-8")),
    }
    Ok(())
}
