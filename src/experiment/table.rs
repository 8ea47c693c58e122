//! `rbp table`: the paper's Table 1 regenerated from results alone — rows baseline, no-f',
//! adaptive, sparse, quantized error, quantized update, dropout (in that order, then any other
//! row); columns BP / RBP / SRBP per dataset; each cell the mean (sample standard deviation) of
//! the final test accuracy over seeds, in percent. A cell no experiment declares is "n/a"; a
//! declared cell without finished runs is "missing" (never 0); runs shorter than their
//! configuration (`--quick`, or still running) are marked `*`; `[k/n]` counts seeds present.

use super::Experiment;
use crate::error::{Error, Result};
use crate::run;
use std::path::Path;

/// The row order of the paper's Table 1 (prefixes; e.g. "sparse n=2" sorts with "sparse").
pub const ROW_ORDER: [&str; 7] = [
    "baseline",
    "no-f'",
    "adaptive",
    "sparse",
    "quantized error",
    "quantized update",
    "dropout",
];

/// One cell's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub dataset: String,
    pub row: String,
    pub column: String,
    /// Final test accuracies of the finished seeds.
    pub values: Vec<f64>,
    /// Seeds declared.
    pub declared: usize,
    /// Some run has fewer epochs than its configuration asks.
    pub shortened: bool,
}

impl Cell {
    /// Mean and sample standard deviation (None for one value).
    pub fn stats(&self) -> Option<(f64, Option<f64>)> {
        let n = self.values.len();
        if n == 0 {
            return None;
        }
        let mean = self.values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            (self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Some((mean, sd))
    }

    fn text(&self) -> String {
        match self.stats() {
            None => "missing".into(),
            Some((m, sd)) => {
                let mut t = match sd {
                    Some(sd) => format!("{:.2} ({:.2})", 100.0 * m, 100.0 * sd),
                    None => format!("{:.2}", 100.0 * m),
                };
                if self.shortened {
                    t.push('*');
                }
                if self.values.len() < self.declared {
                    t += &format!(" [{}/{}]", self.values.len(), self.declared);
                }
                t
            }
        }
    }
}

/// Every experiment under `dir` (the directory itself or its subdirectories holding
/// `experiment.toml`), with its results directory.
fn experiments(dir: &Path) -> Result<Vec<(Experiment, std::path::PathBuf)>> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut subs: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        dirs.extend(subs);
    }
    let mut out = Vec::new();
    for d in dirs {
        let f = d.join("experiment.toml");
        if f.is_file() {
            let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
            let exp: Experiment = toml::from_str(&text).map_err(|e| Error::Data {
                path: f.clone(),
                problem: format!("invalid experiment: {e}"),
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

/// Collects every declared cell with the values found on disk.
pub fn collect(dir: &Path) -> Result<Vec<Cell>> {
    let mut cells: Vec<Cell> = Vec::new();
    for (exp, root) in experiments(dir)? {
        for r in exp.runs()? {
            let pos = cells
                .iter()
                .position(|c| c.dataset == exp.dataset && c.row == r.row && c.column == r.column);
            let idx = pos.unwrap_or_else(|| {
                cells.push(Cell {
                    dataset: exp.dataset.clone(),
                    row: r.row.clone(),
                    column: r.column.clone(),
                    values: vec![],
                    declared: 0,
                    shortened: false,
                });
                cells.len() - 1
            });
            let cell = &mut cells[idx];
            cell.declared += 1;
            if let Ok(ms) = run::read_metrics(&root.join(&r.id).join("metrics.jsonl"))
                && let Some(last) = ms.last()
            {
                cell.values.push(last.test_acc);
                cell.shortened |= ms.len() < r.config.epochs;
            }
        }
    }
    Ok(cells)
}

fn row_rank(row: &str) -> usize {
    ROW_ORDER
        .iter()
        .position(|p| row.to_ascii_lowercase().starts_with(p))
        .unwrap_or(ROW_ORDER.len())
}

/// (Markdown, CSV) of the table.
pub fn render(cells: &[Cell]) -> (String, String) {
    let mut datasets: Vec<String> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for c in cells {
        if !datasets.contains(&c.dataset) {
            datasets.push(c.dataset.clone());
        }
        if !rows.contains(&c.row) {
            rows.push(c.row.clone());
        }
    }
    rows.sort_by_key(|r| row_rank(r));
    let mut columns: Vec<String> = vec!["BP".into(), "RBP".into(), "SRBP".into()];
    for c in cells {
        if !columns.contains(&c.column) {
            columns.push(c.column.clone());
        }
    }
    let header: Vec<String> = datasets
        .iter()
        .flat_map(|d| columns.iter().map(move |c| format!("{d} {c}")))
        .collect();
    let mut md = format!(
        "| row | {} |\n|---|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in &rows {
        let mut line = format!("| {r} |");
        for d in &datasets {
            for col in &columns {
                let text = cells
                    .iter()
                    .find(|c| &c.dataset == d && &c.row == r && &c.column == col)
                    .map_or("n/a".to_string(), Cell::text);
                line += &format!(" {text} |");
            }
        }
        md += &line;
        md.push('\n');
    }
    md += "\nFinal test accuracy in %, mean (sample standard deviation) over seeds; * shortened runs; [k/n] seeds present; n/a: not in any experiment of the results (no such algorithm, or not in that dataset's grid).\n";
    let mut csv = String::from("dataset,row,column,mean,std,seeds,declared,shortened\n");
    for c in cells {
        let (m, sd) = c.stats().map_or((String::new(), String::new()), |(m, sd)| {
            (
                format!("{m:.6}"),
                sd.map_or(String::new(), |s| format!("{s:.6}")),
            )
        });
        csv += &format!(
            "{},\"{}\",{},{m},{sd},{},{},{}\n",
            c.dataset,
            c.row.replace('"', "\"\""),
            c.column,
            c.values.len(),
            c.declared,
            c.shortened
        );
    }
    (md, csv)
}
