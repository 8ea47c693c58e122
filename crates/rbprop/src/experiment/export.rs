//! `rbp export`: every run of a results directory in long format — one row per run and epoch,
//! the run's identity and resolved settings beside the epoch's metrics — as CSV (for
//! `pandas.read_csv`, R's `read.csv`, a spreadsheet) or JSON Lines. Every row has the same
//! columns, in the order of [`columns`]; a setting a run leaves out (`arch` of a dense net) is an
//! empty cell in CSV and `null` in JSON.

use super::results::{self, Record};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

/// The identity columns, first in every row.
pub const IDENTITY: [&str; 7] = [
    "experiment",
    "run_id",
    "dataset",
    "row",
    "column",
    "status",
    "experiment_epochs",
];

/// The metric columns, last in every row: the keys of `metrics.jsonl`, except that the learning
/// rate after the epoch is `next_lr` (`lr` is the run's initial learning rate, a setting).
pub const METRICS: [&str; 8] = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "next_lr",
    "steps",
    "seconds",
];

/// Every column, in order: [`IDENTITY`], every setting of a run configuration under its key
/// (`channel_dropout`, `feedback`, `quantize_signal`, …; sorted by name), [`METRICS`].
pub fn columns() -> Vec<String> {
    IDENTITY
        .iter()
        .map(|s| s.to_string())
        .chain(results::setting_names())
        .chain(METRICS.iter().map(|s| s.to_string()))
        .collect()
}

/// The rows of one run, one per finished epoch, each with a value (or `Null`) per column.
fn rows(r: &Record, columns: &[String]) -> Vec<Vec<Value>> {
    let settings = results::flatten(r.settings());
    let fixed: Map<String, Value> = [
        ("experiment", Value::from(r.experiment.clone())),
        ("run_id", r.run.id.clone().into()),
        ("dataset", r.dataset.clone().into()),
        ("row", r.run.row.clone().into()),
        ("column", r.run.column.clone().into()),
        ("status", r.status().into()),
        ("experiment_epochs", r.run.config.epochs.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(settings)
    .collect();
    r.metrics
        .iter()
        .map(|m| {
            let metric = |k: &str| -> Option<Value> {
                Some(match k {
                    "epoch" => m.epoch.into(),
                    "train_loss" => m.train_loss.into(),
                    "train_acc" => m.train_acc.into(),
                    "test_loss" => m.test_loss.into(),
                    "test_acc" => m.test_acc.into(),
                    "next_lr" => m.lr.into(),
                    "steps" => m.steps.into(),
                    "seconds" => m.seconds.into(),
                    _ => return None,
                })
            };
            columns
                .iter()
                .map(|c| {
                    metric(c)
                        .or_else(|| fixed.get(c).cloned())
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect()
}

/// A value as a CSV cell: strings bare, lists comma-separated, `null` empty.
fn cell(v: &Value) -> String {
    results::value_text(v)
}

/// Writes every run and epoch of the results in `dir` to `out`; returns the number of rows.
pub fn export(dir: &Path, format: Format, out: &mut dyn Write) -> Result<usize> {
    let records = results::load(dir)?;
    write(&records, format, out)
}

/// Writes the rows of `records` to `out` in `format`; returns the number of rows.
pub fn write(records: &[Record], format: Format, out: &mut dyn Write) -> Result<usize> {
    let columns = columns();
    let io = |e: std::io::Error| Error::io("<output>", e);
    let mut n = 0;
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let csv_err = |e: csv::Error| match e.into_kind() {
                csv::ErrorKind::Io(e) => io(e),
                k => Error::Data {
                    path: "<output>".into(),
                    problem: format!("{k:?}"),
                    hint: "report this as a bug".into(),
                },
            };
            w.write_record(&columns).map_err(csv_err)?;
            for r in records {
                for row in rows(r, &columns) {
                    w.write_record(row.iter().map(cell)).map_err(csv_err)?;
                    n += 1;
                }
            }
            w.flush().map_err(io)?;
        }
        Format::Jsonl => {
            for r in records {
                for row in rows(r, &columns) {
                    // keys in column order (a JSON map would sort them)
                    let fields: Vec<String> = columns
                        .iter()
                        .zip(&row)
                        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                        .collect();
                    writeln!(out, "{{{}}}", fields.join(",")).map_err(io)?;
                    n += 1;
                }
            }
            out.flush().map_err(io)?;
        }
    }
    Ok(n)
}
