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
use crate::run::dir::{SLURM_JOBS, SLURM_LOGS, sbatch_file, write_atomic};
use crate::run::{self, RunDir, State};
use std::collections::BTreeMap;
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

/// The `rbp reproduce …` command every task of a grid runs: `exe`, the experiment files and
/// results root as absolute paths (a task may start in any directory), and the options of `opts`
/// that choose what runs where (data, `--quick`, device, adapter, cores per task); the task adds
/// `--only I`.
pub fn task_command(
    exe: &Path,
    configs: &[PathBuf],
    opts: &Options,
    cpus_per_task: usize,
) -> Result<Vec<String>> {
    let absolute = |p: &Path| -> Result<String> {
        std::path::absolute(p)
            .map(|p| p.display().to_string())
            .map_err(|e| Error::io(p, e))
    };
    let mut cmd = vec![exe.display().to_string(), "reproduce".to_string()];
    for c in configs {
        cmd.push(absolute(c)?);
    }
    cmd.extend(["--results".to_string(), absolute(&opts.results)?]);
    if let Some(d) = &opts.data {
        let d = if data::is_embedded(d) {
            d.clone()
        } else {
            absolute(Path::new(d))?
        };
        cmd.extend(["--data".to_string(), d]);
    }
    if let Some(q) = opts.quick {
        cmd.extend(["--quick".to_string(), q.to_string()]);
    }
    if let Some(d) = opts.device {
        cmd.extend(["--device".to_string(), d.name().to_string()]);
    }
    if let Some(n) = &opts.adapter {
        cmd.extend(["--adapter".to_string(), n.clone()]);
    }
    if cpus_per_task != 1 {
        cmd.extend(["--cpus-per-task".to_string(), cpus_per_task.to_string()]);
    }
    Ok(cmd)
}

/// A job array Slurm accepted.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// Slurm's job id.
    pub job: String,
    /// The sbatch script, kept under `<results>/.slurm/`.
    pub script: PathBuf,
}

/// Writes `script` as the job `name` of the results root's Slurm directory `dir`
/// (`<results>/.slurm`, with its `logs/`), submits it with `sbatch`, and records the job id in
/// the directory's jobs file (what [`queued_tasks`] reads back).
pub fn submit(dir: &Path, name: &str, script: &str) -> Result<Submitted> {
    let logs = dir.join(SLURM_LOGS);
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    let path = sbatch_file(dir, name);
    write_atomic(&path, script.as_bytes())?;
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .map_err(|e| Error::Data {
            path: "sbatch".into(),
            problem: format!("cannot run it: {e}"),
            hint: "is Slurm installed and on PATH?".into(),
        })?;
    if !out.status.success() {
        return Err(Error::Data {
            path: path.clone(),
            problem: format!(
                "sbatch refused it: {}",
                crate::error::bounded(String::from_utf8_lossy(&out.stderr).trim())
            ),
            hint: "check --partition, --time and --sbatch-arg against the cluster's settings"
                .into(),
        });
    }
    // `--parsable` prints `ID` or `ID;CLUSTER`
    let job = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if job.is_empty() {
        return Err(Error::Data {
            path: path.clone(),
            problem: "sbatch printed no job id".into(),
            hint: "run `sbatch --parsable` on the script by hand to see what it says".into(),
        });
    }
    let jobs = dir.join(SLURM_JOBS);
    let mut known = std::fs::read_to_string(&jobs).unwrap_or_default();
    known.push_str(&format!("{job} {name}\n"));
    write_atomic(&jobs, known.as_bytes())?;
    Ok(Submitted { job, script: path })
}

/// The array tasks of the jobs submitted as `name` from the Slurm directory `dir` that Slurm
/// still lists, as (task index, Slurm's state); none where Slurm is not reachable.
pub fn queued_tasks(dir: &Path, name: &str) -> Vec<(usize, String)> {
    let Ok(known) = std::fs::read_to_string(dir.join(SLURM_JOBS)) else {
        return Vec::new();
    };
    let ids: Vec<&str> = known
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, n)| *n == name)
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let Ok(out) = std::process::Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %T", "-j", &ids.join(",")])
        .output()
    else {
        return Vec::new();
    };
    parse_squeue(&String::from_utf8_lossy(&out.stdout))
}

/// Lines `JOB_TASK STATE` of `squeue -h -r -o "%i %T"` as (task, state); other lines are skipped.
fn parse_squeue(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            let task = id.split_once('_')?.1.parse().ok()?;
            Some((task, state.to_string()))
        })
        .collect()
}

/// Where one run of a grid stands.
#[derive(Clone, Debug)]
pub struct RunStatus {
    pub index: usize,
    /// `experiment/run-id`.
    pub label: String,
    /// One of `finished`, `running`, `failed`, `interrupted`, `missing`.
    pub kind: &'static str,
    /// The state in words (the pid of a running writer, a failure's first line, the epochs of
    /// an interrupted run) and, for an unfinished run that Slurm lists, its Slurm state.
    pub text: String,
}

/// The state of every run of a grid, read from its directories, with the Slurm tasks still
/// listed for it.
#[derive(Clone, Debug)]
pub struct GridStatus {
    pub runs: Vec<RunStatus>,
    /// Runs per kind.
    pub counts: BTreeMap<&'static str, usize>,
    /// (task, Slurm state) of the submitted arrays' tasks Slurm lists.
    pub tasks: Vec<(usize, String)>,
}

/// The state of every run of `grid`, with the tasks of the arrays submitted as `name` from the
/// Slurm directory `dir`.
pub fn status(grid: &[GridRun], dir: &Path, name: &str) -> GridStatus {
    let tasks = queued_tasks(dir, name);
    let mut counts = BTreeMap::new();
    let runs = grid
        .iter()
        .map(|g| {
            let (kind, text) = match RunDir::new(&g.dir).state(g.run.config.epochs) {
                State::Finished => ("finished", "finished".to_string()),
                State::Running { pid } => (
                    "running",
                    format!(
                        "running{}",
                        pid.map_or(String::new(), |p| format!(" (pid {p})"))
                    ),
                ),
                State::Failed(e) => ("failed", format!("failed: {e}")),
                State::Interrupted { epochs } => (
                    "interrupted",
                    format!(
                        "interrupted after {epochs} of {} epochs",
                        g.run.config.epochs
                    ),
                ),
                State::Missing => ("missing", "missing".to_string()),
            };
            let queued = tasks.iter().find(|(t, _)| *t == g.index);
            let text = match queued {
                Some((_, s)) if kind != "finished" => {
                    format!("{text} [slurm: {}]", s.to_lowercase())
                }
                _ => text,
            };
            *counts.entry(kind).or_default() += 1;
            RunStatus {
                index: g.index,
                label: format!("{}/{}", g.experiment, g.run.id),
                kind,
                text,
            }
        })
        .collect();
    GridStatus {
        runs,
        counts,
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_give_task_and_state() {
        let text = "123_4 RUNNING\n 123_10 PENDING\n123_[5-9] PENDING\nnoise\n";
        assert_eq!(
            parse_squeue(text),
            vec![(4, "RUNNING".to_string()), (10, "PENDING".to_string())]
        );
    }
}
