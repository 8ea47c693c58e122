//! Grids beyond one process. Every run of one or more experiment files has a global index (the
//! files in the order given, each file's runs in grid order), so any runner — a Slurm job array,
//! GNU parallel, Kubernetes Jobs — can run run `i` with `rbp reproduce FILES… --results DIR
//! --only i`: idempotently (a finished run is skipped, an interrupted one resumes from its
//! checkpoint) and under the run directory's lock (two tasks never write one run). The state of
//! every run is read back from the results directory alone ([`crate::run::RunDir::state`]).

use super::runner::{self, Options, Outcome};
use super::{Experiment, Run};
use crate::data;
use crate::error::{Error, Result};
use crate::run;
use std::path::{Path, PathBuf};

/// One run of a grid of experiments, with its global index.
#[derive(Clone, Debug)]
pub struct GridRun {
    pub index: usize,
    /// The experiment's name (its directory under the results root).
    pub experiment: String,
    pub run: Run,
    /// `RESULTS/<experiment>/<run-id>/`.
    pub dir: PathBuf,
}

/// Every run of `exps`, in index order, each with `threads` threads. Writes each experiment's
/// `experiment.toml` into the results root, as `rbp reproduce` does.
pub fn grid(exps: &[Experiment], opts: &Options, threads: usize) -> Result<Vec<GridRun>> {
    let mut out = Vec::new();
    for exp in exps {
        let (exp, root, runs) = runner::prepare(exp, opts, threads)?;
        for r in runs {
            out.push(GridRun {
                index: out.len(),
                experiment: exp.name.clone(),
                dir: r.dir(&root),
                run: r,
            });
        }
    }
    Ok(out)
}

/// Runs run `index` of the grid of `exps` (see the module documentation) with `threads` threads.
pub fn run_only(
    exps: &[Experiment],
    opts: &Options,
    index: usize,
    threads: usize,
    observer: &mut dyn run::Observer,
) -> Result<(GridRun, Outcome)> {
    let all = grid(exps, opts, threads)?;
    let n = all.len();
    let g = all.into_iter().nth(index).ok_or_else(|| {
        Error::config(
            "only",
            format!(
                "the grid has {n} runs (indices 0..={}), got {index}",
                n.saturating_sub(1)
            ),
        )
    })?;
    let source = match &opts.data {
        Some(d) => d.clone(),
        None => exps
            .iter()
            .find(|e| e.name == g.experiment)
            .map(|e| e.data.clone())
            .expect("the run's experiment"),
    };
    let split = data::load(&source)?;
    let outcome = runner::run_one(&g.run, &split, &g.dir, observer);
    Ok((g, outcome))
}

/// Settings of a Slurm job array.
#[derive(Clone, Debug, Default)]
pub struct Slurm {
    pub partition: Option<String>,
    /// Wall-time limit per task (Slurm's format, e.g. `2:00:00`).
    pub time: Option<String>,
    pub cpus_per_task: usize,
    /// At most this many tasks at once (`--array=…%K`).
    pub max_concurrent: Option<usize>,
    /// Further `#SBATCH` lines, verbatim (e.g. `--mem=4G`).
    pub extra: Vec<String>,
}

impl Slurm {
    /// Refuses a setting that would break the script's lines: a partition, time or extra
    /// `#SBATCH` argument holding a line break or another control character (it would end the
    /// directive and put the rest of the text in the script as a command).
    pub fn validate(&self) -> Result<()> {
        let fields = [("--partition", &self.partition), ("--time", &self.time)];
        let named = fields
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .chain(self.extra.iter().map(|v| ("--sbatch-arg", v)));
        for (key, value) in named {
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                let shown: String = value.chars().take(60).collect();
                return Err(Error::config(
                    key,
                    format!(
                        "holds the control character {:?} (in `{}`); a Slurm directive is one line of plain text",
                        c,
                        shown.escape_debug()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The job name of a grid: `rbp-` and the experiments' names.
pub fn job_name(exps: &[Experiment]) -> String {
    let names: Vec<&str> = exps.iter().map(|e| e.name.as_str()).collect();
    let mut name = format!("rbp-{}", names.join("+"));
    name.retain(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
    name.chars().take(64).collect()
}

/// An sbatch script for a job array with one task per run: task `i` runs `command` followed by
/// `--only $SLURM_ARRAY_TASK_ID`. Logs go to `logs/%A_%a.out`. Tasks are requeueable: a
/// requeued or preempted task resumes its run from the last checkpoint.
pub fn sbatch_script(
    name: &str,
    runs: usize,
    logs: &Path,
    slurm: &Slurm,
    command: &[String],
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let array = match slurm.max_concurrent {
        Some(k) => format!("0-{}%{k}", runs - 1),
        None => format!("0-{}", runs - 1),
    };
    let mut directive = |d: String| s.push_str(&format!("#SBATCH {d}\n"));
    directive(format!("--job-name={name}"));
    directive(format!("--array={array}"));
    directive(format!("--cpus-per-task={}", slurm.cpus_per_task));
    directive("--ntasks=1".into());
    directive("--requeue".into());
    directive(format!("--output={}", logs.join("%A_%a.out").display()));
    if let Some(p) = &slurm.partition {
        directive(format!("--partition={p}"));
    }
    if let Some(t) = &slurm.time {
        directive(format!("--time={t}"));
    }
    for a in &slurm.extra {
        directive(a.clone());
    }
    s.push_str(
        "\n# one run of the grid per task; finished runs are skipped, interrupted ones resume\n",
    );
    let cmd: Vec<String> = command.iter().map(|c| shell_quote(c)).collect();
    s.push_str(&format!(
        "exec {} --only \"$SLURM_ARRAY_TASK_ID\"\n",
        cmd.join(" ")
    ));
    s
}
