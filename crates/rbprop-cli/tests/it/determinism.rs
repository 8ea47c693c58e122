//! Numbers that do not move: the metrics a run writes read back exactly, a resumed or extended run
//! writes the same bytes as an uninterrupted one, and no result depends on the thread count or on
//! how many runs of a grid run at a time.

use super::cli::rbp;
use rbprop::kernels::matmul::{self, Mat, gemm};
use rbprop::run::{EpochMetrics, read_metrics};
use std::path::Path;
use std::process::Output;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `text` with the value of every `"seconds":` (the one timing field) replaced by 0.
pub fn mask_seconds(text: &str) -> String {
    const KEY: &str = "\"seconds\":";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = rest[at + KEY.len()..].trim_start_matches(|c: char| {
            c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | ' ')
        });
        out.push('0');
    }
    out.push_str(rest);
    out
}

/// A run directory's `metrics.jsonl` and `summary.json`, timings masked.
pub fn results(dir: &Path) -> (String, String) {
    let read = |f: &str| mask_seconds(&std::fs::read_to_string(dir.join(f)).unwrap());
    (read("metrics.jsonl"), read("summary.json"))
}

/// Every tensor of a checkpoint, by name, as raw bytes.
pub fn tensors(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    all.sort();
    all
}

fn train(out: &Path, args: &[&str]) {
    let mut all = vec!["train", "-q", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = rbp(&all);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
}

#[test]
fn seconds_are_masked_and_nothing_else() {
    assert_eq!(
        mask_seconds(r#"{"lr":0.1,"seconds":1.25e-3,"x":2}{"seconds":17}"#),
        r#"{"lr":0.1,"seconds":0,"x":2}{"seconds":0}"#
    );
}

#[test]
fn metrics_read_back_exactly() {
    // 1.7645422097335781 is read back as 1.764542209733578 by a parser that is not exactly
    // rounded; so are about one value in nine of the pseudo-random ones
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64 * 3.0
    };
    let mut text = String::new();
    for epoch in 1..=500 {
        let m = EpochMetrics {
            epoch,
            train_loss: if epoch == 1 {
                1.7645422097335781
            } else {
                next()
            },
            train_acc: next() / 3.0,
            test_loss: next(),
            test_acc: next() / 3.0,
            lr: next() / 10.0,
            steps: 100 * epoch as u64,
            seconds: next(),
            layers: None,
        };
        text.push_str(&serde_json::to_string(&m).unwrap());
        text.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    std::fs::write(&path, &text).unwrap();
    let back: String = read_metrics(&path)
        .unwrap()
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    assert!(back == text, "metrics.jsonl does not read back exactly");
}

#[test]
fn extended_and_resumed_runs_write_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, extended) = (dir.path().join("whole"), dir.path().join("extended"));
    let args = [
        "--channel",
        "rbp",
        "--momentum",
        "0.5",
        "--train-limit",
        "3000",
    ];
    train(&whole, &[&args[..], &["--epochs", "3"]].concat());
    // one epoch, then the same run raised to two, then to three
    for e in ["1", "2", "3"] {
        train(&extended, &[&args[..], &["--epochs", e]].concat());
    }
    assert_eq!(results(&whole), results(&extended));
    assert_eq!(tensors(&whole), tensors(&extended));
    // a run killed after writing an epoch's metrics but before its checkpoint: it resumes from
    // the checkpoint before and writes that epoch again, to the same bytes
    let killed = dir.path().join("killed");
    train(&killed, &[&args[..], &["--epochs", "1"]].concat());
    let first = std::fs::read(killed.join("checkpoint.safetensors")).unwrap();
    train(&killed, &[&args[..], &["--epochs", "2"]].concat());
    std::fs::write(killed.join("checkpoint.safetensors"), first).unwrap();
    train(&killed, &[&args[..], &["--epochs", "3"]].concat());
    assert_eq!(results(&whole), results(&killed));
    assert_eq!(tensors(&whole), tensors(&killed));
}

/// Trains the same run with 1, 2 and 3 threads: metrics, summaries and every checkpoint tensor
/// must agree to the bit.
fn same_for_every_thread_count(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = ["1", "2", "3"]
        .iter()
        .map(|t| {
            let out = dir.path().join(format!("threads{t}"));
            train(&out, &[args, &["--epochs", "2", "--threads", t]].concat());
            (results(&out), tensors(&out))
        })
        .collect();
    for (t, r) in runs.iter().enumerate().skip(1) {
        assert!(
            r.0 == runs[0].0,
            "{args:?}: {} threads give other metrics than 1:\n{}\n{}",
            t + 1,
            r.0.0,
            runs[0].0.0
        );
        assert!(
            r.1 == runs[0].1,
            "{args:?}: {} threads give other weights than 1",
            t + 1
        );
    }
}

#[test]
fn the_dense_net_does_not_depend_on_the_thread_count() {
    // the default net, 784-100-100-100-100-10: its products are split across threads
    same_for_every_thread_count(&["--channel", "bp"]);
    same_for_every_thread_count(&["--channel", "arbp", "--momentum", "0.9", "--batch", "64"]);
}

#[test]
fn the_conv_net_does_not_depend_on_the_thread_count() {
    same_for_every_thread_count(&[
        "--arch",
        "conv8k5-pool2-fc32",
        "--train-limit",
        "600",
        "--momentum",
        "0.9",
    ]);
}

/// `op(X)` of shape `rows × cols`: the stored matrix, or the transpose of a stored `cols × rows`.
fn op(data: &[f32], rows: usize, cols: usize, t: bool) -> Mat<'_> {
    if t {
        Mat::t(data, cols, rows)
    } else {
        Mat::new(data, rows, cols)
    }
}

/// A deterministic matrix of `n` values in [−1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

#[test]
fn products_do_not_depend_on_the_thread_count() {
    // the shapes of the dense net's products (forward, signal, weight update of a batch of 100,
    // evaluation of 1000) and odd ones; α ≠ 1 with β ≠ 0 is where a split that cuts a kernel
    // tile changes the last bit (on AVX-512 machines, whose tiles are 16 rows high)
    let shapes = [
        (100, 784, 100, false, true),
        (100, 784, 100, true, false),
        (1000, 100, 784, false, true),
        (100, 100, 100, true, false),
        (200, 300, 50, false, false),
        (37, 1000, 300, false, false),
        (130, 129, 257, true, true),
    ];
    let cases = [
        (1.0, 0.0),
        (0.37, 1.0),
        (-0.0013, 0.9),
        (1.0, 1.0),
        (2.5, 0.0),
    ];
    for (s, &(m, n, k, ta, tb)) in shapes.iter().enumerate() {
        let a = values(m * k, 3 * s as u64 + 1);
        let b = values(k * n, 3 * s as u64 + 2);
        let c0 = values(m * n, 3 * s as u64 + 3);
        for &(alpha, beta) in &cases {
            let product = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut c = c0.clone();
                pool.install(|| gemm(alpha, op(&a, m, k, ta), op(&b, k, n, tb), beta, &mut c));
                c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            let one = product(1);
            for threads in 2..=5 {
                assert!(
                    product(threads) == one,
                    "{m}×{k}·{k}×{n}, α {alpha}, β {beta}: {threads} threads differ from 1"
                );
            }
        }
    }
}

#[test]
fn split_products_keep_the_kernel_tiles_whole() {
    // every matrixmultiply f32 kernel's tile height (8, or 16 with AVX-512) divides the alignment
    assert_eq!(matmul::ROW_ALIGN % 16, 0);
    for m in [1, 15, 16, 31, 32, 33, 100, 129, 784, 1000] {
        for (n, k) in [(784, 100), (100, 100), (10, 100), (100, 1000)] {
            for threads in 1..=7 {
                let blocks = matmul::row_blocks(m, n, k, threads);
                assert!(blocks.len() <= threads.max(1), "{m} {n} {k} {threads}");
                assert_eq!(blocks[0].start, 0);
                assert_eq!(blocks.last().unwrap().end, m);
                for w in blocks.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert_eq!(
                        w[1].start % matmul::ROW_ALIGN,
                        0,
                        "{m}×{n}×{k} on {threads} threads: {blocks:?}"
                    );
                }
            }
        }
    }
    // the dense net's weight update (100 × 784 from a batch of 100) is split on 2 threads, at 64
    assert_eq!(matmul::row_blocks(100, 784, 100, 2), [0..64, 64..100]);
}

#[test]
fn a_grid_does_not_depend_on_the_runs_at_a_time() {
    const SMOKE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/smoke/table1.toml"
    );
    let tmp = tempfile::tempdir().unwrap();
    let grid = |jobs: &str| {
        let res = tmp.path().join(format!("jobs{jobs}"));
        let o = rbp(&[
            "reproduce",
            SMOKE,
            "--results",
            res.to_str().unwrap(),
            "--jobs",
            jobs,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let root = res.join("smoke-table1");
        let mut runs: Vec<_> = rbprop::experiment::Experiment::load(Path::new(SMOKE))
            .unwrap()
            .runs()
            .unwrap()
            .into_iter()
            .map(|r| {
                let p = root.join(&r.id);
                (r.id, results(&p), tensors(&p))
            })
            .collect();
        runs.sort();
        runs
    };
    let (one, two) = (grid("1"), grid("2"));
    assert_eq!(one.len(), 14);
    for (a, b) in one.iter().zip(&two) {
        assert!(a == b, "{}: --jobs 1 and --jobs 2 differ", a.0);
    }
}
