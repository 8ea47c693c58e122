//! Experiments as data: a TOML file names a dataset, the base training settings, the grid's
//! variants (cells of the paper's Table 1: a row and a column; a variant with lists is a sweep,
//! one cell per combination of their values) and the seeds. [`runner`] runs the grid, resumably;
//! [`results`] reads a results directory back, from which [`table`] regenerates Table 1, [`plot`]
//! draws the figures, [`export`] writes every run and epoch in long format (CSV or JSON Lines)
//! and [`list`] lists the runs (`rbp ls`).
//!
//! ```toml
//! name = "sparse"                     # results go to RESULTS/sparse/<run-id>/
//! dataset = "fashion-mnist"           # column group of the table
//! data = "/usr/share/datasets/fashion-mnist"   # or "embedded:fashion-mnist-subset"
//! seeds = [1, 2, 3]
//! [train]                             # any key of a run's config.toml
//! epochs = 100
//! [[variant]]                         # one cell, labelled by hand
//! row = "baseline"                    # Table 1 row
//! column = "BP"                       # BP, RBP or SRBP
//! channel = "bp"                      # any key of a run's config.toml, overriding [train]
//! [[variant]]                         # a sweep: 3 × 2 cells, labelled from their settings
//! channel = ["rbp", "srbp"]           # columns RBP, SRBP
//! feedback = ["sparse:1", "sparse:2", "sparse:8"]   # rows sparse n=1, 2, 8
//! [[variant]]
//! row = "signed sparsity n={feedback#}"   # a row of one's own, with a placeholder
//! channel = ["rbp", "srbp"]
//! feedback = ["sparse-signed:1", "sparse-signed:8"]
//! ```
//!
//! # Sweeps
//!
//! A list is a sweep wherever the setting takes one value (a string, number, boolean or table):
//! `channel = ["rbp", "srbp"]`, `feedback = ["sparse:1", "sparse-signed:1"]`,
//! `quantize_signal = ["1", "2", "2:0.1", "2:1:mid-tread"]` (the flag's strings), or whole
//! tables. A setting that is itself a list (`hidden`, `mix`) takes a list as its value, so
//! `hidden = [100, 100]` is one net with two hidden layers, and a list of lists sweeps it:
//! `hidden = [[100], [100, 100]]`. Nested keys may be dotted keys or inline tables, alike. A
//! variant expands to the Cartesian product of its sweeps, in order: the other swept settings in
//! key order, the first slowest, then the channel (a table row across its columns), then the
//! seeds. `[train]` takes single values only.
//!
//! # Labels
//!
//! A cell without `column` is in its channel's column: the algorithm in capitals (BP, RBP, SRBP,
//! …), adaptive and no-derivative versions under their channel (`asrbp` → SRBP, `rbp-nof` → RBP).
//! A cell without `row` gets a row made of its other settings in words, joined by `, `: `adaptive`
//! and `no-f'` for such channels, `sparse n=8` (`signed sparse n=8`) for a feedback distribution,
//! the channel's noise and quantizers under their flags' names, `channel-dropout r=0.25`,
//! `quantize-signal b=2, α=0.1`, `quantize-update b=4, stochastic` (a quantizer's defaults, α auto
//! and nearest rounding, go unsaid), `key=value` for any other setting; `baseline` when the cell
//! sets nothing but its channel. A `row` or `column` given may hold placeholders: `{KEY}` is the
//! cell's value of a setting the variant writes (its dotted name or, where no other ends alike,
//! its last part: `{bits}`), `{KEY#}` the last number in it (`{feedback#}`: `sparse-signed:8` →
//! 8); `{{` and `}}` are braces. No two cells of an experiment share a row and a column. A row in
//! the earlier words of these labels (`quantized error b=`, `quantized update b=`, `dropout r=`,
//! as the experiments of results written by earlier versions hold them) reads in today's
//! ([`sweep::RENAMED_WORDS`]).
//!
//! # Run ids
//!
//! A run's results are in `RESULTS/<experiment>/<run-id>/`, its id a path made of its settings:
//! the channel's canonical name, a part per other setting its variant writes (swept or not, in
//! key order: `sparse-8` for a feedback distribution, `dropout-0.25`, `signal-bits-2` and
//! `signal-alpha-0.1` for `quantize_signal = "2:0.1"` (a quantizer's defaults, α auto and nearest
//! rounding, name nothing), `update-rounding-stochastic`, `lr-0.01`, `flip` or
//! `no-flip`; lower-case `[a-z0-9._+-]`), then the seed: `rbp/seed-1`, `rbp/sparse-8/seed-2`,
//! `srbp/signal-alpha-0.1/signal-bits-2/seed-3`. Labels play no part, so relabelling a row keeps
//! its results; cells with the same settings (the same runs shown in two columns) have their
//! labels as one more part, in the labels' earlier words: `top/sparsity-n-0--rbp/seed-1`.
//!
//! Results written before run ids were made of settings are in `row--column--seedN` directories
//! named after the labels in the words of that time ([`legacy_id`]: `baseline--bp--seed1`,
//! `quantized-error-b-2----0.1--srbp--seed1` for row `quantize-signal b=2, α=0.1`,
//! `dropout-r-0.25--rbp--seed1` for `channel-dropout r=0.25`). A run whose directory does not
//! exist under its id is looked for under its legacy id, and taken there — skipped when finished, resumed when not,
//! read by `rbp table`, `plot`, `export`, `ls`, `reproduce --status` and `--only` — when that
//! directory holds the same settings (its `config.toml`, by [`crate::run::dir::same_run`]); it is
//! not renamed ([`Run::dir`]).

pub mod cluster;
pub mod export;
pub mod list;
pub mod plot;
pub mod results;
pub mod runner;
pub mod sweep;
pub mod table;

pub use sweep::legacy_id;

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::run::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use sweep::merge;

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

/// One cell of the grid, or a sweep: as many cells as combinations of its lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Table row; generated from the settings when absent; `{KEY}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    /// Table column; the channel's name (BP, RBP, SRBP, …) when absent; `{KEY}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Overrides of the base settings; lists sweep (see the module documentation).
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// One run of the grid: a cell with a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// `CHANNEL/SETTING…/seed-N`, its directory under the experiment's results.
    pub id: String,
    /// `row--column--seedN`, the id of the run before sweeps (see [`Run::dir`]).
    pub legacy_id: String,
    pub row: String,
    pub column: String,
    pub seed: u64,
    pub config: TrainConfig,
}

impl Run {
    /// The run's directory under the experiment's results `root`: `root/<id>`, unless that does
    /// not exist and `root/<legacy id>` holds this run (its `config.toml` has the same settings,
    /// [`crate::run::dir::same_run`]): results written before run ids were made of settings are
    /// found, resumed and read where they are.
    pub fn dir(&self, root: &Path) -> PathBuf {
        let new = root.join(&self.id);
        if !new.exists() {
            let old = RunDir::new(root.join(&self.legacy_id));
            if old.holds_run(&self.config) {
                return old.path().to_path_buf();
            }
        }
        new
    }
}

/// The first key of `over` (dotted, for nested tables) that makes `base` merged with it no valid
/// run configuration, with the problem: an unknown key or a value of the wrong type.
fn culprit(base: &toml::Table, over: &toml::Table) -> Option<(String, String)> {
    for (k, v) in over {
        let mut t = base.clone();
        merge(&mut t, &toml::Table::from_iter([(k.clone(), v.clone())]));
        if let Err(e) = toml::Value::Table(t).try_into::<TrainConfig>() {
            if let toml::Value::Table(sub) = v {
                // narrow down to the key inside the table, when one alone is to blame (a table
                // the defaults do not hold, such as the earlier `channel_options`, starts empty)
                let b = match base.get(k) {
                    Some(toml::Value::Table(b)) => b.clone(),
                    _ => toml::Table::new(),
                };
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
            hint: "[train] and each [[variant]] take the keys of a run's config.toml (`rbp train --out` writes one), a variant's lists sweeping; see configs/paper/".into(),
        })?;
        Ok(exp)
    }

    /// Every run: each variant's cells (the combinations of its sweeps, the channel fastest) with
    /// each seed, in file order, with labels, ids and resolved configurations.
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
        let written = |v: &Variant, k: usize| {
            sweep::place(
                v.row.as_deref().unwrap_or(&format!("#{}", k + 1)),
                v.column.as_deref().unwrap_or("(channel)"),
            )
        };
        fixed(&self.train, "train")?;
        for (k, v) in self.variants.iter().enumerate() {
            fixed(&v.settings, &written(v, k))?;
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
        // the size of the grid, counted before anything is expanded
        let mut count: Option<u64> = Some(0);
        for v in &self.variants {
            let cells = sweep::axes(&base, &v.settings)
                .iter()
                .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64));
            count = count.zip(cells).and_then(|(c, n)| c.checked_add(n));
        }
        let runs = count.and_then(|c| c.checked_mul(self.seeds.len() as u64));
        if runs.is_none_or(|n| n > MAX_RUNS as u64) {
            return Err(Error::config(
                "variant",
                format!(
                    "the grid has {} runs (cells × {} seeds), more than the {MAX_RUNS} an experiment may hold; split it into several experiment files",
                    runs.map_or("more than 18446744073709551615".into(), |n| n.to_string()),
                    self.seeds.len()
                ),
            ));
        }
        // every cell of every variant: its settings and labels
        let mut cells: Vec<(toml::Table, String, String)> = Vec::new();
        let mut places: HashSet<(String, String)> = HashSet::new();
        for (k, v) in self.variants.iter().enumerate() {
            let axes = sweep::axes(&base, &v.settings);
            if let Some(a) = axes.iter().find(|a| a.values.is_empty()) {
                return Err(sweep::empty(&written(v, k), a));
            }
            for settings in sweep::expand(&v.settings, &axes) {
                let mut all = base.clone();
                merge(&mut all, &settings);
                let channel = all
                    .get("channel")
                    .map(sweep::text)
                    .unwrap_or_else(|| "bp".into());
                let label = |given: &Option<String>, what: &str| -> Result<String> {
                    match given {
                        Some(t) => sweep::fill(t, &settings)
                            .map_err(|e| Error::config(format!("{}: {what}", written(v, k)), e)),
                        None if what == "row" => Ok(sweep::row_words(&settings)),
                        None => Ok(sweep::channel_column(&channel)),
                    }
                };
                // a row written in the words labels had before they took the flags' names (the
                // rows of results written by earlier versions) reads in today's words
                let row = sweep::current_words(&label(&v.row, "row")?);
                let column = label(&v.column, "column")?;
                if let Some((key, problem)) = culprit(&base, &settings) {
                    return Err(Error::config(
                        format!("{}: {key}", sweep::place(&row, &column)),
                        problem,
                    ));
                }
                if !places.insert((row.clone(), column.clone())) {
                    return Err(Error::config(
                        "variant",
                        format!(
                            "two variants share row `{row}` and column `{column}`{}",
                            if axes.is_empty() {
                                ""
                            } else {
                                " (a swept setting missing from `row`/`column`? leave them out to label cells by their settings, or write a placeholder such as `{bits}`)"
                            }
                        ),
                    ));
                }
                cells.push((settings, row, column));
            }
        }
        let mut out = Vec::new();
        for (settings, row, column) in &cells {
            let at = || sweep::place(row, column);
            let mut stem = None;
            for &seed in &self.seeds {
                let mut table = base.clone();
                merge(&mut table, settings);
                table.insert("seed".into(), toml::Value::Integer(seed as i64));
                table.insert("data".into(), toml::Value::String(self.data.clone()));
                let config: TrainConfig =
                    toml::Value::Table(table)
                        .try_into()
                        .map_err(|e: toml::de::Error| {
                            Error::config(at(), e.to_string().trim_end().to_string())
                        })?;
                config
                    .validate()
                    .map_err(|e| Error::config(at(), e.to_string()))?;
                let stem = stem.get_or_insert_with(|| sweep::id_stem(settings, &config));
                out.push(Run {
                    id: stem.clone(),
                    legacy_id: sweep::legacy_id(row, column, seed),
                    row: row.clone(),
                    column: column.clone(),
                    seed,
                    config,
                });
            }
        }
        // cells with the same settings (the same id) are told apart by their labels: an id is
        // shared when runs with other labels have it too
        let mut labels: HashMap<String, (String, String, bool)> = HashMap::new();
        for r in &out {
            labels
                .entry(r.id.clone())
                .and_modify(|(row, col, shared)| {
                    *shared |= row != &r.row || col != &r.column;
                })
                .or_insert_with(|| (r.row.clone(), r.column.clone(), false));
        }
        for r in out.iter_mut() {
            let shared = labels.get(&r.id).is_some_and(|l| l.2);
            if shared {
                r.id = format!("{}/{}", r.id, sweep::label_part(&r.row, &r.column));
            }
            r.id = sweep::with_seed(&r.id, r.seed);
        }
        let mut ids: Vec<&str> = out.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::config(
                "variant",
                format!(
                    "two runs would share the directory `{}`: give their cells labels that differ in letters or digits",
                    w[0]
                ),
            ));
        }
        Ok(out)
    }
}

/// The most runs (cells × seeds) an experiment may hold; a larger grid is refused, with its
/// count, before it is expanded.
pub const MAX_RUNS: usize = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(variants: &str) -> Experiment {
        toml::from_str(&format!(
            "name = \"x\"\ndataset = \"d\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1, 2, 3]\n[train]\nepochs = 100\n{variants}"
        ))
        .unwrap()
    }

    #[test]
    fn a_grid_over_the_limit_is_refused_with_its_count_before_expanding() {
        let list = |n: usize| {
            (1..=n)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let exp = experiment(&format!(
            "[[variant]]\nchannel = \"rbp\"\nbatch = [{}]\nhidden = [{}]\n[[variant]]\nchannel = \"srbp\"\nbatch = [{}]\n",
            list(1000),
            (1..=1000)
                .map(|i| format!("[{i}]"))
                .collect::<Vec<_>>()
                .join(", "),
            list(7)
        ));
        let err = exp.runs().unwrap_err().to_string();
        // (1000 · 1000 + 7) cells × 3 seeds
        assert!(
            err.contains("3000021 runs") && err.contains("1000000"),
            "{err}"
        );
    }

    #[test]
    fn the_documented_example_expands_as_documented() {
        let exp = experiment(
            r#"[[variant]]
row = "baseline"
column = "BP"
channel = "bp"
[[variant]]
channel = ["rbp", "srbp"]
channel_options.feedback = ["sparse:1", "sparse:2", "sparse:8"]
[[variant]]
row = "signed sparsity n={feedback#}"
channel = ["rbp", "srbp"]
channel_options.feedback = ["sparse-signed:1", "sparse-signed:8"]
"#,
        );
        let runs = exp.runs().unwrap();
        assert_eq!(runs.len(), (1 + 6 + 4) * 3);
        let cells: Vec<String> = runs
            .iter()
            .filter(|r| r.seed == 1)
            .map(|r| format!("{} / {} / {}", r.row, r.column, r.id))
            .collect();
        assert_eq!(
            cells,
            [
                "baseline / BP / bp/seed-1",
                "sparse n=1 / RBP / rbp/sparse-1/seed-1",
                "sparse n=1 / SRBP / srbp/sparse-1/seed-1",
                "sparse n=2 / RBP / rbp/sparse-2/seed-1",
                "sparse n=2 / SRBP / srbp/sparse-2/seed-1",
                "sparse n=8 / RBP / rbp/sparse-8/seed-1",
                "sparse n=8 / SRBP / srbp/sparse-8/seed-1",
                "signed sparsity n=1 / RBP / rbp/sparse-signed-1/seed-1",
                "signed sparsity n=1 / SRBP / srbp/sparse-signed-1/seed-1",
                "signed sparsity n=8 / RBP / rbp/sparse-signed-8/seed-1",
                "signed sparsity n=8 / SRBP / srbp/sparse-signed-8/seed-1",
            ]
        );
        assert_eq!(runs[0].legacy_id, "baseline--bp--seed1");
        assert_eq!(runs[3].legacy_id, "sparse-n-1--rbp--seed1");
        assert_eq!(
            runs[3].config.channel_options.feedback,
            crate::channel::FeedbackInit::Sparse(1.0)
        );
        // the experiment as written into the results reads back to the same runs
        let text = toml::to_string_pretty(&exp).unwrap();
        let back: Experiment = toml::from_str(&text).unwrap();
        assert_eq!(back.runs().unwrap(), runs);
    }

    #[test]
    fn cells_with_the_same_settings_are_told_apart_by_their_labels() {
        let exp = experiment(
            "[[variant]]\nrow = \"n=0\"\ncolumn = \"RBP\"\nchannel = \"top\"\n[[variant]]\nrow = \"n=0\"\ncolumn = \"SRBP\"\nchannel = \"top\"\n",
        );
        let ids: Vec<String> = exp.runs().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids[0], "top/n-0--rbp/seed-1");
        assert_eq!(ids[3], "top/n-0--srbp/seed-1");
    }

    #[test]
    fn bad_sweeps_are_refused_with_the_variant_and_key() {
        for (variants, needle) in [
            (
                "[[variant]]\nchannel = []\n",
                "`variant #1 / (channel): channel`: an empty list sweeps nothing",
            ),
            (
                "[[variant]]\nrow = \"dropout\"\nchannel = \"rbp\"\nchannel_options.dropout = [0.1, 0.5]\n",
                "two variants share row `dropout` and column `RBP` (a swept setting missing",
            ),
            (
                "[[variant]]\nrow = \"r={rate}\"\nchannel_options.dropout = [0.1, 0.5]\n",
                "`{rate}` names no setting of the variant (it sets channel_options.dropout)",
            ),
            (
                "[[variant]]\nchannel = [\"rbp\", \"nope\"]\n",
                "unknown channel `nope`",
            ),
            (
                "[[variant]]\nchannel_options.dropuot = [0.1, 0.5]\n",
                "`variant dropuot=0.1 / BP: channel_options.dropuot`: unknown field `dropuot`",
            ),
        ] {
            let e = experiment(variants).runs().unwrap_err().to_string();
            assert!(e.contains(needle), "{variants}: {e}");
        }
    }
}
