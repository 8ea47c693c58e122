//! `rbp ls`: every run a results directory declares, one line each — its experiment, run id,
//! where it stands ([`crate::run::RunDir::state`]: finished, diverged, running, failed,
//! interrupted, missing), epochs done of those it trains, its final test accuracy, and the
//! settings that differ between the runs of its experiment (the swept ones: channel, feedback,
//! quantizer, seed, …). Aligned text for people, CSV for programs.

use super::results::{self, Record, value_text};
use crate::error::Result;
use crate::run::{RunDir, State};
use std::path::Path;

/// One run as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub experiment: String,
    pub id: String,
    /// The run's directory, relative to the results root (its legacy id's where it lives there).
    pub dir: String,
    /// `finished`, `diverged`, `running`, `failed`, `interrupted` or `missing`.
    pub status: String,
    /// The error of a failed run (first line).
    pub error: Option<String>,
    /// Epochs finished on disk.
    pub done: usize,
    /// Epochs the run trains (its `config.toml`, else what the experiment asks).
    pub epochs: usize,
    /// Epochs the experiment asks (more than `epochs` after `rbp reproduce --quick`).
    pub declared: usize,
    /// Test accuracy after the last finished epoch (a fraction).
    pub test_acc: Option<f64>,
    /// A value per [`Listing::settings`] column (`None`: the run leaves the setting out).
    pub values: Vec<Option<String>>,
}

/// Every run of a results directory with the settings that tell them apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    /// Settings that differ between the runs of some experiment, as [`results::flatten`] names
    /// them: the channel first, the seed last.
    pub settings: Vec<String>,
    pub entries: Vec<Entry>,
}

/// Lists every run declared by the experiments under `dir`.
pub fn list(dir: &Path) -> Result<Listing> {
    let records = results::load(dir)?;
    Ok(listing(dir, &records))
}

/// The listing of `records` read from the results root `dir`.
pub fn listing(dir: &Path, records: &[Record]) -> Listing {
    let flat: Vec<Vec<(String, serde_json::Value)>> = records
        .iter()
        .map(|r| results::flatten(&r.run.config))
        .collect();
    // the settings that differ within an experiment
    let mut settings: Vec<String> = Vec::new();
    let mut experiments: Vec<&str> = records.iter().map(|r| r.experiment.as_str()).collect();
    experiments.dedup();
    for e in experiments {
        let of: Vec<&Vec<(String, serde_json::Value)>> = records
            .iter()
            .zip(&flat)
            .filter(|(r, _)| r.experiment == e)
            .map(|(_, f)| f)
            .collect();
        let get = |f: &Vec<(String, serde_json::Value)>, k: &str| {
            f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        let mut keys: Vec<&String> = of.iter().flat_map(|f| f.iter().map(|(k, _)| k)).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if k == "threads" || settings.contains(k) {
                continue;
            }
            let first = get(of[0], k);
            if of.iter().any(|f| get(f, k) != first) {
                settings.push(k.clone());
            }
        }
    }
    let rank = |k: &str| match k {
        "channel" => 0,
        "seed" => 2,
        _ => 1,
    };
    settings.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let entries = records
        .iter()
        .zip(&flat)
        .map(|(r, f)| {
            let epochs = r.settings().epochs;
            let (status, error) = match RunDir::new(&r.dir).state(epochs) {
                State::Finished if r.diverged() => ("diverged", None),
                State::Finished => ("finished", None),
                State::Running { .. } => ("running", None),
                State::Failed(e) => ("failed", Some(e)),
                State::Interrupted { .. } => ("interrupted", None),
                State::Missing => ("missing", None),
            };
            Entry {
                experiment: r.experiment.clone(),
                id: r.run.id.clone(),
                dir: r
                    .dir
                    .strip_prefix(dir)
                    .unwrap_or(&r.dir)
                    .display()
                    .to_string(),
                status: status.into(),
                error,
                done: r.metrics.len(),
                epochs,
                declared: r.run.config.epochs,
                test_acc: r.metrics.last().map(|m| m.test_acc),
                values: settings
                    .iter()
                    .map(|k| f.iter().find(|(n, _)| n == k).map(|(_, v)| value_text(v)))
                    .collect(),
            }
        })
        .collect();
    Listing { settings, entries }
}

/// A setting's column title in text: its name without `channel_options_`.
fn title(name: &str) -> &str {
    name.strip_prefix("channel_options_").unwrap_or(name)
}

impl Listing {
    /// Aligned text: a header, then a line per run (`-` for a setting a run leaves out; epochs
    /// marked `*` when fewer than the experiment asks), and a line saying what `*` means when a
    /// run is so marked.
    pub fn text(&self) -> String {
        let mut rows: Vec<Vec<String>> = vec![
            ["experiment", "run", "status", "epochs", "test acc"]
                .iter()
                .map(|s| s.to_string())
                .chain(self.settings.iter().map(|s| title(s).to_string()))
                .collect(),
        ];
        let mut shortened = false;
        for e in &self.entries {
            let mut epochs = format!("{}/{}", e.done, e.epochs);
            if e.epochs < e.declared {
                epochs.push('*');
                shortened = true;
            }
            rows.push(
                [
                    e.experiment.clone(),
                    e.id.clone(),
                    e.status.clone(),
                    epochs,
                    e.test_acc
                        .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                ]
                .into_iter()
                .chain(e.values.iter().map(|v| v.clone().unwrap_or("-".into())))
                .collect(),
            );
        }
        let n = rows[0].len();
        let width: Vec<usize> = (0..n)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    let pad = width[c] - s.chars().count();
                    // numbers right-aligned
                    if c == 3 || c == 4 {
                        format!("{}{s}", " ".repeat(pad))
                    } else {
                        format!("{s}{}", " ".repeat(pad))
                    }
                })
                .collect();
            out += cells.join("  ").trim_end();
            out.push('\n');
        }
        if shortened {
            out += "* fewer epochs than the experiment asks (`rbp reproduce --quick`)\n";
        }
        out
    }

    /// CSV: `experiment,run_id,dir,status,epochs_done,epochs,experiment_epochs,test_acc` (a
    /// fraction; empty without a finished epoch), `error`, then the settings as
    /// [`results::flatten`] names them (an empty cell where a run leaves one out).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let head = [
            "experiment",
            "run_id",
            "dir",
            "status",
            "epochs_done",
            "epochs",
            "experiment_epochs",
            "test_acc",
            "error",
        ];
        let header: Vec<&str> = head
            .iter()
            .copied()
            .chain(self.settings.iter().map(String::as_str))
            .collect();
        w.write_record(&header).expect("writing to memory");
        for e in &self.entries {
            let row: Vec<String> = [
                e.experiment.clone(),
                e.id.clone(),
                e.dir.clone(),
                e.status.clone(),
                e.done.to_string(),
                e.epochs.to_string(),
                e.declared.to_string(),
                e.test_acc.map_or(String::new(), |a| a.to_string()),
                e.error.clone().unwrap_or_default(),
            ]
            .into_iter()
            .chain(e.values.iter().map(|v| v.clone().unwrap_or_default()))
            .collect();
            w.write_record(&row).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 in, UTF-8 out")
    }
}
