//! The real binary, end to end, in temporary directories.

use std::path::Path;
use std::process::{Command, Output};

pub fn rbp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(args)
        .output()
        .expect("run rbp")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Trains `channel` on the embedded subset for `epochs`; returns the final test accuracy.
fn train_embedded(channel: &str, epochs: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let e = epochs.to_string();
    let o = rbp(&[
        "train",
        "--channel",
        channel,
        "--epochs",
        &e,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ms = metrics(&out);
    assert_eq!(ms.len(), epochs);
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m["epoch"], i + 1);
        for key in [
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "seconds",
        ] {
            assert!(m[key].is_number(), "metrics lack `{key}`: {m}");
        }
        for key in ["train_acc", "test_acc"] {
            let v = m[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
    }
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let canonical = rbprop::channel::ChannelSpec::parse(channel, false)
        .unwrap()
        .canonical_name();
    assert!(
        config.contains(&format!("channel = \"{canonical}\"")),
        "{config}"
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"completed\""), "{summary}");
    ms.last().unwrap()["test_acc"].as_f64().unwrap()
}

#[test]
fn cli_trains_every_basic_channel_on_real_data() {
    for channel in ["bp", "rbp", "srbp", "sbp"] {
        let acc = train_embedded(channel, 5);
        assert!(acc > 0.75, "{channel}: test accuracy {acc}");
    }
    let top = train_embedded("top", 5);
    assert!(top > 0.5, "top: test accuracy {top}");
    // aliases resolve to the same runs
    assert_eq!(train_embedded("dfa", 1), train_embedded("srbp", 1));
    assert_eq!(train_embedded("fa", 1), train_embedded("rbp", 1));
}

#[test]
fn cli_output_names_each_layers_channel() {
    let o = rbp(&[
        "train",
        "--channel",
        "srbp",
        "--epochs",
        "1",
        "--train-limit",
        "500",
        "--hidden",
        "20,10",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("hidden layer 1 (20 units) ← C(20×10)·δ[top] ⊙ f'"),
        "{t}"
    );
    assert!(
        t.contains("hidden layer 2 (10 units) ← C(10×10)·δ[top] ⊙ f'"),
        "{t}"
    );
    assert!(t.contains("epoch   1/1"), "{t}");
    let o = rbp(&[
        "train",
        "--channel",
        "rbp",
        "--no-derivative",
        "--epochs",
        "1",
        "--train-limit",
        "500",
        "--hidden",
        "20,10",
        "-q",
    ]);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("hidden layer"), "{t}");
}

#[test]
fn channels_lists_every_channel_alias_and_equation() {
    let o = rbp(&["channels"]);
    let t = text(&o);
    assert!(o.status.success());
    for k in rbprop::channel::CHANNELS {
        assert!(
            t.contains(k.name) && t.contains(k.equation),
            "{} missing: {t}",
            k.name
        );
        for a in k.aliases {
            assert!(t.contains(a), "alias {a} missing");
        }
    }
    assert!(t.contains("bp-nof and sbp-nof are the same algorithm"));
}

#[test]
fn help_documents_every_flag() {
    let t = text(&rbp(&["train", "--help"]));
    for flag in [
        "--data",
        "--channel",
        "--no-derivative",
        "--hidden",
        "--activation",
        "--epochs",
        "--batch",
        "--lr",
        "--decay",
        "--momentum",
        "--seed",
        "--threads",
        "--out",
        "--train-limit",
        "--overwrite",
    ] {
        assert!(t.contains(flag), "--help lacks {flag}");
    }
    // conv nets and CIFAR-10 are documented; --channel lists every channel of the registry
    assert!(t.contains("CIFAR-10") && t.contains("convolutional"), "{t}");
    let channel = t
        .split("--channel <NAME>")
        .nth(1)
        .and_then(|s| s.split("--no-derivative").next())
        .unwrap();
    let words: Vec<&str> = channel
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '+'))
        .collect();
    for k in rbprop::channel::CHANNELS {
        assert!(words.contains(&k.name), "--channel help lacks {}", k.name);
    }
    let top = text(&rbp(&["--help"]));
    assert!(
        top.contains("convolutional") && top.contains("export"),
        "{top}"
    );
}

#[test]
fn bad_input_gives_a_clear_error_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--lr", "-1"],
            "learning rate must be > 0, got -1",
        ),
        (vec!["train", "--channel", "nope"], "unknown channel `nope`"),
        (vec!["train", "--hidden", "10,a"], "`a` is not a size"),
        (
            vec!["train", "--data", "/nonexistent/dir"],
            "not a directory",
        ),
        (vec!["train", "--data", d], "train-images-idx3-ubyte"),
        (
            vec!["train", "--channel", "top", "--no-derivative"],
            "no no-derivative version",
        ),
    ];
    for (args, needle) in cases {
        let o = rbp(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(needle), "{args:?}: expected `{needle}` in {t}");
        assert!(!t.contains("panicked"), "{t}");
    }
}

#[test]
fn existing_results_are_not_overwritten_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "train",
        "--epochs",
        "1",
        "--train-limit",
        "300",
        "-q",
        "--out",
        out,
    ];
    assert!(rbp(&args).status.success());
    let o = rbp(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--overwrite"));
    let mut again = args.to_vec();
    again.push("--overwrite");
    assert!(rbp(&again).status.success());
}

#[test]
fn readme_commands_work() {
    // Every `cargo run --release -- …` line of the README that needs no external data runs, in
    // order, in one scratch directory (so `results/…` of one command is there for the next).
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in readme.lines() {
        let Some(rest) = line.trim().strip_prefix("cargo run --release -- ") else {
            continue;
        };
        if rest.contains("/usr/share") || rest.contains("--data") || rest.contains("~/") {
            continue;
        }
        // a GPU example runs where there is an adapter (and must, under RBP_GPU=1)
        if rest.contains("--device gpu") && !super::gpu::available() {
            continue;
        }
        let args: Vec<String> = rest
            .split_whitespace()
            .map(|a| match a.strip_prefix("configs/") {
                Some(p) => format!("{}/../../configs/{p}", env!("CARGO_MANIFEST_DIR")),
                None => a.to_string(),
            })
            .collect();
        let o = Command::new(env!("CARGO_BIN_EXE_rbp"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("run rbp");
        assert!(
            o.status.success(),
            "README command failed: {rest}\n{}",
            text(&o)
        );
        ran += 1;
    }
    assert!(ran >= 2, "README shows too few runnable commands");
}

/// Opt-in: set RBP_FASHION_MNIST to a directory with the full Fashion-MNIST files
/// (`apt-get install dataset-fashion-mnist` → /usr/share/datasets/fashion-mnist).
#[test]
fn full_fashion_mnist_when_available() {
    let Ok(dir) = std::env::var("RBP_FASHION_MNIST") else {
        eprintln!("skipped: RBP_FASHION_MNIST is not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = rbp(&[
        "train",
        "--data",
        &dir,
        "--channel",
        "srbp",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("60000 train / 10000 test examples of 784 values, 10 classes"),
        "{t}"
    );
    let ms = metrics(&out);
    let acc = ms[1]["test_acc"].as_f64().unwrap();
    assert!(
        acc > 0.80,
        "srbp on full Fashion-MNIST after 2 epochs: {acc}"
    );
}

#[test]
fn a_saved_config_reproduces_the_run_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let c = dir.path().join("c");
    let args = [
        "train",
        "--channel",
        "asrbp",
        "--feedback",
        "uniform",
        "--channel-dropout",
        "0.1",
        "--epochs",
        "2",
        "--train-limit",
        "1000",
        "-q",
    ];
    let mut first = args.to_vec();
    first.extend(["--out", a.to_str().unwrap()]);
    assert!(rbp(&first).status.success());
    let cfg = a.join("config.toml");
    let o = rbp(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let strip = |d: &Path| -> Vec<serde_json::Value> {
        metrics(d)
            .into_iter()
            .map(|mut m| {
                m["seconds"] = 0.into();
                m
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    let o = rbp(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "1",
        "--lr",
        "0.05",
        "--out",
        c.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let saved = std::fs::read_to_string(c.join("config.toml")).unwrap();
    assert!(
        saved.contains("epochs = 1")
            && saved.contains("lr = 0.05")
            && saved.contains("channel = \"asrbp\"")
            && saved.contains("uniform"),
        "{saved}"
    );
    // bad config files name the file and the key
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "lr = 0.1\nlearning_rate = 3\n").unwrap();
    let o = rbp(&["train", "--config", bad.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(t.contains("bad.toml") && t.contains("learning_rate"), "{t}");
    std::fs::write(&bad, "lr = 0.1\nepochs = \"many\"\n").unwrap();
    let t = text(&rbp(&["train", "--config", bad.to_str().unwrap()]));
    assert!(
        t.contains("bad.toml") && t.contains("epochs") && t.contains("expected usize"),
        "{t}"
    );
    std::fs::write(&bad, "[channel_options]\nfeedback = \"sparse\"\n").unwrap();
    let t = text(&rbp(&["train", "--config", bad.to_str().unwrap()]));
    assert!(t.contains("bad.toml") && t.contains("fan-out"), "{t}");
}

#[test]
fn variant_flags_reach_the_channel() {
    let args = [
        "train",
        "--channel",
        "rbp",
        "--quantize-signal",
        "8",
        "--epochs",
        "1",
        "--train-limit",
        "300",
        "--hidden",
        "20,10",
        "--diagnostics",
    ];
    let o = rbp(&[&args[..], &["--channel-dropout", "0.25"]].concat());
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(
            "C(20×10)·δ[2] ⊙ f', channel-dropout r=0.25, quantize-signal (8 bits, mid-rise, α auto)"
        ),
        "{t}"
    );
    assert!(t.contains("δ angle to BP"), "{t}");
    // the quantizer's census: mid-rise has no zero level, so the zeros are the entries dropout
    // silenced (a quarter), which stay silent
    let zeros: Vec<f64> = t
        .split("signal quantized to 0: ")
        .skip(1)
        .map(|r| r.split('%').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(zeros.len(), 2, "{t}");
    assert!(zeros.iter().all(|z| (15.0..35.0).contains(z)), "{zeros:?}");
    // without dropout, no signal is silent
    let t = text(&rbp(&args));
    assert_eq!(t.matches("signal quantized to 0: 0.0%").count(), 2, "{t}");
    let bad: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--channel", "bp", "--feedback", "sparse:2"],
            "no random feedback matrices",
        ),
        (vec!["train", "--channel", "kp"], "weight decay"),
        (
            vec!["train", "--channel", "mix", "--mix", "bp,xx,bp,bp"],
            "`xx`",
        ),
        (vec!["train", "--quantize-update", "8"], "--decay 0"),
        (
            vec!["train", "--feedback", "gamma"],
            "expected normal, scaled:GAIN, uniform",
        ),
        (
            vec!["train", "--channel-dropout", "1.5", "--channel", "srbp"],
            "[0, 1)",
        ),
    ];
    for (args, needle) in bad {
        let o = rbp(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(needle), "{args:?}: expected `{needle}` in {t}");
    }
}

#[test]
fn dynamics_commands_print_end_point_prediction_and_stability() {
    let o = rbp(&["dynamics", "chain", "--from", "-1,-2", "--c", "1"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("predicted  a = (-2.000000000, -0.500000000)"),
        "{t}"
    );
    assert!(t.contains("stable (attracting)"), "{t}");
    let err: f64 = t
        .split("|end − predicted| = ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(err < 1e-6, "{t}");
    let o = rbp(&[
        "dynamics",
        "chain",
        "--length",
        "3",
        "--algo",
        "srbp",
        "--from",
        "0.5,0.4,0.3",
        "--c",
        "0.7,1.3",
        "--method",
        "rk4",
        "--step",
        "0.01",
        "--t-end",
        "300",
    ]);
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("degree-7 polynomial"),
        "{t}"
    );
    let o = rbp(&["dynamics", "chain", "--mu", "1/3", "--from", "0.5,0.5"]);
    assert!(
        o.status.success() && text(&o).contains("x^0.333"),
        "{}",
        text(&o)
    );
    for (args, needle) in [
        (
            vec!["dynamics", "chain", "--from", "1,2,3"],
            "needs 2 values",
        ),
        (
            vec!["dynamics", "chain", "--from", "1,x"],
            "`x` is not a number",
        ),
        (
            vec!["dynamics", "chain", "--from", "1,1", "--beta", "0"],
            "`--beta`: must be > 0",
        ),
        (
            vec!["dynamics", "chain", "--from", "1,1", "--method", "euler"],
            "auto, dopri, rosenbrock or rk4",
        ),
        (vec!["dynamics", "field", "--out", "x.jpg"], ".svg or .png"),
    ] {
        let o = rbp(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
    for (cmd, needle) in [
        ("wide", "Σ a_i b_i"),
        ("autoencoder", "cos(a, c) = 1.0000000"),
        ("general", "product converges"),
        ("sgd", "largest deviation"),
    ] {
        let o = rbp(&["dynamics", cmd]);
        assert!(
            o.status.success() && text(&o).contains(needle),
            "{cmd}: {}",
            text(&o)
        );
    }
}

#[test]
fn dynamics_stats_are_estimated_from_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("samples.csv");
    // T = 2 I exactly: α = E[T I] = 2 E[I²], β = E[I²]; α/β = 2
    let mut s = String::from("input,target\n");
    for i in 1..=50 {
        let x = i as f64 / 25.0 - 1.0;
        s += &format!("{x},{}\n", 2.0 * x);
    }
    std::fs::write(&csv, s).unwrap();
    let o = rbp(&[
        "dynamics",
        "chain",
        "--from",
        "0.5,0.5",
        "--stats",
        csv.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("α/β = 2.000000000000"),
        "{t}"
    );
    std::fs::write(&csv, "1,2\n3\n").unwrap();
    let t = text(&rbp(&[
        "dynamics",
        "chain",
        "--from",
        "0.5,0.5",
        "--stats",
        csv.to_str().unwrap(),
    ]));
    assert!(t.contains("samples.csv: line 2 has 1 columns"), "{t}");
    for bad in ["1,2\nNaN,3\n", "1,2\n4,inf\n"] {
        std::fs::write(&csv, bad).unwrap();
        let o = rbp(&[
            "dynamics",
            "chain",
            "--from",
            "0.5,0.5",
            "--stats",
            csv.to_str().unwrap(),
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(
            t.contains("samples.csv: line 2, column") && t.contains("not a finite number"),
            "{t}"
        );
    }
}

/// The value printed after `label` in `t`.
fn printed(t: &str, label: &str) -> f64 {
    t.split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{label}` in {t}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn dynamics_chain_reports_a_blow_up_and_exits_non_zero() {
    // rk4 with a step beyond the stability limit (eigenvalue ≈ −12 at the start)
    let o = rbp(&[
        "dynamics", "chain", "--from", "3,3", "--method", "rk4", "--step", "1",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("blew up") && t.contains("smaller --step"), "{t}");
    assert!(!t.contains("|end − predicted|"), "{t}");
    // a stall at the singular point a_1 = 0 of μ = 1/3 is reported, not compared
    let o = rbp(&["dynamics", "chain", "--mu", "1/3", "--from", "-0.5,0.42"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("singular") && !t.contains("|end − predicted|"),
        "{t}"
    );
}

#[test]
fn dynamics_chain_integrates_a_stiff_start() {
    let o = rbp(&["dynamics", "chain", "--from", "1e6,1e6"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("stiff, Rosenbrock from t ="), "{t}");
    assert!(
        t.contains("predicted  a = (999998.999999500, 0.000001000)"),
        "{t}"
    );
    // |end − predicted| relative to |a_1| ≈ 1e6
    assert!(printed(&t, "|end − predicted| = ") < 1e-7, "{t}");
    assert!((printed(&t, "P = ") - 1.0).abs() < 1e-9, "{t}");
    let o = rbp(&[
        "dynamics", "chain", "--from", "1e6,1e6", "--method", "dopri",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("the system is stiff") && t.contains("--method auto"),
        "{t}"
    );
    let o = rbp(&[
        "dynamics",
        "chain",
        "--from",
        "1e6,1e6",
        "--method",
        "rosenbrock",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn dynamics_power_chain_stops_at_the_line_a1_equals_zero() {
    // x³ from a_1 < 0 climbs to a_1 = 0 and stops; the solution at a_1 ≈ 1.18 is beyond
    let o = rbp(&["dynamics", "chain", "--mu", "3", "--from", "-0.5,0.42"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("predicted  a = (0.000000000, 0.378333333)"),
        "{t}"
    );
    assert!(t.contains("on the line a1 = 0 of fixed points"), "{t}");
    assert!(printed(&t, "|end − predicted| = ") < 1e-3, "{t}");
    // x² is even: from a_1 < 0 (c > 0) a_1 moves away from 0 to the mirrored solution
    let o = rbp(&["dynamics", "chain", "--mu", "2", "--from", "-0.5,0.42"]);
    let t = text(&o);
    assert!(
        t.contains("predicted  a = (-1.186998085, 0.709741113)"),
        "{t}"
    );
    assert!(printed(&t, "|end − predicted| = ") < 1e-6, "{t}");
    // sign(x)|x|^μ only by name
    let o = rbp(&[
        "dynamics",
        "chain",
        "--mu",
        "2",
        "--signed-power",
        "--from",
        "-0.5,0.42",
    ]);
    let t = text(&o);
    assert!(t.contains("f(x) = sign(x)|x|^2"), "{t}");
    assert!(
        t.contains("predicted  a = (0.000000000, 0.357500000)"),
        "{t}"
    );
    let o = rbp(&["dynamics", "chain", "--mu", "0.5", "--from", "1,1"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("`--mu`") && t.contains("not real for x < 0"),
        "{t}"
    );
}

#[test]
fn dynamics_labels_a_tangent_fixed_point_semi_stable() {
    // on the parabola a_2 = a_1²/2 − 3/2, which touches the hyperbola a_1 a_2 = 1 at (−1, −1)
    let o = rbp(&["dynamics", "chain", "--from", "-2,0.5"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("→ semi-stable (tangent"), "{t}");
    assert!(!t.contains("repelling)"), "{t}");
}

#[test]
fn dynamics_refuses_non_finite_and_unbounded_values() {
    for (args, needle) in [
        (
            vec!["chain", "--from", "1,1", "--alpha", "NaN"],
            "`--alpha`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--beta", "inf"],
            "`--beta`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--rtol", "nan"],
            "`--rtol`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--rtol", "1e-20"],
            "`--rtol`: must lie in [1e-14, 0.1]",
        ),
        (
            vec!["chain", "--from", "nan,1"],
            "`--from`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--c", "-inf"],
            "`--c`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--mu", "NaN"],
            "`--mu`: must be a finite number",
        ),
        (
            vec!["chain", "--from", "1,1", "--t-end", "-5"],
            "`--t-end`: must be > 0",
        ),
        (
            vec!["chain", "--from", "1,1", "--t-end", "NaN"],
            "`--t-end`: must be > 0",
        ),
        (
            vec!["chain", "--from", "1,1", "--t-end", "inf"],
            "`--t-end`: the end time is limited to 1e9",
        ),
        (
            vec![
                "chain", "--from", "1,1", "--method", "rk4", "--step", "1e-300",
            ],
            "`--step`: --t-end / --step = 1.000e303 steps exceed the limit of 10000000",
        ),
        (
            vec!["chain", "--from", "1,1", "--method", "rk4", "--step", "0"],
            "`--step`: must be > 0",
        ),
        (
            vec!["chain", "--length", "100000", "--from", "1"],
            "`--length`: at most 64",
        ),
        (
            vec!["field", "--grid", "1000000000", "--out", "x.svg"],
            "`--grid`: at most 200",
        ),
        (
            vec!["field", "--range", "inf", "--out", "x.svg"],
            "`--range`: must be a finite number",
        ),
        (
            vec!["field", "--alpha", "nan", "--out", "x.svg"],
            "`--alpha`: must be a finite number",
        ),
        (
            vec!["field", "--c", "0", "--out", "x.svg"],
            "`--c`: must be ≠ 0",
        ),
        (
            vec!["field", "--start", "1,inf", "--out", "x.svg"],
            "`--start`: must be a finite number",
        ),
        (vec!["wide", "--n", "1000000000"], "`--n`: at most 10000"),
        (
            vec!["wide", "--t-end", "inf"],
            "`--t-end`: the end time is limited to 1e9",
        ),
        (
            vec!["autoencoder", "--n", "1000000000"],
            "`--n`: at most 10000",
        ),
        (
            vec!["autoencoder", "--t-end", "-1"],
            "`--t-end`: must be > 0",
        ),
        (
            vec!["general", "--sizes", "1000000,1000000,1"],
            "`--sizes`: each size is at most 100",
        ),
        (
            vec!["general", "--t-end", "inf"],
            "`--t-end`: the end time is limited to 1e9",
        ),
        (
            vec!["sgd", "--eta", "1e-12"],
            "`--eta`: --time / --eta = 1.000e13 examples exceed the limit",
        ),
        (
            vec!["sgd", "--time", "inf"],
            "`--time`: the end time is limited to 1e9",
        ),
        (
            vec!["sgd", "--noise", "nan"],
            "`--noise`: must be a finite number",
        ),
        (vec!["sgd", "--c", "inf"], "`--c`: must be a finite number"),
    ] {
        let mut full = vec!["dynamics"];
        full.extend(&args);
        let o = rbp(&full);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(needle), "{args:?}: expected `{needle}` in {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}

#[test]
fn field_figure_is_written_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("f.svg");
    let png = dir.path().join("f.png");
    for p in [&svg, &png] {
        let o = rbp(&[
            "dynamics",
            "field",
            "--c",
            "-0.8",
            "--start",
            "0.5,-0.5",
            "--out",
            p.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    assert!(
        s.contains("a₁ (lower weight)")
            && s.contains("fixed points a₁a₂ = α/β")
            && s.contains("unstable")
    );
    let b = std::fs::read(&png).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (900, 820));
}

#[test]
fn complexity_prints_the_paper_formulas() {
    let o = rbp(&["complexity"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // 784-100-100-100-100-10: BP Σ N_(h−1) N_h over h = 2..L = 3·100·100 + 100·10; SRBP 10·400
    assert!(
        t.contains("BP, RBP: Σ_h N_(h−1)·N_h = 31000") && t.contains("SRBP: N_L·Σ_h N_h = 4000"),
        "{t}"
    );
    assert!(t.contains("ratio SRBP/BP 0.129"), "{t}");
    let line = |name: &str| {
        t.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap()
            .to_string()
    };
    assert!(line("srbp").contains(" 4000 "), "{}", line("srbp"));
    assert!(line("cascade").contains(" 64000 "), "{}", line("cascade"));
    let o = rbp(&[
        "complexity",
        "--hidden",
        "50",
        "--inputs",
        "20",
        "--outputs",
        "5",
    ]);
    assert!(text(&o).contains("SRBP: N_L·Σ_h N_h = 250"), "{}", text(&o));
}

#[test]
fn conv_nets_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    super::cifar::generate(dir.path(), 40, 50, 5);
    let d = dir.path().to_str().unwrap();
    let o = rbp(&[
        "train",
        "--data",
        d,
        "--arch",
        "conv4k5-pool3s2-fc16",
        "--channel",
        "srbp",
        "--epochs",
        "1",
        "--translate",
        "2",
        "--flip",
        "--batch",
        "20",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("3×32×32 → conv4k5s1p2 → 4×32×32 → pool3s2p1 → 4×16×16 → fc16 → 10"),
        "{t}"
    );
    assert!(
        t.contains("(200 train / 50 test examples of 3072 values"),
        "{t}"
    );
    assert!(
        t.contains("translation up to 2 px, horizontal flip p = 0.5"),
        "{t}"
    );
    assert!(
        t.contains("hidden layer 1 (4096 units) ← C(4096×10)·δ[top]"),
        "{t}"
    );
    // the paper preset builds the paper's CIFAR-10 net (one epoch on 40 examples)
    let out = dir.path().join("preset");
    let o = rbp(&[
        "train",
        "--data",
        d,
        "--preset",
        "paper-cifar10",
        "--epochs",
        "1",
        "--train-limit",
        "40",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("conv32k5s1p2 → 32×32×32 → pool3s2p1 → 32×16×16 → conv32k5s1p2 → 32×16×16 → pool3s2p1 → 32×8×8 → conv64k5s1p2 → 64×8×8 → pool3s2p1 → 64×4×4 → fc64 → 10"), "{t}");
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    for needle in [
        "arch = \"paper-cifar10\"",
        "momentum = 0.9",
        "lr = 0.01",
        "batch = 128",
        "translate = 3",
        "flip = true",
    ] {
        assert!(cfg.contains(needle), "{needle} missing in {cfg}");
    }
    for (args, needle) in [
        (
            vec!["train", "--arch", "conv8k5-pool3s2-blah"],
            "`blah`: unknown layer",
        ),
        (
            vec!["train", "--arch", "fc10-conv4k3"],
            "a convolution cannot follow a dense layer",
        ),
        (
            vec!["train", "--arch", "conv4k40valid"],
            "does not fit the 28×28 map",
        ),
        (
            vec!["train", "--preset", "imagenet"],
            "unknown preset `imagenet`",
        ),
        (
            vec![
                "train",
                "--arch",
                "conv4k3-pool2-fc8",
                "--channel",
                "rbp",
                "--feedback",
                "congruent",
            ],
            "dense nets without pooling",
        ),
    ] {
        let o = rbp(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("whole"), dir.path().join("killed"));
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--channel",
            "srbp",
            "--channel-dropout",
            "0.2",
            "--momentum",
            "0.5",
            "--epochs",
            "12",
            "--train-limit",
            "9000",
            "-q",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect()
    };
    let whole = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(args(&a))
        .output()
        .unwrap();
    assert!(whole.status.success());
    // start the same run, kill it (SIGKILL) once two epochs are on disk, run it again
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(args(&b))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let n = std::fs::read_to_string(b.join("metrics.jsonl"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n >= 2 || start.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = metrics(&b).len();
    assert!((2..12).contains(&partial), "killed after {partial} epochs");
    let again = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(args(&b))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    // byte for byte, but for the timings: the finished epochs' lines are kept as written
    let strip = |d: &Path| {
        super::determinism::mask_seconds(&std::fs::read_to_string(d.join("metrics.jsonl")).unwrap())
    };
    assert!(
        strip(&a) == strip(&b),
        "the resumed run differs from the uninterrupted one:\n{}\n{}",
        strip(&a),
        strip(&b)
    );
    // the checkpoint is a safetensors file that any loader can read
    let bytes = std::fs::read(b.join("checkpoint.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[100, 784]);
    assert_eq!(st.tensor("feedback.0.0").unwrap().shape(), &[100, 10]);
    assert!(st.tensor("momentum.4.bias").is_ok());
    // a different configuration in the same directory is refused
    let mut other = args(&b);
    other[2] = "rbp".into();
    other[10] = "13".into();
    let o = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("another configuration"), "{}", text(&o));
}

#[test]
fn channel_tables_of_readme_and_docs_are_the_registry() {
    // the README and docs/channels.md show `rbp channels --markdown` verbatim
    let o = rbp(&["channels", "--markdown"]);
    assert!(o.status.success());
    let table = String::from_utf8(o.stdout).unwrap();
    let table = table.trim_end();
    for k in rbprop::channel::CHANNELS {
        assert!(
            table.contains(&format!("| `{}`", k.name)),
            "{} missing",
            k.name
        );
    }
    for doc in ["README.md", "docs/channels.md"] {
        let path = format!("{}/../../{doc}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(table),
            "{doc}: its channel table differs from `rbp channels --markdown`; paste that output"
        );
    }
}
