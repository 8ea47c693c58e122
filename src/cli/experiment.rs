//! `rbp reproduce`, `rbp table`, `rbp plot` and `rbp export`.

use super::sayln;
use clap::{Args, ValueEnum};
use rbp::experiment::export::{self, Format};
use rbp::experiment::runner::{self, Options, Outcome, Progress};
use rbp::experiment::{Experiment, table};
use std::path::PathBuf;

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
    /// Shorten every run to N epochs (2 if no N); tables mark such runs.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2")]
    pub quick: Option<usize>,
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
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs >= 1, "--jobs must be ≥ 1");
    let exps: Vec<Experiment> = a
        .configs
        .iter()
        .map(|p| Experiment::load(p))
        .collect::<Result<_, _>>()?;
    let opts = Options {
        results: a.results.clone(),
        jobs,
        quick: a.quick,
        data: a.data.clone(),
    };
    let mut diverged = 0;
    let mut unfinished: Vec<String> = Vec::new();
    for exp in &exps {
        let total = exp.runs()?.len();
        sayln!(
            "{}: {total} runs ({} variants × {} seeds), {jobs} at a time, results in {}",
            exp.name,
            exp.variants.len(),
            exp.seeds.len(),
            a.results.join(&exp.name).display()
        );
        let report = |p: &Progress| {
            let what = match &p.outcome {
                Outcome::Skipped => "already complete".to_string(),
                Outcome::Completed { test_acc } => format!("test acc {:.2}%", 100.0 * test_acc),
                Outcome::Diverged(e) => format!("diverged: {}", first_line(e)),
                Outcome::Failed(e) => format!("FAILED: {}", first_line(e)),
                Outcome::Busy(e) => format!("not run: {}", first_line(e)),
            };
            let eta = if p.done < p.total {
                p.elapsed / p.done as f64 * (p.total - p.done) as f64
            } else {
                0.0
            };
            sayln!(
                "[{}/{}] {}: {what}  (elapsed {:.0}s, eta {:.0}s)",
                p.done,
                p.total,
                p.id,
                p.elapsed,
                eta
            );
        };
        let out = runner::reproduce(exp, &opts, &report)?;
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
    if !unfinished.is_empty() {
        anyhow::bail!(
            "{} run(s) did not finish (the others did):\n  {}\nHINT: each failed run's summary.json holds its error; run the same command again to retry them",
            unfinished.len(),
            unfinished.join("\n  ")
        );
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

pub fn table(a: TableArgs) -> anyhow::Result<()> {
    let cells = table::collect(&a.results)?;
    let (md, csv) = table::render(&cells);
    rbp::run::write_atomic(&a.results.join("table.md"), md.as_bytes())?;
    rbp::run::write_atomic(&a.results.join("table.csv"), csv.as_bytes())?;
    super::say(&md);
    sayln!(
        "wrote {} and {}",
        a.results.join("table.md").display(),
        a.results.join("table.csv").display()
    );
    Ok(())
}

pub fn plot(a: TableArgs) -> anyhow::Result<()> {
    let files = rbp::experiment::plot::plot(&a.results)?;
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
            rbp::run::write_atomic(path, &bytes)?;
            sayln!("wrote {rows} rows to {}", path.display());
        }
        None => super::say(&String::from_utf8(bytes).expect("the export is UTF-8")),
    }
    Ok(())
}
