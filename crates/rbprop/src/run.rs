//! A whole training run: set up from a [`TrainConfig`], train epoch by epoch, evaluate, and keep
//! the results on disk (`config.toml`, `metrics.jsonl`, `summary.json`), each written atomically
//! after every epoch so that a crash or a divergence never loses a finished epoch.

use crate::channel::Channel;
use crate::channel::diagnostics::{self, LayerDiagnostics};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::Split;
use crate::data::augment::Augment;
use crate::error::{Error, Result};
use crate::model::{Net, parse_arch};
use crate::rng;
use crate::train::{Sgd, Trainer};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's minibatches, each measured before its update.
    pub train_loss: f64,
    /// Fraction of training examples classified correctly, measured like `train_loss`.
    pub train_acc: f64,
    /// Mean cross-entropy on the test set after the epoch.
    pub test_loss: f64,
    /// Fraction of the test set classified correctly after the epoch.
    pub test_acc: f64,
    /// Learning rate of the next update.
    pub lr: f64,
    /// Updates done so far.
    pub steps: u64,
    /// Wall-clock seconds spent training during the epoch (evaluation excluded).
    pub seconds: f64,
    /// Per hidden layer alignment diagnostics on the probe batch (with `diagnostics` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerDiagnostics>>,
}

/// Number of training examples in the fixed probe batch of the diagnostics.
pub const PROBE_EXAMPLES: usize = 1000;

/// `summary.json`: how the run ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// `completed`, `running` (epochs remain), `diverged` or `failed` (an error stopped it).
    pub status: String,
    pub epochs_completed: usize,
    pub last: Option<EpochMetrics>,
    /// Error message when the run did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Receives progress while a run trains (the CLI draws a progress bar and prints lines).
pub trait Observer: Send {
    /// A run is about to start on `net` (its summary); `layers` describes each hidden layer's
    /// channel.
    fn start(&mut self, _config: &TrainConfig, _split: &Split, _net: &str, _layers: &[String]) {}
    /// An epoch of `examples` training examples begins.
    fn start_epoch(&mut self, _epoch: usize, _examples: usize) {}
    /// `done` examples of the current epoch are trained.
    fn batch(&mut self, _done: usize) {}
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
/// activations, signals and errors of a minibatch; conv scratch per thread) exceeds the machine's
/// memory, before anything is allocated.
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
    let limit = memory_total().unwrap_or(u64::MAX);
    match floats {
        Some(bytes) if bytes <= limit => Ok(()),
        need => Err(Error::config(
            "arch",
            format!(
                "the net needs about {} of memory ({} parameters, {} values per example × batch {batch}), more than this machine's {}; make it smaller",
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

/// Total memory of the machine (Linux), in bytes.
fn memory_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Trains as `config` says on `split`, writing results into `out` if given (taking its lock, see
/// [`RunDir`]). Returns the metrics of every epoch, or the error that stopped the run (after
/// saving what was finished).
pub fn run(
    config: &TrainConfig,
    split: &Split,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>> {
    config.validate()?;
    let dir = out.map(RunDir::lock).transpose()?;
    run_locked(config, split, dir.as_ref(), observer)
}

/// [`run`] into a run directory whose lock the caller already holds.
pub fn run_locked(
    config: &TrainConfig,
    split: &Split,
    out: Option<&RunDir>,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>> {
    config.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|e| Error::config("threads", e.to_string()))?;
    pool.install(|| run_in_pool(config, split, out.map(RunDir::path), observer))
}

fn run_in_pool(
    config: &TrainConfig,
    split: &Split,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochMetrics>> {
    let mut train = split.train.clone();
    if let Some(n) = config.train_limit {
        train.truncate(n);
    }
    if train.dim != split.test.dim || train.classes != split.test.classes {
        return Err(Error::config(
            "data",
            format!(
                "training examples have {} values and {} classes, test examples {} and {}",
                train.dim, train.classes, split.test.dim, split.test.classes
            ),
        ));
    }
    let mut trainer = build_trainer(config, train.shape, train.classes)?;
    let augment = Augment {
        translate: config.translate,
        flip: config.flip,
    };
    if augment.active() && train.shape.1 < 2 {
        return Err(Error::config("translate", "augmentation needs image data"));
    }
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    // the text of metrics.jsonl: lines already on disk are kept byte for byte, never re-serialized
    let mut lines = String::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        (metrics, lines) = resume(
            dir,
            config,
            &mut trainer,
            train.len().div_ceil(config.batch) as u64,
        )?;
        let text = toml::to_string_pretty(config).expect("config serializes");
        write_atomic(&dir.join("config.toml"), text.as_bytes())?;
    }
    observer.start(
        config,
        split,
        &trainer.net.summary(),
        &trainer.channel.describe(&trainer.net),
    );
    if !metrics.is_empty() {
        observer.resumed(metrics.len());
    }
    for epoch in metrics.len() + 1..=config.epochs {
        observer.start_epoch(epoch, train.len());
        let clock = Instant::now();
        let stats = trainer.epoch(&train, config.batch, config.seed, epoch, augment, |d| {
            observer.batch(d)
        });
        let seconds = clock.elapsed().as_secs_f64();
        let test = trainer.evaluate(&split.test);
        if let Some(loss) = [stats.loss, test.loss].into_iter().find(|l| !l.is_finite()) {
            let err = Error::Diverged {
                epoch,
                step: trainer.step,
                loss,
            };
            if let Some(dir) = out {
                write_summary(dir, "diverged", &metrics, Some(&err.to_string()))?;
            }
            return Err(err);
        }
        let layers = config.diagnostics.then(|| {
            let n = PROBE_EXAMPLES.min(train.len());
            diagnostics::probe(
                &trainer.net,
                &trainer.channel,
                &train.images[..n * train.dim],
                &train.labels[..n],
                trainer.rate(),
            )
        });
        let m = EpochMetrics {
            epoch,
            train_loss: stats.loss,
            train_acc: stats.acc,
            test_loss: test.loss,
            test_acc: test.acc,
            lr: trainer.rate(),
            steps: trainer.step,
            seconds,
            layers,
        };
        metrics.push(m.clone());
        if let Some(dir) = out {
            lines.push_str(&serde_json::to_string(&m).expect("metrics serialize"));
            lines.push('\n');
            write_atomic(&dir.join("metrics.jsonl"), lines.as_bytes())?;
            checkpoint::save(&dir.join(CHECKPOINT), &mut trainer, epoch, config)?;
            let status = if epoch == config.epochs {
                "completed"
            } else {
                "running"
            };
            write_summary(dir, status, &metrics, None)?;
        }
        observer.end_epoch(&m);
    }
    Ok(metrics)
}

/// The checkpoint file in a run's directory (the final weights once the run is complete).
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Whether two configurations describe the same run (they may differ in threads and epochs).
pub fn same_run(a: &TrainConfig, b: &TrainConfig) -> bool {
    a.identity() == b.identity()
}

/// If `dir` holds a checkpoint of an earlier, interrupted run of the same configuration (the
/// thread count and the number of epochs may differ), restores `trainer` from it and returns the
/// metrics of its finished epochs, with their lines of `metrics.jsonl` as written (each ending in a
/// newline); otherwise returns none. The epochs a checkpoint does not cover are dropped from the
/// metrics: training is deterministic, so they are recomputed identically.
fn resume(
    dir: &Path,
    config: &TrainConfig,
    trainer: &mut Trainer,
    steps_per_epoch: u64,
) -> Result<(Vec<EpochMetrics>, String)> {
    let ckpt = dir.join(CHECKPOINT);
    if !ckpt.is_file() {
        return Ok((Vec::new(), String::new()));
    }
    let prev = TrainConfig::load(&dir.join("config.toml"))?;
    if !same_run(&prev, config) {
        return Err(Error::config(
            "out",
            format!(
                "{} holds an earlier run with another configuration; choose another --out, or pass --overwrite to replace it",
                dir.display()
            ),
        ));
    }
    let done = checkpoint::load(&ckpt, trainer, config, steps_per_epoch)?;
    let (mut metrics, mut lines) = read_metrics_lines(&dir.join("metrics.jsonl"))?;
    if metrics.len() < done {
        return Err(Error::Data {
            path: dir.join("metrics.jsonl"),
            problem: format!(
                "holds {} epochs but the checkpoint is at epoch {done}",
                metrics.len()
            ),
            hint: "the directory was edited by hand; pass --overwrite to start again".into(),
        });
    }
    metrics.truncate(done);
    lines.truncate(done);
    let text = lines.iter().map(|l| format!("{l}\n")).collect();
    Ok((metrics, text))
}

/// Marks the run in `dir` as failed with `error` in its `summary.json`, keeping the finished
/// epochs of `metrics.jsonl` (the next attempt resumes from its checkpoint).
pub fn record_failure(dir: &Path, error: &str) -> Result<()> {
    let metrics = read_metrics(&dir.join("metrics.jsonl")).unwrap_or_default();
    write_summary(dir, "failed", &metrics, Some(error))
}

fn write_summary(
    dir: &Path,
    status: &str,
    metrics: &[EpochMetrics],
    error: Option<&str>,
) -> Result<()> {
    let summary = Summary {
        status: status.into(),
        epochs_completed: metrics.len(),
        last: metrics.last().cloned(),
        error: error.map(str::to_string),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    write_atomic(&dir.join("summary.json"), text.as_bytes())
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix:
/// write a temporary file beside it (a name unique to this process and call), flush it to disk,
/// rename it over the target and flush the directory, so the rename itself survives a crash. On
/// any error the temporary file is removed (a full disk is not left fuller).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

/// Flushes a directory's entries (a rename into it) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all(),
        // some platforms cannot open a directory as a file; the rename is still atomic
        Err(_) => Ok(()),
    }
}

/// The lock file of a run directory: held (an advisory `flock`) by the one process writing the
/// run, and holding that process's id for the message another writer gets.
pub const LOCK: &str = "rbp.lock";

/// A run directory this process holds the write lock of: at most one process at a time trains
/// into a directory (two writers would mix one run's settings with another's weights). The lock
/// is released when the value is dropped or the process ends, however it ends.
#[derive(Debug)]
pub struct RunDir {
    path: std::path::PathBuf,
    _lock: std::fs::File,
}

impl RunDir {
    /// Creates `path` if needed and takes its lock, or says which process holds it.
    pub fn lock(path: &Path) -> Result<RunDir> {
        use std::io::{Read, Seek, Write};
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let file = path.join(LOCK);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&file)
            .map_err(|e| Error::io(&file, e))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = f.read_to_string(&mut text);
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&file, e)),
        }
        let mut stamp = || -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.sync_all()
        };
        stamp().map_err(|e| Error::io(&file, e))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: f,
        })
    }

    /// Whether a process is writing the run in `path` now, and which (when it said): a probe
    /// that creates nothing and writes nothing.
    pub fn writer(path: &Path) -> Option<Option<u32>> {
        use std::io::Read;
        let mut f = std::fs::File::open(path.join(LOCK)).ok()?;
        match f.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = f.read_to_string(&mut text);
                Some(text.trim().parse().ok())
            }
            // free (released when `f` is dropped), or not lockable: nobody writes it
            _ => None,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a `metrics.jsonl` file.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    Ok(read_metrics_lines(path)?.0)
}

/// Reads a `metrics.jsonl` file: the metrics of each epoch and its line as written.
fn read_metrics_lines(path: &Path) -> Result<(Vec<EpochMetrics>, Vec<String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let metrics = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data {
                path: path.to_path_buf(),
                problem: format!("line {}: {e}", i + 1),
                hint: "metrics.jsonl holds one JSON object per epoch".into(),
            })
        })
        .collect::<Result<_>>()?;
    Ok((metrics, lines))
}
