//! Ensembles on the CPU: the nine channels of the paper's basic grid (BP, RBP, SRBP, their no-f'
//! versions, SBP, SBP no-f', top-only) on the MNIST net (784-100-100-100-100-10, tanh, batch
//! 100), one seed, stepping on the same minibatches — alone one after another, and as one
//! ensemble (layer 0's products shared), on 1 and 2 threads; then layer 0's products alone,
//! nine solo products against one wide one.
//!
//!     cargo bench --bench ensemble

use rbprop::config::TrainConfig;
use rbprop::data;
use rbprop::kernels::matmul::{Mat, gemm};
use rbprop::run::build_trainer;
use rbprop::train::{Ensemble, Trainer};
use std::time::Instant;

const BATCH: usize = 100;
const STEPS: usize = 300;
const ROUNDS: usize = 5;
const CHANNELS: [&str; 9] = [
    "bp", "rbp", "srbp", "bp-nof", "rbp-nof", "srbp-nof", "sbp", "sbp-nof", "top",
];

fn trainers() -> Vec<Trainer> {
    CHANNELS
        .iter()
        .map(|c| {
            let cfg = TrainConfig {
                channel: c.to_string(),
                ..TrainConfig::default()
            };
            build_trainer(&cfg, (1, 28, 28), 10).unwrap()
        })
        .collect()
}

/// Median seconds of `ROUNDS` rounds of `f`.
fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let c = Instant::now();
            f();
            c.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[ROUNDS / 2]
}

fn main() {
    let split = data::embedded();
    let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..10)
        .map(|b| {
            let r = b * BATCH..(b + 1) * BATCH;
            (
                split.train.images[r.start * 784..r.end * 784].to_vec(),
                split.train.labels[r].to_vec(),
            )
        })
        .collect();
    println!("9 members (the basic grid's channels), {STEPS} steps, median of {ROUNDS} rounds");
    println!("{:<44} {:>14} {:>16}", "", "µs per step", "member-steps/s");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut solo = trainers();
            let s = median(|| {
                for i in 0..STEPS {
                    let (x, y) = &batches[i % batches.len()];
                    for t in solo.iter_mut() {
                        std::hint::black_box(t.step(x, y));
                    }
                }
            }) / STEPS as f64;
            let mut members = trainers();
            let mut ens = Ensemble::new();
            let e = median(|| {
                for i in 0..STEPS {
                    let (x, y) = &batches[i % batches.len()];
                    let mut m: Vec<&mut Trainer> = members.iter_mut().collect();
                    std::hint::black_box(ens.step(&mut m, x, y));
                }
            }) / STEPS as f64;
            for (name, sec) in [
                ("9 solo steps, one after another", s),
                ("one ensemble step of 9", e),
            ] {
                println!(
                    "{:<44} {:>14.1} {:>16.0}",
                    format!("{name}, {threads} thread(s)"),
                    sec * 1e6,
                    9.0 / sec
                );
            }
        });
    }
    // layer 0's products alone, one thread
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let x = &batches[0].0;
        let ws: Vec<Vec<f32>> = trainers().iter().map(|t| t.net.layers[0].w.clone()).collect();
        let wide: Vec<f32> = ws.concat();
        let mut out = vec![0.0; BATCH * 100];
        let solo = median(|| {
            for _ in 0..STEPS {
                for w in &ws {
                    gemm(1.0, Mat::new(x, BATCH, 784), Mat::t(w, 100, 784), 0.0, &mut out);
                }
            }
        }) / STEPS as f64;
        let mut wide_out = vec![0.0; BATCH * 900];
        let shared = median(|| {
            for _ in 0..STEPS {
                gemm(1.0, Mat::new(x, BATCH, 784), Mat::t(&wide, 900, 784), 0.0, &mut wide_out);
            }
        }) / STEPS as f64;
        let flop = 2.0 * 9.0 * (BATCH * 784 * 100) as f64;
        println!("layer 0 forward, 1 thread: 9 solo products {:.1} µs ({:.1} GFLOP/s), one wide {:.1} µs ({:.1} GFLOP/s)",
            solo * 1e6, flop / solo / 1e9, shared * 1e6, flop / shared / 1e9);
        let delta = vec![0.01f32; BATCH * 900];
        let mut g = vec![0.0; 100 * 784];
        let solo = median(|| {
            for _ in 0..STEPS {
                for m in 0..9 {
                    gemm(-0.001, Mat::t(&delta[..BATCH * 100], BATCH, 100), Mat::new(x, BATCH, 784), 1.0, &mut g);
                    std::hint::black_box(m);
                }
            }
        }) / STEPS as f64;
        let mut wg = vec![0.0; 900 * 784];
        let shared = median(|| {
            for _ in 0..STEPS {
                gemm(1.0, Mat::t(&delta, BATCH, 900), Mat::new(x, BATCH, 784), 0.0, &mut wg);
            }
        }) / STEPS as f64;
        println!("layer 0 weight product, 1 thread: 9 solo {:.1} µs ({:.1} GFLOP/s), one wide {:.1} µs ({:.1} GFLOP/s)",
            solo * 1e6, flop / solo / 1e9, shared * 1e6, flop / shared / 1e9);
    });
}
