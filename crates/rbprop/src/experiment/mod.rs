//! Experiments as data: a TOML file names a dataset, the base training settings, a grid of
//! channel variants (each a cell of the paper's Table 1: a row and a column) and the seeds.
//! [`runner`] runs the grid, resumably; [`results`] reads a results directory back, from which
//! [`table`] regenerates Table 1, [`plot`] draws the figures and [`export`] writes every run and
//! epoch in long format (CSV or JSON Lines).
//!
//! ```toml
//! name = "basic"                      # results go to RESULTS/basic/<run-id>/
//! dataset = "fashion-mnist"           # column group of the table
//! data = "/usr/share/datasets/fashion-mnist"   # or "embedded:fashion-mnist-subset"
//! seeds = [1, 2, 3]
//! [train]                             # any key of a run's config.toml
//! epochs = 100
//! [[variant]]
//! row = "baseline"                    # Table 1 row
//! column = "BP"                       # BP, RBP or SRBP
//! channel = "bp"                      # any key of a run's config.toml, overriding [train]
//! ```

pub mod cluster;
pub mod export;
pub mod plot;
pub mod results;
pub mod runner;
pub mod table;

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// An experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    pub dataset: String,
    /// Data directory or `embedded:fashion-mnist-subset`.
    pub data: String,
    pub seeds: Vec<u64>,
    /// Base settings (keys of [`TrainConfig`]).
    #[serde(default)]
    pub train: toml::Table,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

/// One cell of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub row: String,
    pub column: String,
    /// Overrides of the base settings.
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// One run of the grid: a variant with a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub id: String,
    pub row: String,
    pub column: String,
    pub seed: u64,
    pub config: TrainConfig,
}

/// Merges `over` into `base` (tables recursively).
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The first key of `over` (dotted, for nested tables) that makes `base` merged with it no valid
/// run configuration, with the problem: an unknown key or a value of the wrong type.
fn culprit(base: &toml::Table, over: &toml::Table) -> Option<(String, String)> {
    for (k, v) in over {
        let mut t = base.clone();
        merge(&mut t, &toml::Table::from_iter([(k.clone(), v.clone())]));
        if let Err(e) = toml::Value::Table(t).try_into::<TrainConfig>() {
            if let (toml::Value::Table(sub), Some(toml::Value::Table(b))) = (v, base.get(k)) {
                // narrow down to the key inside the table, when one alone is to blame
                let inner = |sk: &String, sv: &toml::Value| {
                    let mut t = base.clone();
                    let one = toml::Table::from_iter([(sk.clone(), sv.clone())]);
                    let mut nested = b.clone();
                    merge(&mut nested, &one);
                    t.insert(k.clone(), toml::Value::Table(nested));
                    toml::Value::Table(t).try_into::<TrainConfig>().err()
                };
                for (sk, sv) in sub {
                    if let Some(e) = inner(sk, sv) {
                        return Some((format!("{k}.{sk}"), first_line(&e.to_string())));
                    }
                }
            }
            return Some((k.clone(), first_line(&e.to_string())));
        }
    }
    None
}

fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or("").to_string()
}

/// A file-system-friendly run id: `row--column--seedN`, lower case, `[a-z0-9.-]` only.
pub fn run_id(row: &str, column: &str, seed: u64) -> String {
    let clean = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}--{}--seed{seed}", clean(row), clean(column))
}

/// An experiment's name is one plain directory name under the results root: not empty, no path
/// separator, not `.` or `..`, no control characters.
fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::config("name", format!("{why}, got `{name}`")));
    if name.trim().is_empty() {
        return bad("must not be empty");
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return bad("must be a plain directory name (no path separator, not `.` or `..`)");
    }
    if name.chars().any(char::is_control) || std::path::Path::new(name).is_absolute() {
        return bad("must be a plain directory name (no control characters)");
    }
    Ok(())
}

impl Experiment {
    /// Reads and checks an experiment file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let exp: Experiment = toml::from_str(&text).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            problem: format!("invalid experiment: {}", e.to_string().trim_end()),
            hint: "see configs/smoke/ for the layout".into(),
        })?;
        exp.runs().map_err(|e| Error::Data {
            path: path.to_path_buf(),
            problem: e.to_string(),
            hint: "[train] and each [[variant]] take the keys of a run's config.toml (`rbp train --out` writes one; see configs/smoke/)".into(),
        })?;
        Ok(exp)
    }

    /// Every (variant, seed) run with its resolved configuration, `data` overriding the file's.
    pub fn runs(&self) -> Result<Vec<Run>> {
        check_name(&self.name)?;
        if self.seeds.is_empty() || self.variants.is_empty() {
            return Err(Error::config(
                "seeds",
                "an experiment needs at least one seed and one variant",
            ));
        }
        let fixed = |table: &toml::Table, place: &str| -> Result<()> {
            for (key, why) in [
                (
                    "data",
                    "the experiment's top-level `data` (or --data) names the data of every run",
                ),
                (
                    "seed",
                    "the experiment's top-level `seeds` lists the seeds of every run",
                ),
                (
                    "threads",
                    "`rbp reproduce` shares the cores out between the runs (see --jobs)",
                ),
            ] {
                if table.contains_key(key) {
                    return Err(Error::config(
                        format!("{place}.{key}"),
                        format!("not supported here: {why}"),
                    ));
                }
            }
            Ok(())
        };
        fixed(&self.train, "train")?;
        for v in &self.variants {
            fixed(&v.settings, &format!("variant {} / {}", v.row, v.column))?;
        }
        // a typo or a value of the wrong type: name the section and the key
        let mut base = match toml::Value::try_from(TrainConfig::default()) {
            Ok(toml::Value::Table(t)) => t,
            _ => unreachable!("a config serializes to a table"),
        };
        if let Some((key, problem)) = culprit(&base, &self.train) {
            return Err(Error::config(format!("train.{key}"), problem));
        }
        merge(&mut base, &self.train);
        for v in &self.variants {
            if let Some((key, problem)) = culprit(&base, &v.settings) {
                return Err(Error::config(
                    format!("variant {} / {}: {key}", v.row, v.column),
                    problem,
                ));
            }
        }
        let mut out = Vec::new();
        for v in &self.variants {
            for &seed in &self.seeds {
                let mut table = base.clone();
                merge(&mut table, &v.settings);
                table.insert("seed".into(), toml::Value::Integer(seed as i64));
                table.insert("data".into(), toml::Value::String(self.data.clone()));
                let config: TrainConfig =
                    toml::Value::Table(table)
                        .try_into()
                        .map_err(|e: toml::de::Error| {
                            Error::config(
                                format!("variant {} / {}", v.row, v.column),
                                e.to_string().trim_end().to_string(),
                            )
                        })?;
                config.validate().map_err(|e| {
                    Error::config(format!("variant {} / {}", v.row, v.column), e.to_string())
                })?;
                let id = run_id(&v.row, &v.column, seed);
                if out.iter().any(|r: &Run| r.id == id) {
                    return Err(Error::config(
                        "variant",
                        format!(
                            "two variants share row `{}` and column `{}`",
                            v.row, v.column
                        ),
                    ));
                }
                out.push(Run {
                    id,
                    row: v.row.clone(),
                    column: v.column.clone(),
                    seed,
                    config,
                });
            }
        }
        Ok(out)
    }
}
