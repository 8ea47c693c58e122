//! Reading results back: `rbp table` (CSV quoting, no pooling of different settings, marks for
//! shortened and interrupted runs) and `rbp export` (long format, read back by CSV parsers and
//! pandas).

use super::cli::rbp;
use std::path::Path;

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes a tiny experiment file (embedded data, 200 examples, one hidden layer of 8).
fn experiment(
    dir: &Path,
    name: &str,
    dataset: &str,
    epochs: usize,
    seeds: &str,
    variants: &[(&str, &str, &str)],
) -> String {
    let mut t = format!(
        "name = {name:?}\ndataset = {dataset:?}\ndata = \"embedded:fashion-mnist-subset\"\nseeds = {seeds}\n\
         [train]\nepochs = {epochs}\ntrain_limit = 200\nhidden = [8]\n"
    );
    for (row, column, channel) in variants {
        t += &format!("[[variant]]\nrow = {row:?}\ncolumn = {column:?}\nchannel = {channel:?}\n");
    }
    let f = dir.join(format!("{name}.toml"));
    std::fs::write(&f, t).unwrap();
    f.to_str().unwrap().to_string()
}

fn reproduce(file: &str, results: &Path, extra: &[&str]) {
    let mut args = vec!["reproduce", file, "--results", results.to_str().unwrap()];
    args.extend(extra);
    let o = rbp(&args);
    assert!(o.status.success(), "{}", out(&o));
}

fn final_acc(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["test_acc"].as_f64().unwrap()
}

fn table_line(md: &str, row: &str) -> String {
    md.lines()
        .find(|l| l.starts_with(&format!("| {row} |")))
        .unwrap_or_else(|| panic!("no row `{row}` in\n{md}"))
        .to_string()
}

const DATASET: &str = "fashion-mnist conv, 4 epochs";
const ROW: &str = "say \"hi\", n=2";

#[test]
fn table_csv_quotes_names_with_commas_and_quotes() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let f = experiment(
        tmp.path(),
        "odd",
        DATASET,
        1,
        "[1]",
        &[(ROW, "BP", "bp"), ("baseline", "R\"BP, odd", "rbp")],
    );
    reproduce(&f, &res, &[]);
    let o = rbp(&["table", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let mut reader = csv::Reader::from_path(res.join("table.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..4], ["dataset", "row", "column", "settings"]);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.len(), header.len(), "{r:?}");
        assert_eq!(&r[0], DATASET);
    }
    let cell = |row: &str, column: &str| {
        records
            .iter()
            .find(|r| &r[1] == row && &r[2] == column)
            .unwrap_or_else(|| panic!("no {row} / {column} in {records:?}"))
            .clone()
    };
    let odd = cell(ROW, "BP");
    let mean: f64 = odd[4].parse().unwrap();
    let want = final_acc(&res.join("odd").join("bp/seed-1"));
    assert!((mean - want).abs() < 1e-6, "{mean} vs {want}");
    assert_eq!((&odd[6], &odd[7]), ("1", "1"));
    cell("baseline", "R\"BP, odd");
}

#[test]
fn table_never_pools_runs_with_different_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let v = [("baseline", "BP", "bp"), ("no-f'", "BP", "bp-nof")];
    // the same cells from two experiment files with other epochs, and a third file repeating
    // the first one's settings (its seed 1 is the same run and counts once)
    for (name, epochs) in [("short", 1), ("long", 2), ("short-again", 1)] {
        let f = experiment(tmp.path(), name, "d", epochs, "[1]", &v);
        reproduce(&f, &res, &[]);
    }
    let o = rbp(&["table", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let md = out(&o);
    for (name, epochs) in [("short", 1), ("long", 2)] {
        let line = table_line(&md, &format!("baseline (epochs={epochs})"));
        let acc = final_acc(&res.join(name).join("bp/seed-1"));
        assert!(
            line.contains(&format!("| {:.2} |", 100.0 * acc)),
            "{line} lacks the {name} run alone ({acc})\n{md}"
        );
        assert!(!line.contains('[') && !line.contains('*'), "{line}");
        table_line(&md, &format!("no-f' (epochs={epochs})"));
    }
    assert!(!md.lines().any(|l| l.starts_with("| baseline |")), "{md}");
    let mut reader = csv::Reader::from_path(res.join("table.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        assert_eq!((&r[6], &r[7]), ("1", "1"), "one seed each: {r:?}");
        assert!(r[3] == *"epochs=1" || r[3] == *"epochs=2", "{r:?}");
    }
    // the figures keep them apart too
    let o = rbp(&["plot", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let svg = std::fs::read_to_string(res.join("figures/d-basic-algorithms.svg")).unwrap();
    assert!(
        svg.contains("BP, baseline (epochs = 1)") && svg.contains("BP, baseline (epochs = 2)"),
        "the figure pools them"
    );
}

#[test]
fn a_table_mixing_seed_counts_shows_every_cells_count() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let one = experiment(
        tmp.path(),
        "one",
        "d",
        1,
        "[1]",
        &[("baseline", "BP", "bp")],
    );
    reproduce(&one, &res, &[]);
    // one seed everywhere: no counts
    let md = out(&rbp(&["table", res.to_str().unwrap()]));
    assert!(!table_line(&md, "baseline").contains('['), "{md}");
    // a cell of two seeds beside one of one: each says how many it has
    let two = experiment(
        tmp.path(),
        "two",
        "d",
        1,
        "[1, 2]",
        &[("no-f'", "BP", "bp-nof")],
    );
    reproduce(&two, &res, &[]);
    let md = out(&rbp(&["table", res.to_str().unwrap()]));
    assert!(table_line(&md, "baseline").contains("[1/1]"), "{md}");
    assert!(table_line(&md, "no-f'").contains("[2/2]"), "{md}");
}

#[test]
fn table_marks_shortened_and_interrupted_runs_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let v = [("baseline", "BP", "bp"), ("no-f'", "BP", "bp-nof")];
    let f = experiment(tmp.path(), "grid", "d", 2, "[1, 2]", &v);
    // --quick: deliberately shortened, complete
    let quick = tmp.path().join("quick");
    reproduce(&f, &quick, &["--quick", "1"]);
    let md = out(&rbp(&["table", quick.to_str().unwrap()]));
    let line = table_line(&md, "baseline");
    assert!(line.contains('*') && !line.contains('†'), "{md}");
    // a run killed after its first epoch: interrupted, not shortened
    let full = tmp.path().join("full");
    reproduce(&f, &full, &[]);
    let run = full.join("grid").join("bp/seed-2");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let first = metrics.lines().next().unwrap();
    std::fs::write(run.join("metrics.jsonl"), format!("{first}\n")).unwrap();
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    std::fs::write(
        run.join("summary.json"),
        summary.replace("\"completed\"", "\"running\""),
    )
    .unwrap();
    // a diverged one
    let run = full.join("grid").join("bp-nof/seed-1");
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    std::fs::write(
        run.join("summary.json"),
        summary.replace("\"completed\"", "\"diverged\""),
    )
    .unwrap();
    let md = out(&rbp(&["table", full.to_str().unwrap()]));
    let line = table_line(&md, "baseline");
    assert!(line.contains('†') && !line.contains('*'), "{md}");
    let line = table_line(&md, "no-f'");
    assert!(line.contains('‡') && !line.contains('†'), "{md}");
    for legend in ["* shortened", "† interrupted", "‡ diverged"] {
        assert!(md.contains(legend), "legend lacks {legend}: {md}");
    }
    let csv = std::fs::read_to_string(full.join("table.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("d,baseline,BP,") && l.ends_with(",false,true,false")),
        "{csv}"
    );
}

/// Every row of an export: (header, rows).
fn read_export(csv_text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader.records().map(|r| r.unwrap()).collect();
    (header, rows)
}

#[test]
fn export_writes_one_row_per_run_and_epoch_with_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let f = experiment(
        tmp.path(),
        "odd",
        DATASET,
        2,
        "[1, 2]",
        &[(ROW, "BP", "bp"), ("baseline", "SRBP", "srbp")],
    );
    reproduce(&f, &res, &[]);
    let f = experiment(tmp.path(), "other", "d", 2, "[3]", &[("top", "BP", "top")]);
    reproduce(&f, &res, &["--quick", "1"]);
    let o = rbp(&["export", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let (header, rows) = read_export(&text);
    let mut unique = header.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), header.len(), "duplicate columns: {header:?}");
    for c in [
        "experiment",
        "run_id",
        "dataset",
        "row",
        "column",
        "status",
        "channel",
        "feedback",
        "channel_dropout",
        "quantize_signal",
        "lr",
        "seed",
        "epochs",
        "hidden",
        "arch",
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "next_lr",
        "steps",
        "seconds",
    ] {
        assert!(header.iter().any(|h| h == c), "no column {c}: {header:?}");
    }
    assert_eq!(rows.len(), 2 * 2 * 2 + 1, "one row per run and epoch");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?}");
        let dir = res.join(&r[col("experiment")]).join(&r[col("run_id")]);
        let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let epoch: usize = r[col("epoch")].parse().unwrap();
        let m: serde_json::Value =
            serde_json::from_str(metrics.lines().nth(epoch - 1).unwrap()).unwrap();
        for (c, k) in [
            ("test_acc", "test_acc"),
            ("next_lr", "lr"),
            ("seconds", "seconds"),
        ] {
            let v: f64 = r[col(c)].parse().unwrap();
            assert_eq!(v, m[k].as_f64().unwrap(), "{c} of {r:?}");
        }
        let config: rbprop::config::TrainConfig =
            toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
        assert_eq!(r[col("channel")], config.channel.to_string());
        assert_eq!(r[col("seed")], config.seed.to_string());
        assert_eq!(r[col("lr")].parse::<f64>().unwrap(), config.lr);
        assert_eq!(&r[col("hidden")], "8");
        assert_eq!(&r[col("arch")], "", "absent settings are empty cells");
        assert_eq!(&r[col("status")], "completed");
    }
    let odd: Vec<_> = rows.iter().filter(|r| &r[col("row")] == ROW).collect();
    assert_eq!(odd.len(), 4);
    assert!(odd.iter().all(|r| &r[col("dataset")] == DATASET));
    let top = rows.iter().find(|r| &r[col("row")] == "top").unwrap();
    // --quick: trained for 1 epoch of the 2 the experiment asks
    assert_eq!(
        (&top[col("epochs")], &top[col("experiment_epochs")]),
        ("1", "2")
    );

    // JSON Lines: the same keys on every line, the same values
    let o = rbp(&["export", res.to_str().unwrap(), "--format", "jsonl"]);
    assert!(o.status.success(), "{}", out(&o));
    let lines: Vec<serde_json::Map<String, serde_json::Value>> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len());
    for (obj, r) in lines.iter().zip(&rows) {
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort();
        let mut want: Vec<&String> = header.iter().collect();
        want.sort();
        assert_eq!(keys, want);
        for c in ["test_acc", "seconds", "decay"] {
            assert_eq!(
                obj[c].as_f64(),
                Some(r[col(c)].parse::<f64>().unwrap()),
                "{c}"
            );
        }
        assert_eq!(obj["row"], r[col("row")]);
        assert!(obj["arch"].is_null());
    }

    // --out writes the same to a file
    let file = tmp.path().join("runs.csv");
    let o = rbp(&[
        "export",
        res.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // pandas reads it with no arguments (where pandas is installed)
    let has_pandas = std::process::Command::new("python3")
        .args(["-c", "import pandas"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pandas {
        eprintln!(
            "SKIPPED: the pandas check of `rbp export` (python3 with pandas not found; `pip install pandas` runs it)"
        );
        return;
    }
    let script = format!(
        "import pandas\n\
         d = pandas.read_csv({path:?})\n\
         assert d.shape == ({n}, {m}), d.shape\n\
         assert list(d.columns) == {cols:?}, list(d.columns)\n\
         assert set(d['dataset']) == {{{ds:?}, 'd'}}, set(d['dataset'])\n\
         assert {row:?} in set(d['row'])\n\
         assert d['test_acc'].dtype.kind == 'f' and d['epoch'].dtype.kind == 'i'\n\
         assert d['arch'].isna().all()\n\
         print('pandas read', d.shape)\n",
        path = file.to_str().unwrap(),
        n = rows.len(),
        m = header.len(),
        cols = header,
        ds = DATASET,
        row = ROW,
    );
    let o = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "pandas: {}", out(&o));
    eprintln!("{}", out(&o).trim());
}

#[test]
fn missing_results_and_config_paths_are_named_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nodir");
    let m = missing.to_str().unwrap();
    for args in [
        vec!["table", m],
        vec!["plot", m],
        vec!["export", m],
        vec!["reproduce", "missing.toml"],
        vec!["train", "--config", "missing.toml"],
    ] {
        let o = rbp(&args);
        let t = out(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        let name = if args[0] == "reproduce" || args[0] == "train" {
            "missing.toml"
        } else {
            m
        };
        assert_eq!(t.matches(name).count(), 1, "{args:?}: {t}");
        assert!(t.matches("os error").count() <= 1, "{args:?}: {t}");
        if args[0] != "reproduce" && args[0] != "train" {
            assert!(t.contains("no such directory"), "{args:?}: {t}");
        }
        assert!(!t.contains("no finished epochs"), "{args:?}: {t}");
    }
}

#[test]
fn delta_angle_figures_come_per_family_with_a_panel_per_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let f = tmp.path().join("diag.toml");
    std::fs::write(
        &f,
        "name = \"diag\"\ndataset = \"d\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1]\n\
         [train]\nepochs = 2\ntrain_limit = 200\nhidden = [8, 8]\ndiagnostics = true\ndecay = 0.0\n\
         [[variant]]\nchannel = [\"bp\", \"rbp\"]\nquantize_update = [\"4\", \"8\"]\n\
         [[variant]]\nchannel = [\"bp\", \"srbp\"]\nquantize_signal = [\"2\"]\n",
    )
    .unwrap();
    reproduce(f.to_str().unwrap(), &res, &[]);
    let o = rbp(&["plot", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let figures = res.join("figures");
    // one figure per family of rows, none pooling every run with diagnostics together
    assert!(!figures.join("d-delta-angles.svg").exists());
    let update =
        std::fs::read_to_string(figures.join("d-quantize-update-delta-angles.svg")).unwrap();
    // BP's own δ is at 0° throughout: no panel; RBP's variants in words, in their order
    assert!(update.contains("d: quantize-update, RBP"), "{update}");
    assert!(
        !update.contains("d: quantize-update, BP"),
        "an all-zero BP panel"
    );
    let (b4, b8) = (
        update.find("RBP, b = 4").unwrap(),
        update.find("RBP, b = 8").unwrap(),
    );
    assert!(b4 < b8, "legend out of order");
    // quantized error signals reach BP's hidden layers too: both channels have a panel
    let signal =
        std::fs::read_to_string(figures.join("d-quantize-signal-delta-angles.svg")).unwrap();
    for panel in ["d: quantize-signal, BP", "d: quantize-signal, SRBP"] {
        assert!(signal.contains(panel), "{panel} missing");
    }
    let png = std::fs::read(figures.join("d-quantize-signal-delta-angles.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
