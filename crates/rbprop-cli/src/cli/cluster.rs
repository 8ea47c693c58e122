//! `rbp reproduce --slurm | --only I | --status | --emit-commands`: a grid run by another runner,
//! one run per task, and its state. The work is the library's
//! ([`rbprop::experiment::cluster`]); this module parses, calls and prints.

use super::experiment::ReproduceArgs;
use super::sayln;
use anyhow::{Context, bail, ensure};
use rbprop::experiment::cluster::{self, Slurm};
use rbprop::experiment::runner::{Options, Outcome};
use rbprop::run::dir::{SLURM, SLURM_LOGS};

/// The `rbp reproduce …` command every task runs.
fn task_command(a: &ReproduceArgs, opts: &Options) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot locate the rbp executable")?;
    Ok(cluster::task_command(
        &exe,
        &a.configs,
        opts,
        a.cluster.cpus_per_task,
    )?)
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
        let cmd = task_command(a, &opts)?;
        let quoted: Vec<String> = cmd.iter().map(|s| cluster::shell_quote(s)).collect();
        for g in &grid {
            sayln!("{} --only {}", quoted.join(" "), g.index);
        }
        return Ok(());
    }
    let name = cluster::job_name(&exps);
    let dir = std::path::absolute(&a.results)
        .with_context(|| format!("{}: cannot resolve the path", a.results.display()))?
        .join(SLURM);
    if c.status {
        print_status(&cluster::status(&grid, &dir, &name));
        return Ok(());
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
        &task_command(a, &opts)?,
    );
    if c.dry_run {
        super::say(&script);
        return Ok(());
    }
    let job = cluster::submit(&dir, &name, &script)?.job;
    let configs: Vec<String> = a
        .configs
        .iter()
        .map(|p| cluster::shell_quote(&p.display().to_string()))
        .collect();
    let results = cluster::shell_quote(&a.results.display().to_string());
    sayln!(
        "submitted job array {job}: {} tasks ({} per task), script {}",
        grid.len(),
        if c.cpus_per_task == 1 {
            "1 core".to_string()
        } else {
            format!("{} cores", c.cpus_per_task)
        },
        rbprop::run::dir::sbatch_file(&dir, &name).display()
    );
    sayln!("watch it:  squeue -j {job}");
    sayln!(
        "state:     rbp reproduce {} --results {results} --status",
        configs.join(" "),
    );
    sayln!("table:     rbp table {results}");
    Ok(())
}

fn first(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn print_status(s: &cluster::GridStatus) {
    let width = s.runs.iter().map(|r| r.label.len()).max().unwrap_or(0);
    for r in &s.runs {
        sayln!("{:>4}  {:<width$}  {}", r.index, r.label, r.text);
    }
    let summary: Vec<String> = s.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    sayln!("{} runs: {}", s.runs.len(), summary.join(", "));
    if !s.tasks.is_empty() {
        let pending = s.tasks.iter().filter(|(_, t)| t == "PENDING").count();
        let running = s.tasks.iter().filter(|(_, t)| t == "RUNNING").count();
        sayln!("slurm: {running} task(s) running, {pending} pending");
    }
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
