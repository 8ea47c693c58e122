//! A whole training run: set up from a [`TrainConfig`], train epoch by epoch, evaluate, and keep
//! the results in a run directory ([`super::dir`]: settings, metrics, summary and checkpoint),
//! each written atomically after every epoch so that a crash or a divergence never loses a
//! finished epoch.

use super::device::{Accept, OnBackend, on_device};
use super::dir::{EpochMetrics, RunDir, RunLock, read_metrics_lines, same_run};
use crate::backend::Backend;
use crate::channel::Channel;
use crate::channel::diagnostics;
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::augment::Augment;
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Net, parse_arch};
use crate::rng;
use crate::train::{EpochStats, Sgd, Trainer};
use std::borrow::Cow;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

/// Number of training examples in the fixed probe batch of the diagnostics.
pub const PROBE_EXAMPLES: usize = 1000;

/// Receives progress while a run trains (the CLI draws a progress bar and prints lines).
pub trait Observer: Send {
    /// A run is about to start on `net` (its summary); `layers` describes each hidden layer's
    /// channel.
    fn start(&mut self, _config: &TrainConfig, _split: &Split, _net: &str, _layers: &[String]) {}
    /// An epoch of `examples` training examples begins.
    fn start_epoch(&mut self, _epoch: usize, _examples: usize) {}
    /// `done` examples of the current epoch are trained.
    fn batch(&mut self, _done: usize) {}
    /// Asked after every update: true stops the run there with [`Error::Interrupted`] (the
    /// epochs finished before are saved; the one in progress is not).
    fn stop(&mut self) -> bool {
        false
    }
    /// The run continues an interrupted one after `epochs` finished epochs.
    fn resumed(&mut self, _epochs: usize) {}
    /// An epoch finished and was saved.
    fn end_epoch(&mut self, _metrics: &EpochMetrics) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Builds the trainer a config describes: forward weights from stream `init`, feedback matrices
/// from stream `feedback` (so the same seed gives every channel the same initial net).
pub fn build_trainer(
    config: &TrainConfig,
    input: (usize, usize, usize),
    classes: usize,
) -> Result<Trainer> {
    let spec = config.validate()?;
    let layers = match &config.arch {
        Some(arch) => parse_arch(arch)?,
        None => config
            .hidden
            .iter()
            .map(|&units| crate::model::LayerSpec::Dense { units })
            .collect(),
    };
    let key = if config.arch.is_some() {
        "arch"
    } else {
        "hidden"
    };
    let rekey = |e: Error| match e {
        Error::Config { problem, .. } => Error::config(key, problem),
        e => e,
    };
    let footprint = crate::model::arch::plan(input, &layers, classes).map_err(rekey)?;
    check_memory(&footprint, config.batch, config.threads).map_err(rekey)?;
    let init = &mut rng::stream(config.seed, "init");
    let net = match &config.arch {
        Some(arch) => Net::from_arch(input, &parse_arch(arch)?, classes, config.activation, init)?,
        None => {
            let sizes: Vec<usize> = std::iter::once(input.0 * input.1 * input.2)
                .chain(config.hidden.iter().copied())
                .chain(std::iter::once(classes))
                .collect();
            Net::new(&sizes, config.activation, init)
        }
    };
    let channel = Channel::new(
        &spec,
        &config.resolved_options(),
        &net,
        &mut rng::stream(config.seed, "feedback"),
        rng::stream(config.seed, "channel-noise"),
    )?;
    let sgd = Sgd {
        lr: config.lr,
        decay: config.decay,
        momentum: config.momentum,
        weight_decay: config.weight_decay,
    };
    Ok(Trainer::new(net, channel, sgd))
}

/// Refuses a net whose estimated memory (weights, momentum, feedback and gradient buffers;
/// activations, signals and errors of a minibatch; conv scratch per thread) exceeds the memory
/// this process may use ([`memory_limit`]), before anything is allocated.
pub fn check_memory(
    fp: &crate::model::arch::Footprint,
    batch: usize,
    threads: usize,
) -> Result<()> {
    let floats = fp
        .params
        .checked_mul(4)
        .and_then(|p| {
            (batch as u64)
                .checked_mul(fp.units)?
                .checked_mul(4)?
                .checked_add(p)
        })
        .and_then(|v| (threads as u64).checked_mul(fp.scratch)?.checked_add(v))
        .and_then(|v| v.checked_mul(4));
    let (limit, what) = memory_limit();
    match floats {
        Some(bytes) if bytes <= limit => Ok(()),
        need => Err(Error::config(
            "arch",
            format!(
                "the net needs about {} of memory ({} parameters, {} values per example × batch {batch}), more than {what} ({}); make it smaller",
                need.map_or("more than 16 EiB".into(), gib),
                fp.params,
                fp.units,
                gib(limit)
            ),
        )),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The memory this process may still use, in bytes, and what sets it: the smallest of the
/// machine's memory, its cgroup's memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`)
/// and its address-space limit (`ulimit -v`) less the address space already mapped. A limit
/// that cannot be read is not applied.
pub fn memory_limit() -> (u64, &'static str) {
    let mut best = (u64::MAX, "the memory this machine has");
    let mut consider = |bytes: Option<u64>, what: &'static str| {
        if let Some(b) = bytes.filter(|&b| b < best.0) {
            best = (b, what);
        }
    };
    consider(memory_total(), "this machine's memory");
    consider(cgroup_limit(), "this process's cgroup memory limit");
    consider(
        address_space_left(),
        "this process's address-space limit (ulimit -v)",
    );
    best
}

/// Total memory of the machine (Linux), in bytes.
fn memory_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit of this process's cgroup (Linux, cgroup v2 or v1), if it has one.
fn cgroup_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut limits = Vec::new();
    for line in cgroups.lines() {
        // "0::/path" (v2) or "N:memory:/path" (v1)
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Some(v) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            limits.push(v);
        }
    }
    limits.into_iter().min()
}

/// The address space this process may still map under its soft `RLIMIT_AS` (Linux), if it has
/// one: the limit less what is mapped now.
fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mapped_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(mapped_kib.saturating_mul(1024)))
}

/// Trains as `config` says on `split`, writing results into `out` if given (taking its lock, see
/// [`RunLock`]). Returns the metrics of every epoch, or the error that stopped the run (after
/// saving what was finished).
pub fn run(
    config: &TrainConfig,
    split: &Split,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>> {
    run_with_trainer(config, split, out, observer).map(|(metrics, _)| metrics)
}

/// [`run`], also returning the trainer as the run left it (its net, channel and optimizer).
pub fn run_with_trainer(
    config: &TrainConfig,
    split: &Split,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<(Vec<EpochMetrics>, Trainer)> {
    config.validate()?;
    let dir = out.map(|p| RunDir::new(p).lock()).transpose()?;
    in_pool(config, || on_backend(config, split, dir.as_ref(), observer))
}

/// Runs `f` in a pool of `config.threads` worker threads.
fn in_pool<T: Send>(config: &TrainConfig, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|e| Error::config("threads", e.to_string()))?
        .install(f)
}

/// The run loop as work for [`on_device`]: on the backend the run's device names.
struct RunLoop<'a, 'o> {
    config: &'a TrainConfig,
    split: &'a Split,
    out: Option<&'a RunLock>,
    observer: &'o mut dyn Observer,
}

impl OnBackend for RunLoop<'_, '_> {
    type Output = (Vec<EpochMetrics>, Trainer);
    fn run<B: Backend>(self, accept: &Accept<'_>) -> Result<Self::Output> {
        run_in_pool::<B>(self.config, self.split, self.out, self.observer, accept)
    }
}

/// The run on the backend `config.device` names ([`on_device`]).
fn on_backend(
    config: &TrainConfig,
    split: &Split,
    out: Option<&RunLock>,
    observer: &mut dyn Observer,
) -> Result<(Vec<EpochMetrics>, Trainer)> {
    on_device(
        config,
        RunLoop {
            config,
            split,
            out,
            observer,
        },
    )
}

/// [`run`] into a run directory whose lock the caller already holds.
pub fn run_locked(
    config: &TrainConfig,
    split: &Split,
    out: Option<&RunLock>,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>> {
    config.validate()?;
    in_pool(config, || on_backend(config, split, out, observer)).map(|(metrics, _)| metrics)
}

/// [`run_locked`] with the training steps and the evaluation on backend `B` (whatever
/// `config.device` says: the caller chose `B` from it). The trainer is built, and resumed from a
/// checkpoint, on the host; `accept` may refuse it (a backend that lacks an operation the net or
/// the channel needs says so here, before anything runs); then it moves onto `B`, and each
/// epoch's diagnostics and checkpoint work on a copy brought back to the host.
pub fn run_locked_on<B: Backend>(
    config: &TrainConfig,
    split: &Split,
    out: Option<&RunLock>,
    observer: &mut dyn Observer,
    accept: &Accept<'_>,
) -> Result<Vec<EpochMetrics>> {
    config.validate()?;
    let device = B::current_device();
    in_pool(config, || {
        B::carry(device, || {
            run_in_pool::<B>(config, split, out, observer, accept)
        })
    })
    .map(|(metrics, _)| metrics)
}

fn run_in_pool<B: Backend>(
    config: &TrainConfig,
    split: &Split,
    out: Option<&RunLock>,
    observer: &mut dyn Observer,
    accept: &Accept<'_>,
) -> Result<(Vec<EpochMetrics>, Trainer)> {
    let mut run = Started::<B>::start(config, split, out, observer, accept)?;
    for epoch in run.metrics.len() + 1..=config.epochs {
        let done = train_epoch(
            &mut run.trainer,
            config,
            &run.train,
            run.augment,
            Some(&split.test),
            epoch,
            observer,
        );
        run.end_epoch(config, out, observer, done)?;
    }
    Ok((run.metrics, run.trainer.to_backend()))
}

/// A run set up to train on backend `B`: its trainer (resumed from the run directory's
/// checkpoint where there is one), the training set it reads, and the metrics of its finished
/// epochs. The one run loop: a solo run ([`run`]) and an ensemble's members
/// ([`super::ensemble`]) start, and end each epoch, through it.
pub(crate) struct Started<'s, B: Backend> {
    pub trainer: Trainer<B>,
    /// The training examples (`train_limit` applied).
    pub train: Cow<'s, Dataset>,
    pub augment: Augment,
    /// The finished epochs, resumed ones first.
    pub metrics: Vec<EpochMetrics>,
    /// The text of metrics.jsonl: lines already on disk are kept byte for byte, never
    /// re-serialized.
    lines: String,
}

impl<'s, B: Backend> Started<'s, B> {
    /// Builds (and resumes) the trainer on the host, lets `accept` refuse it, writes the run's
    /// settings, moves the trainer onto `B` and tells `observer` the run starts.
    pub fn start(
        config: &TrainConfig,
        split: &'s Split,
        out: Option<&RunLock>,
        observer: &mut dyn Observer,
        accept: &Accept<'_>,
    ) -> Result<Self> {
        let train = match config.train_limit {
            Some(n) if n < split.train.len() => {
                let mut t = split.train.clone();
                t.truncate(n);
                Cow::Owned(t)
            }
            _ => Cow::Borrowed(&split.train),
        };
        if train.dim != split.test.dim || train.classes != split.test.classes {
            return Err(Error::config(
                "data",
                format!(
                    "training examples have {} values and {} classes, test examples {} and {}",
                    train.dim, train.classes, split.test.dim, split.test.classes
                ),
            ));
        }
        let mut host = build_trainer(config, train.shape, train.classes)?;
        let augment = Augment {
            translate: config.translate,
            flip: config.flip,
        };
        if augment.active() && train.shape.1 < 2 {
            return Err(Error::config("translate", "augmentation needs image data"));
        }
        let mut metrics: Vec<EpochMetrics> = Vec::new();
        let mut lines = String::new();
        if let Some(dir) = out {
            (metrics, lines) = resume(
                dir,
                config,
                &mut host,
                train.len().div_ceil(config.batch) as u64,
            )?;
        }
        accept(&host)?;
        if let Some(dir) = out {
            dir.write_config(config)?;
            // killed after the last epoch's checkpoint but before its summary: nothing is left
            // to train, so the summary is brought up to date here
            if metrics.len() >= config.epochs
                && dir
                    .read_summary()
                    .is_none_or(|s| s.status != "completed" || s.epochs_completed != metrics.len())
            {
                dir.write_summary("completed", &metrics, None)?;
            }
        }
        let trainer: Trainer<B> = host.to_backend();
        drop(host);
        observer.start(
            config,
            split,
            &trainer.net.summary(),
            &trainer.channel.describe(&trainer.net),
        );
        if !metrics.is_empty() {
            observer.resumed(metrics.len());
        }
        Ok(Started {
            trainer,
            train,
            augment,
            metrics,
            lines,
        })
    }

    /// Ends an epoch with what [`train_epoch`] or [`epoch_metrics`] said: records a divergence
    /// in the summary and returns it; else appends the epoch's metrics and writes metrics,
    /// checkpoint (from a copy of the trainer brought to the host) and summary.
    pub fn end_epoch(
        &mut self,
        config: &TrainConfig,
        out: Option<&RunLock>,
        observer: &mut dyn Observer,
        done: Result<EpochMetrics>,
    ) -> Result<EpochMetrics> {
        let m = match done {
            Err(err @ Error::Diverged { .. }) => {
                if let Some(dir) = out {
                    dir.write_summary("diverged", &self.metrics, Some(&err.to_string()))?;
                }
                return Err(err);
            }
            other => other?,
        };
        self.metrics.push(m.clone());
        if let Some(dir) = out {
            self.lines
                .push_str(&serde_json::to_string(&m).expect("metrics serialize"));
            self.lines.push('\n');
            dir.write_metrics(&self.lines)?;
            let mut host: Trainer = self.trainer.to_backend();
            checkpoint::save_with_metrics(
                &dir.checkpoint_file(),
                &mut host,
                m.epoch,
                config,
                Some(&self.lines),
            )?;
            let status = if m.epoch == config.epochs {
                "completed"
            } else {
                "running"
            };
            dir.write_summary(status, &self.metrics, None)?;
        }
        observer.end_epoch(&m);
        Ok(m)
    }
}

/// Epoch `epoch` of `trainer` on backend `B`, the one epoch of every run loop (the command
/// line's runs, `reproduce`, Slurm tasks, Python's `fit`): trains on `train` (stopping with
/// [`Error::Interrupted`] where `observer` asks), evaluates on `test` if given, and returns the
/// epoch's metrics ([`epoch_metrics`]).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch<B: Backend>(
    trainer: &mut Trainer<B>,
    config: &TrainConfig,
    train: &Dataset,
    augment: Augment,
    test: Option<&Dataset>,
    epoch: usize,
    observer: &mut dyn Observer,
) -> Result<EpochMetrics> {
    observer.start_epoch(epoch, train.len());
    let clock = Instant::now();
    let stats = trainer.epoch_until(train, config.batch, config.seed, epoch, augment, |d| {
        observer.batch(d);
        if observer.stop() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let Some(stats) = stats else {
        return Err(Error::Interrupted {
            epoch,
            step: trainer.step,
        });
    };
    let seconds = clock.elapsed().as_secs_f64();
    let tested = test.map(|d| trainer.evaluate(d));
    epoch_metrics(trainer, config, train, epoch, stats, tested, seconds)
}

/// The metrics of epoch `epoch`, trained in `seconds` to `stats` and tested to `test` (NaN
/// where there is no test set), with the diagnostics if `config` asks (on a copy of the trainer
/// brought to the host); a non-finite loss is refused as [`Error::Diverged`].
pub fn epoch_metrics<B: Backend>(
    trainer: &Trainer<B>,
    config: &TrainConfig,
    train: &Dataset,
    epoch: usize,
    stats: EpochStats,
    test: Option<EpochStats>,
    seconds: f64,
) -> Result<EpochMetrics> {
    let tested = test.map(|t| t.loss);
    if let Some(loss) = std::iter::once(stats.loss)
        .chain(tested)
        .find(|l| !l.is_finite())
    {
        return Err(Error::Diverged {
            epoch,
            step: trainer.step,
            loss,
        });
    }
    let layers = config
        .diagnostics
        .then(|| probe(&trainer.to_backend(), train));
    let m = EpochMetrics {
        epoch,
        train_loss: stats.loss,
        train_acc: stats.acc,
        test_loss: test.map_or(f64::NAN, |t| t.loss),
        test_acc: test.map_or(f64::NAN, |t| t.acc),
        lr: trainer.rate(),
        steps: trainer.step,
        seconds,
        layers,
    };
    Ok(m)
}

/// The per-layer diagnostics of an epoch's end: on the first [`PROBE_EXAMPLES`] training
/// examples, at the trainer's next learning rate.
pub fn probe(trainer: &Trainer, train: &Dataset) -> Vec<diagnostics::LayerDiagnostics> {
    let n = PROBE_EXAMPLES.min(train.len());
    diagnostics::probe(
        &trainer.net,
        &trainer.channel,
        &train.images[..n * train.dim],
        &train.labels[..n],
        trainer.rate(),
    )
}

/// If `dir` holds a checkpoint of an earlier, interrupted run of the same configuration (the
/// thread count and the number of epochs may differ), restores `trainer` from it and returns the
/// metrics of its finished epochs, with their lines of `metrics.jsonl` as written (each ending in a
/// newline); otherwise returns none. The epochs a checkpoint does not cover are dropped from the
/// metrics: training is deterministic, so they are recomputed identically.
fn resume(
    dir: &RunDir,
    config: &TrainConfig,
    trainer: &mut Trainer,
    steps_per_epoch: u64,
) -> Result<(Vec<EpochMetrics>, String)> {
    let ckpt = dir.checkpoint_file();
    if !ckpt.is_file() {
        return Ok((Vec::new(), String::new()));
    }
    let prev = dir.read_config()?;
    if !same_run(&prev, config) {
        return Err(Error::config(
            "out",
            format!(
                "{} holds an earlier run with another configuration; choose another --out, or pass --overwrite to replace it",
                dir.path().display()
            ),
        ));
    }
    let done = checkpoint::load(&ckpt, trainer, config, steps_per_epoch)?;
    let (mut metrics, mut lines) = read_metrics_lines(&dir.metrics_file())?;
    if metrics.len() < done {
        return Err(Error::Data {
            path: dir.metrics_file(),
            problem: format!(
                "holds {} epochs but the checkpoint is at epoch {done}",
                metrics.len()
            ),
            hint: "the directory was edited by hand; pass --overwrite to start again".into(),
        });
    }
    metrics.truncate(done);
    lines.truncate(done);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Some(sum) = checkpoint::metrics_sha256(&ckpt)?
        && sum != checkpoint::text_sha256(&text)
    {
        return Err(Error::Data {
            path: dir.metrics_file(),
            problem: format!(
                "its first {done} epochs are not those the checkpoint was saved with: the file belongs to another run or was edited"
            ),
            hint: "restore the run's own metrics.jsonl, or pass --overwrite to start again".into(),
        });
    }
    Ok((metrics, text))
}
