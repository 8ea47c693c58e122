//! Every number the docs quote as "mean (sd)" comes from the committed runs: the test unpacks
//! `docs/results/runs/*.tar.gz`, computes the mean and sample sd (n − 1) over seeds of every
//! cell's test and train accuracy (%) and of its per-layer alignment angles (°) at every epoch —
//! over all its seeds, over seeds 1–3 (the three-seed sections) and over the seeds that did not
//! collapse to chance — and fails on any "m (s)" in `docs/*.md` that none of them gives at the
//! printed rounding. A quote of the superseded table (`docs/results/superseded-table.md`, whose
//! runs are not kept) must be in that table. That scan does not know which cell a quote names:
//! the tests below do, for every result table (cell by cell) and for the prose's claims
//! (differences, "k sds", clip fractions and censuses, angles, calibrated scales), each
//! recomputed from the runs; docs/theory.md's and docs/channels.md's numbers too. The audit
//! (`every_number_in_the_docs_is_checked`) closes the loop: every decimal and every number with
//! a %, ° or "sds" in the docs must lie in a quote one of these checks found, in a "mean (sd)",
//! in code, or be a setting or one of the few listed non-results (wall-clock times, defaults).

use super::published::unpack;
use rbprop::experiment::{results, table};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

/// The committed runs, unpacked once for the tests of this file.
fn runs() -> &'static (tempfile::TempDir, Vec<results::Record>) {
    static RUNS: OnceLock<(tempfile::TempDir, Vec<results::Record>)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(root().join("docs/results/runs")).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".tar.gz") {
                unpack(&p, tmp.path());
            }
        }
        let records = results::load(tmp.path()).unwrap();
        (tmp, records)
    })
}

/// What the checks of this file found in the docs: (file, whitespace-flattened quote). The audit
/// (`every_number_in_the_docs_is_checked`) needs each number of the docs to lie inside one.
static FOUND: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs a check once per test process: its own test and the audit share one run (a check
/// that fails is run again by the next caller, and fails there too).
fn once(check: fn()) {
    type Runs = Vec<(fn(), Arc<OnceLock<()>>)>;
    static RUNS: Mutex<Runs> = Mutex::new(Vec::new());
    let cell = {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        match runs.iter().find(|(f, _)| std::ptr::fn_addr_eq(*f, check)) {
            Some((_, cell)) => cell.clone(),
            None => {
                let cell = Arc::new(OnceLock::new());
                runs.push((check, cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(check);
}

/// Whether `text` says `quote` (both whitespace-flattened); recorded for the audit where it does.
fn says(file: &'static str, text: &str, quote: &str) -> bool {
    let q = flat(quote);
    let ok = flat(text).contains(&q);
    if ok {
        FOUND.lock().unwrap().push((file, q));
    }
    ok
}

pub(super) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
    (m, sd)
}

/// The mean of `v`.
fn m(v: &[f64]) -> f64 {
    mean_sd(v).0
}

/// The sample sd (n − 1) of `v`.
fn sd(v: &[f64]) -> f64 {
    mean_sd(v).1
}

/// The median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The epoch a "m (s)" is the value of; `LAST` for a subset's last epoch.
const LAST: usize = 0;

/// Every "m (s)" at one and two decimals that the committed runs give — of a cell's seeds, of
/// its seeds 1–3, or of the seeds that did not collapse to chance — with the epochs that give it
/// (1-based; [`LAST`] where it is the subset's last epoch).
fn derivable() -> HashMap<String, HashSet<usize>> {
    let (_, records) = runs();
    let mut out: HashMap<String, HashSet<usize>> = HashMap::new();
    for cell in table::cells(records) {
        let members: Vec<&results::Record> = cell.members.iter().map(|&m| &records[m]).collect();
        let seed = |r: &results::Record| r.run.seed;
        let mut subsets: Vec<Vec<&results::Record>> = vec![members.clone()];
        subsets.push(
            members
                .iter()
                .copied()
                .filter(|r| (1..=3).contains(&seed(r)))
                .collect(),
        );
        // the runs that learned, where some collapsed to chance (the docs quote "the others")
        let learned: Vec<&results::Record> = members
            .iter()
            .copied()
            .filter(|r| r.metrics.last().is_some_and(|m| m.test_acc > 0.11))
            .collect();
        if learned.len() < members.len() {
            subsets.push(learned);
        }
        for s in subsets.iter().filter(|s| s.len() >= 2) {
            let epochs = s.iter().map(|r| r.metrics.len()).min().unwrap();
            let layers = s[0].metrics[0].layers.as_ref().map_or(0, |l| l.len());
            for e in 0..epochs {
                let mut add = |v: Vec<f64>| {
                    if v.iter().any(|x| x.is_nan()) {
                        return;
                    }
                    let (m, sd) = mean_sd(&v);
                    for q in [format!("{m:.1} ({sd:.1})"), format!("{m:.2} ({sd:.2})")] {
                        let at = out.entry(q).or_default();
                        at.insert(e + 1);
                        if e + 1 == epochs {
                            at.insert(LAST);
                        }
                    }
                };
                add(s.iter().map(|r| 100.0 * r.metrics[e].test_acc).collect());
                add(s.iter().map(|r| 100.0 * r.metrics[e].train_acc).collect());
                for l in 0..layers {
                    let layer =
                        |r: &results::Record| r.metrics[e].layers.as_ref().map(|ls| ls[l].clone());
                    let ls: Vec<_> = s.iter().filter_map(|r| layer(r)).collect();
                    if ls.len() != s.len() {
                        continue;
                    }
                    add(ls.iter().map(|d| d.delta_angle).collect());
                    if ls.iter().all(|d| d.weight_angle.is_some()) {
                        add(ls.iter().map(|d| d.weight_angle.unwrap()).collect());
                    }
                }
            }
        }
    }
    out
}

/// Every "m (s)" of `text` (whitespace-flattened), with some words before it.
fn quoted_pairs(text: &str) -> Vec<(String, String)> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let b = flat.as_bytes();
    let number = |i: usize| -> Option<usize> {
        // digits, a point, digits: the end index
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == i || j >= b.len() || b[j] != b'.' {
            return None;
        }
        let k = j + 1;
        let mut e = k;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        (e > k).then_some(e)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts =
            b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.'));
        if starts && let Some(e) = number(i) {
            if flat[e..].starts_with(" (")
                && let Some(e2) = number(e + 2)
                && flat[e2..].starts_with(')')
            {
                let mut from = i.saturating_sub(100);
                while !flat.is_char_boundary(from) {
                    from -= 1;
                }
                out.push((flat[i..=e2].to_string(), flat[from..i].to_string()));
                i = e2 + 1;
                continue;
            }
            i = e;
            continue;
        }
        i += 1;
    }
    out
}

/// The epochs a document quotes: 1, 10, 100 and a run's last, and every N it names as `epoch N`,
/// `epochs N`, `epochs M–N` or as the first cell of a table row (`| 30 |`).
fn epochs_named(text: &str) -> HashSet<usize> {
    let mut out: HashSet<usize> = [LAST, 1, 10, 100].into();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let number = |s: &str| -> Option<usize> {
        let d: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        d.parse().ok()
    };
    for (i, _) in flat.match_indices("epoch") {
        let rest = flat[i + 5..].trim_start_matches('s').trim_start();
        if let Some(n) = number(rest) {
            out.insert(n);
            // a range: epochs 10–50
            let after = &rest[n.to_string().len()..];
            if let Some(m) = after.strip_prefix('–').and_then(number) {
                out.insert(m);
            }
        }
    }
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("| ").and_then(number)
            && line[2 + n.to_string().len()..].starts_with(" |")
        {
            out.insert(n);
        }
    }
    out
}

#[test]
fn every_mean_and_sd_in_the_docs_comes_from_the_committed_runs() {
    let known = derivable();
    let superseded: HashSet<String> = quoted_pairs(
        &std::fs::read_to_string(root().join("docs/results/superseded-table.md")).unwrap(),
    )
    .into_iter()
    .map(|(q, _)| q)
    .collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.push(root().join("README.md"));
    files.sort();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let epochs = epochs_named(&text);
        for (q, before) in quoted_pairs(&text) {
            checked += 1;
            let given = known
                .get(&q)
                .is_some_and(|at| at.iter().any(|e| epochs.contains(e)));
            if !(given || superseded.contains(&q)) {
                wrong.push(format!(
                    "{}: `{q}` (…{before}) is no cell's mean (sd) in the committed runs",
                    f.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        checked > 300,
        "only {checked} quotes found: the scanner is broken"
    );
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_finds_quotes_and_a_changed_digit_fails() {
    let pairs = quoted_pairs("RBP 88.02\n(0.16) and 52.9 (1.4) / 3 (4) but 1.2.3 (4.5)");
    let q: Vec<&str> = pairs.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(q, ["88.02 (0.16)", "52.9 (1.4)"]);
    let known = derivable();
    assert!(
        known["88.02 (0.16)"].contains(&100),
        "RBP's final accuracy (basic)"
    );
    // a last digit changed is no final accuracy
    assert!(
        known
            .get("88.02 (0.17)")
            .is_none_or(|at| !at.contains(&100) && !at.contains(&LAST))
    );
    let epochs = epochs_named("at epoch 30 and epochs 10–50\n| 80 | 88.1 (0.2) |\n| BP | 3 |");
    let want: HashSet<usize> = [LAST, 1, 10, 100, 30, 50, 80].into();
    assert_eq!(epochs, want);
}

/// The runs of one cell: experiment, row and column as the table names them, and the seeds
/// (all where empty).
fn cell<'a>(exp: &str, row: &str, column: &str, seeds: &[u64]) -> Vec<&'a results::Record> {
    let (_, records) = runs();
    let v: Vec<&results::Record> = records
        .iter()
        .filter(|r| r.experiment == exp && r.run.row == row && r.run.column == column)
        .filter(|r| seeds.is_empty() || seeds.contains(&r.run.seed))
        .collect();
    assert!(!v.is_empty(), "no runs of {exp} / {row} / {column}");
    v
}

/// Final test accuracies (%) of a cell of the basic grid (the MNIST protocol's nine algorithms).
fn basic(row: &str, col: &str, seeds: &[u64]) -> Vec<f64> {
    finals(&cell("basic", row, col, seeds))
}

/// Final test accuracies (%) of `runs`.
fn finals(runs: &[&results::Record]) -> Vec<f64> {
    runs.iter()
        .map(|r| 100.0 * r.metrics.last().unwrap().test_acc)
        .collect()
}

/// Per hidden layer, the mean over `runs` of `f` of the layer's diagnostics at `epoch` (1-based;
/// 0: the last).
fn layer_means(
    runs: &[&results::Record],
    epoch: usize,
    f: impl Fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64,
) -> Vec<f64> {
    let at = |r: &results::Record| {
        let e = if epoch == 0 { r.metrics.len() } else { epoch };
        r.metrics[e - 1].layers.clone().unwrap()
    };
    let n = at(runs[0]).len();
    (0..n)
        .map(|l| runs.iter().map(|r| f(&at(r)[l])).sum::<f64>() / runs.len() as f64)
        .collect()
}

/// The quotes a test expects in a document (whitespace-flattened: a quote may break across
/// lines); [`Quotes::check`] fails listing every one the document does not hold.
struct Quotes {
    name: &'static str,
    text: String,
    missing: Vec<String>,
}

impl Quotes {
    fn of(name: &'static str) -> Self {
        let text = std::fs::read_to_string(root().join(name)).unwrap();
        Quotes {
            name,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            missing: Vec::new(),
        }
    }

    fn want(&mut self, q: String) {
        if self.text.contains(&q) {
            FOUND.lock().unwrap().push((self.name, q));
        } else {
            self.missing.push(q);
        }
    }

    fn check(self) {
        assert!(
            self.missing.is_empty(),
            "{} does not quote what the runs give:\n{}",
            self.name,
            self.missing.join("\n")
        );
    }
}

/// "m (s)" at two decimals.
fn ms(v: &[f64]) -> String {
    let (m, s) = mean_sd(v);
    format!("{m:.2} ({s:.2})")
}

/// A range of values as the docs write it: `lo–hi` at `d` decimals (one number where equal).
fn range(v: &[f64], d: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (a, b) = (format!("{lo:.d$}"), format!("{hi:.d$}"));
    if a == b { a } else { format!("{a}–{b}") }
}

/// Claims that are differences, ratios to an sd, clip fractions and angles of single layers,
/// each recomputed from the committed runs; the docs must quote what the runs give. The "k sds"
/// convention is the docs': a difference over the larger sample sd of the two cells.
#[test]
fn derived_claims_are_recomputed_from_the_committed_runs() {
    once(derived_claims_are_recomputed_from_the_committed_runs_body);
}

fn derived_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    // sparsity: the all-ones matrix and its signed control
    let ones = finals(&cell("sparsity-sweep", "sparsity n=100", "SRBP", &[]));
    let signed = finals(&cell(
        "sparsity-sweep",
        "signed sparsity n=100",
        "SRBP",
        &[],
    ));
    let gap = mean_sd(&signed).0 - mean_sd(&ones).0;
    let larger = mean_sd(&signed).1.max(mean_sd(&ones).1);
    want(format!(
        "learns ({}, {gap:.2} points above, {:.0} times the larger sd)",
        ms(&signed),
        gap / larger
    ));
    // sparsity: which n end within one sd of dense SRBP (its seeds 1–3)
    let dense = finals(&cell("basic", "baseline", "SRBP", &[1, 2, 3]));
    let sweep = |pre: &str, n: u32| {
        finals(&cell(
            "sparsity-sweep",
            &format!("{pre} n={n}"),
            "SRBP",
            &[],
        ))
    };
    let within = |v: &[f64]| {
        let (m, s) = mean_sd(v);
        (m - mean_sd(&dense).0).abs() <= s.max(mean_sd(&dense).1)
    };
    let zero_one: Vec<Vec<f64>> = [8, 16, 32].iter().map(|&n| sweep("sparsity", n)).collect();
    assert!(
        zero_one.iter().all(|v| within(v)),
        "a 0/1 cell from n = 8 on is off dense SRBP"
    );
    let signed_on: Vec<Vec<f64>> = [16, 32]
        .iter()
        .map(|&n| sweep("signed sparsity", n))
        .collect();
    assert!(signed_on.iter().all(|v| within(v)));
    let s8 = sweep("signed sparsity", 8);
    assert!(
        !within(&s8),
        "signed n = 8 is within one sd of dense SRBP: say so"
    );
    let means = |vs: &[Vec<f64>]| vs.iter().map(|v| mean_sd(v).0).collect::<Vec<_>>();
    want(format!(
        "From n = 8 on the 0/1 cells are within one sd of dense SRBP ({} against {}, seeds 1–3), the signed ones from n = 16 on ({}); signed n = 8 ends {:.2} below ({:.1} times the larger sd, {:.2}).",
        range(&means(&zero_one), 2),
        ms(&dense),
        range(&means(&signed_on), 2),
        mean_sd(&dense).0 - mean_sd(&s8).0,
        (mean_sd(&dense).0 - mean_sd(&s8).0) / mean_sd(&s8).1.max(mean_sd(&dense).1),
        mean_sd(&s8).1.max(mean_sd(&dense).1),
    ));
    // the quantized-error control with α = 0.01: what it clips, at the end and at its most
    let widths: Vec<Vec<&results::Record>> = ["2", "3", "4"]
        .iter()
        .map(|b| {
            cell(
                "quantized-error-control",
                &format!("quantize-signal b={b}, α=0.01"),
                "RBP",
                &[],
            )
        })
        .collect();
    let control: Vec<&results::Record> = widths.iter().flatten().copied().collect();
    let clipped = |r: &results::Record, e: usize, l: usize| {
        100.0
            * r.metrics[e].layers.as_ref().unwrap()[l]
                .signal_clipped
                .unwrap()
    };
    let top = 3;
    // per width, the mean over seeds of each layer's clipped % at epoch 100
    let at_end: Vec<Vec<f64>> = widths
        .iter()
        .map(|runs| {
            layer_means(runs, 0, |d| d.signal_clipped.unwrap())
                .iter()
                .map(|v| 100.0 * v)
                .collect()
        })
        .collect();
    let end_top: Vec<f64> = at_end.iter().map(|l| l[top]).collect();
    let end_lower = at_end
        .iter()
        .flat_map(|l| l[..top].iter().copied())
        .fold(0.0, f64::max);
    let most = |l: usize| {
        control
            .iter()
            .flat_map(|r| (0..r.metrics.len()).map(move |e| clipped(r, e, l)))
            .fold(0.0, f64::max)
    };
    want(format!(
        "while α = 0.01 clips {} % of the top hidden layer's entries at epoch 100 (mean of the seeds; up to {:.0} % in a run's first epochs) and at most {:.1} % of the lower layers' (up to {:.0} % early in training",
        range(&end_top, 0),
        most(top),
        end_lower,
        (0..top).map(most).fold(0.0, f64::max),
    ));
    // quantized updates at 8 bits, nearest rounding: the δ angles against float updates
    let angles = |exp: &str, row: &str, col: &str| {
        layer_means(&cell(exp, row, col, &[]), 0, |d| d.delta_angle)
    };
    let float = |col: &str| {
        angles(
            "quantized-update-control",
            "float updates, constant lr",
            col,
        )
    };
    let b8 = |col: &str| angles("quantized-update", "quantize-update b=8", col);
    let diff = |col: &str| {
        b8(col)
            .iter()
            .zip(float(col))
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>()
    };
    let degrees = |v: &[f64]| {
        v.iter()
            .map(|a| format!("{a:.0}°"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (rd, sd) = (diff("RBP"), diff("SRBP"));
    want(format!(
        "at 8 bits nearest {}° further from BP's for RBP ({}) and {}° for SRBP in layers 1–3, but {:.1}° in its layer 4 ({:.0}° against {:.0}°)",
        range(&rd, 1),
        degrees(&b8("RBP")),
        range(&sd[..3], 1),
        sd[3],
        b8("SRBP")[3],
        float("SRBP")[3],
    ));
    // the conv control: the δ angles of the conv layers apart from the fc layer
    let conv = |col: &str| angles("conv-quantized-control", "quantize-signal b=2, α=0.05", col);
    let (cb, cr, cs) = (conv("BP"), conv("RBP"), conv("SRBP"));
    want(format!(
        "The δ that reaches the three conv layers is {}° from BP's for BP, {}° for RBP and {}° for SRBP at the last epoch; at the 64-unit fc layer {:.0}°, {:.0}° and {:.0}°",
        range(&cb[..3], 0),
        range(&cr[..3], 0),
        range(&cs[..3], 0),
        cb[3],
        cr[3],
        cs[3],
    ));
    // the verdict table's differences and their sizes in sds
    let at = |exp: &str, row: &str, col: &str, epoch: usize| -> Vec<f64> {
        cell(exp, row, col, &[])
            .iter()
            .map(|r| 100.0 * r.metrics[epoch - 1].test_acc)
            .collect()
    };
    // a - b and its size in sds, at `d` decimals
    let gap = |a: &[f64], b: &[f64]| {
        let (ma, sa) = mean_sd(a);
        let (mb, sb) = mean_sd(b);
        (ma - mb, (ma - mb) / sa.max(sb))
    };
    let (s10, r10) = (
        at("basic", "baseline", "SRBP", 10),
        at("basic", "baseline", "RBP", 10),
    );
    want(format!(
        "ahead at epoch 10, {} vs {}, {:.1} sds",
        ms(&s10),
        ms(&r10),
        gap(&s10, &r10).1
    ));
    let b10 = at("basic", "baseline", "BP", 10);
    let ((dr, kr), (ds, ks)) = (gap(&b10, &r10), gap(&b10, &s10));
    want(format!(
        "after ten epochs {dr:.2} and {ds:.2} points below BP, {kr:.1} and {ks:.1} times the largest sd"
    ));
    let (bp, sbp) = (
        finals(&cell("basic", "baseline", "BP", &[])),
        finals(&cell("basic", "skipped BP (SBP)", "BP", &[])),
    );
    let (d, k) = gap(&bp, &sbp);
    want(format!("SBP {}, {d:.2} below BP ({k:.1} sds)", ms(&sbp)));
    let (rbp, r05) = (
        finals(&cell("basic", "baseline", "RBP", &[])),
        finals(&cell("dropout", "channel-dropout r=0.5", "RBP", &[])),
    );
    let (d, k) = gap(&rbp, &r05);
    want(format!(
        "RBP r = 0.5 {}, {d:.2} below (≈ {k:.0} sds)",
        ms(&r05)
    ));
    let r8 = finals(&cell("quantized-error", "quantize-signal b=8", "RBP", &[]));
    let (d, k) = gap(&rbp, &r8);
    want(format!("RBP {}, {d:.2} below ({k:.1} sds)", ms(&r8)));
    let leads: Vec<(f64, f64)> = [10, 30, 50]
        .iter()
        .map(|&e| {
            gap(
                &at("adaptive", "adaptive", "RBP", e),
                &at("basic", "baseline", "RBP", e),
            )
        })
        .collect();
    let (ds, ks): (Vec<f64>, Vec<f64>) = leads.into_iter().unzip();
    want(format!(
        "ARBP's lead at epochs 10–50 is {}, at most {:.1} sds",
        range(&ds, 2),
        ks.iter().copied().fold(0.0, f64::max)
    ));
    want(format!(
        "From epoch 10 to 50 ARBP is {} points above RBP, {} times the larger of the two sds",
        range(&ds, 2),
        range(&ks, 1).replace('–', " to ")
    ));
    // the paper's fixed-α protocol for the error signal against the calibrated rows (seeds 1–3)
    let fixed = |col: &str, b: u32| -> Vec<f64> {
        let row = format!("quantize-signal b={b}, α=0.1");
        let exp = match (col, b) {
            ("RBP", 2..=4) => "quantized-error-control",
            ("SRBP", 2) => "quantized-error",
            _ => "quantized-error-fixed",
        };
        finals(&cell(exp, &row, col, &[1, 2, 3]))
    };
    let calibrated = |col: &str, b: u32| {
        finals(&cell(
            "quantized-error",
            &format!("quantize-signal b={b}"),
            col,
            &[1, 2, 3],
        ))
    };
    let widths = [1, 2, 3, 4, 8];
    let plateau: Vec<f64> = widths[..4]
        .iter()
        .map(|&b| mean_sd(&fixed("RBP", b)).0)
        .collect();
    want(format!(
        "RBP holds {} from 1 to 4 bits and jumps to {:.2} at 8",
        range(&plateau, 2),
        mean_sd(&fixed("RBP", 8)).0
    ));
    let bp_cost: Vec<f64> = widths
        .iter()
        .map(|&b| mean_sd(&calibrated("BP", b)).0 - mean_sd(&fixed("BP", b)).0)
        .collect();
    let bp8 = cell(
        "quantized-error-fixed",
        "quantize-signal b=8, α=0.1",
        "BP",
        &[],
    );
    let clip: Vec<f64> = layer_means(&bp8, 0, |d| d.signal_clipped.unwrap())
        .iter()
        .map(|v| 100.0 * v)
        .collect();
    want(format!(
        "{} below the calibrated rows at every width, 8 bits included, where α = 0.1 clips {} % of each hidden layer's signal entries",
        range(&bp_cost, 2),
        range(&clip, 1)
    ));
    let srbp_gain: Vec<f64> = [2, 3, 4]
        .iter()
        .map(|&b| mean_sd(&fixed("SRBP", b)).0 - mean_sd(&calibrated("SRBP", b)).0)
        .collect();
    want(format!(
        "SRBP's fixed-α rows are {} above its calibrated ones from 2 to 4 bits and {:.2} below at 1 bit",
        range(&srbp_gain, 2),
        mean_sd(&calibrated("SRBP", 1)).0 - mean_sd(&fixed("SRBP", 1)).0
    ));
    // the paper's fixed-α protocol for the updates: the cost against float updates
    let float_upd = |col: &str| {
        finals(&cell(
            "quantized-update-control",
            "float updates, constant lr",
            col,
            &[],
        ))
    };
    let fixed_upd = |col: &str, b: u32| {
        let (exp, row) = match (col, b) {
            ("RBP", 4) => (
                "quantized-update-scale-control",
                "quantize-update b=4, α=0.01",
            ),
            _ => ("quantized-update-fixed", ""),
        };
        let row = if row.is_empty() {
            format!("quantize-update b={b}, α=0.01")
        } else {
            row.to_string()
        };
        finals(&cell(exp, &row, col, &[]))
    };
    let cost = |col: &str, b: u32| mean_sd(&float_upd(col)).0 - mean_sd(&fixed_upd(col, b)).0;
    want(format!(
        "at 8 bits BP ends {:.2}, SRBP {:.2} and RBP {:.2} points below float updates",
        cost("BP", 8),
        cost("SRBP", 8),
        cost("RBP", 8)
    ));
    want(format!(
        "(BP {:.2}, SRBP {:.2}, RBP {:.2} below float)",
        cost("BP", 4),
        cost("SRBP", 4),
        cost("RBP", 4)
    ));
    // every hidden layer of the three channels at 8 bits, epoch 100: % zero, % clipped
    let census8 = |f: fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64| -> Vec<f64> {
        ["BP", "RBP", "SRBP"]
            .iter()
            .flat_map(|col| {
                let runs = cell(
                    "quantized-update-fixed",
                    "quantize-update b=8, α=0.01",
                    col,
                    &[],
                );
                layer_means(&runs, 0, f)
            })
            .map(|v| 100.0 * v)
            .collect()
    };
    let zero8 = census8(|d| d.update_zero.unwrap());
    let clipped8 = census8(|d| d.update_clipped.unwrap())
        .into_iter()
        .fold(0.0, f64::max);
    want(format!(
        "round to zero ({} % at 8 bits, epoch 100), and at most {:.1} % are clipped",
        range(&zero8, 1),
        clipped8
    ));
    // BP and SRBP rise step by step with the width under the fixed α
    for col in ["BP", "SRBP"] {
        let m: Vec<f64> = widths.iter().map(|&b| mean_sd(&fixed(col, b)).0).collect();
        assert!(m.windows(2).all(|w| w[0] < w[1]), "{col} fixed α: {m:?}");
    }
    quotes.check();
}

/// Per hidden layer, the values of `f` over `runs` at `epoch` (1-based; 0: the last).
fn layer_values(
    runs: &[&results::Record],
    epoch: usize,
    f: impl Fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64,
) -> Vec<Vec<f64>> {
    let at = |r: &results::Record| {
        let e = if epoch == 0 { r.metrics.len() } else { epoch };
        r.metrics[e - 1].layers.clone().unwrap()
    };
    let n = at(runs[0]).len();
    (0..n)
        .map(|l| runs.iter().map(|r| f(&at(r)[l])).collect())
        .collect()
}

/// Angles as the prose lists them: `58°, 60°, 56°, 41°`.
fn degrees(v: &[f64]) -> String {
    v.iter()
        .map(|a| format!("{a:.0}°"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The alignment angles the prose of docs/reproducing.md quotes (δ to BP's δ, C to Wᵀ, per
/// hidden layer, bottom first), each recomputed from the committed runs' diagnostics.
#[test]
fn angle_claims_are_recomputed_from_the_committed_runs() {
    once(angle_claims_are_recomputed_from_the_committed_runs_body);
}

fn angle_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let delta = |exp: &str, row: &str, col: &str, seeds: &[u64], epoch: usize| {
        layer_means(&cell(exp, row, col, seeds), epoch, |d| d.delta_angle)
    };
    // the quantized error signal at epoch 100: RBP by width, its fixed-α controls, SRBP, BP
    let qe = |b: u32, col: &str| {
        delta(
            "quantized-error",
            &format!("quantize-signal b={b}"),
            col,
            &[],
            0,
        )
    };
    want(format!(
        "RBP 8 bits {}; RBP 4 bits {}; 2 bits {}",
        degrees(&qe(8, "RBP")),
        degrees(&qe(4, "RBP")),
        degrees(&qe(2, "RBP"))
    ));
    let controls: Vec<f64> = [2, 3, 4]
        .iter()
        .flat_map(|b| {
            ["0.01", "0.1"].map(|a| {
                delta(
                    "quantized-error-control",
                    &format!("quantize-signal b={b}, α={a}"),
                    "RBP",
                    &[],
                    0,
                )
            })
        })
        .flat_map(|l| l[..3].to_vec())
        .collect();
    want(format!(
        "the fixed-α controls stay at {}° there",
        range(&controls, 0)
    ));
    let acc = |b: u32, col: &str| {
        mean_sd(&finals(&cell(
            "quantized-error",
            &format!("quantize-signal b={b}"),
            col,
            &[],
        )))
        .0
    };
    want(format!(
        "keeps {}° at 4 bits ({:.2}) and {}° at 2 bits ({:.2}); BP, which chains like RBP but through Wᵀ, keeps {}° at 4 bits",
        range(&qe(4, "SRBP"), 0),
        acc(4, "SRBP"),
        range(&qe(2, "SRBP"), 0),
        acc(2, "SRBP"),
        range(&qe(4, "BP"), 0)
    ));
    // quantized updates: float updates at a constant rate, 4-bit nearest, 4-bit stochastic
    let float = |col: &str, epoch: usize| {
        delta(
            "quantized-update-control",
            "float updates, constant lr",
            col,
            &[],
            epoch,
        )
    };
    let qu = |row: &str, col: &str, epoch: usize| delta("quantized-update", row, col, &[], epoch);
    want(format!(
        "RBP's δ aligns, from {}° at epoch 1 to {} at epoch 100 (hidden layers 1–4, bottom first; SRBP {}° → {}°)",
        range(&float("RBP", 1), 0),
        degrees(&float("RBP", 0)),
        range(&float("SRBP", 1), 0),
        range(&float("SRBP", 0), 0)
    ));
    let b4 = "quantize-update b=4";
    want(format!(
        "RBP {}° → {}; SRBP {}° → {}°",
        range(&qu(b4, "RBP", 1), 0),
        degrees(&qu(b4, "RBP", 0)),
        range(&qu(b4, "SRBP", 1), 0),
        range(&qu(b4, "SRBP", 0), 0)
    ));
    let st = "quantize-update b=4, stochastic";
    want(format!(
        "(RBP {}; SRBP {}°)",
        degrees(&qu(st, "RBP", 0)),
        range(&qu(st, "SRBP", 0), 0)
    ));
    // "within a degree" of the float angles
    for col in ["RBP", "SRBP"] {
        let gap = qu(st, col, 0)
            .iter()
            .zip(float(col, 0))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(gap < 1.0, "{col}: stochastic 4-bit δ {gap:.2}° from float");
    }
    // the scale control: its first hidden layer at epoch 100
    let first = |a: &str, f: fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64| {
        let runs = cell(
            "quantized-update-scale-control",
            &format!("quantize-update b=4, α={a}"),
            "RBP",
            &[],
        );
        layer_means(&runs, 0, f)[0]
    };
    want(format!(
        "its first hidden layer still rounds {:.1} % and {:.1} % of the per-example entries to zero and its δ stays {}° from BP's there",
        100.0 * first("0.01", |d| d.update_zero.unwrap()),
        100.0 * first("0.003", |d| d.update_zero.unwrap()),
        range(
            &[
                first("0.01", |d| d.delta_angle),
                first("0.003", |d| d.delta_angle)
            ],
            0
        )
    ));
    // the alignment runs: where the angles start and end
    let align = |row: &str, col: &str| cell("alignment", row, col, &[]);
    let random = [
        ("alignment", "RBP"),
        ("alignment adaptive", "RBP"),
        ("alignment", "SRBP"),
        ("alignment adaptive", "SRBP"),
    ];
    let starts: Vec<f64> = random
        .iter()
        .flat_map(|(row, col)| layer_means(&align(row, col), 1, |d| d.delta_angle))
        .collect();
    want(format!(
        "all δ angles start at {}° and fall",
        range(&starts, 0)
    ));
    let rbp = align("alignment", "RBP");
    let rd = layer_means(&rbp, 0, |d| d.delta_angle);
    let rc = layer_means(&rbp, 0, |d| d.weight_angle.unwrap());
    want(format!("({:.0}° for δ, {:.0}° for C)", rd[3], rc[3]));
    want(format!(
        "C stays at {}° from Wᵀ while δ comes to {}° from BP's",
        range(&rc[..3], 0),
        range(&rd[..3], 0)
    ));
    // the adaptive channels: per layer, how much nearer, in degrees and in sds
    let nearer = |plain: &[&results::Record],
                  adaptive: &[&results::Record],
                  f: fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64| {
        layer_values(plain, 0, f)
            .iter()
            .zip(layer_values(adaptive, 0, f))
            .map(|(p, a)| {
                let ((mp, sp), (ma, sa)) = (mean_sd(p), mean_sd(&a));
                (mp - ma, (mp - ma) / sp.max(sa))
            })
            .collect::<Vec<_>>()
    };
    let list = |v: &[f64]| {
        let t: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
        format!("{} and {}", t[..t.len() - 1].join(", "), t[t.len() - 1])
    };
    let arbp = align("alignment adaptive", "RBP");
    let dd = nearer(&rbp, &arbp, |d| d.delta_angle);
    let cc = nearer(&rbp, &arbp, |d| d.weight_angle.unwrap());
    let (d_deg, d_k): (Vec<f64>, Vec<f64>) = dd.into_iter().unzip();
    let (c_deg, c_k): (Vec<f64>, Vec<f64>) = cc.into_iter().unzip();
    want(format!(
        "ARBP's δ is {}° nearer BP's than RBP's (layers 1–4; {} times the larger sd) and its C {}° nearer Wᵀ ({} sds)",
        list(&d_deg),
        list(&d_k),
        range(&c_deg, 1),
        range(&c_k, 0).replace('–', " to ")
    ));
    let srbp = align("alignment", "SRBP");
    let asrbp = align("alignment adaptive", "SRBP");
    let (s_deg, s_k): (Vec<f64>, Vec<f64>) =
        nearer(&srbp, &asrbp, |d| d.delta_angle).into_iter().unzip();
    want(format!(
        "ASRBP's δ is {:.1} and {:.1}° nearer than SRBP's in layers 3 and 4 ({:.1} and {:.1} sds), while in layers 1 and 2 the gaps ({:.1}°, {:.1}°) are within 1.5 sds",
        s_deg[2], s_deg[3], s_k[2], s_k[3], s_deg[0], s_deg[1]
    ));
    assert!(s_k[..2].iter().all(|k| k.abs() < 1.5), "{s_k:?}");
    // float updates at a constant rate against the alignment runs of the same seeds
    let slash = |v: &[f64]| {
        v.iter()
            .map(|a| format!("{a:.1}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let seeds = [1, 2, 3];
    let mut worst: f64 = 0.0;
    let mut quote = Vec::new();
    for col in ["RBP", "SRBP"] {
        let c = float(col, 0);
        let a = delta("alignment", "alignment", col, &seeds, 0);
        worst = c
            .iter()
            .zip(&a)
            .map(|(x, y)| (x - y).abs())
            .fold(worst, f64::max);
        quote.push(format!("{col} {}° against {}°", slash(&c), slash(&a)));
    }
    want(format!("within {worst:.1}° ({})", quote.join("; ")));
    quotes.check();
}

/// The census claims the prose quotes (the share of entries a quantizer rounds to zero or
/// clips), each recomputed from the committed runs' diagnostics.
#[test]
fn census_claims_are_recomputed_from_the_committed_runs() {
    once(census_claims_are_recomputed_from_the_committed_runs_body);
}

fn census_claims_are_recomputed_from_the_committed_runs_body() {
    use rbprop::channel::diagnostics::LayerDiagnostics;
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    // per hidden layer, the mean over the seeds, in %, at `epoch` (0: the last)
    let pct =
        |exp: &str, row: &str, col: &str, epoch: usize, f: fn(&LayerDiagnostics) -> Option<f64>| {
            layer_means(&cell(exp, row, col, &[]), epoch, |d| f(d).unwrap())
                .iter()
                .map(|v| 100.0 * v)
                .collect::<Vec<f64>>()
        };
    // quantized updates: the share rounded to zero, over the nearest and stochastic cells of a width
    let zero = |b: u32, cols: &[&str], epoch: usize| -> Vec<f64> {
        ["", ", stochastic"]
            .iter()
            .flat_map(|r| {
                cols.iter().flat_map(move |c| {
                    pct(
                        "quantized-update",
                        &format!("quantize-update b={b}{r}"),
                        c,
                        epoch,
                        |d| d.update_zero,
                    )
                })
            })
            .collect()
    };
    let rbp_first = pct("quantized-update", "quantize-update b=4", "RBP", 0, |d| {
        d.update_zero
    })[0];
    want(format!(
        "at epoch 100 BP {} %, SRBP {} %, RBP {} % (its first hidden layer {rbp_first:.1} %)",
        range(&zero(4, &["BP"], 0), 0),
        range(&zero(4, &["SRBP"], 0), 0),
        range(&zero(4, &["RBP"], 0), 0),
    ));
    let all = ["BP", "RBP", "SRBP"];
    want(format!(
        "nor do {} % at 8 bits and {} % at 16 bits cost anything",
        range(&zero(8, &all, 0), 0),
        range(&zero(16, &all, 0), 0)
    ));
    let first16: Vec<f64> = ["BP", "RBP", "SRBP"]
        .iter()
        .map(|c| {
            pct("quantized-update", "quantize-update b=16", c, 1, |d| {
                d.update_zero
            })[0]
        })
        .collect();
    want(format!(
        "about {} % of its entries, as the 16-bit rows show at epoch 1",
        range(&first16, 0)
    ));
    // the α ablation: what α = 0.1 clips, every run, layer and epoch
    let clipped: Vec<f64> = cell("quantized-error", "quantize-signal b=2, α=0.1", "SRBP", &[])
        .iter()
        .flat_map(|r| &r.metrics)
        .flat_map(|m| m.layers.as_ref().unwrap())
        .map(|l| 100.0 * l.signal_clipped.unwrap())
        .collect();
    want(format!(
        "although it clips {} % of the entries (logged, per layer and epoch)",
        range(&clipped, 1)
    ));
    // the conv control at its last epoch: zeros of the pooled layers, clipping, the fc layer
    let conv = |col: &str, f: fn(&LayerDiagnostics) -> Option<f64>| {
        pct(
            "conv-quantized-control",
            "quantize-signal b=2, α=0.05",
            col,
            0,
            f,
        )
    };
    let pooled_zero: Vec<f64> = ["BP", "RBP"]
        .iter()
        .flat_map(|c| conv(c, |d| d.signal_zero)[..3].to_vec())
        .collect();
    let pooled_clip: Vec<f64> = ["BP", "RBP"]
        .iter()
        .flat_map(|c| conv(c, |d| d.signal_clipped)[..3].to_vec())
        .collect();
    let fc_clip: Vec<f64> = all
        .iter()
        .map(|c| conv(c, |d| d.signal_clipped)[3])
        .collect();
    let srbp_zero = conv("SRBP", |d| d.signal_zero);
    assert!(
        srbp_zero.iter().all(|&z| z == 0.0),
        "SRBP's conv zeros {srbp_zero:?}"
    );
    want(format!(
        "in BP and RBP {} % of each pooled layer's signal entries are exactly zero",
        range(&pooled_zero, 0)
    ));
    want(format!(
        "at most {:.2} % are clipped",
        pooled_clip.iter().copied().fold(0.0, f64::max)
    ));
    want(format!(
        "the 64-unit fc layer clips {} %",
        range(&fc_clip, 0)
    ));
    quotes.check();
}

/// The calibrated scales of a run (its checkpoint's `quantize.{which}.alpha`, one per layer that
/// quantizes), recomputed: the published tarballs leave the checkpoints out, and a scale is fixed
/// at the first step, so one epoch of the run's own settings on the full data (`dir`) gives it.
fn calibrated_scales(r: &results::Record, dir: &str, which: &str) -> Vec<f32> {
    let mut config = r.config.clone().expect("a run's settings");
    config.data = dir.to_string();
    config.epochs = 1;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("config.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let out = tmp.path().join("run");
    let o = super::cli::rbp(&[
        "train",
        "--config",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(&format!("quantize.{which}.alpha")).unwrap();
    t.data()
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The calibrated scales the prose quotes, recomputed (opt-in: RBP_FASHION_MNIST, the full
/// Fashion-MNIST the runs trained on; CI sets it).
#[test]
fn calibrated_scales_in_the_docs_are_recomputed() {
    once(calibrated_scales_in_the_docs_are_recomputed_body);
}

fn calibrated_scales_in_the_docs_are_recomputed_body() {
    let Ok(dir) = std::env::var("RBP_FASHION_MNIST") else {
        eprintln!("skipped: RBP_FASHION_MNIST is not set");
        return;
    };
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let span = |v: &[f64], d: usize| range(v, d);
    // the error signal's scales, RBP seed 1, b = 2–8: every hidden layer
    let signal: Vec<f64> = [2, 3, 4, 8]
        .iter()
        .flat_map(|b| {
            let r = cell(
                "quantized-error",
                &format!("quantize-signal b={b}"),
                "RBP",
                &[1],
            )[0];
            calibrated_scales(r, &dir, "signal")
        })
        .map(f64::from)
        .collect();
    want(format!(
        "instead of the calibrated scales ({} per layer at b = 2–8, seed 1",
        span(&signal, 2)
    ));
    want(format!(
        "α = 0.1 for every hidden layer ({} times below the calibrated scales)",
        span(&signal.iter().map(|a| a / 0.1).collect::<Vec<_>>(), 0).replace('–', " to ")
    ));
    // the updates' scales, b = 4, seeds 1–3, the three channels: hidden layers and the output
    let (mut hidden, mut output) = (Vec::new(), Vec::new());
    let (mut rbp_hidden, mut rbp_output) = (Vec::new(), Vec::new());
    for col in ["BP", "RBP", "SRBP"] {
        for r in cell("quantized-update", "quantize-update b=4", col, &[1, 2, 3]) {
            let a = calibrated_scales(r, &dir, "update");
            let (h, o) = a.split_at(a.len() - 1);
            hidden.extend(h.iter().map(|&v| f64::from(v)));
            output.push(f64::from(o[0]));
            if col == "RBP" {
                rbp_hidden.extend(h.iter().map(|&v| f64::from(v)));
                rbp_output.push(f64::from(o[0]));
            }
        }
    }
    want(format!(
        "(RBP, 4 bits, α fixed at 0.01 and 0.003 instead of the calibrated ≈ {:.2})",
        mean_sd(&rbp_hidden).0
    ));
    want(format!(
        "to the output layer, whose calibrated scale is {}, so at 0.003",
        span(&rbp_output, 3)
    ));
    want(format!(
        "(the calibrated hidden-layer scales are ≈ {:.2})",
        mean_sd(&hidden).0
    ));
    want(format!(
        "The calibrated scales (from the runs' checkpoints, seeds 1–3): {} in the four hidden layers, {} in the output layer",
        span(&hidden, 3),
        span(&output, 3)
    ));
    // the conv net's error-signal scales, RBP seed 1 (two threads: the same numbers, sooner)
    let mut conv = cell("conv-fashion-mnist", "quantize-signal b=2", "RBP", &[1])[0].clone();
    if let Some(c) = conv.config.as_mut() {
        c.threads = 2;
    }
    let conv_scales: Vec<f64> = calibrated_scales(&conv, &dir, "signal")
        .into_iter()
        .map(f64::from)
        .collect();
    want(format!(
        "A control fixes α = 0.05, {} times below the calibrated scales ({} per layer for RBP seed 1, from its checkpoint)",
        span(&conv_scales.iter().map(|a| a / 0.05).collect::<Vec<_>>(), 1).replace('–', " to "),
        span(&conv_scales, 2)
    ));
    // a 4-bit mid-tread step is α/7
    want(format!(
        "so a 4-bit step (α/7) is ≈ {} in the hidden layers",
        span(&hidden.iter().map(|a| a / 7.0).collect::<Vec<_>>(), 3)
    ));
    let fixed = 1.0 / 16.0;
    let lo = hidden.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = hidden.iter().copied().fold(0.0, f64::max);
    want(format!(
        "(α = 2⁻⁴ fixed, {:.1}–{:.1} times the calibrated hidden-layer scales",
        fixed / hi,
        fixed / lo
    ));
    quotes.check();
}

/// The differences the basic section's prose quotes, recomputed (differences of unrounded means,
/// "k sds" over the larger or largest sample sd, as the docs say once).
#[test]
fn basic_section_claims_are_recomputed_from_the_committed_runs() {
    once(basic_section_claims_are_recomputed_from_the_committed_runs_body);
}

fn basic_section_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let [bp, rbp, srbp] = ["BP", "RBP", "SRBP"].map(|c| basic("baseline", c, &[]));
    want(format!(
        "{:.2} and {:.2} points below, within one sd",
        m(&bp) - m(&rbp),
        m(&bp) - m(&srbp)
    ));
    for v in [&rbp, &srbp] {
        assert!(m(&bp) - m(v) <= mean_sd(v).1.max(mean_sd(&bp).1));
    }
    let s3 = [1, 2, 3];
    let (bp3, rbp3, srbp3) = (
        basic("baseline", "BP", &s3),
        basic("baseline", "RBP", &s3),
        basic("baseline", "SRBP", &s3),
    );
    want(format!(
        "(Seeds 1–3 alone put them {:.2} and {:.2} below",
        m(&bp3) - m(&rbp3),
        m(&bp3) - m(&srbp3)
    ));
    want(format!(
        "RBP and SRBP are {:.2} apart",
        (m(&rbp) - m(&srbp)).abs()
    ));
    // the training set at epoch 100
    let train = |col: &str| {
        let v: Vec<f64> = cell("basic", "baseline", col, &[])
            .iter()
            .map(|r| 100.0 * r.metrics.last().unwrap().train_acc)
            .collect();
        m(&v)
    };
    want(format!(
        "({:.1} and {:.1} % against BP's {:.1} %)",
        train("RBP"),
        train("SRBP"),
        train("BP")
    ));
    // without f'
    let nof: Vec<f64> = ["BP", "RBP", "SRBP"]
        .iter()
        .map(|c| m(&basic("no-f'", c, &[])))
        .collect();
    let with: Vec<f64> = [&bp, &rbp, &srbp].iter().map(|v| m(v)).collect();
    let top = m(&basic("top-only", "BP", &[]));
    let below: Vec<f64> = with.iter().zip(&nof).map(|(w, n)| w - n).collect();
    let under_top: Vec<f64> = nof.iter().map(|n| top - n).collect();
    want(format!(
        "end at {:.2}, {:.2} and {:.2} %, {} points below their channels and {} points below top-only's",
        nof[0],
        nof[1],
        nof[2],
        range(&below, 0).replace('–', " to "),
        range(&under_top, 0).replace('–', " to ")
    ));
    // SBP: the epoch-10 lead over its final accuracy
    let sbp10: Vec<f64> = cell("basic", "skipped BP (SBP)", "BP", &[])
        .iter()
        .map(|r| 100.0 * r.metrics[9].test_acc)
        .collect();
    let sbp = basic("skipped BP (SBP)", "BP", &[]);
    let lead = m(&sbp10) - m(&sbp);
    want(format!("is {lead:.2} above its final one (under two sds"));
    assert!(lead < 2.0 * mean_sd(&sbp10).1.max(mean_sd(&sbp).1));
    quotes.check();
}

/// The differences the sparse, feedback-distribution and channel-dropout sections' prose quotes,
/// recomputed from the runs.
#[test]
fn sparse_feedback_and_dropout_claims_are_recomputed_from_the_committed_runs() {
    once(sparse_feedback_and_dropout_claims_are_recomputed_from_the_committed_runs_body);
}

fn sparse_feedback_and_dropout_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let dense = |col: &str, seeds: &[u64]| finals(&cell("basic", "baseline", col, seeds));
    let top = finals(&cell("basic", "top-only", "BP", &[]));
    // sparse 0/1 matrices
    let sparse = |n: u32, col: &str| finals(&cell("sparse", &format!("sparse n={n}"), col, &[]));
    let (r1, s1) = (sparse(1, "RBP"), sparse(1, "SRBP"));
    want(format!(
        "n = 1 ends {:.1} (RBP) and {:.1} (SRBP) points above top-only, and {:.1} / {:.1} points below the dense channel",
        m(&r1) - m(&top),
        m(&s1) - m(&top),
        m(&dense("RBP", &[])) - m(&r1),
        m(&dense("SRBP", &[])) - m(&s1)
    ));
    let (s2, s8) = (sparse(2, "SRBP"), sparse(8, "SRBP"));
    want(format!(
        "each step from n = 1 to 2 to 8 is larger than the seeds' sd ({:.2} and {:.2} points)",
        m(&s2) - m(&s1),
        m(&s8) - m(&s2)
    ));
    assert!(m(&s2) - m(&s1) > sd(&s1).max(sd(&s2)) && m(&s8) - m(&s2) > sd(&s2).max(sd(&s8)));
    let (r2, r8, rd) = (sparse(2, "RBP"), sparse(8, "RBP"), dense("RBP", &[]));
    let below = [m(&rd) - m(&r2), m(&rd) - m(&r8)];
    want(format!(
        "both {} points below dense RBP ({:.2} and {:.2}; {:.1} and {:.1} times the sparser cells' sds)",
        range(&below, 1),
        below[0],
        below[1],
        below[0] / sd(&r2),
        below[1] / sd(&r8)
    ));
    // feedback distributions: uniform, shifted, and the control's smaller means
    let fb = |row: &str, col: &str| finals(&cell("feedback", row, col, &[]));
    let (ur, us) = (
        fb("feedback uniform", "RBP"),
        fb("feedback uniform", "SRBP"),
    );
    want(format!(
        "RBP {:.2} below and SRBP {:.2} above their normal-feedback runs, each within one sd",
        m(&dense("RBP", &[])) - m(&ur),
        m(&us) - m(&dense("SRBP", &[]))
    ));
    let shifted = cell("feedback", "feedback shifted", "RBP", &[]);
    let learned: Vec<f64> = finals(&shifted).into_iter().filter(|&a| a > 20.0).collect();
    assert_eq!(learned.len(), 4, "four of five shifted RBP seeds learn");
    want(format!(
        "the four others end at {}, {:.1} points below normal feedback",
        ms(&learned),
        m(&dense("RBP", &[])) - m(&learned)
    ));
    let three = dense("RBP", &[1, 2, 3]);
    let ctl = |mu: &str| {
        finals(&cell(
            "feedback-control",
            &format!("feedback shifted:{mu}"),
            "RBP",
            &[],
        ))
    };
    want(format!(
        "RBP ends at {} and {}, {:.2} and {:.2} above normal feedback's same seeds",
        ms(&ctl("0.1")),
        ms(&ctl("0.3")),
        m(&ctl("0.1")) - m(&three),
        m(&ctl("0.3")) - m(&three)
    ));
    // SRBP ignores a shift of its matrices: seed by seed to the second decimal
    let (ss, sn) = (
        finals(&cell("feedback", "feedback shifted", "SRBP", &[])),
        dense("SRBP", &[]),
    );
    assert_eq!(ss.len(), sn.len());
    for (a, b) in ss.iter().zip(&sn) {
        assert_eq!(
            format!("{a:.2}"),
            format!("{b:.2}"),
            "shifted SRBP seed by seed"
        );
    }
    // channel dropout
    let drop = |r: &str, col: &str| {
        finals(&cell(
            "dropout",
            &format!("channel-dropout r={r}"),
            col,
            &[],
        ))
    };
    let sr = ["0.1", "0.25", "0.5"].map(|r| m(&drop(r, "SRBP")) - m(&dense("SRBP", &[])));
    let sds: Vec<f64> = ["0.1", "0.25", "0.5"]
        .iter()
        .map(|r| sd(&drop(r, "SRBP")))
        .chain([sd(&dense("SRBP", &[]))])
        .collect();
    let signed = |v: f64| {
        let t = format!("{v:+.2}");
        t.replace('-', "−")
    };
    want(format!(
        "({}, {}, {} points against sds of {})",
        signed(sr[0]),
        signed(sr[1]),
        signed(sr[2]),
        range(&sds, 2)
    ));
    let rr: Vec<(f64, f64)> = ["0.1", "0.25"]
        .iter()
        .map(|r| {
            let v = drop(r, "RBP");
            let d = m(&rd) - m(&v);
            (d, d / sd(&v).max(sd(&rd)))
        })
        .collect();
    want(format!(
        "At r = 0.1 and 0.25 RBP ends {:.2} and {:.2} points below dense, {:.1} and {:.1} sds",
        rr[0].0, rr[1].0, rr[0].1, rr[1].1
    ));
    quotes.check();
}

/// The differences the adaptive and sparsity-sweep sections' prose quotes, recomputed.
#[test]
fn adaptive_and_sweep_claims_are_recomputed_from_the_committed_runs() {
    once(adaptive_and_sweep_claims_are_recomputed_from_the_committed_runs_body);
}

fn adaptive_and_sweep_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let at = |exp: &str, row: &str, col: &str, seeds: &[u64], epoch: usize| -> Vec<f64> {
        cell(exp, row, col, seeds)
            .iter()
            .map(|r| 100.0 * r.metrics[epoch - 1].test_acc)
            .collect()
    };
    // adaptive: the gap at epoch 100; seeds 1–3's early gap; ASRBP against SRBP at every epoch
    let gap = |col: &str, seeds: &[u64], e: usize| {
        let (a, b) = (
            at("adaptive", "adaptive", col, seeds, e),
            at("basic", "baseline", col, seeds, e),
        );
        (m(&a) - m(&b), (m(&a) - m(&b)) / sd(&a).max(sd(&b)))
    };
    want(format!(
        "at epoch 100 the gap is {:.2}",
        gap("RBP", &[], 100).0
    ));
    let early: Vec<(f64, f64)> = [10, 30, 50]
        .iter()
        .map(|&e| gap("RBP", &[1, 2, 3], e))
        .collect();
    let (d, k): (Vec<f64>, Vec<f64>) = early.into_iter().unzip();
    want(format!(
        "With seeds 1–3 alone the early gap read {} points, {} sds",
        range(&d, 2),
        range(&k, 1).replace('–', " to ")
    ));
    let asrbp: Vec<(f64, f64)> = [10, 30, 50, 100]
        .iter()
        .map(|&e| gap("SRBP", &[], e))
        .collect();
    let apart: Vec<f64> = asrbp.iter().map(|(d, _)| d.abs()).collect();
    want(format!(
        "{} points apart at every epoch above, within one sd",
        range(&apart, 2)
    ));
    assert!(asrbp.iter().all(|(_, k)| k.abs() <= 1.0), "{asrbp:?}");
    // the sweep: 0/1 against signed
    let sweep = |pre: &str, n: u32, col: &str| {
        finals(&cell("sparsity-sweep", &format!("{pre} n={n}"), col, &[]))
    };
    let srbp_diffs: Vec<f64> = [1, 2, 4, 8, 16, 32]
        .iter()
        .map(|&n| {
            (m(&sweep("sparsity", n, "SRBP")) - m(&sweep("signed sparsity", n, "SRBP"))).abs()
        })
        .collect();
    want(format!(
        "from n = 1 to 32 the 0/1 and signed cells differ by {} points",
        range(&srbp_diffs, 2)
    ));
    let rbp_gap = |n: u32| {
        let (z, s) = (
            sweep("sparsity", n, "RBP"),
            sweep("signed sparsity", n, "RBP"),
        );
        (m(&s) - m(&z)) / sd(&z).max(sd(&s))
    };
    want(format!(
        "at n = 16 (a gap of {:.1} sds of the noisy 0/1 cell",
        rbp_gap(16)
    ));
    want(format!("at n = 32 ({:.1} sds)", rbp_gap(32)));
    want(format!("at n = 100 ({:.1} sds)", rbp_gap(100)));
    let s4 = sweep("signed sparsity", 4, "RBP");
    want(format!(
        "signed n = 32 and 100 end {:.1} and {:.1} points below signed n = 4 ({})",
        m(&s4) - m(&sweep("signed sparsity", 32, "RBP")),
        m(&s4) - m(&sweep("signed sparsity", 100, "RBP")),
        ms(&s4)
    ));
    quotes.check();
}

/// The quantized-error section's prose (calibrated rows, the old-default control, the steps
/// between widths), recomputed from the runs.
#[test]
fn quantized_error_claims_are_recomputed_from_the_committed_runs() {
    once(quantized_error_claims_are_recomputed_from_the_committed_runs_body);
}

fn quantized_error_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let row = |b: u32| format!("quantize-signal b={b}");
    let q =
        |b: u32, col: &str, seeds: &[u64]| finals(&cell("quantized-error", &row(b), col, seeds));
    let float = |col: &str| finals(&cell("basic", "baseline", col, &[]));
    // the calibrated rows' census: no zeros, the most clipped entry and where
    let mut most = (0.0, String::new());
    for b in [1, 2, 3, 4, 8] {
        for col in ["BP", "RBP", "SRBP"] {
            for r in cell("quantized-error", &row(b), col, &[]) {
                for (e, mtr) in r.metrics.iter().enumerate() {
                    for (l, d) in mtr.layers.as_ref().unwrap().iter().enumerate() {
                        assert_eq!(d.signal_zero, Some(0.0), "mid-rise has no zero level");
                        let c = 100.0 * d.signal_clipped.unwrap();
                        if c > most.0 {
                            let layer = ["first", "second", "third", "fourth"][l];
                            most = (
                                c,
                                format!(
                                    "{col} b = {b}, {layer} hidden layer, epoch {} of seed {}",
                                    e + 1,
                                    r.run.seed
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    want(format!("at most {:.1} % are clipped ({})", most.0, most.1));
    // the old default: mid-tread, α = 1
    let old = cell(
        "quantized-error",
        "quantize-signal b=2, mid-tread α=1",
        "SRBP",
        &[],
    );
    let zeros: Vec<f64> = old
        .iter()
        .flat_map(|r| &r.metrics)
        .flat_map(|m| m.layers.as_ref().unwrap())
        .map(|d| d.signal_zero.unwrap())
        .collect();
    let lo = zeros.iter().copied().fold(1.0, f64::min);
    want(format!(
        "quantizes {:.3}–100 % of every hidden layer's signal to zero",
        100.0 * lo
    ));
    want(format!("(`signal_zero` {lo:.5}–1.0)"));
    let oldf = finals(&old);
    want(format!(
        "{:.1} points below the same channel with mid-rise auto ({:.2})",
        m(&q(2, "SRBP", &[])) - m(&oldf),
        m(&q(2, "SRBP", &[]))
    ));
    // 8 bits against float
    want(
        format!(
            "within about one sd ({:+.2}, {:+.2})",
            m(&q(8, "BP", &[])) - m(&float("BP")),
            m(&q(8, "SRBP", &[])) - m(&float("SRBP"))
        )
        .replace("(-", "(−")
        .replace(", -", ", −"),
    );
    let (f3, r3) = (
        finals(&cell("basic", "baseline", "RBP", &[1, 2, 3])),
        q(8, "RBP", &[1, 2, 3]),
    );
    want(format!(
        "(With seeds 1–3 alone the RBP gap read {:.1} points at {:.1} sds",
        m(&f3) - m(&r3),
        (m(&f3) - m(&r3)) / sd(&f3).max(sd(&r3))
    ));
    // every step is larger than the seeds' sd but BP 4 → 8
    for col in ["BP", "SRBP"] {
        let v: Vec<Vec<f64>> = [1, 2, 3, 4, 8].iter().map(|&b| q(b, col, &[])).collect();
        for (i, w) in v.windows(2).enumerate() {
            let step = m(&w[1]) - m(&w[0]);
            let larger = step > sd(&w[0]).max(sd(&w[1]));
            assert_eq!(larger, !(col == "BP" && i == 3), "{col} step {i}: {step}");
        }
    }
    let (b4, b8) = (q(4, "BP", &[]), q(8, "BP", &[]));
    want(format!(
        "except BP 4 → 8 bits ({:.2} apart, sd {}: no effect)",
        m(&b8) - m(&b4),
        range(&[sd(&b4), sd(&b8)], 2)
    ));
    want(format!(
        "keeps SRBP within {:.1} points of 8 bits",
        m(&q(8, "SRBP", &[])) - m(&q(1, "SRBP", &[]))
    ));
    // RBP's plateau and its 1-bit instability
    let plateau: Vec<f64> = [2, 3, 4].iter().map(|&b| m(&q(b, "RBP", &[]))).collect();
    let (r2, r4) = (q(2, "RBP", &[]), q(4, "RBP", &[]));
    want(format!(
        "RBP holds {} from 2 to 4 bits (b = 2 vs 4: {:.2} apart, {:.1} times the larger sd), then jumps to {:.2} at 8 bits",
        range(&plateau, 1),
        m(&r4) - m(&r2),
        (m(&r4) - m(&r2)) / sd(&r2).max(sd(&r4)),
        m(&q(8, "RBP", &[]))
    ));
    let r1 = q(1, "RBP", &[]);
    let r1_10: Vec<f64> = cell("quantized-error", &row(1), "RBP", &[])
        .iter()
        .map(|r| 100.0 * r.metrics[9].test_acc)
        .collect();
    want(format!(
        "at 1 bit it is unstable ({:.2}, sd {:.2}; its test accuracy falls over training, {:.2} at epoch 10",
        m(&r1),
        sd(&r1),
        m(&r1_10)
    ));
    // the fixed-scale control against the calibrated rows' same seeds
    let same: Vec<f64> = [2, 3, 4]
        .iter()
        .map(|&b| m(&q(b, "RBP", &[1, 2, 3])))
        .collect();
    let ctl: Vec<f64> = [2, 3, 4]
        .iter()
        .flat_map(|b| {
            ["0.1", "0.01"].map(|a| {
                m(&finals(&cell(
                    "quantized-error-control",
                    &format!("quantize-signal b={b}, α={a}"),
                    "RBP",
                    &[],
                )))
            })
        })
        .collect();
    let above = ctl
        .chunks(2)
        .zip(&same)
        .flat_map(|(c, s)| c.iter().map(move |v| v - s))
        .fold(f64::NEG_INFINITY, f64::max);
    want(format!(
        "at most {:.1} points above the calibrated rows' same seeds ({:.2}, {:.2}, {:.2}), nowhere near 8 bits' {:.2}",
        above,
        same[0],
        same[1],
        same[2],
        m(&q(8, "RBP", &[]))
    ));
    quotes.check();
}

/// The quantized-update sections' prose (the constant-rate control, stochastic and nearest
/// rounding against it, the fixed-α protocol at 8 bits), recomputed from the runs.
#[test]
fn quantized_update_claims_are_recomputed_from_the_committed_runs() {
    once(quantized_update_claims_are_recomputed_from_the_committed_runs_body);
}

fn quantized_update_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let cols = ["BP", "RBP", "SRBP"];
    let control = |col: &str| {
        finals(&cell(
            "quantized-update-control",
            "float updates, constant lr",
            col,
            &[],
        ))
    };
    let decayed = |col: &str| finals(&cell("basic", "baseline", col, &[1, 2, 3]));
    let rate: Vec<f64> = cols
        .iter()
        .map(|c| (m(&control(c)) - m(&decayed(c))).abs())
        .collect();
    want(format!(
        "within {:.2} points of the basic grid's decayed rate for every channel",
        rate.iter().copied().fold(0.0, f64::max)
    ));
    let qu = |row: &str, col: &str| finals(&cell("quantized-update", row, col, &[]));
    // stochastic rounding: every width within one sd of the control, despite the zeros
    for row in [
        "quantize-update b=4, stochastic",
        "quantize-update b=8, stochastic",
        "quantize-update b=16, stochastic",
    ] {
        for c in cols {
            let (q, f) = (qu(row, c), control(c));
            assert!(
                (m(&q) - m(&f)).abs() <= sd(&q).max(sd(&f)),
                "{row} {c} is not within one sd of float"
            );
        }
    }
    let zeros: Vec<f64> = cols
        .iter()
        .flat_map(|c| {
            layer_means(
                &cell(
                    "quantized-update",
                    "quantize-update b=4, stochastic",
                    c,
                    &[],
                ),
                0,
                |d| d.update_zero.unwrap(),
            )
        })
        .map(|v| 100.0 * v)
        .collect();
    let (lo, hi) = (
        zeros.iter().copied().fold(f64::INFINITY, f64::min),
        zeros.iter().copied().fold(0.0, f64::max),
    );
    want(format!(
        "although {lo:.0}–{hi:.1} % of the hidden layers' per-example update entries round to zero at epoch 100"
    ));
    // nearest rounding at 4 bits against the control
    let b4 = |c: &str| qu("quantize-update b=4", c);
    let below = |c: &str| m(&control(c)) - m(&b4(c));
    let bp_k = below("BP") / sd(&b4("BP")).max(sd(&control("BP")));
    let top = finals(&cell("basic", "top-only", "BP", &[1, 2, 3]));
    want(format!(
        "here BP ends at {}, {:.2} below its control ({bp_k:.1} times the larger sd: too small to claim), SRBP at {}, {:.2} below (ten times the control's sd), and RBP at {}, {:.2} below — under top-only ({}, seeds 1–3)",
        ms(&b4("BP")),
        below("BP"),
        ms(&b4("SRBP")),
        below("SRBP"),
        ms(&b4("RBP")),
        below("RBP"),
        ms(&top)
    ));
    assert_eq!(
        format!("{:.0}", below("SRBP") / sd(&control("SRBP"))),
        "10",
        "SRBP's cost in the control's sds"
    );
    // the paper's fixed α: the hidden layers' census at 8 bits
    let fixed8 = |c: &str| {
        cell(
            "quantized-update-fixed",
            "quantize-update b=8, α=0.01",
            c,
            &[],
        )
    };
    let census = |f: fn(&rbprop::channel::diagnostics::LayerDiagnostics) -> f64| -> Vec<f64> {
        cols.iter()
            .flat_map(|c| layer_means(&fixed8(c), 0, f))
            .map(|v| 100.0 * v)
            .collect()
    };
    let zero8 = census(|d| d.update_zero.unwrap());
    let clip8 = census(|d| d.update_clipped.unwrap());
    want(format!(
        "to zero ({} % at 8 bits, epoch 100), and at most {:.1} % are clipped",
        range(&zero8, 1),
        clip8.iter().copied().fold(0.0, f64::max)
    ));
    quotes.check();
}

/// docs/theory.md: every `cargo run --release -- dynamics …` block followed by an output block is
/// what the command prints; the numbers of the stiff example and the SGD comparison are what
/// their commands print; the complexity table's counts and channels are `rbp complexity`'s, and
/// the ratios the text draws from its measured columns are the table's.
#[test]
fn theory_outputs_are_what_the_commands_print() {
    once(theory_outputs_are_what_the_commands_print_body);
}

fn theory_outputs_are_what_the_commands_print_body() {
    let text = std::fs::read_to_string(root().join("docs/theory.md")).unwrap();
    let run = |args: &str| {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let o = super::cli::rbp(&argv);
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let mut pairs = 0;
    for block in text.split("```sh\ncargo run --release -- ").skip(1) {
        let (cmd, rest) = block.split_once("\n```\n").unwrap();
        let Some(out) = rest.strip_prefix("```\n") else {
            continue;
        };
        let want = out.split("```").next().unwrap();
        if cmd.starts_with("dynamics ") {
            assert_eq!(
                run(cmd),
                want,
                "`rbp {cmd}` prints otherwise than docs/theory.md says"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 3, "dynamics examples with their output");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // the stiff example
    let dopri = run("dynamics chain --from 1e6,1e6 --method dopri");
    let steps = |out: &str, after: &str| -> String {
        let i = out.find(after).unwrap() + after.len();
        out[i..]
            .split(" steps")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let t: f64 = dopri
        .split("stiff: at t = ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let auto = run("dynamics chain --from 1e6,1e6");
    let point = |line: &str| -> Vec<f64> {
        let l = auto.lines().find(|l| l.starts_with(line)).unwrap();
        let inner = l.split('(').nth(1).unwrap().split(')').next().unwrap();
        inner.split(", ").map(|v| v.parse().unwrap()).collect()
    };
    let (end, predicted) = (point("end "), point("predicted "));
    let gap: f64 = auto
        .split("|end − predicted| = ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let quote = format!(
        "`--method dopri` stops there after {} steps at t ≈ {t:.1e} and says so; `auto` hands over at that point and ends at t = 1000 after {} steps in all, at ({:.9}, {:.3e}), {gap:.1e} from the predicted ({:.9}, {:.3e}).",
        steps(&dopri, "stopped: stiff, "),
        steps(&auto, "reached the end time, "),
        end[0],
        end[1],
        predicted[0],
        predicted[1]
    );
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    // the per-example rule against the ODE
    let deviation = |eta: &str| {
        run(&format!("dynamics sgd --eta {eta} --time 5"))
            .split("largest deviation ")
            .nth(1)
            .unwrap()
            .trim()
            .to_string()
    };
    let quote = format!(
        "η = 1e-4: {}; η = 1e-2: {}.",
        deviation("1e-4"),
        deviation("1e-2")
    );
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    // the examples of the fixed points' prose, from the commands' end and predicted points
    let point = |args: &str, line: &str| -> Vec<f64> {
        let out = run(args);
        let l = out
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("`rbp {args}` prints no {line}"));
        let inner = l.split('(').nth(1).unwrap().split(')').next().unwrap();
        inner.split(", ").map(|v| v.parse().unwrap()).collect()
    };
    // the docs' minus sign on a number's own sign (not an exponent's)
    let minus = |s: String| {
        s.replace("(-", "(−")
            .replace(", -", ", −")
            .replace("~ -", "~ −")
    };
    let distance = |args: &str| -> f64 {
        run(args)
            .split("|end − predicted| = ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let tangent = point("dynamics chain --from=-2,0.5", "predicted ");
    let leave = point("dynamics chain --from=-0.9,-1.095", "end ");
    let quote = minus(format!(
        "(from (-2, 0.5) a trajectory creeps up to ({}, {}), {:.1e} away at t = 1000; from (-0.9, -1.095) on the same parabola it leaves for ({}, {}))",
        tangent[0],
        tangent[1],
        distance("dynamics chain --from=-2,0.5"),
        leave[0],
        leave[1]
    ));
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    let cube = "dynamics chain --mu 3 --from=-0.5,0.42";
    let (line, end) = (point(cube, "predicted "), point(cube, "end "));
    let beyond = point("dynamics chain --mu 3 --from=0.5,0.42", "end ");
    let square = point("dynamics chain --mu 2 --from=-0.5,0.42", "end ");
    let quote = minus(format!(
        "For μ = 3 from (-0.5, 0.42) the prediction is ({}, {:.6}), not the solution ({:.2}, {:.2}) beyond the line; the trajectory is at ({:.1e}, {:.6}) at t = 1000 (it creeps, a_1 ~ -1/(3t)). Under x² the same start moves away from 0 to ({:.6}, {:.6}), the mirror of the solution for a_1 > 0.",
        line[0], line[1], beyond[0], beyond[1], end[0], end[1], square[0], square[1]
    ));
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    // the complexity table: counts and channels as `rbp complexity` prints them
    let counts = run("complexity");
    let table = text
        .split("```\nnet 784-100-100-100-100-10")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let table = &format!("net 784-100-100-100-100-10{table}");
    let rows = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|w| w.len() >= 4 && w[1].chars().all(|c| c.is_ascii_digit()))
            .collect()
    };
    let (doc_rows, cli_rows) = (rows(table), rows(&counts));
    assert_eq!(
        doc_rows.iter().map(|r| r[..4].to_vec()).collect::<Vec<_>>(),
        cli_rows.iter().map(|r| r[..4].to_vec()).collect::<Vec<_>>(),
        "the complexity table's channels and counts"
    );
    for l in counts.lines().take(4) {
        assert!(table.contains(l.trim_end()), "the table's header: {l}");
    }
    let col = |name: &str, i: usize| -> f64 {
        doc_rows.iter().find(|r| r[0] == name).unwrap()[i]
            .parse()
            .unwrap()
    };
    let quote = format!(
        "the measured ratio is about {:.1},",
        col("srbp", 4) / col("bp", 4)
    );
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    let ratio = |after: &str| {
        counts
            .lines()
            .filter(|l| !l.contains("SRBP/BP") || after.contains("SRBP/BP"))
            .find_map(|l| l.split_once(after).map(|(_, r)| r.trim().to_string()))
            .unwrap()
    };
    let quote = format!(
        "The paper's ratio SRBP/BP for the backward signal is {};",
        ratio("ratio SRBP/BP ")
    );
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
    let quote = format!(
        "For the whole step the prediction is {} and the measured ratio about {:.1}",
        ratio("    ratio "),
        col("srbp", 5) / col("bp", 5)
    );
    assert!(
        says("docs/theory.md", &flat, &quote),
        "docs/theory.md should say: {quote}"
    );
}

/// docs/channels.md: the measured claims of its quantizer and sparsity notes, recomputed from
/// the committed runs, and its embedded-data example of `--diagnostics` from a run of it.
#[test]
fn channels_doc_claims_are_recomputed() {
    once(channels_doc_claims_are_recomputed_body);
}

fn channels_doc_claims_are_recomputed_body() {
    let mut quotes = Quotes::of("docs/channels.md");
    let mut want = |q: String| quotes.want(q);
    // the sparsity sweep: the 0/1 cells from N = 8 on against dense SRBP's seeds 1–3
    let dense = finals(&cell("basic", "baseline", "SRBP", &[1, 2, 3]));
    let zero_one: Vec<Vec<f64>> = [8, 16, 32]
        .iter()
        .map(|n| {
            finals(&cell(
                "sparsity-sweep",
                &format!("sparsity n={n}"),
                "SRBP",
                &[],
            ))
        })
        .collect();
    assert!(
        zero_one
            .iter()
            .all(|v| (m(v) - m(&dense)).abs() <= sd(v).max(sd(&dense)))
    );
    want(format!(
        "0/1 cells within one sd of dense SRBP from N = 8 on ({} vs {}, the same seeds 1–3)",
        range(&zero_one.iter().map(|v| m(v)).collect::<Vec<_>>(), 2),
        ms(&dense)
    ));
    let control = |col: &str| {
        finals(&cell(
            "quantized-update-control",
            "float updates, constant lr",
            col,
            &[],
        ))
    };
    let b4 = |col: &str| finals(&cell("quantized-update", "quantize-update b=4", col, &[]));
    let cost = |col: &str| m(&control(col)) - m(&b4(col));
    let angles = |exp: &str, row: &str| {
        layer_means(&cell(exp, row, "RBP", &[]), 0, |d| d.delta_angle)[..3].to_vec()
    };
    want(format!(
        "costs BP {:.1} points ({:.1} times the larger sd: too small to claim), SRBP {:.1} and RBP {:.1} (below top-only) — the random channels' δ stops aligning with BP's (RBP's lower layers end {}° from it, against {}° with float updates)",
        cost("BP"),
        cost("BP") / sd(&b4("BP")).max(sd(&control("BP"))),
        cost("SRBP"),
        cost("RBP"),
        range(&angles("quantized-update", "quantize-update b=4"), 0),
        range(
            &angles("quantized-update-control", "float updates, constant lr"),
            0
        ),
    ));
    // the sparsity note: N = 1 against top-only, both kinds (seeds 1–3)
    let top = finals(&cell("basic", "top-only", "BP", &[1, 2, 3]));
    let n1: Vec<f64> = ["sparsity n=1", "signed sparsity n=1"]
        .iter()
        .map(|r| m(&finals(&cell("sparsity-sweep", r, "SRBP", &[]))) - m(&top))
        .collect();
    want(format!(
        "N = 1 keeping {} points above top-only",
        range(&n1, 1)
    ));
    // the embedded-data example: 2 epochs of SRBP, mid-tread α = 1 against mid-rise auto
    let census = |q: &str| -> (Vec<f64>, Vec<f64>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let o = super::cli::rbp(&[
            "train",
            "--channel",
            "srbp",
            "--epochs",
            "2",
            "--diagnostics",
            "--quantize-signal",
            q,
            "-q",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let metrics = rbprop::run::RunDir::new(&out).read_metrics().unwrap();
        let layers = metrics.last().unwrap().layers.clone().unwrap();
        (
            layers
                .iter()
                .map(|d| 100.0 * d.signal_zero.unwrap())
                .collect(),
            layers
                .iter()
                .map(|d| 100.0 * d.signal_clipped.unwrap())
                .collect(),
        )
    };
    let (old_zero, _) = census("2:1:mid-tread");
    let (zero, clipped) = census("2");
    want(format!(
        "sends {} % of every hidden layer's signal to zero; `--quantize-signal 2` (mid-rise, auto) {} %, with {} % clipped",
        range(&old_zero, 0),
        range(&zero, 0),
        range(&clipped, 1)
    ));
    quotes.check();
}

/// The alignment table of docs/reproducing.md, row by row: epoch 1's means and epoch 100's mean
/// (sd) per hidden layer, for δ and for C, from the alignment runs.
#[test]
fn the_alignment_table_is_the_runs() {
    once(the_alignment_table_is_the_runs_body);
}

fn the_alignment_table_is_the_runs_body() {
    use rbprop::channel::diagnostics::LayerDiagnostics;
    let text = std::fs::read_to_string(root().join("docs/reproducing.md")).unwrap();
    let side = |runs: &[&results::Record],
                f: fn(&LayerDiagnostics) -> f64,
                layers: std::ops::Range<usize>| {
        let first = layer_means(runs, 1, f);
        let last = layer_values(runs, 0, f);
        let a: Vec<String> = layers.clone().map(|l| format!("{:.1}", first[l])).collect();
        let b: Vec<String> = layers
            .map(|l| {
                let (m, s) = mean_sd(&last[l]);
                format!("{m:.1} ({s:.1})")
            })
            .collect();
        format!("{} → {}", a.join(" / "), b.join(" / "))
    };
    let delta: fn(&LayerDiagnostics) -> f64 = |d| d.delta_angle;
    let c: fn(&LayerDiagnostics) -> f64 = |d| d.weight_angle.unwrap_or(f64::NAN);
    for (name, row, col) in [
        ("RBP", "alignment", "RBP"),
        ("ARBP", "alignment adaptive", "RBP"),
        ("SRBP", "alignment", "SRBP"),
        ("ASRBP", "alignment adaptive", "SRBP"),
    ] {
        let runs = cell("alignment", row, col, &[]);
        let cs = if col == "RBP" {
            side(&runs, c, 0..4)
        } else {
            format!("layer 4 only: {}", side(&runs, c, 3..4))
        };
        let line = format!("| {name} | {} | {cs} |", side(&runs, delta, 0..4));
        assert!(
            says("docs/reproducing.md", &text, &line),
            "docs/reproducing.md's alignment table should have:\n{line}"
        );
    }
}

/// The result tables of docs/reproducing.md, cell by cell: each row as the runs give it (the
/// generic check above accepts a mean (sd) that any cell gives; this one ties each to its cell).
#[test]
fn the_result_tables_are_the_runs() {
    once(the_result_tables_are_the_runs_body);
}

fn the_result_tables_are_the_runs_body() {
    let text = std::fs::read_to_string(root().join("docs/reproducing.md")).unwrap();
    // "m (s)" of a cell's test (or train) accuracy at an epoch (0: the last)
    let q = |exp: &str, row: &str, col: &str, seeds: &[u64], epoch: usize, train: bool| {
        let v: Vec<f64> = cell(exp, row, col, seeds)
            .iter()
            .map(|r| {
                let m = if epoch == 0 {
                    r.metrics.last().unwrap()
                } else {
                    &r.metrics[epoch - 1]
                };
                100.0 * if train { m.train_acc } else { m.test_acc }
            })
            .collect();
        ms(&v)
    };
    let mut missing = Vec::new();
    let mut row = |label: &str, cells: Vec<String>| {
        let mut line = format!("| {label} | {} |", cells.join(" | "));
        while line.contains("|  |") {
            line = line.replace("|  |", "| |");
        }
        if !says("docs/reproducing.md", &text, &line) {
            missing.push(line);
        }
    };
    let none = String::new;
    // the nine basic algorithms
    for (label, r, c) in [
        ("BP", "baseline", "BP"),
        ("RBP", "baseline", "RBP"),
        ("SRBP", "baseline", "SRBP"),
        ("skipped BP (SBP)", "skipped BP (SBP)", "BP"),
        ("BP no-f' (= SBP no-f')", "no-f'", "BP"),
        ("RBP no-f'", "no-f'", "RBP"),
        ("SRBP no-f'", "no-f'", "SRBP"),
        ("top-only", "top-only", "BP"),
    ] {
        row(
            label,
            vec![
                q("basic", r, c, &[], 1, false),
                q("basic", r, c, &[], 10, false),
                q("basic", r, c, &[], 100, false),
                q("basic", r, c, &[], 100, true),
            ],
        );
    }
    let three = |exp: &str, r: &str| -> Vec<String> {
        ["BP", "RBP", "SRBP"]
            .iter()
            .map(|c| q(exp, r, c, &[], 0, false))
            .collect()
    };
    // the quantized error signal
    row("baseline (float signal)", three("basic", "baseline"));
    for b in [1, 2, 3, 4, 8] {
        let r = format!("quantize-signal b={b}");
        row(&r, three("quantized-error", &r));
    }
    for (label, r) in [
        (
            "quantize-signal b=2, α=0.1 (fixed)",
            "quantize-signal b=2, α=0.1",
        ),
        (
            "quantize-signal b=2, α=1 (fixed)",
            "quantize-signal b=2, α=1",
        ),
        (
            "quantize-signal b=2, mid-tread α=1 (the old default)",
            "quantize-signal b=2, mid-tread α=1",
        ),
    ] {
        row(
            label,
            vec![
                none(),
                none(),
                q("quantized-error", r, "SRBP", &[], 0, false),
            ],
        );
    }
    // the quantized updates
    let s3: Vec<String> = ["BP", "RBP", "SRBP"]
        .iter()
        .map(|c| q("basic", "baseline", c, &[1, 2, 3], 0, false))
        .collect();
    row("float, lr decayed (basic, seeds 1–3)", s3);
    row(
        "float, constant lr (control)",
        three("quantized-update-control", "float updates, constant lr"),
    );
    for b in [4, 8, 16] {
        row(
            &format!("b = {b}, nearest"),
            three("quantized-update", &format!("quantize-update b={b}")),
        );
        row(
            &format!("b = {b}, stochastic"),
            three(
                "quantized-update",
                &format!("quantize-update b={b}, stochastic"),
            ),
        );
    }
    for a in ["0.01", "0.003"] {
        row(
            &format!("b = 4, nearest, α = {a} fixed (scale control)"),
            vec![
                none(),
                q(
                    "quantized-update-scale-control",
                    &format!("quantize-update b=4, α={a}"),
                    "RBP",
                    &[],
                    0,
                    false,
                ),
                none(),
            ],
        );
    }
    // the adaptive channels by epoch
    for e in [10, 30, 50, 100] {
        let label = if e == 100 {
            "100 (final)".to_string()
        } else {
            e.to_string()
        };
        row(
            &label,
            vec![
                q("basic", "baseline", "RBP", &[], e, false),
                q("adaptive", "adaptive", "RBP", &[], e, false),
                q("basic", "baseline", "SRBP", &[], e, false),
                q("adaptive", "adaptive", "SRBP", &[], e, false),
            ],
        );
    }
    // sparse 0/1 matrices and channel dropout
    for n in [1, 2, 8] {
        let r = format!("sparse n={n}");
        row(
            &n.to_string(),
            vec![
                q("sparse", &r, "RBP", &[], 0, false),
                q("sparse", &r, "SRBP", &[], 0, false),
            ],
        );
    }
    for rate in ["0.1", "0.25", "0.5"] {
        let r = format!("channel-dropout r={rate}");
        row(
            rate,
            vec![
                q("dropout", &r, "RBP", &[], 0, false),
                q("dropout", &r, "SRBP", &[], 0, false),
            ],
        );
    }
    // the paper's fixed α for the error signal, beside the calibrated rows (seeds 1–3)
    let s3 = [1, 2, 3];
    row(
        "float",
        ["BP", "RBP", "SRBP"]
            .iter()
            .flat_map(|c| [q("basic", "baseline", c, &s3, 0, false), none()])
            .collect(),
    );
    for b in [1, 2, 3, 4, 8] {
        let fixed_row = format!("quantize-signal b={b}, α=0.1");
        let calibrated = format!("quantize-signal b={b}");
        let cells: Vec<String> = ["BP", "RBP", "SRBP"]
            .iter()
            .flat_map(|&c| {
                let exp = match (c, b) {
                    ("RBP", 2..=4) => "quantized-error-control",
                    ("SRBP", 2) => "quantized-error",
                    _ => "quantized-error-fixed",
                };
                [
                    q(exp, &fixed_row, c, &s3, 0, false),
                    q("quantized-error", &calibrated, c, &s3, 0, false),
                ]
            })
            .collect();
        row(&b.to_string(), cells);
    }
    // the paper's fixed α for the updates
    row(
        "float updates, constant lr",
        three("quantized-update-control", "float updates, constant lr"),
    );
    for b in [8, 4] {
        let fixed: Vec<String> = ["BP", "RBP", "SRBP"]
            .iter()
            .map(|&c| {
                let (exp, r) = if (c, b) == ("RBP", 4) {
                    (
                        "quantized-update-scale-control",
                        "quantize-update b=4, α=0.01".to_string(),
                    )
                } else {
                    (
                        "quantized-update-fixed",
                        format!("quantize-update b={b}, α=0.01"),
                    )
                };
                q(exp, &r, c, &[], 0, false)
            })
            .collect();
        row(&format!("b = {b}, fixed α = 0.01"), fixed);
        row(
            &format!("b = {b}, calibrated"),
            three("quantized-update", &format!("quantize-update b={b}")),
        );
    }
    // the feedback distributions, epochs 1 and 100
    let fb = |exp: &str, r: &str, cols: &[&str], seeds: &[u64]| -> Vec<String> {
        cols.iter()
            .flat_map(|c| {
                [
                    q(exp, r, c, seeds, 1, false),
                    q(exp, r, c, seeds, 100, false),
                ]
            })
            .collect()
    };
    row(
        "normal (basic)",
        fb("basic", "baseline", &["RBP", "SRBP"], &[]),
    );
    row(
        "uniform",
        fb("feedback", "feedback uniform", &["RBP", "SRBP"], &[]),
    );
    row(
        "shifted, μ = σ",
        fb("feedback", "feedback shifted", &["RBP", "SRBP"], &[]),
    );
    for mu in ["0.3", "0.1"] {
        let mut cells = fb(
            "feedback-control",
            &format!("feedback shifted:{mu}"),
            &["RBP"],
            &[],
        );
        cells.extend([none(), none()]);
        row(&format!("shifted, μ = {mu}σ (seeds 1–3)"), cells);
    }
    // the sparsity sweep
    for n in [1, 2, 4, 8, 16, 32, 100] {
        let cells: Vec<String> = ["RBP", "SRBP"]
            .iter()
            .flat_map(|c| {
                ["sparsity", "signed sparsity"]
                    .map(|pre| q("sparsity-sweep", &format!("{pre} n={n}"), c, &[], 0, false))
            })
            .collect();
        row(&n.to_string(), cells);
    }
    assert!(
        missing.is_empty(),
        "docs/reproducing.md's tables should have these rows:\n{}",
        missing.join("\n")
    );
}

/// Numbers of the docs that are no result of a run, each with enough words around it to be
/// found once: settings, the paper's own figures, timings of a machine, counts of runs. Every
/// other number must lie in a quote that a check of this file found (or be a "mean (sd)").
const NOT_RESULTS: &[(&str, &str)] = &[
    // wall-clock times of whole grids on one machine (no run records them)
    ("docs/reproducing.md", "(seeds 4–5: 10.5 min)"),
    ("docs/reproducing.md", "≈ 3.5 h on an AVX2-only CPU"),
    ("docs/cluster.md", "1.5 s locally with 2 jobs"),
    ("docs/cluster.md", "(≈ 3.0 GHz, AVX-512)"),
    // runs of a quantizer bug, discarded and re-run with the fix (docs/channels.md says so)
    ("docs/reproducing.md", "BP stayed at chance, 10.00 %)"),
    (
        "docs/channels.md",
        "stayed at chance (10.00 % test accuracy",
    ),
    ("docs/channels.md", "train loss 2.314–2.320"),
    // defaults, definitions and bounds of settings
    ("docs/channels.md", "(our default 0.1,"),
    ("docs/channels.md", "| η_c = F · η_t | 0.1 |"),
    ("docs/channels.md", "a signal below 0.5 in magnitude"),
    ("docs/channels.md", "below 90° means downhill"),
    ("docs/theory.md", "Any other μ (0.5, 1.5, …)"),
    ("docs/theory.md", "h·ρ > 3.25"),
    ("docs/theory.md", "[1e-14, 0.1]"),
    ("docs/python.md", "scikit-learn 1.9"),
    // the tolerances and cases of tests, described (crates/rbprop-cli/tests/it/dynamics.rs and
    // the conformance tests)
    (
        "docs/theory.md",
        "is 5.4 × 10⁻⁶ off, which would move a_2 by 5.4 × 10⁻²",
    ),
    ("docs/theory.md", "ends > 0.1 away"),
    ("docs/theory.md", "c ∈ {1, −1, 0.6}"),
    ("docs/theory.md", "is below 0.02 at η = 1e-4"),
    ("docs/architecture.md", "the test allows 1 % of the entries"),
];

/// The numbers of a flattened text that the audit asks about, as byte ranges: every decimal
/// (`2.15`), and every number followed by `%`, `°` or `sds` (`36–43 %`, `4.7°`, `5 sds`).
fn figures(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        let mut decimal = false;
        if e + 1 < b.len() && b[e] == b'.' && b[e + 1].is_ascii_digit() {
            decimal = true;
            e += 1;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
        }
        let has_unit = |rest: &str| {
            let rest = rest.trim_start_matches(' ');
            rest.starts_with('%') || rest.starts_with('°') || rest.starts_with("sds")
        };
        // a range's first number takes the unit of its second: `36–43 %`
        let second = text[e..]
            .strip_prefix('–')
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'));
        let unit = has_unit(&text[e..]) || second.is_some_and(has_unit);
        if decimal || unit {
            out.push((i, e));
        }
        i = e;
    }
    out
}

/// Byte ranges of a flattened markdown text inside code (fenced blocks and `inline` spans).
fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(i) = text[rest..].find('`').map(|i| rest + i) {
        let fence = text[i..].starts_with("```");
        let close = if fence { "```" } else { "`" };
        let from = i + close.len();
        let Some(j) = text[from..].find(close).map(|j| from + j) else {
            break;
        };
        out.push((i, j + close.len()));
        rest = j + close.len();
    }
    out
}

/// A number the text gives as a setting: after `=`, `≤`, `≥`, `lr`, `momentum`, `decay`, `α at` or
/// `fixed at`, alone or in a list of them (`r = 0.1, 0.25, 0.5`, `μ = 0.1σ and 0.3σ`).
fn is_setting(text: &str, at: usize) -> bool {
    let mut before = text[..at].trim_end_matches(' ');
    loop {
        if [
            "=", "≤", "≥", "lr", "momentum", "decay", "§", "α at", "fixed at",
        ]
        .iter()
        .any(|w| before.ends_with(w))
        {
            return true;
        }
        // step back over one earlier item of a list: "0.1, " or "0.1σ and "
        let Some(rest) = before
            .strip_suffix(',')
            .or_else(|| before.strip_suffix(" and"))
        else {
            return false;
        };
        let item = rest.trim_end_matches('σ');
        let start = item.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        if start.len() == item.len() {
            return false;
        }
        before = start.trim_end_matches(' ');
    }
}

/// Every number the docs quote is checked: it lies in a "mean (sd)" (checked against every
/// cell), in a quote that one of the checks above recomputed from the runs or from a command's
/// output, in code, or it is a setting or one of [`NOT_RESULTS`]. A new figure in the docs fails
/// here until a check recomputes it.
#[test]
fn every_number_in_the_docs_is_checked() {
    if std::env::var("RBP_FASHION_MNIST").is_err() {
        eprintln!("skipped: RBP_FASHION_MNIST is not set (the calibrated scales need it)");
        return;
    }
    // the checks that record their quotes (each runs once in this process, whichever test
    // asks first), so that all of them are in FOUND
    once(derived_claims_are_recomputed_from_the_committed_runs_body);
    once(angle_claims_are_recomputed_from_the_committed_runs_body);
    once(census_claims_are_recomputed_from_the_committed_runs_body);
    once(calibrated_scales_in_the_docs_are_recomputed_body);
    once(basic_section_claims_are_recomputed_from_the_committed_runs_body);
    once(sparse_feedback_and_dropout_claims_are_recomputed_from_the_committed_runs_body);
    once(adaptive_and_sweep_claims_are_recomputed_from_the_committed_runs_body);
    once(quantized_error_claims_are_recomputed_from_the_committed_runs_body);
    once(quantized_update_claims_are_recomputed_from_the_committed_runs_body);
    once(theory_outputs_are_what_the_commands_print_body);
    once(channels_doc_claims_are_recomputed_body);
    once(the_alignment_table_is_the_runs_body);
    once(the_result_tables_are_the_runs_body);
    once(prose_figures_are_recomputed_from_the_committed_runs_body);
    once(conv_grid_claims_are_recomputed_from_the_committed_runs_body);
    once(conv_basic_claims_are_recomputed_from_the_committed_runs_body);
    // docs/cluster.md quotes the conv benchmark: the figures BENCHMARKS.md records
    let cluster = std::fs::read_to_string(root().join("docs/cluster.md")).unwrap();
    let bench = flat(&std::fs::read_to_string(root().join("BENCHMARKS.md")).unwrap());
    let timing = flat(&cluster)
        .split("net takes ")
        .nth(1)
        .and_then(|r| r.split(" on 2 threads").next())
        .unwrap()
        .to_string();
    let (bp, srbp) = timing.split_once(" with BP and ").unwrap();
    assert!(
        bench.contains(&format!("{bp} vs"))
            && bench.contains(&format!("({}", srbp.trim_end_matches(" with SRBP"))),
        "docs/cluster.md's conv timings ({timing}) are not BENCHMARKS.md's"
    );
    assert!(says("docs/cluster.md", &cluster, &timing));
    let found = FOUND.lock().unwrap().clone();
    let mut unchecked = Vec::new();
    let mut counted = 0;
    for name in [
        "docs/reproducing.md",
        "docs/channels.md",
        "docs/theory.md",
        "docs/architecture.md",
        "docs/python.md",
        "docs/cluster.md",
        "README.md",
    ] {
        let text = flat(&std::fs::read_to_string(root().join(name)).unwrap());
        let quotes: Vec<&str> = found
            .iter()
            .filter(|(f, _)| *f == name)
            .map(|(_, q)| q.as_str())
            .chain(
                NOT_RESULTS
                    .iter()
                    .filter(|(f, _)| *f == name)
                    .map(|(_, q)| *q),
            )
            .collect();
        let (n, missed) = unchecked_figures(&text, &quotes);
        counted += n;
        unchecked.extend(missed.into_iter().map(|m| format!("{name}: {m}")));
    }
    assert!(
        counted > 1000,
        "only {counted} numbers found: the scanner is broken"
    );
    assert!(
        unchecked.is_empty(),
        "{} numbers in the docs that no check recomputes:\n{}",
        unchecked.len(),
        unchecked.join("\n")
    );
}

/// The figures of a flattened text ([`figures`]) that lie neither in code, nor in a "mean (sd)",
/// nor in one of `quotes`, and are no setting: how many figures, and each missed one in context.
fn unchecked_figures(text: &str, quotes: &[&str]) -> (usize, Vec<String>) {
    let mut covered = vec![false; text.len()];
    let mut cover = |from: usize, to: usize| covered[from..to].iter_mut().for_each(|c| *c = true);
    for (from, to) in code_spans(text) {
        cover(from, to);
    }
    let pairs: Vec<String> = quoted_pairs(text).into_iter().map(|(q, _)| q).collect();
    for q in quotes
        .iter()
        .copied()
        .chain(pairs.iter().map(String::as_str))
    {
        for (i, _) in text.match_indices(q) {
            cover(i, i + q.len());
        }
    }
    let all = figures(text);
    let missed = all
        .iter()
        .filter(|&&(from, to)| !covered[from..to].iter().all(|c| *c) && !is_setting(text, from))
        .map(|&(from, to)| {
            let mut a = from.saturating_sub(60);
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            let mut z = (to + 20).min(text.len());
            while !text.is_char_boundary(z) {
                z += 1;
            }
            format!("{} in “…{}…”", &text[from..to], &text[a..z])
        })
        .collect();
    (all.len(), missed)
}

#[test]
fn the_audit_finds_an_unchecked_figure() {
    let text = flat(
        "BP ends 2.15 below (5 sds), 36–43 % clipped, 4.7° apart; RBP 88.02 (0.16); lr 0.01,
         r = 0.1, 0.25 and 0.5; `--alpha 0.3`; version 1.2.3 and 10 epochs",
    );
    let (n, missed) = unchecked_figures(&text, &["2.15 below (5 sds)"]);
    let got: Vec<&str> = missed
        .iter()
        .map(|m| m.split(' ').next().unwrap())
        .collect();
    // 36–43 %, 4.7° and the version's "1.2"; not the quoted 2.15 and 5, the mean (sd), the
    // settings or the code
    assert_eq!(got, ["36", "43", "4.7", "1.2"], "{missed:?}");
    assert_eq!(n, 13, "{missed:?}");
}

/// The remaining figures of docs/reproducing.md's prose and verdict table, each recomputed from
/// the runs: the verdict rows' means and differences, the seeds' spread after one epoch, the
/// step-by-step rise with the width, the superseded table's figures against these runs.
#[test]
fn prose_figures_are_recomputed_from_the_committed_runs() {
    once(prose_figures_are_recomputed_from_the_committed_runs_body);
}

fn prose_figures_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let [bp, rbp, srbp] = ["BP", "RBP", "SRBP"].map(|c| basic("baseline", c, &[]));
    // the verdict table
    want(format!(
        "level at epoch 100 ({:.2} apart)",
        (m(&rbp) - m(&srbp)).abs()
    ));
    let nof: Vec<f64> = ["BP", "RBP", "SRBP"]
        .iter()
        .map(|c| m(&basic("no-f'", c, &[])))
        .collect();
    want(format!(
        "BP, RBP, SRBP without f' {:.2}, {:.2}, {:.2}: 15–18 below",
        nof[0], nof[1], nof[2]
    ));
    assert!(
        ["BP", "RBP", "SRBP"]
            .iter()
            .zip(&nof)
            .all(|(c, n)| (15.0..=18.5).contains(&(m(&basic("baseline", c, &[])) - n))),
        "no-f' is not 15–18 below its channel"
    );
    want(format!(
        "vs RBP {:.2}, ASRBP {} vs SRBP {:.2};",
        m(&rbp),
        ms(&finals(&cell("adaptive", "adaptive", "SRBP", &[]))),
        m(&srbp)
    ));
    let dense_srbp = basic("baseline", "SRBP", &[1, 2, 3]);
    let sweep = |n: u32, col: &str| {
        finals(&cell(
            "sparsity-sweep",
            &format!("sparsity n={n}"),
            col,
            &[],
        ))
    };
    let off: Vec<f64> = [2, 4, 8, 16, 32]
        .iter()
        .map(|&n| (m(&dense_srbp) - m(&sweep(n, "SRBP"))).abs())
        .collect();
    want(format!(
        "SRBP n = 2–32 within {:.1} of dense",
        off.iter().copied().fold(0.0, f64::max)
    ));
    let sparse = |n: u32, col: &str| finals(&cell("sparse", &format!("sparse n={n}"), col, &[]));
    want(format!(
        "RBP n = 2 and 8 {} below dense",
        range(
            &[
                m(&rbp) - m(&sparse(2, "RBP")),
                m(&rbp) - m(&sparse(8, "RBP"))
            ],
            1
        )
    ));
    let qe = |b: u32, col: &str| {
        finals(&cell(
            "quantized-error",
            &format!("quantize-signal b={b}"),
            col,
            &[],
        ))
    };
    want(format!(
        "and {} from 2 to 4 bits;",
        range(&[2, 3, 4].map(|b| m(&qe(b, "RBP"))), 1)
    ));
    // the fixed-α rows: RBP's 2–4 bits are the control's runs
    let qe_fixed = |b: u32, col: &str| {
        let exp = match (col, b) {
            ("RBP", 2..=4) => "quantized-error-control",
            _ => "quantized-error-fixed",
        };
        finals(&cell(
            exp,
            &format!("quantize-signal b={b}, α=0.1"),
            col,
            &[1, 2, 3],
        ))
    };
    want(format!(
        "RBP holds {} from 1 to 4 bits",
        range(&[1, 2, 3, 4].map(|b| m(&qe_fixed(b, "RBP"))), 2)
    ));
    let qu = |row: &str, col: &str| finals(&cell("quantized-update", row, col, &[]));
    want(format!(
        "4 bits stochastic: {:.2}, {:.2}, {:.2}, within one sd of float",
        m(&qu("quantize-update b=4, stochastic", "BP")),
        m(&qu("quantize-update b=4, stochastic", "RBP")),
        m(&qu("quantize-update b=4, stochastic", "SRBP")),
    ));
    let control = |col: &str| {
        finals(&cell(
            "quantized-update-control",
            "float updates, constant lr",
            col,
            &[],
        ))
    };
    let nearest = |col: &str| m(&qu("quantize-update b=4", col)) - m(&control(col));
    want(format!(
        "4 bits nearest: BP −{:.2}, SRBP −{:.2}, RBP −{:.2} against float",
        -nearest("BP"),
        -nearest("SRBP"),
        -nearest("RBP")
    ));
    let fixed8 = |col: &str| {
        m(&control(col))
            - m(&finals(&cell(
                "quantized-update-fixed",
                "quantize-update b=8, α=0.01",
                col,
                &[],
            )))
    };
    want(format!(
        "8 bits cost BP {:.2}, SRBP {:.2}, RBP {:.2} (seeds 1–3)",
        fixed8("BP"),
        fixed8("SRBP"),
        fixed8("RBP")
    ));
    // the basic section
    let first: Vec<f64> = cell("basic", "baseline", "BP", &[])
        .iter()
        .map(|r| 100.0 * r.metrics[0].test_acc)
        .collect();
    want(format!(
        "after one epoch BP's seeds have an sd of {:.2},",
        sd(&first)
    ));
    let sbp_train: Vec<f64> = cell("basic", "skipped BP (SBP)", "BP", &[])
        .iter()
        .map(|r| 100.0 * r.metrics.last().unwrap().train_acc)
        .collect();
    want(format!(
        "accuracy keeps rising ({:.2} % at 100)",
        m(&sbp_train)
    ));
    want(format!(
        "BP, RBP and SRBP without the derivative end at {:.2}, {:.2} and {:.2} %",
        nof[0], nof[1], nof[2]
    ));
    want(format!(
        "Skipped BP (SBP)** ends {:.2} points below BP",
        m(&bp) - m(&basic("skipped BP (SBP)", "BP", &[]))
    ));
    // the superseded table's cells (3 seeds): its quoted means against these runs' seeds 1–3
    let superseded =
        std::fs::read_to_string(root().join("docs/results/superseded-table.md")).unwrap();
    let old = |row: &str, col: usize| -> f64 {
        let line = superseded
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap();
        line.split('|')
            .nth(col + 2)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    want(format!(
        "BP no-f' {:.2} against {:.2}, SBP {:.2} against {:.2}",
        m(&basic("no-f'", "BP", &[1, 2, 3])),
        old("no-f'", 0),
        m(&basic("skipped BP (SBP)", "BP", &[1, 2, 3])),
        old("skipped BP (SBP)", 0),
    ));
    want(format!(
        "RBP {} at 8 bits, {:.1} points below float",
        superseded
            .lines()
            .find(|l| l.starts_with("| quantize-update b=8 |"))
            .unwrap()
            .split('|')
            .nth(3)
            .unwrap()
            .trim(),
        old("baseline", 1) - old("quantize-update b=8", 1)
    ));
    // quantized error signals
    let rbp8 = qe(8, "RBP");
    want(format!(
        "ends {:.2} below float ({} vs {}, {:.1} times the larger sd)",
        m(&rbp) - m(&rbp8),
        ms(&rbp8),
        ms(&rbp),
        (m(&rbp) - m(&rbp8)) / sd(&rbp).max(sd(&rbp8))
    ));
    let chain = |col: &str| {
        [1, 2, 3, 4, 8]
            .map(|b| format!("{:.2}", m(&qe(b, col))))
            .join(" → ")
    };
    want(format!(
        "BP {} and SRBP {} from 1 to 8 bits",
        chain("BP"),
        chain("SRBP")
    ));
    let alpha = |a: &str| {
        finals(&cell(
            "quantized-error",
            &format!("quantize-signal b=2, α={a}"),
            "SRBP",
            &[],
        ))
    };
    let auto = qe(2, "SRBP");
    want(format!(
        "({:.2} above auto, {:.1} times the larger sd)",
        m(&alpha("0.1")) - m(&auto),
        (m(&alpha("0.1")) - m(&auto)) / sd(&alpha("0.1")).max(sd(&auto))
    ));
    // sparse feedback
    want(format!(
        "n = 2 and n = 8 are equal ({:.2} vs {:.2})",
        m(&sparse(2, "RBP")),
        m(&sparse(8, "RBP"))
    ));
    want(format!(
        "ending below top-only ({:.2} %)",
        m(&sweep(100, "RBP"))
    ));
    // a 0/1 matrix with n ones among 100 entries a row: mean/sd = √(p / (1 − p)), p = n/100
    let p: f64 = 2.0 / 100.0;
    want(format!("mean/sd ≈ {:.2} at n = 2", (p / (1.0 - p)).sqrt()));
    // the shifted feedback's collapsed seed
    let shifted = cell("feedback", "feedback shifted", "RBP", &[1]);
    let accs: Vec<f64> = shifted[0]
        .metrics
        .iter()
        .map(|e| 100.0 * e.test_acc)
        .collect();
    let losses: Vec<f64> = shifted[0].metrics.iter().map(|e| e.train_loss).collect();
    want(format!(
        "epoch (test accuracy {} %, training loss {} against ln 10 = {:.2}",
        range(&accs, 2),
        range(&losses, 2),
        10f64.ln()
    ));
    // channel dropout
    let drop5 = finals(&cell("dropout", "channel-dropout r=0.5", "RBP", &[]));
    want(format!(
        "{}, {:.2} points below dense RBP",
        ms(&drop5),
        m(&rbp) - m(&drop5)
    ));
    // the alignment runs: BP's δ angle is zero to rounding
    let bp_angle = cell("alignment", "alignment", "BP", &[])
        .iter()
        .flat_map(|r| r.metrics.iter())
        .flat_map(|e| e.layers.clone().unwrap())
        .map(|d| d.delta_angle)
        .fold(0.0, f64::max);
    assert!(bp_angle < 0.001, "BP's δ angle reaches {bp_angle}°");
    want("BP's δ angle is 0 to rounding, < 0.001°".into());
    // the time table: median training seconds per epoch, from the runs' metrics
    let median_of = |runs: Vec<&results::Record>| {
        median(
            runs.iter()
                .flat_map(|r| r.metrics.iter().map(|e| e.seconds))
                .collect(),
        )
    };
    let (_, records) = runs();
    let of = |exp: &str, stochastic: bool| -> Vec<&results::Record> {
        records
            .iter()
            .filter(|r| r.experiment == exp && r.run.row.contains("stochastic") == stochastic)
            .collect()
    };
    want(format!(
        "≈ 18 min (median {:.2} s of training per epoch with diagnostics)",
        median_of(of("alignment", false))
    ));
    want(format!(
        "median training time per epoch {:.2} s with nearest rounding and {:.2} s with stochastic rounding",
        median_of(of("quantized-update", false)),
        median_of(of("quantized-update", true))
    ));
    quotes.check();
}

/// The 4-epoch conv grid's table and prose (`conv-fashion-mnist`, its 2-bit control), each
/// figure recomputed from the runs, with the MNIST-protocol figures they are compared to.
#[test]
fn conv_grid_claims_are_recomputed_from_the_committed_runs() {
    once(conv_grid_claims_are_recomputed_from_the_committed_runs_body);
}

fn conv_grid_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let conv = |row: &str, col: &str| finals(&cell("conv-fashion-mnist", row, col, &[]));
    let control = |col: &str| {
        m(&finals(&cell(
            "conv-quantized-control",
            "quantize-signal b=2, α=0.05",
            col,
            &[],
        )))
    };
    let cols = ["BP", "RBP", "SRBP"];
    // the table, row by row
    let row = |label: &str, row: &str, cols: &[&str]| {
        let cells: Vec<String> = ["BP", "RBP", "SRBP"]
            .iter()
            .map(|c| {
                if cols.contains(c) {
                    ms(&conv(row, c))
                } else {
                    String::new()
                }
            })
            .collect();
        format!("| {label} | {} |", cells.join(" | ")).replace("|  |", "| |")
    };
    want(row("baseline", "baseline", &cols));
    want(row("no-f'", "no-f'", &cols));
    want(row("adaptive (ARBP, ASRBP)", "adaptive", &["RBP", "SRBP"]));
    want(row(
        "sparse n = 2 (0/1 entries)",
        "sparse n=2",
        &["RBP", "SRBP"],
    ));
    want(row(
        "quantized error b = 2 (mid-rise, α auto)",
        "quantize-signal b=2",
        &cols,
    ));
    want(row(
        "channel dropout r = 0.25",
        "channel-dropout r=0.25",
        &cols,
    ));
    want(format!(
        "| control: b = 2, α = 0.05 fixed (seed 1 only) | {:.2} | {:.2} | {:.2} |",
        control("BP"),
        control("RBP"),
        control("SRBP")
    ));
    // the verdict table's conv cell
    let base = |c: &str| conv("baseline", c);
    want(format!(
        "(after 4 epochs: BP {:.2}, RBP {:.2}, SRBP {:.2})",
        m(&base("BP")),
        m(&base("RBP")),
        m(&base("SRBP"))
    ));
    // BP leads, RBP ≈ SRBP
    let (bp, rbp, srbp) = (base("BP"), base("RBP"), base("SRBP"));
    assert!(
        [&bp, &rbp, &srbp]
            .iter()
            .all(|v| (m(&bp) - m(&rbp)).min(m(&bp) - m(&srbp)) > 10.0 * sd(v))
    );
    assert!((m(&rbp) - m(&srbp)).abs() <= sd(&srbp).max(sd(&rbp)));
    let mnist = |row: &str, col: &str, seeds: &[u64]| finals(&cell("basic", row, col, seeds));
    let mnist_means: Vec<f64> = cols.iter().map(|c| m(&mnist("baseline", c, &[]))).collect();
    want(format!(
        "BP is {:.2} points above RBP and {:.2} above SRBP (more than ten times every sd); RBP and SRBP are {:.2} apart, within SRBP's sd ({:.2}): no difference. On the MNIST protocol after 100 epochs the three are within {:.2} points",
        m(&bp) - m(&rbp),
        m(&bp) - m(&srbp),
        (m(&srbp) - m(&rbp)).abs(),
        sd(&srbp),
        mnist_means
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            - mnist_means.iter().copied().fold(f64::INFINITY, f64::min)
    ));
    // no-f'
    let nof: Vec<Vec<f64>> = cols.iter().map(|c| conv("no-f'", c)).collect();
    let cost: Vec<f64> = cols
        .iter()
        .zip(&nof)
        .map(|(c, v)| m(&base(c)) - m(v))
        .collect();
    want(format!(
        "{:.1} (BP), {:.1} (RBP) and {:.1} (SRBP) points below the baseline, three to five times the no-f' cells' own sds ({})",
        cost[0],
        cost[1],
        cost[2],
        range(&nof.iter().map(|v| sd(v)).collect::<Vec<_>>(), 1)
    ));
    // adaptive
    let (ar, asr) = (conv("adaptive", "RBP"), conv("adaptive", "SRBP"));
    want(format!(
        "ARBP {:.2} above RBP ({:.1} times the larger sd, {:.2}: small, from three seeds); ASRBP {:.2} below SRBP, within SRBP's sd ({:.2})",
        m(&ar) - m(&rbp),
        (m(&ar) - m(&rbp)) / sd(&ar).max(sd(&rbp)),
        sd(&ar).max(sd(&rbp)),
        m(&srbp) - m(&asr),
        sd(&srbp)
    ));
    // sparse n = 2, and the MNIST protocol's n = 2
    let (sr, ss) = (conv("sparse n=2", "RBP"), conv("sparse n=2", "SRBP"));
    let msparse =
        |c: &str| m(&mnist("baseline", c, &[])) - m(&finals(&cell("sparse", "sparse n=2", c, &[])));
    want(format!(
        "RBP {:.2} below dense RBP, within its sd ({:.2}): no effect; SRBP {:.2} below dense SRBP, {:.1} times the larger sd ({:.2}) — a small cost, like n = 2 on the MNIST protocol ({:.1} and {:.1} points below dense after 100 epochs",
        m(&rbp) - m(&sr),
        sd(&sr),
        m(&srbp) - m(&ss),
        (m(&srbp) - m(&ss)) / sd(&ss).max(sd(&srbp)),
        sd(&ss).max(sd(&srbp)),
        msparse("RBP"),
        msparse("SRBP")
    ));
    // 2-bit error signals: the cost, in the cells' sds, and on the MNIST protocol
    let q2: Vec<Vec<f64>> = cols
        .iter()
        .map(|c| conv("quantize-signal b=2", c))
        .collect();
    let q2_cost: Vec<f64> = cols
        .iter()
        .zip(&q2)
        .map(|(c, v)| m(&base(c)) - m(v))
        .collect();
    let ks: Vec<f64> = cols
        .iter()
        .zip(&q2)
        .zip(&q2_cost)
        .map(|((c, v), d)| d / sd(v).max(sd(&base(c))))
        .collect();
    let mq2 = |c: &str| {
        m(&mnist("baseline", c, &[]))
            - m(&finals(&cell(
                "quantized-error",
                "quantize-signal b=2",
                c,
                &[],
            )))
    };
    want(format!(
        "BP {:.2}, RBP {:.2} and SRBP {:.2} points below the baseline after 4 epochs ({} times the cells' sds)",
        q2_cost[0],
        q2_cost[1],
        q2_cost[2],
        range(&ks, 1).replace('–', " to ")
    ));
    want(format!(
        "the same 2 bits cost BP {:.2}, RBP {:.2} and SRBP {:.2} points after 100 epochs",
        mq2("BP"),
        mq2("RBP"),
        mq2("SRBP")
    ));
    let diff = |c: &str| control(c) - m(&q2[cols.iter().position(|x| *x == c).unwrap()]);
    want(format!(
        "BP ends {:.2} points *lower* ({:.2}), RBP {:.2} higher ({:.2}), SRBP {:.2} lower ({:.2}, within SRBP's sd)",
        -diff("BP"),
        control("BP"),
        diff("RBP"),
        control("RBP"),
        -diff("SRBP"),
        control("SRBP")
    ));
    assert!(-diff("SRBP") <= sd(&q2[2]));
    // channel dropout r = 0.25, and the MNIST protocol's
    let d: Vec<Vec<f64>> = cols
        .iter()
        .map(|c| conv("channel-dropout r=0.25", c))
        .collect();
    let dcost = |i: usize| m(&base(cols[i])) - m(&d[i]);
    let larger = |i: usize| sd(&d[i]).max(sd(&base(cols[i])));
    let mdrop = |c: &str| {
        (m(&mnist("baseline", c, &[]))
            - m(&finals(&cell("dropout", "channel-dropout r=0.25", c, &[]))))
        .abs()
    };
    want(format!(
        "BP {:.2} below the baseline (within BP-dropout's sd, {:.2}), RBP {:.2} ({:.1} times the larger sd, {:.2}) and SRBP {:.2} ({:.1} times, {:.2})",
        dcost(0),
        sd(&d[0]),
        dcost(1),
        dcost(1) / larger(1),
        larger(1),
        dcost(2),
        dcost(2) / larger(2),
        larger(2)
    ));
    assert!(dcost(0) <= sd(&d[0]));
    want(format!(
        "the same rate ends within {:.2} points of dense for RBP and {:.2} for SRBP",
        mdrop("RBP"),
        mdrop("SRBP")
    ));
    // the superseded table's conv cells against these runs: which are equal, how far the rest
    let superseded =
        std::fs::read_to_string(root().join("docs/results/superseded-table.md")).unwrap();
    let (mut equal, mut apart) = (Vec::new(), Vec::new());
    for (label, row) in [
        ("baseline", "baseline"),
        ("no-f'", "no-f'"),
        ("adaptive", "adaptive"),
    ] {
        let line = superseded
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap();
        for (i, col) in cols.iter().enumerate() {
            let old = line.split('|').nth(5 + i).unwrap().trim();
            if old == "n/a" {
                continue;
            }
            let new = ms(&conv(row, col));
            let name = match (row, *col) {
                ("baseline", c) => c.to_string(),
                ("adaptive", c) => format!("A{c}"),
                (_, c) => format!("{c} no-f'"),
            };
            if old.split(' ').next() == new.split(' ').next() {
                equal.push(name);
            } else {
                let o: f64 = old.split(' ').next().unwrap().parse().unwrap();
                let old_sd: f64 = old.split(['(', ')']).nth(1).unwrap().parse().unwrap();
                let d = (o - m(&conv(row, col))).abs();
                assert!(d <= old_sd.max(sd(&conv(row, col))), "{name}: {d} apart");
                apart.push(d);
            }
        }
    }
    want(format!(
        "The superseded table's conv cells: {}, {} and {} are equal to the last digit; the others differ by {} points, within one sd",
        equal[0],
        equal[1],
        equal[2],
        range(&apart, 2)
    ));
    quotes.check();
}

/// The conv net over 30 epochs (`conv-basic`): its table epoch by epoch and its prose, recomputed
/// from the runs.
#[test]
fn conv_basic_claims_are_recomputed_from_the_committed_runs() {
    once(conv_basic_claims_are_recomputed_from_the_committed_runs_body);
}

fn conv_basic_claims_are_recomputed_from_the_committed_runs_body() {
    let mut quotes = Quotes::of("docs/reproducing.md");
    let mut want = |q: String| quotes.want(q);
    let cols = ["BP", "RBP", "SRBP"];
    // a row of the doc's table: its label names the cell
    let runs = |label: &str| match label.strip_suffix(" no-f'") {
        Some(col) => cell("conv-basic", "no-f'", col, &[]),
        None => cell("conv-basic", "baseline", label, &[]),
    };
    let at = |col: &str, epoch: usize| -> Vec<f64> {
        runs(col)
            .iter()
            .map(|r| 100.0 * r.metrics[epoch - 1].test_acc)
            .collect()
    };
    // the cells finished so far beyond the three channels
    let more = ["BP no-f'", "RBP no-f'"];
    for col in cols.into_iter().chain(more) {
        let train: Vec<f64> = runs(col)
            .iter()
            .map(|r| 100.0 * r.metrics[29].train_acc)
            .collect();
        assert!(runs(col).len() == 3 && runs(col).iter().all(|r| r.metrics.len() == 30));
        // "training accuracy is at or below test accuracy for RBP and SRBP"
        assert!(
            !["RBP", "SRBP"].contains(&col) || m(&train) <= m(&at(col, 30)),
            "{col}'s fit"
        );
        want(format!(
            "| {col} | {} | {} |",
            [1, 4, 10, 20, 30].map(|e| ms(&at(col, e))).join(" | "),
            ms(&train)
        ));
    }
    // differences at an epoch, and in units of the larger sd
    let gap = |a: &str, b: &str, e: usize| m(&at(a, e)) - m(&at(b, e));
    let k = |a: &str, b: &str, e: usize| gap(a, b, e) / sd(&at(a, e)).max(sd(&at(b, e)));
    let mnist: Vec<f64> = cols
        .iter()
        .map(|c| m(&finals(&cell("basic", "baseline", c, &[]))))
        .collect();
    want(format!(
        "at epoch 30 BP is {:.2} points above RBP ({:.1} times the larger sd) and {:.2} above SRBP ({:.1} times); on the MNIST protocol the three end within {:.2} points after 100 epochs. The gap to RBP narrows with training ({:.2} at epoch 4, {:.2} at 30), the gap to SRBP does not ({:.2}, {:.2}).",
        gap("BP", "RBP", 30),
        k("BP", "RBP", 30),
        gap("BP", "SRBP", 30),
        k("BP", "SRBP", 30),
        mnist.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - mnist.iter().copied().fold(f64::INFINITY, f64::min),
        gap("BP", "RBP", 4),
        gap("BP", "RBP", 30),
        gap("BP", "SRBP", 4),
        gap("BP", "SRBP", 30),
    ));
    assert!(gap("SRBP", "RBP", 4) > 0.0 && k("SRBP", "RBP", 4) < 1.0);
    assert!(k("RBP", "SRBP", 10) < 1.0);
    want(format!(
        "after 4 epochs they are level (SRBP {:.2} above, within its sd), at epoch 10 RBP is {:.2} above (within the larger sd, {:.2}), at epoch 20 {:.2} ({:.1} sds) and at epoch 30 {:.2} ({:.1} sds)",
        gap("SRBP", "RBP", 4),
        gap("RBP", "SRBP", 10),
        sd(&at("RBP", 10)).max(sd(&at("SRBP", 10))),
        gap("RBP", "SRBP", 20),
        k("RBP", "SRBP", 20),
        gap("RBP", "SRBP", 30),
        k("RBP", "SRBP", 30),
    ));
    let gain = |c: &str| m(&at(c, 30)) - m(&at(c, 20));
    assert!(
        cols.iter()
            .all(|c| gain(c) > sd(&at(c, 30)).max(sd(&at(c, 20))))
    );
    want(format!(
        "from epoch 20 to 30 BP gains {:.2}, RBP {:.2} and SRBP {:.2} points",
        gain("BP"),
        gain("RBP"),
        gain("SRBP")
    ));
    for e in 20..=30 {
        assert!(
            gap("BP", "RBP", e) > 0.0 && gap("RBP", "SRBP", e) > 0.0,
            "the ranking at epoch {e}"
        );
    }
    // without f': far below, and flat where the others still climb
    let [nof, rnof] = more;
    assert!(
        gain(nof).abs() < sd(&at(nof, 30)).max(sd(&at(nof, 20))),
        "BP no-f' moved from epoch 20 to 30"
    );
    want(format!(
        "BP without f' ends at {} after 30 epochs, {:.2} points below BP ({:.1} times the larger sd; on the MNIST protocol {:.2} after 100 epochs), and from epoch 20 to 30 it moves {:+.2}, within its sd",
        ms(&at(nof, 30)),
        gap("BP", nof, 30),
        k("BP", nof, 30),
        m(&basic("baseline", "BP", &[])) - m(&basic("no-f'", "BP", &[])),
        gain(nof),
    ));
    // "their first 4 epochs are the 4-epoch grid's no-f' runs to the bit"
    let bits = |r: &results::Record| -> Vec<(u64, u64)> {
        r.metrics
            .iter()
            .take(4)
            .map(|e| (e.train_loss.to_bits(), e.test_acc.to_bits()))
            .collect()
    };
    for (label, col) in [(nof, "BP"), (rnof, "RBP")] {
        for r in runs(label) {
            let short = cell("conv-fashion-mnist", "no-f'", col, &[r.run.seed]);
            assert_eq!(bits(r), bits(short[0]), "{label} seed {}", r.run.seed);
        }
    }
    want(format!(
        "RBP without f' ends at {} after 30 epochs, {:.2} points below RBP ({:.1} times the larger sd; on the MNIST protocol {:.2} after 100 epochs), and from epoch 20 to 30 it gains {:.2} points, more than its sds: unlike BP without f' it still climbs. It ends {:.2} above BP without f' ({:.1} times the larger sd)",
        ms(&at(rnof, 30)),
        gap("RBP", rnof, 30),
        k("RBP", rnof, 30),
        m(&basic("baseline", "RBP", &[])) - m(&basic("no-f'", "RBP", &[])),
        gain(rnof),
        gap(rnof, nof, 30),
        k(rnof, nof, 30),
    ));
    assert!(gain(rnof) > sd(&at(rnof, 30)).max(sd(&at(rnof, 20))));
    // "a small difference": between one and two sds
    assert!((1.0..2.0).contains(&k(rnof, nof, 30)));
    // "BP's, RBP's and SRBP's runs are not: ... from the first epoch on"
    for col in cols {
        for r in runs(col) {
            let short = cell("conv-fashion-mnist", "baseline", col, &[r.run.seed]);
            let first = |r: &results::Record| r.metrics[0].train_loss;
            assert!(first(r) != first(short[0]) && (first(r) - first(short[0])).abs() < 1e-3);
        }
    }
    want(format!(
        "on the conv net (Fashion-MNIST, 30 epochs) BP without f' {}, {:.2} below BP, RBP without f' {}, {:.2} below RBP",
        ms(&at(nof, 30)),
        gap("BP", nof, 30),
        ms(&at(rnof, 30)),
        gap("RBP", rnof, 30),
    ));
    // the control: SRBP seed 1 with its matrices scaled, against the default and RBP (seed 1)
    let gains = ["0.0625", "0.25", "4", "16"];
    let scaled: Vec<f64> = gains
        .iter()
        .map(|g| {
            finals(&cell(
                "conv-srbp-scale-control",
                &format!("feedback scaled:{g}"),
                "SRBP",
                &[1],
            ))[0]
        })
        .collect();
    let seed1 = |col: &str| finals(&cell("conv-basic", "baseline", col, &[1]))[0];
    assert!(
        scaled.iter().all(|s| *s < seed1("SRBP")),
        "a scale beats the default: {scaled:?}"
    );
    want(format!(
        "end at {:.2}, {:.2}, {:.2} and {:.2} against the default's {:.2} (the same seed) and RBP's {:.2} (seed 1)",
        scaled[0],
        scaled[1],
        scaled[2],
        scaled[3],
        seed1("SRBP"),
        seed1("RBP")
    ));
    // the verdict table's rows
    want(format!(
        "The paper's conv net (Fashion-MNIST, 30 epochs): RBP {:.2} above SRBP ({:.1} sds) |",
        gap("RBP", "SRBP", 30),
        k("RBP", "SRBP", 30)
    ));
    let base4 = |c: &str| m(&finals(&cell("conv-fashion-mnist", "baseline", c, &[])));
    want(format!(
        "The conv net at 30 epochs: BP {}, RBP {}, SRBP {} — {:.2} and {:.2} below BP, RBP {:.2} above SRBP ({:.1} sds), not through the scale of SRBP's matrices (control, seed 1); BP and RBP without f' {} and {}; SRBP without f', SBP and top-only still running (after 4 epochs: BP {:.2}, RBP {:.2}, SRBP {:.2})",
        ms(&at("BP", 30)),
        ms(&at("RBP", 30)),
        ms(&at("SRBP", 30)),
        gap("BP", "RBP", 30),
        gap("BP", "SRBP", 30),
        gap("RBP", "SRBP", 30),
        k("RBP", "SRBP", 30),
        ms(&at(nof, 30)),
        ms(&at(rnof, 30)),
        base4("BP"),
        base4("RBP"),
        base4("SRBP"),
    ));
    // the time the grid's epochs took
    let median = median(
        cols.into_iter()
            .chain(more)
            .flat_map(runs)
            .flat_map(|r| r.metrics.iter().map(|e| e.seconds))
            .collect(),
    );
    want(format!(
        "(conv-basic: 720 epochs, a median of {median:.0} s each, two runs at a time)"
    ));
    quotes.check();
}
