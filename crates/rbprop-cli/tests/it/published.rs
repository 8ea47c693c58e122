//! The published results regenerate from the raw runs committed beside them: every
//! `docs/results/runs/<experiment>.tar.gz` is unpacked, `rbp table` and `rbp plot` run on the
//! unpacked runs alone, and the table (Markdown and CSV) and every figure (SVG) must equal the
//! committed ones byte for byte (`scripts/publish-results.sh` writes them).

use super::cli::rbp;
use std::path::Path;

pub(super) fn unpack(archive: &Path, into: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(into)
        .unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
}

#[test]
fn published_tables_and_figures_regenerate_from_the_committed_runs() {
    let published =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("docs/results/runs");
    let archives: Vec<_> = std::fs::read_dir(&published)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert!(
        !archives.is_empty(),
        "no raw runs in {}",
        published.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    for a in &archives {
        unpack(a, tmp.path());
    }
    let dir = tmp.path().to_str().unwrap();
    for cmd in ["table", "plot"] {
        let o = rbp(&[cmd, dir]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["table.md", "table.csv"] {
        let (got, want) = (
            std::fs::read_to_string(tmp.path().join(f)).unwrap(),
            std::fs::read_to_string(published.join(f)).unwrap(),
        );
        assert!(
            got == want,
            "{f} does not regenerate from the committed runs:\n{got}\n--- committed:\n{want}"
        );
    }
    let figures = published.join("figures");
    let mut n = 0;
    for e in std::fs::read_dir(&figures).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        let regenerated = tmp.path().join("figures").join(name);
        assert!(
            std::fs::read(&regenerated).ok() == std::fs::read(&p).ok(),
            "{} does not regenerate from the committed runs",
            p.display()
        );
        n += 1;
    }
    // and no figure of the runs is missing from the published ones
    let drawn = std::fs::read_dir(tmp.path().join("figures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert_eq!(
        n, drawn,
        "published figures differ in number from the regenerated ones"
    );
}

/// The numbers of the feedback-distribution section of `docs/reproducing.md` are recomputed from
/// the committed runs: every mean (sample sd) of its table, the per-seed reading of the collapsed
/// RBP run and the differences its text quotes.
#[test]
fn the_feedback_section_quotes_the_committed_runs() {
    use std::collections::BTreeMap;
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let published = root.join("docs/results/runs");
    let tmp = tempfile::tempdir().unwrap();
    for e in ["basic", "feedback", "feedback-control"] {
        unpack(&published.join(format!("{e}.tar.gz")), tmp.path());
    }
    // (experiment, channel, feedback) → seed → test accuracy % per epoch
    let mut acc: BTreeMap<(String, String, String), BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for e in ["basic", "feedback", "feedback-control"] {
        let mut dirs = vec![tmp.path().join(e)];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.file_name().is_some_and(|n| n == "config.toml") {
                    // read as the library reads a run (older runs nest the channel options)
                    let c = rbprop::run::RunDir::new(&d).read_config().unwrap();
                    let seed = c.seed;
                    let metrics =
                        std::fs::read_to_string(p.with_file_name("metrics.jsonl")).unwrap();
                    let series: Vec<f64> = metrics
                        .lines()
                        .map(|l| {
                            let v: serde_json::Value = serde_json::from_str(l).unwrap();
                            100.0 * v["test_acc"].as_f64().unwrap()
                        })
                        .collect();
                    let feedback = c.channel_options.feedback.to_string();
                    acc.entry((e.to_string(), c.channel.to_string(), feedback))
                        .or_default()
                        .insert(seed, series);
                }
            }
        }
    }
    let values = |e: &str, ch: &str, fb: &str, epoch: usize, seeds: &[u64]| -> Vec<f64> {
        let runs = &acc[&(e.to_string(), ch.to_string(), fb.to_string())];
        runs.iter()
            .filter(|(s, _)| seeds.is_empty() || seeds.contains(s))
            .map(|(_, v)| v[epoch - 1])
            .collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    let cell = |e: &str, ch: &str, fb: &str, epoch: usize, seeds: &[u64]| {
        let v = values(e, ch, fb, epoch, seeds);
        format!("{:.2} ({:.2})", mean(&v), sd(&v))
    };
    let doc = std::fs::read_to_string(root.join("docs/reproducing.md")).unwrap();
    let row = |label: &str, e: &str, fb: &str, srbp: bool, seeds: &[u64]| {
        let mut r = format!(
            "| {label} | {} | {} |",
            cell(e, "rbp", fb, 1, seeds),
            cell(e, "rbp", fb, 100, seeds)
        );
        if srbp {
            r.push_str(&format!(
                " {} | {} |",
                cell(e, "srbp", fb, 1, seeds),
                cell(e, "srbp", fb, 100, seeds)
            ));
        } else {
            r.push_str(" | |");
        }
        r
    };
    for line in [
        row("normal (basic)", "basic", "normal", true, &[]),
        row("uniform", "feedback", "uniform", true, &[]),
        row("shifted, μ = σ", "feedback", "shifted:1", true, &[]),
        row(
            "shifted, μ = 0.3σ (seeds 1–3)",
            "feedback-control",
            "shifted:0.3",
            false,
            &[],
        ),
        row(
            "shifted, μ = 0.1σ (seeds 1–3)",
            "feedback-control",
            "shifted:0.1",
            false,
            &[],
        ),
        format!(
            "(normal RBP, seeds 1–3: {} at epoch 100.)",
            cell("basic", "rbp", "normal", 100, &[1, 2, 3])
        ),
    ] {
        assert!(doc.contains(&line), "docs/reproducing.md lacks `{line}`");
    }
    // the collapsed seed, the four others, and the differences quoted
    let shifted = values("feedback", "rbp", "shifted:1", 100, &[]);
    assert_eq!(format!("{:.2}", shifted[0]), "10.00");
    let rest = &shifted[1..];
    let normal = mean(&values("basic", "rbp", "normal", 100, &[]));
    let normal13 = mean(&values("basic", "rbp", "normal", 100, &[1, 2, 3]));
    let srbp = mean(&values("basic", "srbp", "normal", 100, &[]));
    let quoted = [
        format!("end at {:.2} ({:.2})", mean(rest), sd(rest)),
        format!("{:.1} points below normal feedback", normal - mean(rest)),
        format!(
            "RBP {:.2} below and SRBP {:.2} above",
            normal - mean(&values("feedback", "rbp", "uniform", 100, &[])),
            mean(&values("feedback", "srbp", "uniform", 100, &[])) - srbp
        ),
        format!(
            "{:.2} and {:.2} above normal feedback's same",
            mean(&values("feedback-control", "rbp", "shifted:0.1", 100, &[])) - normal13,
            mean(&values("feedback-control", "rbp", "shifted:0.3", 100, &[])) - normal13
        ),
    ];
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    for q in quoted {
        assert!(flat.contains(&q), "docs/reproducing.md lacks `{q}`");
    }
}
