//! A deterministic mutation suite through the real binary: IDX and CIFAR files, run and experiment
//! configurations, checkpoints and `--arch` strings, each mutated by a seeded generator. Every case
//! must end in success or a clean error (exit status 0 or 2, no "panicked"), never a panic, an
//! abort, a signal or a hang (each case runs under a time limit). `RBP_FUZZ_CASES=N` runs N cases
//! per family instead of the default.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds one case may take (a generous bound: the largest valid case trains for well under a
/// second on its own).
const LIMIT: Duration = Duration::from_secs(60);

fn cases(default: usize) -> usize {
    std::env::var("RBP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One invocation of the binary.
struct Case {
    label: String,
    args: Vec<String>,
}

/// Runs `rbp args`; returns a description of the failure, if any.
fn check(case: &Case) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(&case.args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run rbp");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("{}: no answer within {LIMIT:?} (hang)", case.label));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let ok_code = matches!(status.code(), Some(0) | Some(2));
    if !ok_code || stderr.contains("panicked") {
        return Some(format!(
            "{}: status {status}\n  args: {:?}\n  stderr: {}",
            case.label,
            case.args,
            stderr.lines().take(6).collect::<Vec<_>>().join("\n  ")
        ));
    }
    // deprecation warnings may come first
    let message = stderr
        .lines()
        .find(|l| !l.starts_with("warning: "))
        .unwrap_or("");
    if status.code() == Some(2) && !message.starts_with("error: ") {
        return Some(format!(
            "{}: failed without an error message: {stderr}",
            case.label
        ));
    }
    None
}

/// Runs every case on two threads; fails listing every bad case.
fn run_all(cases: Vec<Case>) {
    let n = cases.len();
    let queue = Mutex::new(cases.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some(c) = queue.lock().unwrap().next() else {
                        break;
                    };
                    if let Some(f) = check(&c) {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Byte-level mutations: overwrite, truncate, insert, duplicate a span, zero a span.
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..6) {
            0 | 1 => bytes[at] = rng.random(),
            2 => bytes.truncate(at),
            3 => bytes.insert(at, rng.random()),
            4 => {
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                let span = bytes[at..end].to_vec();
                bytes.splice(at..at, span);
            }
            _ => {
                let end = (at + rng.random_range(1..16)).min(bytes.len());
                bytes[at..end].fill(if rng.random_bool(0.5) { 0 } else { 0xff });
            }
        }
    }
}

/// A number token for a spec: mostly small, sometimes zero or far beyond any limit.
fn number(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..12) {
        0 => "0".into(),
        1 => "99999999999".into(),
        2 => "18446744073709551615".into(),
        3 => "18446744073709551616".into(),
        4 => String::new(),
        5 => "-1".into(),
        _ => rng.random_range(1..=9).to_string(),
    }
}

#[test]
fn arch_strings_never_panic_or_hang() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();
    for i in 0..cases(80) {
        let mut tokens = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            let t = match rng.random_range(0..3) {
                0 => format!("fc{}", number(&mut rng)),
                1 => {
                    let mut t = format!("conv{}k{}", number(&mut rng), number(&mut rng));
                    for _ in 0..rng.random_range(0..3) {
                        t += &match rng.random_range(0..4) {
                            0 => format!("s{}", number(&mut rng)),
                            1 => format!("p{}", number(&mut rng)),
                            2 => "same".into(),
                            _ => "valid".into(),
                        };
                    }
                    t
                }
                _ => {
                    let mut t = format!("pool{}", number(&mut rng));
                    if rng.random_bool(0.5) {
                        t += &format!("s{}", number(&mut rng));
                    }
                    if rng.random_bool(0.3) {
                        t += &format!("p{}", number(&mut rng));
                    }
                    t
                }
            };
            tokens.push(t);
        }
        let mut spec = tokens.join("-").into_bytes();
        if rng.random_bool(0.2) {
            mutate_bytes(&mut spec, &mut rng);
        }
        let spec = String::from_utf8_lossy(&spec).replace('\0', "");
        out.push(Case {
            label: format!("arch case {i} `{spec}`"),
            args: args(&[
                "train",
                "--arch",
                &spec,
                "--epochs",
                "1",
                "--train-limit",
                "20",
                "--batch",
                "20",
                "--quiet",
            ]),
        });
    }
    run_all(out);
}

use super::data::{gz, idx};

#[test]
fn idx_files_never_panic_or_hang() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, t) = (30usize, 10usize);
    let img: Vec<u8> = (0..n * 36).map(|i| (i * 37 % 256) as u8).collect();
    let lab: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let good = [
        idx(3, &[n as u32, 6, 6], &img),
        idx(1, &[n as u32], &lab),
        idx(3, &[t as u32, 6, 6], &img[..t * 36]),
        idx(1, &[t as u32], &lab[..t]),
    ];
    let mut out = Vec::new();
    for i in 0..cases(80) {
        let dir = root.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let gzip = rng.random_bool(0.4);
        let which = rng.random_range(0..4);
        for (k, (name, bytes)) in rbprop::data::MNIST_FILES.iter().zip(&good).enumerate() {
            let mut b = bytes.clone();
            if k == which {
                if rng.random_bool(0.3) {
                    // a header dimension replaced by an extreme one
                    let at = 4 + 4 * rng.random_range(0..if k % 2 == 0 { 3 } else { 1 });
                    let v: u32 = [0, 1, 5, 7, u32::MAX, 1 << 31][rng.random_range(0..6)];
                    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
                } else {
                    mutate_bytes(&mut b, &mut rng);
                }
            }
            let (name, b) = if gzip {
                let mut z = gz(&b);
                if k == which && rng.random_bool(0.3) {
                    mutate_bytes(&mut z, &mut rng);
                }
                (format!("{name}.gz"), z)
            } else {
                (name.to_string(), b)
            };
            std::fs::write(dir.join(name), b).unwrap();
        }
        out.push(Case {
            label: format!("idx case {i} (file {which}, gzip {gzip})"),
            args: args(&[
                "train",
                "--data",
                dir.to_str().unwrap(),
                "--hidden",
                "4",
                "--epochs",
                "1",
                "--quiet",
            ]),
        });
    }
    run_all(out);
}

#[test]
fn cifar_files_never_panic_or_hang() {
    let root = tempfile::tempdir().unwrap();
    let template = root.path().join("template");
    std::fs::create_dir_all(&template).unwrap();
    super::cifar::generate(&template, 4, 6, 3);
    let names: Vec<&str> = rbprop::data::cifar::TRAIN_FILES
        .iter()
        .copied()
        .chain([rbprop::data::cifar::TEST_FILE])
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut out = Vec::new();
    for i in 0..cases(40) {
        let dir = root.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let which = rng.random_range(0..names.len());
        for (k, name) in names.iter().enumerate() {
            let mut b = std::fs::read(template.join(name)).unwrap();
            if k == which {
                match rng.random_range(0..4) {
                    0 => b[3073 * rng.random_range(0..4)] = rng.random_range(10..=255),
                    1 => {
                        let keep = rng.random_range(0..b.len());
                        b.truncate(keep)
                    }
                    2 => b.clear(),
                    _ => mutate_bytes(&mut b, &mut rng),
                }
            }
            if k != which || rng.random_bool(0.9) {
                std::fs::write(dir.join(name), b).unwrap();
            }
        }
        out.push(Case {
            label: format!("cifar case {i} ({})", names[which]),
            args: args(&[
                "train",
                "--data",
                dir.to_str().unwrap(),
                "--arch",
                "conv2k3-pool2-fc4",
                "--batch",
                "4",
                "--epochs",
                "1",
                "--quiet",
            ]),
        });
    }
    run_all(out);
}

/// Values that break types, ranges and the TOML syntax.
const VALUES: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e300",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "99999999999",
    "18446744073709551616",
    "[0]",
    "\"sparse:0\"",
    "\"../x\"",
    "",
    "{ bits = 0 }",
];

/// Line-level mutations of TOML: a value replaced, a line deleted or doubled, a key misspelt,
/// or raw bytes changed.
fn mutate_toml(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..3) {
        if lines.is_empty() {
            break;
        }
        let at = rng.random_range(0..lines.len());
        match rng.random_range(0..6) {
            0..=2 => {
                if let Some((k, _)) = lines[at].split_once('=') {
                    lines[at] = format!("{k}= {}", VALUES[rng.random_range(0..VALUES.len())]);
                }
            }
            3 => {
                lines.remove(at);
            }
            4 => {
                let l = lines[at].clone();
                lines.insert(at, l);
            }
            _ => {
                let mut b = lines[at].clone().into_bytes();
                mutate_bytes(&mut b, rng);
                lines[at] = String::from_utf8_lossy(&b).into_owned();
            }
        }
    }
    lines.join("\n") + "\n"
}

const RUN_CONFIG: &str = r#"data = "embedded:fashion-mnist-subset"
channel = "rbp"
hidden = [4, 4]
activation = "tanh"
epochs = 1
batch = 50
lr = 0.1
decay = 0.000001
momentum = 0.0
weight_decay = 0.0
seed = 1
threads = 1
translate = 0
flip = false
diagnostics = false
train_limit = 100

[channel_options]
feedback = "normal"
average = 1
dropout = 0.0
quantize_signal = { bits = 8, alpha = 1.0 }
"#;

#[test]
fn run_configs_never_panic_or_hang() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut out = Vec::new();
    for i in 0..cases(60) {
        let file = root.path().join(format!("config{i}.toml"));
        std::fs::write(&file, mutate_toml(RUN_CONFIG, &mut rng)).unwrap();
        out.push(Case {
            label: format!("config case {i} ({})", file.display()),
            args: args(&["train", "--config", file.to_str().unwrap(), "--quiet"]),
        });
    }
    run_all(out);
}

const EXPERIMENT: &str = r#"name = "fuzz"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1]

[train]
epochs = 1
train_limit = 100
hidden = [4]

[[variant]]
row = "baseline"
column = "RBP"
channel = "rbp"

[[variant]]
row = "sparse n=2"
column = "SRBP"
channel = "srbp"
feedback = "sparse:2"
quantize_signal = "2:auto"
"#;

#[test]
fn experiment_files_never_panic_or_hang() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut out = Vec::new();
    for i in 0..cases(40) {
        let file = root.path().join(format!("exp{i}.toml"));
        std::fs::write(&file, mutate_toml(EXPERIMENT, &mut rng)).unwrap();
        let results = root.path().join(format!("results{i}"));
        out.push(Case {
            label: format!("experiment case {i} ({})", file.display()),
            args: args(&[
                "reproduce",
                file.to_str().unwrap(),
                "--results",
                results.to_str().unwrap(),
                "--jobs",
                "1",
            ]),
        });
    }
    run_all(out);
}

/// `rbp train` of the small run the checkpoint cases resume, into `dir`, for `epochs` epochs.
fn small_run(dir: &Path, epochs: &str) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    args(&[
        "train",
        "--out",
        dir,
        "--channel",
        "rbp",
        "--hidden",
        "6,6",
        "--train-limit",
        "100",
        "--batch",
        "50",
        "--epochs",
        epochs,
        "--quiet",
    ])
}

/// A finished one-epoch run to copy.
fn trained_run(root: &Path) -> PathBuf {
    let dir = root.join("template");
    let a = small_run(&dir, "1");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = super::cli::rbp(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

#[test]
fn checkpoints_never_panic_or_hang() {
    let root = tempfile::tempdir().unwrap();
    let template = trained_run(root.path());
    let ckpt = std::fs::read(template.join(rbprop::run::CHECKPOINT)).unwrap();
    let header = 8 + u64::from_le_bytes(ckpt[..8].try_into().unwrap()) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut out = Vec::new();
    for i in 0..cases(60) {
        let dir = root.path().join(format!("run{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.toml", "metrics.jsonl", "summary.json"] {
            std::fs::copy(template.join(f), dir.join(f)).unwrap();
        }
        let mut b = ckpt.clone();
        match rng.random_range(0..5) {
            // the JSON header: a byte changed, or a digit of a number
            0 | 1 => {
                let at = rng.random_range(8..header);
                b[at] = if b[at].is_ascii_digit() {
                    b"0123456789"[rng.random_range(0..10)]
                } else {
                    rng.random()
                };
            }
            // the header length
            2 => {
                let v: u64 = [0, 1, header as u64, u64::MAX, 1 << 40][rng.random_range(0..5)];
                b[..8].copy_from_slice(&v.to_le_bytes());
            }
            // the tensor bytes
            3 => {
                let at = rng.random_range(header..b.len());
                b[at] ^= 1 << rng.random_range(0..8);
            }
            _ => mutate_bytes(&mut b, &mut rng),
        }
        std::fs::write(dir.join(rbprop::run::CHECKPOINT), b).unwrap();
        out.push(Case {
            label: format!("checkpoint case {i}"),
            args: small_run(&dir, "2"),
        });
    }
    run_all(out);
}

/// Every run directory under `root` (holding a `config.toml`), relative to `root`.
fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n == "config.toml") {
                out.push(d.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `rbp reproduce` of a grid, solo and as ensembles, killed (SIGKILL) at seeded random moments
/// and started again until it finishes: every run ends with the metrics and checkpoint tensors of
/// an uninterrupted grid, and no temporary file of a killed writer is left in any run directory.
#[test]
fn reproduce_killed_at_random_resumes_to_the_same_results() {
    use super::determinism::{results, tensors};
    let smoke = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/smoke/table1.toml"
    );
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args([
            "reproduce",
            smoke,
            "--results",
            whole.to_str().unwrap(),
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut rng = ChaCha8Rng::seed_from_u64(28);
    for (k, extra) in [vec!["--jobs", "2"], vec!["--ensemble", "8", "--jobs", "1"]]
        .into_iter()
        .enumerate()
    {
        let killed = tmp.path().join(format!("killed-{k}"));
        let mut kills = 0;
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "{extra:?}: no end"
            );
            let mut child = Command::new(env!("CARGO_BIN_EXE_rbp"))
                .args(["reproduce", smoke, "--results", killed.to_str().unwrap()])
                .args(&extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let wait = Duration::from_millis(rng.random_range(10..250));
            let until = Instant::now() + wait;
            let mut done = None;
            while Instant::now() < until {
                if let Some(s) = child.try_wait().unwrap() {
                    done = Some(s);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            match done {
                Some(s) => {
                    assert!(s.success(), "{extra:?}: {s}");
                    break;
                }
                None if kills < 6 => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                }
                None => {
                    assert!(child.wait().unwrap().success(), "{extra:?}");
                    break;
                }
            }
        }
        let runs = run_dirs(&whole);
        assert_eq!(runs.len(), 14);
        assert_eq!(run_dirs(&killed), runs, "{extra:?}");
        for r in &runs {
            let (a, b) = (whole.join(r), killed.join(r));
            assert_eq!(results(&a), results(&b), "{extra:?} {}", r.display());
            assert!(tensors(&a) == tensors(&b), "{extra:?} {}", r.display());
            let stale: Vec<_> = std::fs::read_dir(&b)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(stale.is_empty(), "{extra:?} {}: {stale:?}", r.display());
        }
    }
}

/// Sweeps of random sizes — a few lists whose product of lengths is anything from one cell to
/// far beyond what an experiment may hold — through `--status` and `--print-config`: each ends in
/// time, with the grid's count or the refusal naming it, never an abort, a panic or a hang.
#[test]
fn sweeps_of_any_size_end_in_time() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    let mut out = Vec::new();
    for i in 0..cases(16) {
        // 1 to 4 swept settings, each list 1 to 10^4 long (up to 10^16 cells)
        let mut lists = Vec::new();
        let mut cells: f64 = 1.0;
        for key in ["lr", "batch", "seed_note", "decay"]
            .iter()
            .take(rng.random_range(1..=4))
        {
            let n: usize = 10f64.powf(rng.random_range(0.0..4.0)) as usize + 1;
            cells *= n as f64;
            let values: Vec<String> = match *key {
                "lr" => (1..=n).map(|k| format!("{}", k as f64 * 1e-4)).collect(),
                "batch" => (1..=n).map(|k| k.to_string()).collect(),
                "decay" => (1..=n).map(|k| format!("{}", k as f64 * 1e-7)).collect(),
                // a channel list stands in for a third numeric axis
                _ => ["bp", "rbp", "srbp"]
                    .iter()
                    .take(n.min(3))
                    .map(|c| format!("\"{c}\""))
                    .collect(),
            };
            let key = if *key == "seed_note" { "channel" } else { key };
            lists.push(format!("{key} = [{}]", values.join(", ")));
        }
        // grids that expand but take seconds (2·10^5 to 10^6 runs) are left to the bench
        if cells > 1e5 && cells * 2.0 <= 1e6 {
            continue;
        }
        let file = root.path().join(format!("sweep{i}.toml"));
        std::fs::write(
            &file,
            format!(
                "name = \"sweep{i}\"\ndataset = \"x\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1, 2]\n[train]\nepochs = 1\n[[variant]]\n{}\n",
                lists.join("\n")
            ),
        )
        .unwrap();
        let results = root.path().join(format!("results{i}"));
        // printing every config of a large grid is slow by its size, not by the expansion:
        // print them only for small grids
        let print = if cells <= 2e4 {
            "--print-config"
        } else {
            "--status"
        };
        out.push(Case {
            label: format!("sweep case {i}, {cells:e} cells ({})", file.display()),
            args: args(&[
                "reproduce",
                file.to_str().unwrap(),
                "--results",
                results.to_str().unwrap(),
                print,
            ]),
        });
    }
    run_all(out);
}
