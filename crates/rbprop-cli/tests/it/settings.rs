//! One name per setting, in flags and files; the order in which settings are resolved
//! (defaults < --preset < --config < flags), seen through `--print-config` of the real binary;
//! the old file layout still read (warned about where a user wrote it, silently from results);
//! runs written by the previous version resume; shell completions.

use super::cli::rbp;
use rbprop::config::TrainConfig;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `rbp train ARGS --print-config`: the resolved settings, as TOML text and parsed, and stderr.
fn resolved(args: &[&str]) -> (TrainConfig, String, String) {
    let mut all = vec!["train"];
    all.extend(args);
    all.push("--print-config");
    let o = rbp(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let text = stdout(&o);
    let config: TrainConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (config, text, stderr(&o))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn precedence_defaults_only() {
    let (c, text, err) = resolved(&[]);
    assert_eq!(c, TrainConfig::default());
    assert!(err.is_empty(), "{err}");
    // flat: every key at the top level, named after its flag
    assert!(!text.contains("\n["), "no tables:\n{text}");
    for line in [
        "channel = \"bp\"",
        "feedback = \"normal\"",
        "average = 1",
        "channel_dropout = 0.0",
        "lr = 0.1",
        "flip = false",
        "diagnostics = false",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("channel_options"), "{text}");
}

#[test]
fn precedence_preset_over_defaults() {
    let (c, _, _) = resolved(&["--preset", "paper-cifar10"]);
    assert_eq!(c.arch.as_deref(), Some("paper-cifar10"));
    assert_eq!((c.lr, c.momentum, c.decay), (0.01, 0.9, 1e-5));
    assert_eq!(
        (c.batch, c.epochs, c.translate, c.flip),
        (128, 100, 3, true)
    );
    // what the preset leaves alone keeps its default
    assert_eq!((c.seed, c.channel.to_string().as_str()), (1, "bp"));
}

#[test]
fn precedence_config_over_preset() {
    let dir = tempfile::tempdir().unwrap();
    // a settings file may hold any of the keys
    let f = write(
        dir.path(),
        "some.toml",
        "lr = 0.05\nflip = false\nchannel = \"rbp\"\nchannel_dropout = 0.1\nquantize_signal = \"2:auto\"\n",
    );
    let (c, _, err) = resolved(&["--preset", "paper-cifar10", "--config", f.to_str().unwrap()]);
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        (c.lr, c.flip, c.channel.to_string().as_str()),
        (0.05, false, "rbp")
    );
    assert_eq!(c.channel_options.dropout, 0.1);
    assert_eq!(
        c.channel_options.quantize_signal.unwrap().to_string(),
        "2:auto"
    );
    // the preset's other settings stay
    assert_eq!((c.momentum, c.batch, c.translate), (0.9, 128, 3));
    // the order of the flags does not matter: the file still wins over the preset
    let (d, _, _) = resolved(&["--config", f.to_str().unwrap(), "--preset", "paper-cifar10"]);
    assert_eq!(c, d);
}

#[test]
fn precedence_flags_over_config() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.toml",
        "lr = 0.05\nepochs = 7\nchannel = \"rbp\"\nfeedback = \"uniform\"\nchannel_dropout = 0.1\n",
    );
    let path = f.to_str().unwrap();
    let (c, _, _) = resolved(&["--config", path, "--lr", "0.2", "--channel-dropout", "0.3"]);
    assert_eq!(
        (c.lr, c.epochs, c.channel.to_string().as_str()),
        (0.2, 7, "rbp")
    );
    assert_eq!(c.channel_options.dropout, 0.3);
    assert_eq!(c.channel_options.feedback.to_string(), "uniform");
    // a flag given with its default value still overrides the file
    let (c, _, _) = resolved(&[
        "--config",
        path,
        "--lr",
        "0.1",
        "--channel",
        "bp",
        "--feedback",
        "normal",
        "--channel-dropout",
        "0",
    ]);
    assert_eq!(
        (c.lr, c.channel.to_string().as_str(), c.epochs),
        (0.1, "bp", 7)
    );
    assert_eq!(c.channel_options, TrainConfig::default().channel_options);
    // all four levels at once
    let (c, _, _) = resolved(&[
        "--preset",
        "paper-cifar10",
        "--config",
        path,
        "--epochs",
        "2",
    ]);
    assert_eq!((c.epochs, c.lr, c.momentum), (2, 0.05, 0.9));
}

#[test]
fn every_boolean_option_has_an_explicit_off_form() {
    let dir = tempfile::tempdir().unwrap();
    let on = write(dir.path(), "on.toml", "flip = true\ndiagnostics = true\n");
    let on = on.to_str().unwrap();
    let flip = |args: &[&str]| resolved(args).0.flip;
    let diagnostics = |args: &[&str]| resolved(args).0.diagnostics;
    assert!(flip(&["--flip"]) && flip(&["--flip", "true"]));
    assert!(!flip(&["--flip", "false"]) && !flip(&["--no-flip"]));
    // off forms undo a preset and a config file
    assert!(flip(&["--preset", "paper-cifar10"]));
    assert!(!flip(&["--preset", "paper-cifar10", "--no-flip"]));
    assert!(!flip(&["--preset", "paper-cifar10", "--flip", "false"]));
    assert!(!flip(&["--config", on, "--flip", "false"]));
    // the last of --flip and --no-flip counts
    assert!(flip(&["--no-flip", "--flip"]));
    assert!(!flip(&["--flip", "--no-flip"]));
    assert!(diagnostics(&["--diagnostics"]) && diagnostics(&["--diagnostics", "true"]));
    assert!(diagnostics(&["--config", on]));
    assert!(!diagnostics(&["--config", on, "--diagnostics", "false"]));
    assert!(!diagnostics(&["--config", on, "--no-diagnostics"]));
    let channel = |args: &[&str]| resolved(args).0.channel.to_string();
    assert_eq!(channel(&["--channel", "rbp", "--no-derivative"]), "rbp-nof");
    assert_eq!(
        channel(&["--channel", "rbp", "--no-derivative", "true"]),
        "rbp-nof"
    );
    assert_eq!(
        channel(&["--channel", "rbp", "--no-derivative", "false"]),
        "rbp"
    );
    // --quiet and --overwrite take a value too
    let o = rbp(&[
        "train",
        "--quiet",
        "false",
        "--overwrite",
        "false",
        "--print-config",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rbp(&["train", "--flip", "maybe", "--print-config"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("maybe"), "{}", stderr(&o));
    let help = stdout(&rbp(&["train", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in [
        "--no-flip",
        "--no-diagnostics",
        "--print-config",
        "built-in defaults < --preset < --config FILE < flags",
    ] {
        assert!(help.contains(s), "--help lacks {s}:\n{help}");
    }
}

#[test]
fn print_config_is_the_config_toml_the_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "--channel",
        "asrbp",
        "--feedback",
        "sparse:2",
        "--adapt-factor",
        "0.2",
        "--channel-dropout",
        "0.1",
        "--quantize-signal",
        "2:0.5:mid-tread",
        "--hidden",
        "6,5",
        "--train-limit",
        "200",
        "--epochs",
        "1",
    ];
    let (_, printed, _) = resolved(&args);
    let mut run = vec!["train"];
    run.extend(args);
    run.extend(["--out", out.to_str().unwrap(), "-q"]);
    let o = rbp(&run);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert_eq!(printed, written);
    assert!(
        written.contains("quantize_signal = \"2:0.5:mid-tread\"")
            && written.contains("adapt_factor = 0.2"),
        "{written}"
    );
    // the file reads back to the same run
    let (c, _, err) = resolved(&["--config", out.join("config.toml").to_str().unwrap()]);
    assert!(err.is_empty(), "{err}");
    assert_eq!(toml::to_string_pretty(&c).unwrap(), written);
}

#[test]
fn old_keys_of_a_config_file_are_read_with_one_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "old.toml",
        "channel = \"rbp\"\n[channel_options]\ndropout = 0.1\nfeedback = \"uniform\"\nquantize_signal = { bits = 2, alpha = 1.0 }\n",
    );
    let new = write(
        dir.path(),
        "new.toml",
        "channel = \"rbp\"\nchannel_dropout = 0.1\nfeedback = \"uniform\"\nquantize_signal = \"2:1\"\n",
    );
    let (a, text, err) = resolved(&["--config", old.to_str().unwrap()]);
    let (b, _, quiet) = resolved(&["--config", new.to_str().unwrap()]);
    assert_eq!(a, b);
    assert!(quiet.is_empty(), "{quiet}");
    assert!(text.contains("channel_dropout = 0.1") && text.contains("quantize_signal = \"2:1\""));
    let path = old.display().to_string();
    for w in [
        format!("warning: {path}: key channel_options.dropout is deprecated; use channel_dropout"),
        format!("warning: {path}: key channel_options.feedback is deprecated; use feedback"),
        format!(
            "warning: {path}: key channel_options.quantize_signal is deprecated; use quantize_signal, a string such as \"2:1\""
        ),
    ] {
        assert_eq!(err.matches(&w).count(), 1, "{w}\n{err}");
    }
    assert_eq!(err.lines().count(), 3, "{err}");
    // the same setting under both names, with different values, is refused
    let both = write(
        dir.path(),
        "both.toml",
        "channel_dropout = 0.2\n[channel_options]\ndropout = 0.1\n",
    );
    let o = rbp(&[
        "train",
        "--config",
        both.to_str().unwrap(),
        "--print-config",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("both.toml") && stderr(&o).contains("keep `channel_dropout` only"),
        "{}",
        stderr(&o)
    );
}

const EXPERIMENT_OLD: &str = r#"name = "names"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1, 2]

[train]
epochs = 3
train_limit = 100
hidden = [4]
channel_options = { dropout = 0.1 }

[[variant]]
row = "baseline"
column = "RBP"
channel = "rbp"

[[variant]]
row = "sparse"
column = "SRBP"
channel = "srbp"
channel_options = { feedback = "sparse:2", quantize_signal = { bits = 2 } }

[[variant]]
row = "sparse"
column = "RBP"
channel = "rbp"
channel_options = { feedback = "sparse:2" }
"#;

const EXPERIMENT_NEW: &str = r#"name = "names"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1, 2]

[train]
epochs = 3
train_limit = 100
hidden = [4]
channel_dropout = 0.1

[[variant]]
row = "baseline"
column = "RBP"
channel = "rbp"

[[variant]]
row = "sparse"
column = "SRBP"
channel = "srbp"
feedback = "sparse:2"
quantize_signal = "2:auto"

[[variant]]
row = "sparse"
column = "RBP"
channel = "rbp"
feedback = "sparse:2"
"#;

#[test]
fn reproduce_prints_every_runs_settings_and_reads_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.toml", EXPERIMENT_OLD);
    let new = write(dir.path(), "new.toml", EXPERIMENT_NEW);
    let print = |file: &Path| {
        let o = rbp(&[
            "reproduce",
            file.to_str().unwrap(),
            "--results",
            dir.path().join("results").to_str().unwrap(),
            "--quick",
            "2",
            "--jobs",
            "1",
            "--print-config",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (a, warned) = print(&old);
    let (b, quiet) = print(&new);
    assert_eq!(a, b, "old and new keys resolve to the same runs");
    assert!(quiet.is_empty(), "{quiet}");
    let path = old.display().to_string();
    for w in [
        "key channel_options.dropout is deprecated; use channel_dropout",
        "key channel_options.feedback is deprecated; use feedback",
        "key channel_options.quantize_signal is deprecated; use quantize_signal, a string such as \"2:auto\"",
    ] {
        let w = format!("warning: {path}: {w}");
        assert_eq!(warned.matches(&w).count(), 1, "once per key: {w}\n{warned}");
    }
    assert_eq!(warned.lines().count(), 3, "{warned}");
    // nothing was run or written
    assert!(!dir.path().join("results").exists());
    // one TOML document per run, headed by its experiment and run id
    let docs: Vec<&str> = a.split("\n# ").collect();
    assert_eq!(docs.len(), 3 * 2, "{a}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut ids = Vec::new();
    for doc in docs {
        let doc = doc.strip_prefix("# ").unwrap_or(doc);
        let (id, toml) = doc.split_once('\n').unwrap();
        ids.push(id.to_string());
        let c: TrainConfig = toml::from_str(toml).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(c.epochs, 2, "--quick applies");
        assert_eq!(c.threads, cores, "--jobs 1: every core to the run");
        assert_eq!(c.channel_options.dropout, 0.1);
        assert_eq!(c.hidden, [4]);
        let sparse = id.contains("sparse");
        assert_eq!(c.channel_options.feedback.to_string() == "sparse:2", sparse);
        assert_eq!(
            c.channel_options.quantize_signal.map(|q| q.to_string()),
            id.contains("srbp").then(|| "2:auto".to_string())
        );
    }
    assert_eq!(ids[0], "names/rbp/seed-1");
    assert_eq!(ids[5], "names/rbp/sparse-2/seed-2");
}

/// `tests/fixtures/old-layout-run/`: a run directory written by the version before the flat keys
/// (its config.toml has a `[channel_options]` table and quantizer tables; its checkpoint's
/// `settings_sha256` hashes that layout), with these settings, after 1 epoch. Its metrics and
/// checkpoint were trained again when stochastic rounding drew new random numbers (the 32-bit
/// per-entry hash); its config.toml is the old layout as written.
const OLD_RUN: [&str; 22] = [
    "--channel",
    "asrbp",
    "--feedback",
    "sparse:2",
    "--average",
    "2",
    "--adapt-factor",
    "0.2",
    "--channel-dropout",
    "0.1",
    "--quantize-signal",
    "2:0.5:mid-tread",
    "--quantize-update",
    "4:auto:stochastic",
    "--decay",
    "0",
    "--hidden",
    "6,5",
    "--train-limit",
    "300",
    "--epochs",
    "2",
];

fn old_run(into: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old-layout-run");
    std::fs::create_dir_all(into).unwrap();
    for f in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "checkpoint.safetensors",
    ] {
        std::fs::copy(fixture.join(f), into.join(f)).unwrap();
    }
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut m: serde_json::Value = serde_json::from_str(l).unwrap();
            m["seconds"] = 0.into();
            m
        })
        .collect()
}

#[test]
fn a_run_written_by_the_previous_version_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (old, fresh) = (dir.path().join("old"), dir.path().join("fresh"));
    old_run(&old);
    let first = metrics(&old);
    let mut args = vec!["train"];
    args.extend(OLD_RUN);
    args.extend(["--out", old.to_str().unwrap()]);
    let o = rbp(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("resuming after epoch 1"),
        "{}",
        stdout(&o)
    );
    // reading the run directory is silent
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // the same numbers as the run trained in one go by this version
    let mut args = vec!["train"];
    args.extend(OLD_RUN);
    args.extend(["--out", fresh.to_str().unwrap(), "-q"]);
    assert!(rbp(&args).status.success());
    let resumed = metrics(&old);
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0], first[0], "epoch 1 is kept");
    assert_eq!(resumed, metrics(&fresh));
    // and its config.toml is now flat
    let config = std::fs::read_to_string(old.join("config.toml")).unwrap();
    assert!(!config.contains("channel_options"), "{config}");
    assert_eq!(
        config,
        std::fs::read_to_string(fresh.join("config.toml")).unwrap()
    );

    // through --config FILE (the old file, warned about), too
    let again = dir.path().join("again");
    old_run(&again);
    let cfg = again.join("config.toml");
    let o = rbp(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "2",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("resuming after epoch 1"));
    assert!(
        stderr(&o).contains("key channel_options.dropout is deprecated; use channel_dropout"),
        "{}",
        stderr(&o)
    );
    assert_eq!(metrics(&again), metrics(&fresh));
}

#[test]
fn results_of_the_old_layout_read_silently_under_the_new_names() {
    // a committed archive of published runs, in the old layout
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/runs/quantized-error.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::open(&archive).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir.path())
        .unwrap();
    let res = dir.path().to_str().unwrap();
    let o = rbp(&["export", res]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for c in [
        "channel_dropout",
        "feedback",
        "average",
        "quantize_signal",
        "quantize_update",
        "adapt_factor",
        "mix",
    ] {
        assert!(header.iter().any(|h| h == c), "no column {c}: {header:?}");
    }
    assert!(
        !header.iter().any(|h| h.contains("channel_options")),
        "{header:?}"
    );
    let col = header.iter().position(|h| h == "quantize_signal").unwrap();
    let values: std::collections::BTreeSet<String> = r
        .records()
        .map(|row| row.unwrap()[col].to_string())
        .collect();
    assert!(
        values.contains("1:auto") && values.contains("2:auto"),
        "{values:?}"
    );
    for cmd in ["table", "plot"] {
        let o = rbp(&[cmd, res]);
        assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    }
}

/// The old-layout fixture as the run of a one-cell experiment whose row is generated from its
/// settings: channel dropout and both quantizers, the row's words that were renamed after the
/// flags (`dropout r=` → `channel-dropout r=`, `quantized error b=` → `quantize-signal b=`,
/// `quantized update b=` → `quantize-update b=`).
const OLD_RUN_EXPERIMENT: &str = r#"name = "legacy"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1]
[train]
epochs = 1
hidden = [6, 5]
train_limit = 300
decay = 0.0
[[variant]]
channel = "asrbp"
feedback = "sparse:2"
average = 2
adapt_factor = 0.2
channel_dropout = 0.1
quantize_signal = "2:0.5:mid-tread"
quantize_update = "4:auto:stochastic"
"#;

/// The directory the run had before run ids were made of settings: `row--column--seedN`, the
/// row in the words of that time. It must never change, whatever today's row says.
const OLD_RUN_LEGACY_ID: &str = "adaptive--adapt-factor-0.2--average-k-2--dropout-r-0.1--sparse-n-2--quantized-error-b-2----0.5--mid-tread--quantized-update-b-4--stochastic--srbp--seed1";

#[test]
fn a_run_under_its_legacy_id_in_the_old_words_is_found_and_skipped() {
    use rbprop::experiment::Experiment;
    let dir = tempfile::tempdir().unwrap();
    let exp = write(dir.path(), "legacy.toml", OLD_RUN_EXPERIMENT);
    let runs = Experiment::load(&exp).unwrap().runs().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        run.row,
        "adaptive, adapt_factor=0.2, average k=2, channel-dropout r=0.1, sparse n=2, quantize-signal b=2, α=0.5, mid-tread, quantize-update b=4, stochastic"
    );
    assert_eq!(run.legacy_id, OLD_RUN_LEGACY_ID);
    // the nested id is made of the settings alone
    assert_eq!(
        run.id,
        "asrbp/adapt_factor-0.2/average-2/dropout-0.1/sparse-2/signal-alpha-0.5/signal-bits-2/signal-form-mid-tread/update-bits-4/update-rounding-stochastic/seed-1"
    );
    let res = dir.path().join("results");
    let root = res.join("legacy");
    old_run(&root.join(OLD_RUN_LEGACY_ID));
    let r = res.to_str().unwrap();
    let o = rbp(&["reproduce", exp.to_str().unwrap(), "--results", r]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{text}");
    assert!(text.contains("already complete"), "{text}");
    assert!(
        text.contains("1 run(s) found under their legacy ids"),
        "{text}"
    );
    assert!(
        !root.join("asrbp").exists(),
        "nothing written under the new id"
    );
    // the readers take it there, under the row as labelled today
    let o = rbp(&["table", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(res.join("table.md")).unwrap();
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {} |", run.row)))
        .unwrap_or_else(|| panic!("no row {}:\n{md}", run.row));
    assert!(line.contains("| 11.05 |"), "{line}");
    let o = rbp(&[
        "reproduce",
        exp.to_str().unwrap(),
        "--results",
        r,
        "--status",
    ]);
    assert!(stdout(&o).contains("1 runs: 1 finished"), "{}", stdout(&o));
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, flag) in [
        ("bash", "--channel"),
        ("zsh", "--channel"),
        ("fish", "-l channel"),
    ] {
        let o = rbp(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(!script.is_empty(), "{shell}");
        assert!(script.contains("reproduce"), "{shell} lacks reproduce");
        // the flag, in the shell's own syntax (fish names long flags with -l)
        assert!(script.contains(flag), "{shell} lacks {flag}");
        assert!(
            script.contains("print-config"),
            "{shell} lacks --print-config"
        );
    }
    let o = rbp(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Every setting of a run (every key its config.toml can hold: `results::setting_names`) has a
/// flag of `rbp train` that sets it and the key of the same name in a `--config` file; a setting
/// added without its flag, or a flag that sets nothing, fails here. Each row: the key, the
/// arguments a non-default value needs beside it, the flag's value.
#[test]
fn every_setting_has_a_flag_and_a_file_key_that_set_it() {
    let rows: &[(&str, &[&str], &str)] = &[
        ("activation", &[], "relu"),
        ("adapt_factor", &["--channel", "arbp"], "0.5"),
        ("adapter", &["--device", "gpu"], "lavapipe"),
        ("arch", &[], "paper-mnist"),
        ("average", &["--channel", "rbp"], "3"),
        ("batch", &[], "17"),
        ("channel", &[], "srbp"),
        ("channel_dropout", &["--channel", "rbp"], "0.25"),
        ("data", &[], "/tmp/some-mnist"),
        ("decay", &[], "0.001"),
        ("device", &[], "gpu"),
        ("diagnostics", &[], "true"),
        ("epochs", &[], "7"),
        ("feedback", &["--channel", "rbp"], "uniform"),
        ("flip", &[], "true"),
        ("hidden", &[], "30,20"),
        ("lr", &[], "0.05"),
        ("mix", &["--channel", "mix", "--hidden", "30,20"], "bp,srbp"),
        ("momentum", &[], "0.5"),
        ("quantize_signal", &[], "4"),
        ("quantize_update", &["--decay", "0"], "8"),
        ("seed", &[], "9"),
        ("threads", &[], "2"),
        ("train_limit", &[], "500"),
        ("translate", &[], "2"),
        ("weight_decay", &[], "0.0001"),
    ];
    // the same list of names, sorted: no setting without a row, no row without a setting
    let keys = rbprop::experiment::results::setting_names();
    let named: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(keys, named, "settings and their rows differ");
    let dir = tempfile::tempdir().unwrap();
    let value_of = |text: &str, key: &str| -> Option<toml::Value> {
        let t: toml::Table = toml::from_str(text).unwrap();
        t.get(key).cloned()
    };
    // the built-in defaults: what each flag must change
    let (_, base, _) = resolved(&[]);
    for (key, extra, value) in rows {
        let flag = format!("--{}", key.replace('_', "-"));
        let mut args = extra.to_vec();
        args.extend([flag.as_str(), value]);
        let (_, set, _) = resolved(&args);
        let got = value_of(&set, key);
        assert!(
            got.is_some() && got != value_of(&base, key),
            "{flag} {value} does not set `{key}`:\n{set}"
        );
        // the same value through a settings file, under the key of the same name
        let file = write(dir.path(), "c.toml", &set);
        let (_, from_file, _) = resolved(&[&["--config", file.to_str().unwrap()], *extra].concat());
        assert_eq!(value_of(&from_file, key), got, "`{key}` in a --config file");
    }
}
