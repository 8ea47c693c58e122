//! `rbp reproduce`: runs an experiment's grid (variant × seed), N independent runs at a time (the
//! cores shared out between them: with N = cores, one thread each, since independent runs scale
//! better than threads for small nets), each in
//! `RESULTS/<experiment>/<run-id>/`. Finished runs are skipped; an interrupted run resumes from its
//! last epoch checkpoint (see [`crate::run`]); every file is written atomically. A
//! [`GridObserver`] follows the grid while it runs: it gets a [`run::Observer`] for each run
//! (its epochs and batches) and a [`Progress`] when a run ends; the CLI draws bars or prints lines
//! with them, the library prints nothing.

use super::{Experiment, Run};
use crate::config::{Device, TrainConfig};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::run::dir::{EXPERIMENT, RunDir, write_atomic};
use crate::run::{self, Observer, Silent};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to run a grid.
#[derive(Clone, Debug)]
pub struct Options {
    /// Results root; the experiment's runs go to `results/<name>/`.
    pub results: PathBuf,
    /// Runs at a time.
    pub jobs: usize,
    /// Cap every run at this many epochs (marked as shortened in tables).
    pub quick: Option<usize>,
    /// Replaces the experiment's data directory.
    pub data: Option<String>,
    /// Replaces every run's device (and its adapter, with [`Options::adapter`]).
    pub device: Option<Device>,
    /// The GPU adapter of every run on the GPU.
    pub adapter: Option<String>,
    /// Runs trained together as one ensemble, at most (1: every run alone). Runs join an
    /// ensemble when they read the same minibatches ([`run::ensemble::incompatible`]); each
    /// still writes its own run directory, with its solo run's bits.
    pub ensemble: usize,
}

/// The default ensemble size of `rbp reproduce` on the CPU (where an ensemble is exact but not
/// faster on two cores: BENCHMARKS.md).
pub const DEFAULT_ENSEMBLE: usize = 1;

/// The default ensemble size of `rbp reproduce --device gpu`: members stacked per dispatch.
pub const DEFAULT_GPU_ENSEMBLE: usize = 8;

/// The ensemble size of a grid whose runs all go to `device` (`None`: each where its
/// experiment says) when none is asked for.
pub fn default_ensemble(device: Option<Device>) -> usize {
    if device == Some(Device::Gpu) {
        DEFAULT_GPU_ENSEMBLE
    } else {
        DEFAULT_ENSEMBLE
    }
}

impl Options {
    /// Applies `--quick`, `--device` and `--adapter` to a run's settings (none of them but the
    /// epochs is part of its identity).
    pub fn apply(&self, config: &mut TrainConfig) {
        if let Some(q) = self.quick {
            config.epochs = config.epochs.min(q);
        }
        if let Some(d) = self.device {
            config.device = d;
        }
        if self.adapter.is_some() {
            config.adapter = self.adapter.clone();
        }
    }
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Already complete before this invocation.
    Skipped,
    Completed {
        test_acc: f64,
    },
    Diverged(String),
    /// The run stopped with an error (or a panic), recorded in its `summary.json`; the other
    /// runs of the grid go on.
    Failed(String),
    /// Another process holds the run directory's lock (it is writing the run).
    Busy(String),
}

/// Progress report after each run.
#[derive(Clone, Debug)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub id: String,
    pub outcome: Outcome,
    /// Seconds since the grid started.
    pub elapsed: f64,
}

/// Follows a grid while it runs. The methods are called from the worker threads, one per run at
/// a time, so an implementation shares its state behind a lock.
pub trait GridObserver: Sync {
    /// The grid's runs, in grid order (epochs already capped by `--quick`), before any starts.
    fn start(&self, _runs: &[Run]) {}
    /// The observer of run `runs[k]`, about to be taken up: it hears of the run's training (from
    /// [`Observer::start`] on; nothing if the run is skipped) and is dropped when the run ends,
    /// before [`GridObserver::finished`] reports it.
    fn run(&self, _k: usize, _run: &Run) -> Box<dyn Observer + '_> {
        Box::new(Silent)
    }
    /// A run ended (completed, skipped, diverged, failed or busy).
    fn finished(&self, _progress: &Progress) {}
}

/// A grid observer that only hears of finished runs, through a function.
impl<F: Fn(&Progress) + Sync> GridObserver for F {
    fn finished(&self, progress: &Progress) {
        self(progress)
    }
}

/// A grid observer that ignores everything.
pub struct Quiet;
impl GridObserver for Quiet {}

/// The experiment as run (`--data` applied), its results directory (created, with the
/// experiment written into it) and its runs (`--quick` applied, `threads` each).
pub fn prepare(
    exp: &Experiment,
    opts: &Options,
    threads: usize,
) -> Result<(Experiment, PathBuf, Vec<Run>)> {
    let mut exp = exp.clone();
    if let Some(d) = &opts.data {
        exp.data = d.clone();
    }
    let runs: Vec<Run> = exp
        .runs()?
        .into_iter()
        .map(|mut r| {
            r.config.threads = threads;
            opts.apply(&mut r.config);
            r
        })
        .collect();
    let root = opts.results.join(&exp.name);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let text = toml::to_string_pretty(&exp).expect("experiment serializes");
    write_atomic(&root.join(EXPERIMENT), text.as_bytes())?;
    Ok((exp, root, runs))
}

/// Runs every run of `exp` not yet finished, telling `observer` how they go. Returns the outcomes
/// in grid order.
pub fn reproduce(
    exp: &Experiment,
    opts: &Options,
    observer: &dyn GridObserver,
) -> Result<Vec<(String, Outcome)>> {
    // the cores are shared out between the runs at a time (results do not depend on it)
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / opts.jobs.max(1)).max(1);
    let (exp, root, runs) = prepare(exp, opts, threads)?;
    let split = data::load(&exp.data)?;
    let units = units(&runs, opts.ensemble);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..runs.len()).map(|_| None).collect());
    observer.start(&runs);
    let start = std::time::Instant::now();
    let report = |k: usize, outcome: Outcome| {
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        observer.finished(&Progress {
            done: n,
            total: runs.len(),
            id: runs[k].id.clone(),
            outcome: outcome.clone(),
            elapsed: start.elapsed().as_secs_f64(),
        });
        results.lock().expect("no panics while holding the lock")[k] = Some(outcome);
    };
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let u = next.fetch_add(1, Ordering::SeqCst);
                    let Some(unit) = units.get(u) else { break };
                    if let [k] = unit[..] {
                        let r = &runs[k];
                        let mut watch = observer.run(k, r);
                        let outcome = run_one(r, &split, &r.dir(&root), &mut *watch);
                        drop(watch);
                        report(k, outcome);
                    } else {
                        run_group(unit, &runs, &split, &root, observer, &report);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .expect("no panics while holding the lock");
    Ok(runs
        .iter()
        .zip(results)
        .map(|(r, o)| (r.id.clone(), o.expect("every run was taken")))
        .collect())
}

/// The grid's runs in units of work, in grid order: with `ensemble` ≤ 1 each run alone;
/// otherwise the runs of each class that can share minibatches ([`run::ensemble::incompatible`])
/// in as few groups of at most `ensemble` as hold them, of sizes that differ by at most one
/// (9 runs with `ensemble` 8: 5 and 4, not 8 and 1), each group in the order of its first run.
pub fn units(runs: &[Run], ensemble: usize) -> Vec<Vec<usize>> {
    if ensemble <= 1 {
        return (0..runs.len()).map(|k| vec![k]).collect();
    }
    // classes of runs that can train together, in order of their first run
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        let class = classes
            .iter_mut()
            .find(|c| run::ensemble::incompatible(&runs[c[0]].config, &r.config).is_none());
        match class {
            Some(c) => c.push(k),
            None => classes.push(vec![k]),
        }
    }
    let mut units = Vec::new();
    for class in classes {
        let groups = class.len().div_ceil(ensemble);
        let (size, extra) = (class.len() / groups, class.len() % groups);
        let mut rest = &class[..];
        for g in 0..groups {
            let (head, tail) = rest.split_at(size + usize::from(g < extra));
            units.push(head.to_vec());
            rest = tail;
        }
    }
    units.sort_by_key(|u| u[0]);
    units
}

/// Runs the runs `unit` of a grid as one ensemble: each unfinished one under its directory's
/// lock (runs already complete are skipped, runs another process holds are busy), every
/// outcome recorded as [`run_one`] records it and reported through `report`.
fn run_group(
    unit: &[usize],
    runs: &[Run],
    split: &Split,
    root: &Path,
    observer: &dyn GridObserver,
    report: &(dyn Fn(usize, Outcome) + Sync),
) {
    let mut locked = Vec::new();
    for &k in unit {
        let r = &runs[k];
        let dir = RunDir::new(r.dir(root));
        if dir.is_complete(r.config.epochs) {
            report(k, Outcome::Skipped);
            continue;
        }
        match dir.lock() {
            Ok(lock) if dir.is_complete(r.config.epochs) => {
                drop(lock);
                report(k, Outcome::Skipped);
            }
            Ok(lock) => locked.push((k, lock)),
            Err(e @ Error::Locked { .. }) => report(k, Outcome::Busy(first_line(&e.to_string()))),
            Err(e) => report(k, Outcome::Failed(e.to_string())),
        }
    }
    if locked.is_empty() {
        return;
    }
    let mut watches: Vec<Box<dyn Observer + '_>> = locked
        .iter()
        .map(|(k, _)| observer.run(*k, &runs[*k]))
        .collect();
    let members: Vec<run::ensemble::Member> = locked
        .iter()
        .zip(watches.iter_mut())
        .map(|((k, lock), watch)| run::ensemble::Member {
            config: &runs[*k].config,
            out: Some(lock),
            observer: &mut **watch,
        })
        .collect();
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run::ensemble::run_together(members, split)
    }));
    drop(watches);
    match attempt {
        Ok(results) => {
            for ((k, lock), result) in locked.iter().zip(results) {
                report(*k, outcome(Ok(result), lock));
            }
        }
        Err(payload) => {
            let what = panic_text(&payload);
            for (k, lock) in &locked {
                report(*k, outcome(Err(what.clone()), lock));
            }
        }
    }
}

/// What a finished attempt at a run means for the grid (a panic given by its text); failures
/// are recorded in the run's summary.
fn outcome(
    attempt: std::result::Result<Result<Vec<run::EpochMetrics>>, String>,
    lock: &crate::run::RunLock,
) -> Outcome {
    let err = match attempt {
        Ok(Ok(ms)) => {
            return Outcome::Completed {
                test_acc: ms.last().map_or(f64::NAN, |m| m.test_acc),
            };
        }
        Ok(Err(e @ Error::Diverged { .. })) => return Outcome::Diverged(e.to_string()),
        Ok(Err(e)) => e.to_string(),
        Err(what) => format!("internal error (panic): {what}"),
    };
    match lock.record_failure(&err) {
        Ok(()) => Outcome::Failed(err),
        Err(e) => Outcome::Failed(format!("{err} (and recording the failure failed: {e})")),
    }
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs one run of a grid into `dir` unless it is finished: under the directory's lock, with
/// any error or panic caught and recorded in the run's `summary.json`, so that one bad run never
/// takes down the others. `observer` follows the training.
pub fn run_one(r: &Run, split: &Split, dir: &Path, observer: &mut dyn Observer) -> Outcome {
    let dir = RunDir::new(dir);
    if dir.is_complete(r.config.epochs) {
        return Outcome::Skipped;
    }
    let lock = match dir.lock() {
        Ok(l) => l,
        Err(e @ Error::Locked { .. }) => return Outcome::Busy(first_line(&e.to_string())),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // another process may have finished it while this one waited for the lock
    if dir.is_complete(r.config.epochs) {
        return Outcome::Skipped;
    }
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run::run_locked(&r.config, split, Some(&lock), observer)
    }));
    outcome(attempt.map_err(|p| panic_text(&p)), &lock)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
