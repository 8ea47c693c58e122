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
    assert_eq!(rbprop::run::RunDir::new(&out).writer(), None);
    assert!(!out.exists());
    let held = rbprop::run::RunDir::new(&out).lock().unwrap();
    assert_eq!(
        rbprop::run::RunDir::new(&out).writer(),
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
    assert_eq!(rbprop::run::RunDir::new(&out).writer(), None);
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
    assert!(t.contains("grid/bp/arch-conv4k5s29/seed-1: failed"), "{t}");
    let root = res.join("grid");
    for id in ["bp/seed-1", "srbp/seed-1"] {
        let s = std::fs::read_to_string(root.join(id).join("summary.json")).unwrap();
        assert!(s.contains("\"completed\""), "{id}: {s}");
    }
    let s = std::fs::read_to_string(root.join("bp/arch-conv4k5s29/seed-1").join("summary.json"))
        .unwrap();
    assert!(s.contains("\"failed\"") && s.contains("stride 29"), "{s}");

    // a run another process is writing is left alone, named with that process's pid
    std::fs::remove_dir_all(root.join("srbp/seed-1")).unwrap();
    let held = rbprop::run::RunDir::new(root.join("srbp/seed-1"))
        .lock()
        .unwrap();
    let o = rbp(&args);
    let t = text_of(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("pid {}", std::process::id())), "{t}");
    assert!(!root.join("srbp/seed-1").join("config.toml").exists());
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

/// A checkpoint's tensors (name, shape, values) in name order, and its metadata.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn read_checkpoint(path: &Path) -> (Tensors, std::collections::HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            assert_eq!(t.dtype(), safetensors::Dtype::F32, "{n}");
            let values = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, t.shape().to_vec(), values)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    (all, meta)
}

fn write_checkpoint(
    path: &Path,
    tensors: &Tensors,
    meta: std::collections::HashMap<String, String>,
) {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(n, s, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
            (n.clone(), view.unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// Trains `args` for one epoch into `root/name`; returns every checkpoint tensor's shape.
fn checkpoint_shapes(root: &Path, name: &str, args: &[&str]) -> Vec<(String, Vec<usize>)> {
    let out = root.join(name);
    let mut all = vec!["train", "--quiet", "--out", out.to_str().unwrap()];
    all.extend_from_slice(&["--epochs", "1", "--train-limit", "100"]);
    all.extend_from_slice(args);
    let o = rbp(&all);
    assert!(o.status.success(), "{}", text(&o));
    let (tensors, meta) = read_checkpoint(&out.join(rbprop::run::CHECKPOINT));
    assert_eq!(meta["format"], "rbp-checkpoint-3");
    tensors.into_iter().map(|(n, s, _)| (n, s)).collect()
}

/// The expected shapes: `layers.{l}.weight|bias` (and `momentum.` alike when `momentum`), then
/// the channel's tensors, in name order.
fn expect(
    layers: &[(&[usize], usize)],
    momentum: bool,
    channel: &[(&str, &[usize])],
) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = channel
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    let prefixes: &[&str] = if momentum {
        &["layers", "momentum"]
    } else {
        &["layers"]
    };
    for p in prefixes {
        for (l, (w, b)) in layers.iter().enumerate() {
            out.push((format!("{p}.{l}.weight"), w.to_vec()));
            out.push((format!("{p}.{l}.bias"), vec![*b]));
        }
    }
    out.sort();
    out
}

#[test]
fn checkpoints_keep_every_tensors_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dense: [(&[usize], usize); 3] = [(&[20, 784], 20), (&[12, 20], 12), (&[10, 12], 10)];
    // RBP between dense layers: C is [receiving N_i, sending N_{i+1}]; momentum like its parameter
    assert_eq!(
        checkpoint_shapes(
            root,
            "rbp",
            &["--channel", "rbp", "--hidden", "20,12", "--momentum", "0.9"]
        ),
        expect(
            &dense,
            true,
            &[("feedback.0.0", &[20, 12]), ("feedback.1.0", &[12, 10])]
        )
    );
    // SRBP: every C straight from the top layer, [N_i, N_L]
    assert_eq!(
        checkpoint_shapes(root, "srbp", &["--channel", "srbp", "--hidden", "20,12"]),
        expect(
            &dense,
            false,
            &[("feedback.0.0", &[20, 10]), ("feedback.1.0", &[12, 10])]
        )
    );
    // frSF: |B0| is held in W_{i+1}'s orientation, stored transposed as [receiving, sending]
    assert_eq!(
        checkpoint_shapes(root, "frsf", &["--channel", "frsf", "--hidden", "20,12"]),
        expect(
            &dense,
            false,
            &[
                ("feedback.0.0.magnitude", &[20, 12]),
                ("feedback.1.0.magnitude", &[12, 10])
            ]
        )
    );
    // conv RBP (4×28×28 → pool → 4×14×14 → 6×14×14 → pool → 6×7×7 = 294 → 8 → 10): random
    // weights in a conv W's place keep its kernel shape, in a dense W's place (after pooling)
    // they are [n_in, n_out] of that layer; a dense C between unpooled layers is [N_i, N_k]
    let arch = "conv4k3-pool2-conv6k3-pool2-fc8";
    let conv: [(&[usize], usize); 4] = [
        (&[4, 1, 3, 3], 4),
        (&[6, 4, 3, 3], 6),
        (&[8, 294], 8),
        (&[10, 8], 10),
    ];
    assert_eq!(
        checkpoint_shapes(
            root,
            "conv",
            &["--channel", "rbp", "--arch", arch, "--momentum", "0.5"]
        ),
        expect(
            &conv,
            true,
            &[
                ("feedback.0.0", &[6, 4, 3, 3]),
                ("feedback.1.0", &[294, 8]),
                ("feedback.2.0", &[8, 10])
            ]
        )
    );
}

/// Trains `args` to 2 epochs whole, and to 1 then (after `between` on its checkpoint) to 2;
/// both must write the same bytes. Returns the output of the resuming command.
fn resumes_identically(args: &[&str], between: impl Fn(&Path)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    let train = |out: &Path, epochs: &str| {
        let mut all = vec!["train", "--out", out.to_str().unwrap(), "--epochs", epochs];
        all.extend_from_slice(&["--train-limit", "300"]);
        all.extend_from_slice(args);
        let o = rbp(&all);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        text(&o)
    };
    train(&whole, "2");
    train(&split, "1");
    between(&split.join(rbprop::run::CHECKPOINT));
    let resumed = train(&split, "2");
    assert!(resumed.contains("resuming after epoch 1"), "{resumed}");
    use super::determinism::{results, tensors};
    assert_eq!(results(&whole), results(&split), "{args:?}");
    assert!(
        tensors(&whole) == tensors(&split),
        "{args:?}: other weights"
    );
    resumed
}

#[test]
fn transposed_and_kernel_shaped_feedback_tensors_resume_to_the_same_bytes() {
    resumes_identically(
        &[
            "--channel",
            "frsf",
            "--hidden",
            "20,12",
            "--momentum",
            "0.5",
        ],
        |_| {},
    );
    let arch = "conv4k3-pool2-conv6k3-pool2-fc8";
    resumes_identically(&["--channel", "rbp", "--arch", arch], |_| {});
}

/// SHA-256 over tensors (name, shape, values) and counters, as checkpoints store it.
fn checksum(all: &Tensors, meta: &std::collections::HashMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, shape, values) in all {
        h.update(name.as_bytes());
        h.update([0]);
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    h.update(
        format!(
            "epoch={}\nstep={}\nnoise={}\nsettings={}\n",
            meta["epoch"], meta["step"], meta["noise_position"], meta["settings_sha256"]
        )
        .as_bytes(),
    );
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites a version-3 checkpoint of a dense frSF net in the layout of version 2: channel
/// tensors flat in memory order (|B0| in W's orientation, N_{i+1} × N_i), the checksum over that
/// layout and in its tensor order (layers, momentum, channel).
fn downgrade_to_version_2(path: &Path) {
    let (tensors, mut meta) = read_checkpoint(path);
    let mut v2: Tensors = tensors
        .into_iter()
        .map(|(n, s, v)| {
            if n.ends_with(".magnitude") {
                // stored [receiving, sending]: back to [sending, receiving], then flat
                let (r, c) = (s[0], s[1]);
                let mut w = vec![0.0; v.len()];
                for i in 0..r {
                    for j in 0..c {
                        w[j * r + i] = v[i * c + j];
                    }
                }
                (n, vec![r * c], w)
            } else {
                (n, s, v)
            }
        })
        .collect();
    let rank = |n: &str| {
        let group = ["layers", "momentum", "feedback"]
            .iter()
            .position(|p| n.starts_with(p))
            .unwrap();
        let index: Vec<usize> = n.split('.').filter_map(|x| x.parse().ok()).collect();
        (group, index, !n.ends_with("weight"))
    };
    v2.sort_by_key(|(n, _, _)| rank(n));
    meta.insert("format".into(), "rbp-checkpoint-2".into());
    let sum = checksum(&v2, &meta);
    meta.insert("sha256".into(), sum);
    write_checkpoint(path, &v2, meta);
}

#[test]
fn a_version_2_checkpoint_resumes_to_the_same_bytes() {
    let args = [
        "--channel",
        "frsf",
        "--hidden",
        "20,12",
        "--momentum",
        "0.5",
    ];
    resumes_identically(&args, |ckpt| {
        downgrade_to_version_2(ckpt);
        let (tensors, meta) = read_checkpoint(ckpt);
        assert_eq!(meta["format"], "rbp-checkpoint-2");
        let shape = |name: &str| tensors.iter().find(|t| t.0 == name).unwrap().1.clone();
        assert_eq!(shape("feedback.0.0.magnitude"), vec![12 * 20]);
    });
    // a damaged version-2 checkpoint is still caught by its checksum
    let o = resume_after(|ckpt| {
        downgrade_to_version_2(ckpt);
        let (mut tensors, meta) = read_checkpoint(ckpt);
        tensors[0].2[0] += 1.0;
        write_checkpoint(ckpt, &tensors, meta);
    });
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("checksum"), "{}", text(&o));
}

#[test]
fn a_checkpoint_of_an_unknown_version_is_refused_naming_both_versions() {
    let o = resume_after(|ckpt| {
        let (tensors, mut meta) = read_checkpoint(ckpt);
        meta.insert("format".into(), "rbp-checkpoint-9".into());
        write_checkpoint(ckpt, &tensors, meta);
    });
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for needle in [
        "checkpoint.safetensors",
        "rbp-checkpoint-9",
        "rbp-checkpoint-3",
    ] {
        assert!(t.contains(needle), "lacks `{needle}`: {t}");
    }
}

/// Under an address-space limit (`ulimit -v`) a net that does not fit is refused with the
/// estimate and the limit named, before anything is allocated: not an abort.
#[test]
fn a_net_over_the_address_space_limit_is_refused_not_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let script = format!(
        "ulimit -v 4000000 && exec '{}' train --hidden 1000000 --epochs 1 --out '{}'",
        env!("CARGO_BIN_EXE_rbp"),
        tmp.path().join("run").display()
    );
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("ulimit -v") && t.contains("GiB"), "{t}");
}

/// A directory holding both CIFAR-10 batches and MNIST files is refused as ambiguous, naming one
/// file of each, instead of silently reading CIFAR-10.
#[test]
fn a_directory_with_two_datasets_is_ambiguous() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("data_batch_1.bin"), b"").unwrap();
    std::fs::write(tmp.path().join("train-images-idx3-ubyte.gz"), b"").unwrap();
    let err = rbprop::data::load_dir(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("ambiguous")
            && err.contains("train-images-idx3-ubyte.gz")
            && err.contains("CIFAR-10"),
        "{err}"
    );
    let o = rbp(&[
        "train",
        "--data",
        tmp.path().to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ambiguous"), "{}", text(&o));
}

/// A line break (or another control character) in a Slurm option would end its `#SBATCH` line
/// and put the rest into the script as a command: refused, naming the option.
#[test]
fn slurm_options_with_line_breaks_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let smoke = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/smoke/table1.toml"
    );
    let res = tmp.path().to_str().unwrap();
    for (flag, value) in [
        ("--partition", "gpu\nrm -rf ~"),
        ("--sbatch-arg", "--mem=4G\necho hi"),
        ("--time", "1:00:00\r"),
    ] {
        let o = rbp(&[
            "reproduce",
            smoke,
            "--results",
            res,
            "--slurm",
            "--dry-run",
            flag,
            value,
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {t}");
        assert!(
            t.contains(flag) && t.contains("control character"),
            "{flag}: {t}"
        );
        assert!(!t.contains("#SBATCH"), "{flag}: a script was printed: {t}");
    }
}

/// An error that quotes a huge input (a 2 MB key of an experiment file) prints a few hundred
/// characters of it, not megabytes.
#[test]
fn errors_quoting_huge_inputs_stay_small() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "k".repeat(2_000_000);
    let path = tmp.path().join("huge.toml");
    write(
        &path,
        &format!(
            "name = \"huge\"\ndataset = \"x\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1]\n[train]\n{key} = 1\n[[variant]]\nchannel = \"bp\"\n"
        ),
    );
    let o = rbp(&[
        "reproduce",
        path.to_str().unwrap(),
        "--results",
        tmp.path().to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{}", &t[..t.len().min(2000)]);
    assert!(t.len() < 5_000, "{} bytes of error", t.len());
    assert!(t.contains("more characters]"), "{t}");
}

/// Metrics copied in from another run (same settings but the seed) are refused on resume: the
/// checkpoint records the SHA-256 of the metrics it was saved with.
#[test]
fn metrics_copied_from_another_run_are_refused_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let base = [
        "train",
        "-q",
        "--hidden",
        "16",
        "--train-limit",
        "300",
        "--epochs",
        "1",
    ];
    for (dir, seed) in [(&a, "1"), (&b, "2")] {
        let mut args = base.to_vec();
        args.extend(["--seed", seed, "--out", dir.to_str().unwrap()]);
        let o = rbp(&args);
        assert!(o.status.success(), "{}", text(&o));
    }
    std::fs::copy(b.join("metrics.jsonl"), a.join("metrics.jsonl")).unwrap();
    let mut args = base.to_vec();
    args[7] = "2";
    args.extend(["--seed", "1", "--out", a.to_str().unwrap()]);
    let o = rbp(&args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("metrics.jsonl") && t.contains("another run"),
        "{t}"
    );
    // the run's own metrics resume as before
    let mut args = base.to_vec();
    args[7] = "2";
    args.extend(["--seed", "2", "--out", b.to_str().unwrap()]);
    let o = rbp(&args);
    assert!(o.status.success(), "{}", text(&o));
}

/// A kill after the last epoch's checkpoint but before its summary leaves metrics and
/// checkpoint at the end and `summary.json` one epoch behind: the next start has nothing to
/// train and brings the summary up to date (`ls` and `table` see a completed run).
#[test]
fn a_run_killed_before_its_last_summary_is_completed_on_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let args = |out: &Path, epochs: &'static str| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--out", out.to_str().unwrap(), "--quiet"]
            .map(String::from)
            .to_vec();
        a.extend(["--hidden", "8", "--train-limit", "200", "--epochs", epochs].map(String::from));
        a
    };
    for (out, epochs) in [(&whole, "2"), (&killed, "1")] {
        let o = rbp(&strs(&args(out, epochs)));
        assert!(o.status.success(), "{}", text(&o));
    }
    // what the 2-epoch run had written after its first epoch
    let summary_after_one = std::fs::read_to_string(killed.join("summary.json"))
        .unwrap()
        .replace("\"completed\"", "\"running\"");
    let a = args(&killed, "2");
    assert!(rbp(&strs(&a)).status.success());
    std::fs::write(killed.join("summary.json"), &summary_after_one).unwrap();
    let again = rbp(&strs(&a));
    assert!(again.status.success(), "{}", text(&again));
    use super::determinism::results;
    assert_eq!(results(&whole), results(&killed));
    // the same after an extension (1 → 2 epochs) killed before its summary
    std::fs::write(
        killed.join("summary.json"),
        summary_after_one.replace("\"running\"", "\"completed\""),
    )
    .unwrap();
    let again = rbp(&strs(&a));
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(results(&whole), results(&killed));
    let summary = std::fs::read_to_string(killed.join("summary.json")).unwrap();
    assert!(summary.contains("\"completed\""), "{summary}");
    assert!(summary.contains("\"epochs_completed\": 2"), "{summary}");
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}
