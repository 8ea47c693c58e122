//! `rbp reproduce` and `rbp table` on the smoke grid.

use super::cli::rbp;
use std::path::Path;

const SMOKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/smoke/table1.toml"
);

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn final_acc(dir: &Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["test_acc"].as_f64().unwrap()
}

#[test]
fn the_smoke_grid_runs_resumes_and_tabulates() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let r = res.to_str().unwrap();
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--jobs", "2"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("[14/14]"), "{}", out(&o));
    let root = res.join("smoke-table1");
    assert!(root.join("experiment.toml").is_file());
    for id in [
        "baseline--bp--seed1",
        "baseline--srbp--seed2",
        "dropout-r-0.25--rbp--seed1",
    ] {
        for f in [
            "config.toml",
            "metrics.jsonl",
            "summary.json",
            "checkpoint.safetensors",
        ] {
            assert!(root.join(id).join(f).is_file(), "{id}/{f} missing");
        }
    }
    // a second invocation finds every run complete
    let o = rbp(&["reproduce", SMOKE, "--results", r]);
    assert_eq!(
        out(&o).matches("already complete").count(),
        14,
        "{}",
        out(&o)
    );

    // the table: rows in the paper's order, n/a where no variant, values from the metrics files
    let o = rbp(&["table", r]);
    assert!(o.status.success(), "{}", out(&o));
    let md = std::fs::read_to_string(res.join("table.md")).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "| row | fashion-mnist-subset BP | fashion-mnist-subset RBP | fashion-mnist-subset SRBP |"
    );
    let rows: Vec<&str> = lines[2..7]
        .iter()
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(
        rows,
        [
            "baseline",
            "no-f'",
            "adaptive",
            "sparse n=2",
            "dropout r=0.25"
        ]
    );
    let (a, b) = (
        final_acc(&root.join("baseline--rbp--seed1")),
        final_acc(&root.join("baseline--rbp--seed2")),
    );
    let mean = (a + b) / 2.0;
    let sd = ((a - mean).powi(2) + (b - mean).powi(2)).sqrt(); // sample sd of two values
    let want = format!("{:.2} ({:.2})", 100.0 * mean, 100.0 * sd);
    assert!(
        lines[2].contains(&want),
        "baseline row {} lacks {want}",
        lines[2]
    );
    assert!(lines[3].contains("| n/a |"), "{}", lines[3]);
    let csv = std::fs::read_to_string(res.join("table.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("fashion-mnist-subset,baseline,RBP,,")
                && l.ends_with(",2,2,false,false,false")),
        "{csv}"
    );

    // figures from the results alone: one per family of rows, and the sparsity curve
    let o = rbp(&["plot", r]);
    assert!(o.status.success(), "{}", out(&o));
    for name in [
        "basic-algorithms",
        "adaptive",
        "sparse",
        "dropout",
        "sparsity",
    ] {
        let svg = std::fs::read_to_string(
            res.join("figures")
                .join(format!("fashion-mnist-subset-{name}.svg")),
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("accuracy"),
            "{name}.svg"
        );
        let png = std::fs::read(
            res.join("figures")
                .join(format!("fashion-mnist-subset-{name}.png")),
        )
        .unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{name}.png");
    }
    let base =
        std::fs::read_to_string(res.join("figures/fashion-mnist-subset-basic-algorithms.svg"))
            .unwrap();
    assert!(
        base.contains("RBP, baseline")
            && base.contains("epoch")
            && base.contains("test accuracy (%)")
    );
    // variant figures: labels in words, the unmodified channel drawn beside its variants
    let dropout =
        std::fs::read_to_string(res.join("figures/fashion-mnist-subset-dropout.svg")).unwrap();
    assert!(
        dropout.contains("RBP, dropout r = 0.25") && dropout.contains("RBP, baseline"),
        "{dropout}"
    );
    // PNGs are drawn at twice the SVG's size
    let png = std::fs::read(res.join("figures/fashion-mnist-subset-dropout.png")).unwrap();
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let svg_width: u32 = dropout
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert_eq!(width, 2 * svg_width);

    // a missing run shows as missing seeds, never as 0; shortened runs are marked
    std::fs::remove_dir_all(root.join("adaptive--srbp--seed1")).unwrap();
    std::fs::remove_dir_all(root.join("adaptive--srbp--seed2")).unwrap();
    std::fs::remove_file(root.join("baseline--bp--seed2").join("metrics.jsonl")).unwrap();
    let md = out(&rbp(&["table", r]));
    let line = |name: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap()
            .to_string()
    };
    assert!(line("adaptive").contains("missing"), "{md}");
    assert!(line("baseline").contains("[1/2]"), "{md}");
    let quick = tmp.path().join("quick");
    let o = rbp(&[
        "reproduce",
        SMOKE,
        "--results",
        quick.to_str().unwrap(),
        "--quick",
        "1",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let md = out(&rbp(&["table", quick.to_str().unwrap()]));
    assert!(md.lines().nth(2).unwrap().contains('*'), "{md}");
}

#[test]
fn bad_experiment_files_are_refused_with_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.toml");
    let base =
        "name = \"x\"\ndataset = \"d\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1]\n";
    for (body, needle) in [
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nchannel = \"nope\"\n",
            "unknown channel `nope`",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nlearning_rate = 1\n",
            "learning_rate",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\n[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\n",
            "share row",
        ),
        ("", "variant"),
        // a typo or a wrong type names the section and the key
        (
            "[train]\nepoch = 3\n[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\n",
            "`train.epoch`: unknown field `epoch`",
        ),
        (
            "[train]\nepochs = \"3\"\n[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\n",
            "`train.epochs`: invalid type: string \"3\", expected usize",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nchannel_options = { dropuot = 0.1 }\n",
            "`variant a / BP: channel_options`: unknown field `dropuot`",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nchannel_dropuot = 0.1\n",
            "`variant a / BP: channel_dropuot`: unknown field `channel_dropuot`",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nquantize_signal = \"2:fast\"\n",
            "`variant a / BP: quantize_signal`: `fast` is not a scale",
        ),
        (
            "[[variant]]\nrow = \"a\"\ncolumn = \"BP\"\nlr = \"fast\"\n",
            "`variant a / BP: lr`: invalid type: string \"fast\"",
        ),
    ] {
        std::fs::write(&f, format!("{base}{body}")).unwrap();
        let o = rbp(&[
            "reproduce",
            f.to_str().unwrap(),
            "--results",
            tmp.path().to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert!(
            out(&o).contains("bad.toml") && out(&o).contains(needle),
            "{body}: {}",
            out(&o)
        );
    }
    let o = rbp(&["table", tmp.path().join("nothing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("no such directory"), "{}", out(&o));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for cmd in ["table", "plot", "export"] {
        let o = rbp(&[cmd, empty.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(out(&o).contains("no experiment results"), "{}", out(&o));
    }
}

#[test]
fn every_shipped_experiment_file_is_valid_and_every_smoke_grid_runs() {
    use rbprop::experiment::Experiment;
    use rbprop::experiment::runner::{self, Options};
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("configs");
    let mut files: Vec<_> = ["paper", "smoke"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 16, "{files:?}");
    let tmp = tempfile::tempdir().unwrap();
    for f in files {
        let exp = Experiment::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if f.parent().unwrap().ends_with("smoke") {
            let opts = Options {
                results: tmp.path().to_path_buf(),
                jobs: 2,
                quick: None,
                data: None,
            };
            let out = runner::reproduce(&exp, &opts, &runner::Quiet).unwrap();
            assert!(
                out.iter()
                    .all(|(_, o)| matches!(o, runner::Outcome::Completed { .. })),
                "{}: {out:?}",
                f.display()
            );
        }
    }
}

#[test]
fn reproduce_reports_every_epoch_with_an_eta_and_names_the_table_command() {
    // not on a terminal (the output is captured): plain lines, one per finished epoch of each run
    // with the grid's ETA, one per finished run, then the command that makes the table
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let r = res.to_str().unwrap();
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--jobs", "2"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let ids: Vec<String> = std::fs::read_dir(res.join("smoke-table1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 14);
    for id in &ids {
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with `{needle}`:\n{text}"))
        };
        let first = at(&format!("  {id}: epoch 1/2  "));
        let second = at(&format!("  {id}: epoch 2/2  "));
        let done = lines
            .iter()
            .position(|l| l.starts_with('[') && l.contains(&format!("] {id}: test acc")))
            .unwrap_or_else(|| panic!("no finished line for {id}:\n{text}"));
        assert!(
            first < second && second < done,
            "{id}: out of order:\n{text}"
        );
        for l in [lines[first], lines[second]] {
            assert!(
                l.contains("test acc") && l.contains("(grid: epochs ") && l.contains(", eta "),
                "{l}"
            );
        }
    }
    // the last epoch of the grid leaves nothing to do
    assert!(
        lines
            .iter()
            .any(|l| l.contains("epochs 28/28") && l.contains("eta 0s")),
        "{text}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("make the table: rbp table {r}")
    );
    // no bars or terminal codes in plain output
    assert!(
        !text.contains('\u{1b}') && !out(&o).contains('\r'),
        "{text}"
    );
    // a second invocation has nothing to train: no epoch lines
    let again = rbp(&["reproduce", SMOKE, "--results", r]);
    let text = String::from_utf8(again.stdout).unwrap();
    assert_eq!(text.matches("already complete").count(), 14, "{text}");
    assert!(!text.contains(": epoch "), "{text}");
    assert!(
        text.ends_with(&format!("make the table: rbp table {r}\n")),
        "{text}"
    );
}
