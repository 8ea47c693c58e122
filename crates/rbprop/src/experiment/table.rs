//! `rbp table`: the paper's Table 1 regenerated from results alone — rows baseline, no-f',
//! adaptive, sparse, quantize-signal, quantize-update, channel-dropout (in that order, then any
//! other row); columns BP / RBP / SRBP per dataset; each cell the mean (sample standard deviation) of
//! the final test accuracy over seeds, in percent. A cell no experiment declares is "n/a"; a
//! declared cell without finished runs is "missing" (never 0); `[k/n]` counts seeds present.
//!
//! Runs are grouped by their resolved settings (`config.toml`) minus the seed: runs of one cell
//! with different settings (two experiment files, or an edited experiment whose old runs remain)
//! are never averaged together but shown as rows of their own, labelled with the settings that
//! differ (`baseline (epochs=6)`). A seed found twice counts once. Runs shortened on purpose
//! (`--quick`) are marked `*`, interrupted ones (killed, failed, still running) `†`, diverged
//! ones `‡`.

use super::results::{self, Record, group_key, value_text};
use crate::error::Result;
use serde_json::Value;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The row order of the paper's Table 1 (prefixes; e.g. "sparse n=2" sorts with "sparse").
pub const ROW_ORDER: [&str; 7] = [
    "baseline",
    "no-f'",
    "adaptive",
    "sparse",
    "quantize-signal",
    "quantize-update",
    "channel-dropout",
];

/// One cell's data: the runs of one (dataset, row, column) with the same resolved settings
/// (seed and thread count aside). Runs of one place with different settings (a 6-epoch and a
/// 40-epoch run; another data directory) are never pooled: each setting is a cell of its own,
/// told apart by `label`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub dataset: String,
    pub row: String,
    pub column: String,
    /// The settings that tell this cell from another of the same row (`epochs=6`); empty when
    /// the row has one setting per place.
    pub label: String,
    /// Final test accuracies, one per seed (a seed found twice counts once).
    pub values: Vec<f64>,
    /// The seeds of `values`.
    pub seeds: Vec<u64>,
    /// Seeds declared (by the experiments that ask for these settings).
    pub declared: usize,
    /// Some run has fewer epochs than its experiment asks (`--quick`): marked `*`.
    pub shortened: bool,
    /// Some run stopped before its configured last epoch (killed, failed, still running):
    /// marked `†`.
    pub interrupted: bool,
    /// Some run diverged (its last finished epoch counts): marked `‡`.
    pub diverged: bool,
    /// Indices of the runs of `values` in the records the cells were made from.
    pub members: Vec<usize>,
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

    /// The row as the table shows it: `row`, or `row (label)`.
    pub fn row_label(&self) -> String {
        if self.label.is_empty() {
            self.row.clone()
        } else {
            format!("{} ({})", self.row, self.label)
        }
    }

    /// The cell as the table shows it; `count` adds `[k/n]` even when every declared seed is
    /// present (the table does so when its cells declare different numbers of seeds).
    fn text(&self, count: bool) -> String {
        match self.stats() {
            None => "missing".into(),
            Some((m, sd)) => {
                let mut t = match sd {
                    Some(sd) => format!("{:.2} ({:.2})", 100.0 * m, 100.0 * sd),
                    None => format!("{:.2}", 100.0 * m),
                };
                for (on, mark) in [
                    (self.shortened, '*'),
                    (self.interrupted, '†'),
                    (self.diverged, '‡'),
                ] {
                    if on {
                        t.push(mark);
                    }
                }
                if count || self.values.len() < self.declared {
                    t += &format!(" [{}/{}]", self.values.len(), self.declared);
                }
                t
            }
        }
    }
}

/// The legend printed under the table.
pub const LEGEND: &str = "Final test accuracy in %, mean (sample standard deviation) over seeds; \
* shortened on purpose: fewer epochs than the experiment asks (`rbp reproduce --quick`); \
† interrupted: stopped before its configured last epoch (killed, failed or still running; \
`rbp reproduce` again finishes it); ‡ diverged: its last finished epoch counts; \
[k/n] seeds present of those declared (on every cell where the cells declare different numbers \
of seeds); (key=value) after a row: runs of one cell with other \
settings, shown apart, never averaged together; n/a: not in any experiment of the results \
(no such algorithm, or not in that dataset's grid).";

/// Collects every declared cell with the values found on disk.
pub fn collect(dir: &Path) -> Result<Vec<Cell>> {
    Ok(cells(&results::load(dir)?))
}

type Key = Vec<(String, Value)>;

/// Groups runs into cells: by dataset, row, column and resolved settings (the run's
/// `config.toml`) minus the seed and thread count. A declared run without results counts
/// towards the cell of the runs its experiment declares alike; where none has results, it makes
/// a `missing` cell.
pub fn cells(records: &[Record]) -> Vec<Cell> {
    struct Group {
        place: (String, String, String),
        key: Key,
        members: Vec<usize>,
    }
    type Place = (String, String, String);
    // keys compared through their text (the values are JSON, whose text is canonical), so that
    // every lookup below is a hash lookup: the table is linear in the runs
    let text = |k: &Key| serde_json::to_string(k).expect("a key serializes");
    let place = |r: &Record| (r.dataset.clone(), r.run.row.clone(), r.run.column.clone());
    let declared: Vec<Key> = records.iter().map(|r| group_key(&r.run.config)).collect();
    let declared_text: Vec<String> = declared.iter().map(text).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(Place, String), usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.metrics.is_empty() {
            continue;
        }
        let (p, key) = (place(r), group_key(r.settings()));
        match index.entry((p.clone(), text(&key))) {
            Entry::Occupied(e) => groups[*e.get()].members.push(i),
            Entry::Vacant(e) => {
                e.insert(groups.len());
                groups.push(Group {
                    place: p,
                    key,
                    members: vec![i],
                });
            }
        }
    }
    // declared runs alike to no run with results: missing cells. A run is covered where a group
    // of its place has a member declared alike, or is a missing cell of its declared settings.
    let mut covered: HashSet<(Place, String)> = groups
        .iter()
        .flat_map(|g| {
            g.members
                .iter()
                .map(|&m| (g.place.clone(), declared_text[m].clone()))
        })
        .collect();
    for (i, r) in records.iter().enumerate() {
        let p = place(r);
        if covered.insert((p.clone(), declared_text[i].clone())) {
            groups.push(Group {
                place: p,
                key: declared[i].clone(),
                members: vec![],
            });
        }
    }
    // per row, the settings that tell apart two groups of one place
    let get = |g: &Group, k: &str| -> Option<Value> {
        g.key.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let mut at_place: HashMap<&Place, Vec<usize>> = HashMap::new();
    for (a, g) in groups.iter().enumerate() {
        at_place.entry(&g.place).or_default().push(a);
    }
    let mut telling: HashMap<String, Vec<String>> = HashMap::new();
    for (a, ga) in groups.iter().enumerate() {
        for &b in at_place[&ga.place].iter().filter(|&&b| b > a) {
            let gb = &groups[b];
            let keys = telling.entry(ga.place.1.clone()).or_default();
            for (k, _) in ga.key.iter().chain(&gb.key) {
                if get(ga, k) != get(gb, k) && !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    for keys in telling.values_mut() {
        keys.sort();
    }
    // the seeds declared for each place and settings
    let mut seeds_of: HashMap<(Place, &str), Vec<u64>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        seeds_of
            .entry((place(r), declared_text[i].as_str()))
            .or_default()
            .push(r.run.seed);
    }
    groups
        .iter()
        .map(|g| {
            let (dataset, row, column) = g.place.clone();
            let label = telling.get(&row).map_or(String::new(), |keys| {
                keys.iter()
                    .map(|k| {
                        let v = get(g, k);
                        format!("{k}={}", v.map_or("none".into(), |v| value_text(&v)))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            // the seeds declared alike to this cell's runs
            let mut asked: Vec<String> = if g.members.is_empty() {
                vec![text(&g.key)]
            } else {
                g.members
                    .iter()
                    .map(|&m| declared_text[m].clone())
                    .collect()
            };
            asked.sort_unstable();
            asked.dedup();
            let mut seeds_declared: Vec<u64> = asked
                .iter()
                .filter_map(|k| seeds_of.get(&(g.place.clone(), k.as_str())))
                .flatten()
                .copied()
                .collect();
            seeds_declared.sort_unstable();
            seeds_declared.dedup();
            let mut cell = Cell {
                dataset,
                row,
                column,
                label,
                values: vec![],
                seeds: vec![],
                declared: 0,
                shortened: false,
                interrupted: false,
                diverged: false,
                members: vec![],
            };
            for &m in &g.members {
                let r = &records[m];
                if cell.seeds.contains(&r.run.seed) {
                    continue;
                }
                cell.seeds.push(r.run.seed);
                cell.values
                    .push(r.metrics.last().map_or(f64::NAN, |l| l.test_acc));
                cell.shortened |= r.shortened();
                cell.interrupted |= r.interrupted();
                cell.diverged |= r.diverged();
                cell.members.push(m);
            }
            cell.declared = seeds_declared.len().max(cell.seeds.len());
            cell
        })
        .collect()
}

fn row_rank(row: &str) -> usize {
    ROW_ORDER
        .iter()
        .position(|p| row.to_ascii_lowercase().starts_with(p))
        .unwrap_or(ROW_ORDER.len())
}

/// The header of the CSV table.
pub const CSV_HEADER: [&str; 11] = [
    "dataset",
    "row",
    "column",
    "settings",
    "mean",
    "std",
    "seeds",
    "declared",
    "shortened",
    "interrupted",
    "diverged",
];

/// (Markdown, CSV) of the table.
pub fn render(cells: &[Cell]) -> (String, String) {
    let mut datasets: Vec<String> = Vec::new();
    // a mean of 3 seeds beside one of 5: every cell says how many it has
    let mixed = cells.iter().any(|c| c.declared != cells[0].declared);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut seen_rows: HashSet<(&str, &str)> = HashSet::new();
    // each cell by its place, for the lookups below (linear in the cells)
    let mut at: HashMap<(&str, &str, &str, &str), &Cell> = HashMap::new();
    for c in cells {
        if !datasets.contains(&c.dataset) {
            datasets.push(c.dataset.clone());
        }
        if seen_rows.insert((&c.row, &c.label)) {
            rows.push((c.row.clone(), c.label.clone()));
        }
        at.entry((&c.dataset, &c.row, &c.label, &c.column))
            .or_insert(c);
    }
    rows.sort_by_key(|r| row_rank(&r.0));
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
    for (r, label) in &rows {
        let mut line = if label.is_empty() {
            format!("| {r} |")
        } else {
            format!("| {r} ({label}) |")
        };
        for d in &datasets {
            for col in &columns {
                let cell = at.get(&(d.as_str(), r.as_str(), label.as_str(), col.as_str()));
                let text = cell.map_or("n/a".to_string(), |c| c.text(mixed));
                line += &format!(" {text} |");
            }
        }
        md += &line;
        md.push('\n');
    }
    md += "\n";
    md += LEGEND;
    md.push('\n');
    let mut w = csv::Writer::from_writer(Vec::new());
    const IN_MEMORY: &str = "writing CSV to memory cannot fail";
    w.write_record(CSV_HEADER).expect(IN_MEMORY);
    for c in cells {
        let (m, sd) = c.stats().map_or((String::new(), String::new()), |(m, sd)| {
            (
                format!("{m:.6}"),
                sd.map_or(String::new(), |s| format!("{s:.6}")),
            )
        });
        w.write_record([
            c.dataset.clone(),
            c.row.clone(),
            c.column.clone(),
            c.label.clone(),
            m,
            sd,
            c.values.len().to_string(),
            c.declared.to_string(),
            c.shortened.to_string(),
            c.interrupted.to_string(),
            c.diverged.to_string(),
        ])
        .expect(IN_MEMORY);
    }
    let bytes = w.into_inner().expect(IN_MEMORY);
    let csv = String::from_utf8(bytes).expect("the table is UTF-8");
    (md, csv)
}
