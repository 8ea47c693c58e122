//! The layout of results on disk, in one place: the names of every result file, atomic writes,
//! the writer's lock, and reading a run back (its settings, epochs and summary, whether it is
//! complete, where it stands). Nothing else in the workspace spells a result file's name.
//!
//! ```text
//! RESULTS/                          results root of `rbp reproduce` (EXPERIMENT … below)
//!   <experiment>/experiment.toml    the experiment as run                      [`EXPERIMENT`]
//!   <experiment>/<run-id>/          a run directory (`rbp train --out DIR` is one); the id is a
//!                                   path such as `rbp/sparse-8/seed-1` (see crate::experiment),
//!                                   or `row--column--seedN` in results written before
//!       config.toml                 the resolved settings                       [`CONFIG`]
//!       metrics.jsonl               one JSON object per finished epoch          [`METRICS`]
//!       summary.json                how the run ended (or stands)               [`SUMMARY`]
//!       checkpoint.safetensors      resumable state (the checkpoint module)     [`CHECKPOINT`]
//!       rbp.lock                    the writer's lock, holding its pid          [`LOCK`]
//!   table.md, table.csv, figures/   `rbp table`, `rbp plot`    [`TABLE_MD`], [`TABLE_CSV`], [`FIGURES`]
//!   .slurm/{jobs,logs/,NAME.sbatch} `rbp reproduce --slurm`    [`SLURM`], [`SLURM_JOBS`], [`SLURM_LOGS`]
//! ```
//!
//! Every file is replaced with [`write_atomic`]: a reader (or a crash) sees the old file or the
//! new one, never a mix.

use crate::channel::diagnostics::LayerDiagnostics;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A run's resolved settings.
pub const CONFIG: &str = "config.toml";
/// A run's finished epochs, one [`EpochMetrics`] per line.
pub const METRICS: &str = "metrics.jsonl";
/// How a run ended: a [`Summary`].
pub const SUMMARY: &str = "summary.json";
/// The checkpoint file in a run's directory (the final weights once the run is complete).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The lock file of a run directory: held (an advisory `flock`) by the one process writing the
/// run, and holding that process's id for the message another writer gets.
pub const LOCK: &str = "rbp.lock";
/// The experiment as run, in its directory under the results root.
pub const EXPERIMENT: &str = "experiment.toml";
/// Table 1 in Markdown, in the results root (`rbp table`).
pub const TABLE_MD: &str = "table.md";
/// Table 1 as CSV, in the results root (`rbp table`).
pub const TABLE_CSV: &str = "table.csv";
/// The figures' directory in the results root (`rbp plot`).
pub const FIGURES: &str = "figures";
/// The Slurm directory in the results root: job scripts, the submitted arrays, the task logs.
pub const SLURM: &str = ".slurm";
/// The job arrays submitted for a results root (one `ID NAME` line each), in [`SLURM`].
pub const SLURM_JOBS: &str = "jobs";
/// The task logs of the job arrays, in [`SLURM`].
pub const SLURM_LOGS: &str = "logs";

/// The job script of the job array `name`, in [`SLURM`].
pub fn sbatch_file(slurm: &Path, name: &str) -> PathBuf {
    slurm.join(format!("{name}.sbatch"))
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's minibatches, each measured before its update.
    pub train_loss: f64,
    /// Fraction of training examples classified correctly, measured like `train_loss`.
    pub train_acc: f64,
    /// Mean cross-entropy on the test set after the epoch (NaN, written `null`, for a net trained
    /// without a test set: the Python package's `fit` without `validation`).
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    /// Fraction of the test set classified correctly after the epoch (NaN/`null` likewise).
    #[serde(deserialize_with = "nan_if_null")]
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

/// A number that may be `null` (what serde_json writes for NaN).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

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

/// Where a run stands, read from its directory.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Every epoch done (or diverged, which keeps its finished epochs).
    Finished,
    /// A process holds the run's lock now.
    Running { pid: Option<u32> },
    /// The last attempt stopped with an error (its first line).
    Failed(String),
    /// Some epochs done, nobody writing it: it resumes when run again.
    Interrupted { epochs: usize },
    /// Nothing written yet.
    Missing,
}

/// Whether two configurations describe the same run (they may differ in threads and epochs).
pub fn same_run(a: &TrainConfig, b: &TrainConfig) -> bool {
    a.identity() == b.identity()
}

/// A run directory, to read (no lock held; [`RunDir::lock`] takes it to write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The run directory at `path` (nothing is read or created).
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.path.join(CONFIG)
    }

    /// Its `metrics.jsonl`.
    pub fn metrics_file(&self) -> PathBuf {
        self.path.join(METRICS)
    }

    /// Its `summary.json`.
    pub fn summary_file(&self) -> PathBuf {
        self.path.join(SUMMARY)
    }

    /// Its checkpoint.
    pub fn checkpoint_file(&self) -> PathBuf {
        self.path.join(CHECKPOINT)
    }

    /// Its lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.path.join(LOCK)
    }

    /// The settings the run was trained with.
    pub fn read_config(&self) -> Result<TrainConfig> {
        TrainConfig::load(&self.config_file())
    }

    /// The run's finished epochs.
    pub fn read_metrics(&self) -> Result<Vec<EpochMetrics>> {
        read_metrics(&self.metrics_file())
    }

    /// The run's summary, if there is a readable one.
    pub fn read_summary(&self) -> Option<Summary> {
        let text = std::fs::read_to_string(self.summary_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the run completed at least `epochs` epochs: its summary says `completed` for that
    /// many and its metrics hold them.
    pub fn is_complete(&self, epochs: usize) -> bool {
        self.read_summary()
            .is_some_and(|s| s.status == "completed" && s.epochs_completed >= epochs)
            && self.read_metrics().is_ok_and(|m| m.len() >= epochs)
    }

    /// Whether the directory holds a run of `config`: its `config.toml` has the same settings
    /// ([`same_run`]; it may be unfinished).
    pub fn holds_run(&self, config: &TrainConfig) -> bool {
        self.read_config().is_ok_and(|c| same_run(&c, config))
    }

    /// Whether the directory holds a complete run of `config` (the same settings, at least its
    /// number of epochs).
    pub fn holds_complete(&self, config: &TrainConfig) -> bool {
        self.is_complete(config.epochs) && self.read_config().is_ok_and(|c| same_run(&c, config))
    }

    /// Where the run stands, if it should reach `epochs` epochs.
    pub fn state(&self, epochs: usize) -> State {
        if self.is_complete(epochs) {
            return State::Finished;
        }
        if !self.path.is_dir() {
            return State::Missing;
        }
        if let Some(pid) = self.writer() {
            return State::Running { pid };
        }
        match self.read_summary() {
            Some(s) if s.status == "diverged" => State::Finished,
            Some(s) if s.status == "failed" => State::Failed(
                s.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("")
                    .to_string(),
            ),
            Some(s) if s.epochs_completed > 0 => State::Interrupted {
                epochs: s.epochs_completed,
            },
            _ => match self.read_metrics() {
                Ok(m) if !m.is_empty() => State::Interrupted { epochs: m.len() },
                _ => State::Missing,
            },
        }
    }

    /// Whether a process is writing the run now, and which (when it said): a probe that creates
    /// nothing and writes nothing.
    pub fn writer(&self) -> Option<Option<u32>> {
        use std::io::Read;
        let mut f = std::fs::File::open(self.lock_file()).ok()?;
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

    /// Creates the directory if needed and takes its lock, or says which process holds it.
    pub fn lock(&self) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = &self.path;
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let file = self.lock_file();
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
        remove_stale_temporaries(path);
        Ok(RunLock {
            dir: self.clone(),
            _lock: f,
        })
    }
}

/// Removes the temporary files of [`write_atomic`] that other processes left in `dir` (a
/// writer killed between writing and renaming): the caller holds the directory's lock, so no
/// other process writes there and none of them is in use. Best effort: a file that cannot be
/// removed stays.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if temporary_writer(&name.to_string_lossy()).is_some_and(|pid| pid != me) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer's process id if `name` is a temporary file of [`write_atomic`]
/// (`.{name}.{pid}.{seq}.tmp`).
fn temporary_writer(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = stem.rsplitn(3, '.');
    let seq = parts.next()?;
    let pid = parts.next()?;
    let target = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(seq) && !target.is_empty()).then_some(())?;
    digits(pid).then(|| pid.parse().ok()).flatten()
}

/// A run directory this process holds the write lock of: at most one process at a time trains
/// into a directory (two writers would mix one run's settings with another's weights). Only the
/// holder writes the run's files. The lock is released when the value is dropped or the process
/// ends, however it ends. Reads through [`RunDir`] (it dereferences to one).
#[derive(Debug)]
pub struct RunLock {
    dir: RunDir,
    _lock: std::fs::File,
}

impl std::ops::Deref for RunLock {
    type Target = RunDir;
    fn deref(&self) -> &RunDir {
        &self.dir
    }
}

impl RunLock {
    /// Writes the run's `config.toml`.
    pub fn write_config(&self, config: &TrainConfig) -> Result<()> {
        let text = toml::to_string_pretty(config).expect("config serializes");
        write_atomic(&self.config_file(), text.as_bytes())
    }

    /// Replaces `metrics.jsonl` with `lines` (one JSON object per line, each ending in a newline).
    pub fn write_metrics(&self, lines: &str) -> Result<()> {
        write_atomic(&self.metrics_file(), lines.as_bytes())
    }

    /// Writes `summary.json`: `status`, the number of finished epochs and the last one's
    /// metrics, and the error that stopped the run if any.
    pub fn write_summary(
        &self,
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
        write_atomic(&self.summary_file(), text.as_bytes())
    }

    /// Marks the run as failed with `error` in its `summary.json`, keeping the finished epochs
    /// of `metrics.jsonl` (the next attempt resumes from its checkpoint).
    pub fn record_failure(&self, error: &str) -> Result<()> {
        let metrics = self.read_metrics().unwrap_or_default();
        self.write_summary("failed", &metrics, Some(error))
    }

    /// Removes the run's results (metrics, summary, checkpoint), to train it again from scratch.
    pub fn clear(&self) {
        for f in [METRICS, SUMMARY, CHECKPOINT] {
            let _ = std::fs::remove_file(self.path().join(f));
        }
    }
}

/// Reads a `metrics.jsonl` file.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    Ok(read_metrics_lines(path)?.0)
}

/// Reads a `metrics.jsonl` file: the metrics of each epoch and its line as written.
pub fn read_metrics_lines(path: &Path) -> Result<(Vec<EpochMetrics>, Vec<String>)> {
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
        _ => PathBuf::from("."),
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

#[cfg(test)]
mod temporaries {
    use super::*;

    #[test]
    fn only_write_atomic_temporaries_are_recognised() {
        assert_eq!(
            temporary_writer(".checkpoint.safetensors.4242.7.tmp"),
            Some(4242)
        );
        assert_eq!(temporary_writer(".metrics.jsonl.1.0.tmp"), Some(1));
        for other in [
            "checkpoint.safetensors.4242.7.tmp",
            ".checkpoint.safetensors.42x.7.tmp",
            ".checkpoint.safetensors.4242.tmp",
            "..4242.7.tmp",
            ".notes.tmp",
            "summary.json",
        ] {
            assert_eq!(temporary_writer(other), None, "{other}");
        }
    }

    #[test]
    fn taking_the_lock_removes_other_writers_temporaries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("run"));
        std::fs::create_dir_all(dir.path()).unwrap();
        let stale = dir.path().join(".checkpoint.safetensors.999999999.3.tmp");
        let mine = dir
            .path()
            .join(format!(".summary.json.{}.0.tmp", std::process::id()));
        let other = dir.path().join(".notes.tmp");
        for f in [&stale, &mine, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        let lock = dir.lock().unwrap();
        assert!(!stale.exists());
        assert!(mine.exists() && other.exists());
        drop(lock);
    }
}
