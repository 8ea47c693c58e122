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
    for id in ["bp/seed-1", "srbp/seed-2", "rbp/dropout-0.25/seed-1"] {
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
            "channel-dropout r=0.25"
        ]
    );
    let (a, b) = (
        final_acc(&root.join("rbp/seed-1")),
        final_acc(&root.join("rbp/seed-2")),
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

    // figures from the results alone: one per family of rows; no curve against sparsity from
    // the one n measured (the published sweep draws it: docs/results/runs/figures)
    let o = rbp(&["plot", r]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !res.join("figures/fashion-mnist-subset-sparsity.svg")
            .exists(),
        "a curve against sparsity from one n"
    );
    for name in ["basic-algorithms", "adaptive", "sparse", "channel-dropout"] {
        let svg = std::fs::read_to_string(
            res.join("figures")
                .join(format!("fashion-mnist-subset-{name}.svg")),
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("accuracy"),
            "{name}.svg"
        );
        // Table 1 as a figure: the family's final accuracies, the seed count in its legend
        let last = std::fs::read_to_string(
            res.join("figures")
                .join(format!("fashion-mnist-subset-{name}-final.svg")),
        )
        .unwrap();
        assert!(
            last.contains("final test accuracy") && last.contains("seeds per cell"),
            "{name}-final.svg"
        );
        assert!(
            svg.contains("lines: mean of"),
            "{name}.svg has no seeds note"
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
        std::fs::read_to_string(res.join("figures/fashion-mnist-subset-channel-dropout.svg"))
            .unwrap();
    assert!(
        dropout.contains("RBP, r = 0.25")
            && dropout.contains("channel-dropout, RBP")
            && dropout.contains("RBP, baseline"),
        "{dropout}"
    );
    // PNGs are drawn at twice the SVG's size
    let png = std::fs::read(res.join("figures/fashion-mnist-subset-channel-dropout.png")).unwrap();
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let svg_width: u32 = dropout
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert_eq!(width, 2 * svg_width);

    // a missing run shows as missing seeds, never as 0; shortened runs are marked
    std::fs::remove_dir_all(root.join("asrbp/seed-1")).unwrap();
    std::fs::remove_dir_all(root.join("asrbp/seed-2")).unwrap();
    std::fs::remove_file(root.join("bp/seed-2").join("metrics.jsonl")).unwrap();
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
            "`variant a / BP: channel_options.dropuot`: unknown field `dropuot`",
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
                device: None,
                adapter: None,
                ensemble: 1,
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
    let ids: Vec<String> = rbprop::experiment::Experiment::load(Path::new(SMOKE))
        .unwrap()
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 14);
    for id in &ids {
        let dir = res.join("smoke-table1").join(id);
        assert!(dir.join("metrics.jsonl").is_file(), "{}", dir.display());
    }
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

#[test]
fn ls_lists_every_run_and_results_under_legacy_ids_are_found() {
    use rbprop::experiment::Experiment;
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let r = res.to_str().unwrap();
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--jobs", "2"]);
    assert!(o.status.success(), "{}", out(&o));
    let root = res.join("smoke-table1");
    let runs = Experiment::load(Path::new(SMOKE)).unwrap().runs().unwrap();

    // rbp ls: a header, then one aligned line per run with the settings that differ
    let o = rbp(&["ls", r]);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 15, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "experiment",
            "run",
            "status",
            "epochs",
            "test",
            "acc",
            "channel",
            "channel_dropout",
            "feedback",
            "seed"
        ],
        "{text}"
    );
    let at = lines[0].find("status").unwrap();
    for (l, run) in lines[1..].iter().zip(&runs) {
        let cells: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(
            cells[..4],
            ["smoke-table1", &run.id, "finished", "2/2"],
            "{l}"
        );
        assert_eq!(&l[at..at + 8], "finished", "aligned: {text}");
        let acc = final_acc(&root.join(&run.id));
        assert_eq!(cells[4], format!("{:.2}%", 100.0 * acc), "{l}");
        assert_eq!(cells[5], run.config.channel.to_string(), "{l}");
        assert_eq!(cells[8], run.seed.to_string(), "{l}");
    }
    let line = |id: &str| lines.iter().find(|l| l.contains(id)).unwrap().to_string();
    assert!(line("rbp/dropout-0.25/seed-1").contains(" 0.25 "), "{text}");
    assert!(
        line("srbp/sparse-2/seed-2").contains(" sparse:2 "),
        "{text}"
    );
    let o = rbp(&["ls", r, "--format", "csv"]);
    assert!(o.status.success(), "{}", out(&o));
    let mut reader = csv::Reader::from_reader(&o.stdout[..]);
    let head: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        head,
        [
            "experiment",
            "run_id",
            "dir",
            "status",
            "epochs_done",
            "epochs",
            "experiment_epochs",
            "test_acc",
            "error",
            "channel",
            "channel_dropout",
            "feedback",
            "seed"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 14);
    for (row, run) in rows.iter().zip(&runs) {
        assert_eq!(&row[1], run.id);
        let acc: f64 = row[7].parse().unwrap();
        assert_eq!(acc, final_acc(&res.join(&row[2])));
    }
    let table = |dir: &str| {
        let o = rbp(&["table", dir]);
        assert!(o.status.success(), "{}", out(&o));
        std::fs::read_to_string(res.join("table.md")).unwrap()
    };
    let before = table(r);

    // results written before run ids were made of settings: `row--column--seedN`
    for run in &runs {
        std::fs::rename(root.join(&run.id), root.join(&run.legacy_id)).unwrap();
    }
    for d in ["bp", "rbp", "srbp", "rbp-nof", "asrbp"] {
        std::fs::remove_dir_all(root.join(d)).unwrap();
    }
    assert!(root.join("dropout-r-0.25--rbp--seed1").is_dir());
    let o = rbp(&["reproduce", SMOKE, "--results", r]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        out(&o).matches("already complete").count(),
        14,
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("14 run(s) found under their legacy ids"),
        "{}",
        out(&o)
    );
    assert!(
        !root.join("bp").exists(),
        "nothing written under the new ids"
    );
    assert_eq!(table(r), before, "the table reads the legacy runs");
    let o = rbp(&["ls", r]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("finished")
            .count(),
        14
    );
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--status"]);
    assert!(out(&o).contains("14 runs: 14 finished"), "{}", out(&o));
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--only", "13"]);
    assert!(out(&o).contains("already complete"), "{}", out(&o));
    let o = rbp(&["export", r]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        1 + 14 * 2
    );

    // a legacy directory with other settings is another run: not taken for this one
    let (run, legacy) = (&runs[0], root.join(&runs[0].legacy_id));
    let config = std::fs::read_to_string(legacy.join("config.toml")).unwrap();
    std::fs::write(
        legacy.join("config.toml"),
        config.replace("lr = 0.1\n", "lr = 0.2\n"),
    )
    .unwrap();
    let o = rbp(&["reproduce", SMOKE, "--results", r]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("13 run(s) found under"), "{}", out(&o));
    assert!(root.join(&run.id).join("metrics.jsonl").is_file());

    // a run with nothing on disk is missing
    std::fs::remove_dir_all(root.join(&runs[1].legacy_id)).unwrap();
    let o = rbp(&["ls", r]);
    let text = String::from_utf8(o.stdout).unwrap();
    let l = text.lines().find(|l| l.contains(&runs[1].id)).unwrap();
    let cells: Vec<&str> = l.split_whitespace().collect();
    assert_eq!(cells[2..5], ["missing", "0/2", "-"], "{text}");
}
