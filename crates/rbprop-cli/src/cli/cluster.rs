//! `rbp reproduce --slurm | --only I | --status | --emit-commands`: a grid run by another runner,
//! one run per task, and its state.

use super::experiment::ReproduceArgs;
use super::sayln;
use anyhow::{Context, bail, ensure};
use clap::Args;
use rbprop::experiment::cluster::{self, Slurm};
use rbprop::experiment::runner::Outcome;
use rbprop::run::dir::{SLURM, SLURM_JOBS, SLURM_LOGS, sbatch_file, write_atomic};
use rbprop::run::{RunDir, State};
use std::path::{Path, PathBuf};

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

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}: cannot resolve the path", p.display()))
}

/// The `rbp reproduce …` command every task runs (absolute paths, so it runs from anywhere).
fn task_command(a: &ReproduceArgs) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot locate the rbp executable")?;
    let mut cmd = vec![exe.display().to_string(), "reproduce".to_string()];
    for c in &a.configs {
        cmd.push(absolute(c)?.display().to_string());
    }
    cmd.push("--results".into());
    cmd.push(absolute(&a.results)?.display().to_string());
    if let Some(d) = &a.data {
        let d = if d.starts_with("embedded:") {
            d.clone()
        } else {
            absolute(Path::new(d))?.display().to_string()
        };
        cmd.extend(["--data".to_string(), d]);
    }
    if let Some(q) = a.quick {
        cmd.extend(["--quick".to_string(), q.to_string()]);
    }
    if let Some(d) = a.device {
        cmd.extend(["--device".to_string(), d.name().to_string()]);
    }
    if let Some(n) = &a.adapter {
        cmd.extend(["--adapter".to_string(), n.clone()]);
    }
    if a.cluster.cpus_per_task != 1 {
        cmd.extend([
            "--cpus-per-task".to_string(),
            a.cluster.cpus_per_task.to_string(),
        ]);
    }
    Ok(cmd)
}

pub fn run(a: &ReproduceArgs) -> anyhow::Result<()> {
    let c = &a.cluster;
    let modes = [c.slurm, c.only.is_some(), c.status, c.emit_commands];
    ensure!(
        modes.iter().filter(|m| **m).count() == 1,
        "--slurm, --only, --status and --emit-commands exclude each other"
    );
    ensure!(
        (1..=rbprop::config::MAX_THREADS).contains(&c.cpus_per_task),
        "invalid value for `cpus-per-task`: must be in 1..={}, got {}",
        rbprop::config::MAX_THREADS,
        c.cpus_per_task
    );
    let (exps, opts) = super::experiment::load(a, 1)?;
    if let Some(i) = c.only {
        // Slurm says how many cores the task has; elsewhere --cpus-per-task does
        let threads = std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(c.cpus_per_task)
            .clamp(1, rbprop::config::MAX_THREADS);
        let (g, outcome) = cluster::run_only(&exps, &opts, i, threads, &mut TaskLog)?;
        let id = format!("{}/{}", g.experiment, g.run.id);
        match outcome {
            Outcome::Skipped => sayln!("[{i}] {id}: already complete"),
            Outcome::Completed { test_acc } => {
                sayln!("[{i}] {id}: test acc {:.2}%", 100.0 * test_acc)
            }
            Outcome::Diverged(e) => sayln!("[{i}] {id}: diverged: {}", first(&e)),
            Outcome::Failed(e) => bail!("[{i}] {id}: failed: {e}"),
            Outcome::Busy(e) => bail!("[{i}] {id}: {e}"),
        }
        return Ok(());
    }
    let grid = cluster::grid(&exps, &opts, c.cpus_per_task)?;
    ensure!(!grid.is_empty(), "the grid has no runs");
    if c.emit_commands {
        let cmd = task_command(a)?;
        let quoted: Vec<String> = cmd.iter().map(|s| cluster::shell_quote(s)).collect();
        for g in &grid {
            sayln!("{} --only {}", quoted.join(" "), g.index);
        }
        return Ok(());
    }
    let name = cluster::job_name(&exps);
    let dir = absolute(&a.results)?.join(SLURM);
    if c.status {
        return status(&grid, &dir, &name);
    }
    let slurm = Slurm {
        partition: c.partition.clone(),
        time: c.time.clone(),
        cpus_per_task: c.cpus_per_task,
        max_concurrent: c.max_concurrent,
        extra: c.sbatch_arg.clone(),
    };
    slurm.validate()?;
    let script = cluster::sbatch_script(
        &name,
        grid.len(),
        &dir.join(SLURM_LOGS),
        &slurm,
        &task_command(a)?,
    );
    if c.dry_run {
        super::say(&script);
        return Ok(());
    }
    std::fs::create_dir_all(dir.join(SLURM_LOGS))
        .map_err(|e| rbprop::Error::io(dir.join(SLURM_LOGS), e))?;
    let path = sbatch_file(&dir, &name);
    write_atomic(&path, script.as_bytes())?;
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .context("cannot run `sbatch` (is Slurm installed and on PATH?)")?;
    ensure!(
        out.status.success(),
        "sbatch refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let job = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    ensure!(!job.is_empty(), "sbatch printed no job id");
    // remember the arrays submitted for this results directory (for --status)
    let jobs = dir.join(SLURM_JOBS);
    let mut known = std::fs::read_to_string(&jobs).unwrap_or_default();
    known.push_str(&format!("{job} {name}\n"));
    write_atomic(&jobs, known.as_bytes())?;
    let configs: Vec<String> = a
        .configs
        .iter()
        .map(|p| cluster::shell_quote(&p.display().to_string()))
        .collect();
    sayln!(
        "submitted job array {job}: {} tasks ({} per task), script {}",
        grid.len(),
        if c.cpus_per_task == 1 {
            "1 core".to_string()
        } else {
            format!("{} cores", c.cpus_per_task)
        },
        path.display()
    );
    sayln!("watch it:  squeue -j {job}");
    sayln!(
        "state:     rbp reproduce {} --results {} --status",
        configs.join(" "),
        cluster::shell_quote(&a.results.display().to_string())
    );
    sayln!(
        "table:     rbp table {}",
        cluster::shell_quote(&a.results.display().to_string())
    );
    Ok(())
}

fn first(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Array tasks of the jobs submitted for this results directory that Slurm still lists, as
/// (task index, state); none where Slurm is not reachable.
fn slurm_tasks(dir: &Path, name: &str) -> Vec<(usize, String)> {
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            let task = id.split_once('_')?.1.parse().ok()?;
            Some((task, state.to_string()))
        })
        .collect()
}

fn status(grid: &[cluster::GridRun], dir: &Path, name: &str) -> anyhow::Result<()> {
    let tasks = slurm_tasks(dir, name);
    let width = grid
        .iter()
        .map(|g| g.experiment.len() + g.run.id.len() + 1)
        .max()
        .unwrap_or(0);
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for g in grid {
        let queued = tasks
            .iter()
            .find(|(t, _)| *t == g.index)
            .map(|(_, s)| s.as_str());
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
        let text = match queued {
            Some(s) if kind != "finished" => format!("{text} [slurm: {}]", s.to_lowercase()),
            _ => text,
        };
        *counts.entry(kind).or_default() += 1;
        sayln!(
            "{:>4}  {:<width$}  {text}",
            g.index,
            format!("{}/{}", g.experiment, g.run.id)
        );
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    sayln!("{} runs: {}", grid.len(), summary.join(", "));
    if !tasks.is_empty() {
        let pending = tasks.iter().filter(|(_, s)| s == "PENDING").count();
        let running = tasks.iter().filter(|(_, s)| s == "RUNNING").count();
        sayln!("slurm: {running} task(s) running, {pending} pending");
    }
    Ok(())
}

/// Plain lines for a task's log: where the run resumed, and every epoch.
struct TaskLog;

impl rbprop::run::Observer for TaskLog {
    fn resumed(&mut self, epochs: usize) {
        sayln!("resumed after {epochs} finished epoch(s)");
    }
    fn end_epoch(&mut self, m: &rbprop::run::EpochMetrics) {
        sayln!(
            "epoch {}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  {:.2}s",
            m.epoch,
            m.train_loss,
            100.0 * m.train_acc,
            m.test_loss,
            100.0 * m.test_acc,
            m.seconds
        );
    }
}
