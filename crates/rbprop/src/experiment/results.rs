//! Reading a results directory written by `rbp reproduce`: every experiment in it (the directory
//! itself or its subdirectories holding `experiment.toml`), and for each run it declares what is
//! on disk — the resolved settings the run was trained with (`config.toml`), its epochs
//! (`metrics.jsonl`) and how it ended (`summary.json`). `rbp table`, `rbp plot` and `rbp export`
//! all read results through here.

use super::{Experiment, Run};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::run::dir::{EXPERIMENT, EpochMetrics, RunDir, Summary};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One declared run and what is on disk of it.
#[derive(Clone, Debug)]
pub struct Record {
    /// Name of the experiment (its directory under the results root).
    pub experiment: String,
    /// The experiment's dataset (column group of the table).
    pub dataset: String,
    /// The run as the experiment declares it (`config` without `--quick`).
    pub run: Run,
    /// The run's directory.
    pub dir: PathBuf,
    /// The settings the run was trained with (its `config.toml`), if readable.
    pub config: Option<TrainConfig>,
    /// Its `summary.json`, if readable.
    pub summary: Option<Summary>,
    /// Its finished epochs (empty when it has none or they are unreadable).
    pub metrics: Vec<EpochMetrics>,
}

impl Record {
    /// The resolved settings of the run: its `config.toml`, else what the experiment declares.
    pub fn settings(&self) -> &TrainConfig {
        self.config.as_ref().unwrap_or(&self.run.config)
    }

    /// `completed`, `running`, `diverged` or `failed` from `summary.json`; `missing` when the
    /// run has no summary.
    pub fn status(&self) -> &str {
        self.summary
            .as_ref()
            .map_or("missing", |s| s.status.as_str())
    }

    /// Trained for fewer epochs than the experiment asks (`rbp reproduce --quick`, or the
    /// experiment file was edited since): deliberately shortened.
    pub fn shortened(&self) -> bool {
        !self.metrics.is_empty() && self.settings().epochs < self.run.config.epochs
    }

    /// Stopped before its configured last epoch for another reason than divergence (killed,
    /// failed, or still running).
    pub fn interrupted(&self) -> bool {
        !self.metrics.is_empty()
            && !self.diverged()
            && (self.metrics.len() < self.settings().epochs
                || !matches!(self.status(), "completed"))
    }

    /// The loss became NaN or infinite; the finished epochs are kept.
    pub fn diverged(&self) -> bool {
        self.status() == "diverged"
    }
}

/// Every experiment under `dir`, with its results directory; refuses a directory that does not
/// exist, or holds no experiment.
pub fn experiments(dir: &Path) -> Result<Vec<(Experiment, PathBuf)>> {
    if !dir.exists() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            problem: "no such directory".into(),
            hint: "give the --results directory of `rbp reproduce CONFIG --results DIR`".into(),
        });
    }
    if !dir.is_dir() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            problem: "not a directory".into(),
            hint: "give the --results directory of `rbp reproduce CONFIG --results DIR`".into(),
        });
    }
    let mut dirs = vec![dir.to_path_buf()];
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut subs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    dirs.extend(subs);
    let mut out = Vec::new();
    for d in dirs {
        let f = d.join(EXPERIMENT);
        if f.is_file() {
            let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
            let exp: Experiment = toml::from_str(&text).map_err(|e| Error::Data {
                path: f.clone(),
                problem: format!("invalid experiment: {}", e.to_string().trim_end()),
                hint: "written by `rbp reproduce`; do not edit".into(),
            })?;
            out.push((exp, d));
        }
    }
    if out.is_empty() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            problem: "no experiment results here (no experiment.toml in it or its subdirectories)"
                .into(),
            hint: "run `rbp reproduce CONFIG --results DIR` first".into(),
        });
    }
    Ok(out)
}

/// Every run declared by the experiments under `dir`, in order (experiments by directory name,
/// runs in grid order), with what is on disk of it.
pub fn load(dir: &Path) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for (exp, root) in experiments(dir)? {
        let runs = exp.runs().map_err(|e| Error::Data {
            path: root.join(EXPERIMENT),
            problem: e.to_string(),
            hint: "written by `rbp reproduce`; do not edit".into(),
        })?;
        for r in runs {
            let d = RunDir::new(r.dir(&root));
            out.push(Record {
                experiment: exp.name.clone(),
                dataset: exp.dataset.clone(),
                config: d.read_config().ok(),
                metrics: d.read_metrics().unwrap_or_default(),
                summary: d.read_summary(),
                dir: d.path().to_path_buf(),
                run: r,
            });
        }
    }
    Ok(out)
}

/// Every key of a run configuration (the keys of its `config.toml`; a nested table, should a
/// setting hold one, flattened into snake_case names joined by `_`), sorted by name; keys a
/// configuration leaves out (absent options) are absent.
pub fn flatten(config: &TrainConfig) -> Vec<(String, Value)> {
    fn walk(prefix: &str, v: Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}_{k}")
                    };
                    walk(&name, v, out);
                }
            }
            Value::Null => {}
            v => out.push((prefix.to_string(), v)),
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        serde_json::to_value(config).expect("a config serializes"),
        &mut out,
    );
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every column [`flatten`] can give, sorted: the keys of the settings
/// ([`crate::config::SETTINGS`]).
pub fn setting_names() -> Vec<String> {
    let mut keys: Vec<String> = crate::config::SETTINGS
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    keys.sort();
    keys
}

/// The settings that make two runs comparable: every key but the seed and the thread count
/// (results do not depend on it).
pub fn group_key(config: &TrainConfig) -> Vec<(String, Value)> {
    flatten(config)
        .into_iter()
        .filter(|(k, _)| k != "seed" && k != "threads")
        .collect()
}

/// A setting's value as plain text: strings bare, lists comma-separated (as `--hidden` takes
/// them), numbers and booleans as JSON writes them.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(","),
        v => v.to_string(),
    }
}
