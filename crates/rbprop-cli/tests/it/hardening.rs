//! Careless and hostile use: concurrent writers, a full disk, absurd sizes, bad experiment
//! files, damaged checkpoints. Every case ends in a clear error, never a panic, a hang or a
//! corrupted run.

use super::cli::rbp;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `rbp args` expecting a clean refusal: exit status 2 (not a panic's 101 or a signal) and
/// a message holding every one of `needles`.
fn refused(args: &[&str], needles: &[&str]) {
    let o = rbp(args);
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "rbp {args:?} should be refused:\n{t}"
    );
    assert!(!t.contains("panicked"), "rbp {args:?} panicked:\n{t}");
    for n in needles {
        assert!(t.contains(n), "rbp {args:?}: message lacks `{n}`:\n{t}");
    }
}

const TINY: &[&str] = &["--hidden", "8", "--train-limit", "200", "--epochs", "1"];

fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--out", out, "--quiet"];
    a.extend_from_slice(TINY);
    a.extend_from_slice(extra);
    a
}

#[test]
fn a_second_writer_is_refused_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // the probe of `--status` creates nothing where nobody ever wrote
    assert_eq!(rbprop::run::RunDir::writer(&out), None);
    assert!(!out.exists());
    let held = rbprop::run::RunDir::lock(&out).unwrap();
    assert_eq!(
        rbprop::run::RunDir::writer(&out),
        Some(Some(std::process::id()))
    );
    let pid = format!("pid {}", std::process::id());
    refused(
        &train_args(out.to_str().unwrap(), &[]),
        &["another rbp process", &pid, out.to_str().unwrap()],
    );
    assert!(
        !out.join("config.toml").exists(),
        "the refused writer wrote"
    );
    // --overwrite does not get past the lock either
    refused(
        &train_args(out.to_str().unwrap(), &["--overwrite"]),
        &[&pid],
    );
    drop(held);
    assert_eq!(rbprop::run::RunDir::writer(&out), None);
    let o = rbp(&train_args(out.to_str().unwrap(), &[]));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn two_concurrent_trainings_into_one_directory_leave_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = out.to_str().unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args([
            "train", "--out", o, "--quiet", "--epochs", "200", "--lr", "0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(rbprop::run::LOCK);
    let start = Instant::now();
    let expect = first.id().to_string();
    // the first writer holds the lock and has written its settings
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim() != expect)
        || !out.join("config.toml").exists()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = format!("pid {}", first.id());
    refused(
        &[
            "train", "--out", o, "--quiet", "--epochs", "2", "--lr", "0.05",
        ],
        &[&pid],
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // the killed writer released its lock; the directory still holds its settings, not lr 0.05
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("lr = 0.1"), "{cfg}");
}

/// Runs a training into a 160 KiB filesystem: the checkpoint does not fit.
#[test]
fn a_full_disk_gives_an_error_and_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let bin = env!("CARGO_BIN_EXE_rbp");
    let out = mnt.join("run");
    let cmd = format!(
        "{bin} train --out {} --quiet --hidden 100,100 --train-limit 200 --epochs 2; echo rc=$?; ls -a {}",
        out.display(),
        out.display()
    );
    // a real full filesystem where we may mount one (root, in a private mount namespace);
    // otherwise a file-size limit makes writes fail the same way (EFBIG instead of ENOSPC)
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let o = if is_root {
        let script = format!(
            "mount -t tmpfs -o size=160k tmpfs {} && {cmd}",
            mnt.display()
        );
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap()
    } else {
        let script = format!("trap '' XFSZ; ulimit -f 160; {cmd}");
        Command::new("sh").args(["-c", &script]).output().unwrap()
    };
    let t = text(&o);
    assert!(t.contains("rc=2"), "the run should fail cleanly:\n{t}");
    assert!(
        t.contains("No space left on device") || t.contains("too large"),
        "{t}"
    );
    assert!(
        t.contains("checkpoint.safetensors"),
        "the message names the file:\n{t}"
    );
    assert!(
        !t.lines().any(|l| l.ends_with(".tmp")),
        "a temporary file was left behind:\n{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn architectures_that_do_not_fit_are_refused_by_layer_and_rule() {
    for (arch, needles) in [
        ("conv4k5s30", &["layer 1", "stride 30", "28×28"][..]),
        (
            "conv4k5s2p9999999999",
            &["layer 1", "padding 9999999999", "smaller than"],
        ),
        ("conv4k5p5", &["padding 5"]),
        ("conv4k99999999999999", &["layer 1", "too large"]),
        (
            "conv4k5valid-conv8k30valid",
            &["layer 2", "does not fit the 24×24 map"],
        ),
        ("conv4k3-pool3s99", &["layer 2", "stride 99"]),
        ("conv100000k3", &["100000 channels"]),
        ("fc999999999", &["fc999999999", "limit"]),
        ("conv4096k9-conv4096k9-fc64", &["memory"]),
        ("pool2", &["layer 1", "pooling must follow a convolution"]),
        ("fc10-conv4k3", &["layer 2", "cannot follow a dense layer"]),
        ("conv4k3s18446744073709551615", &["stride"]),
        ("conv18446744073709551616k3", &["number"]),
    ] {
        let mut a = vec!["train", "--arch", arch];
        a.extend_from_slice(TINY);
        let mut needles = needles.to_vec();
        needles.push("arch");
        refused(&a, &needles);
    }
}

#[test]
fn absurd_sizes_and_non_finite_numbers_are_refused_before_allocation() {
    for (flags, needles) in [
        (&["--threads", "100000"][..], &["threads", "1..=1024"][..]),
        (&["--epochs", "0"], &["epochs"]),
        (&["--epochs", "99999999999"], &["epochs"]),
        (&["--batch", "99999999999"], &["batch"]),
        (&["--hidden", "100000000"], &["hidden", "memory"]),
        (&["--hidden", "100,0"], &["hidden"]),
        (&["--channel", "rbp", "--average", "100000"], &["average"]),
        (
            &["--channel", "rbp", "--feedback", "sparse:0"],
            &["top-only"],
        ),
        (
            &["--channel", "rbp", "--feedback", "shifted:NaN"],
            &["feedback"],
        ),
        (
            &["--channel", "rbp", "--feedback", "sparse:inf"],
            &["feedback"],
        ),
        (&["--lr", "NaN"], &["lr"]),
        (&["--lr", "inf"], &["lr"]),
        (&["--momentum", "NaN"], &["momentum"]),
        (&["--decay=-inf"], &["decay"]),
        (&["--weight-decay", "NaN"], &["weight-decay"]),
        (&["--channel-dropout", "NaN"], &["dropout"]),
        (&["--quantize-signal", "2:NaN"], &["quantize-signal"]),
        (
            &["--quantize-update", "4:inf", "--decay", "0"],
            &["quantize-update"],
        ),
        (&["--translate", "100000"], &["translate"]),
    ] {
        let mut a = vec!["train", "--train-limit", "200"];
        if !flags.contains(&"--hidden") {
            a.extend_from_slice(&["--hidden", "8"]);
        }
        if !flags.contains(&"--epochs") {
            a.extend_from_slice(&["--epochs", "1"]);
        }
        a.extend_from_slice(flags);
        refused(&a, needles);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const GRID: &str = r#"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1]
[train]
epochs = 1
train_limit = 200
hidden = [8]
[[variant]]
row = "baseline"
column = "BP"
channel = "bp"
[[variant]]
row = "baseline"
column = "SRBP"
channel = "srbp"
"#;

#[test]
fn experiment_names_and_fixed_keys_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let cfg = tmp.path().join("exp.toml");
    for (name, needle) in [
        ("../../x", "plain directory name"),
        ("a/b", "plain directory name"),
        ("/abs", "plain directory name"),
        ("..", "plain directory name"),
        ("", "must not be empty"),
    ] {
        write(&cfg, &format!("name = {name:?}\n{GRID}"));
        refused(
            &[
                "reproduce",
                cfg.to_str().unwrap(),
                "--results",
                res.to_str().unwrap(),
            ],
            &[needle, "name", cfg.to_str().unwrap()],
        );
    }
    assert!(!tmp.path().join("x").exists());
    for (extra, key) in [
        ("[train]\nseed = 5\n", "train.seed"),
        ("", "variant baseline / BP.data"),
    ] {
        let mut text = format!("name = \"ok\"\n{GRID}");
        if extra.is_empty() {
            text = text.replacen("channel = \"bp\"", "channel = \"bp\"\ndata = \"/tmp\"", 1);
        } else {
            text = text.replacen("[train]\n", extra, 1);
        }
        write(&cfg, &text);
        refused(
            &[
                "reproduce",
                cfg.to_str().unwrap(),
                "--results",
                res.to_str().unwrap(),
            ],
            &[key, "not supported"],
        );
    }
}

#[test]
fn a_failing_run_is_recorded_and_the_grid_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let cfg = tmp.path().join("exp.toml");
    // the conv variant parses but cannot be built on 28×28 images (its kernel does not fit)
    let text = format!(
        "name = \"grid\"\n{GRID}[[variant]]\nrow = \"conv\"\ncolumn = \"BP\"\nchannel = \"bp\"\narch = \"conv4k5s29\"\n"
    );
    write(&cfg, &text);
    let args = [
        "reproduce",
        cfg.to_str().unwrap(),
        "--results",
        res.to_str().unwrap(),
        "--jobs",
        "2",
    ];
    let o = rbp(&args);
    let t = text_of(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("1 run(s) did not finish"), "{t}");
    assert!(t.contains("grid/conv--bp--seed1: failed"), "{t}");
    let root = res.join("grid");
    for id in ["baseline--bp--seed1", "baseline--srbp--seed1"] {
        let s = std::fs::read_to_string(root.join(id).join("summary.json")).unwrap();
        assert!(s.contains("\"completed\""), "{id}: {s}");
    }
    let s = std::fs::read_to_string(root.join("conv--bp--seed1").join("summary.json")).unwrap();
    assert!(s.contains("\"failed\"") && s.contains("stride 29"), "{s}");

    // a run another process is writing is left alone, named with that process's pid
    std::fs::remove_dir_all(root.join("baseline--srbp--seed1")).unwrap();
    let held = rbprop::run::RunDir::lock(&root.join("baseline--srbp--seed1")).unwrap();
    let o = rbp(&args);
    let t = text_of(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("pid {}", std::process::id())), "{t}");
    assert!(
        !root
            .join("baseline--srbp--seed1")
            .join("config.toml")
            .exists()
    );
    drop(held);
}

fn text_of(o: &Output) -> String {
    text(o)
}

/// A finished 1-epoch run, then `f` applied to its checkpoint; returns the resume's output.
fn resume_after(f: impl Fn(&Path)) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = out.to_str().unwrap();
    let first = rbp(&train_args(o, &[]));
    assert!(first.status.success(), "{}", text(&first));
    f(&out.join(rbprop::run::CHECKPOINT));
    let mut a = vec![
        "train",
        "--out",
        o,
        "--quiet",
        "--hidden",
        "8",
        "--train-limit",
        "200",
    ];
    a.extend_from_slice(&["--epochs", "2"]);
    rbp(&a)
}

#[test]
fn damaged_or_foreign_checkpoints_are_refused() {
    // bit rot in a weight
    let o = resume_after(|ckpt| {
        let mut b = std::fs::read(ckpt).unwrap();
        let n = b.len();
        b[n - 7] ^= 0x10;
        std::fs::write(ckpt, b).unwrap();
    });
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("checksum"), "{}", text(&o));

    // a checkpoint of other settings put in place of this run's
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    let made = rbp(&train_args(other.to_str().unwrap(), &["--lr", "0.05"]));
    assert!(made.status.success(), "{}", text(&made));
    let foreign = other.join(rbprop::run::CHECKPOINT);
    let o = resume_after(|ckpt| {
        std::fs::copy(&foreign, ckpt).unwrap();
    });
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("other settings"), "{}", text(&o));

    // the untouched checkpoint extends to 2 epochs
    let o = resume_after(|_| {});
    assert!(o.status.success(), "{}", text(&o));
}
