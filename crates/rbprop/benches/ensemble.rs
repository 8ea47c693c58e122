//! Ensembles on the CPU against solo runs, on the paper's basic grid: its nine channels (BP,
//! RBP, SRBP, their no-f' versions, SBP, SBP no-f', top-only) on the MNIST net
//! (784-100-100-100-100-10, tanh, batch 100), two seeds, an epoch of 3,000 examples of the
//! embedded subset. Four ways to train the 18 runs, timed in alternating rounds (this machine's
//! speed drifts between minutes, so the ways are compared round by round):
//! - `solo, 2 jobs`: what `rbp reproduce --jobs 2` does today, two runs at a time, one thread each;
//! - `ensembles of 9, 2 jobs`: one ensemble per seed, both at once, one thread each;
//! - `ensemble of 9, 2 threads`: the ensembles one after the other, each on two threads;
//! - `solo, 1 thread` and `ensemble of 9, 1 thread`: the per-core cost.
//!
//! Then layer 0's products alone, nine solo products against one wide one (one thread).
//!
//!     cargo bench --bench ensemble

use rbprop::config::TrainConfig;
use rbprop::data::augment::Augment;
use rbprop::data::{self, Dataset};
use rbprop::kernels::matmul::{Mat, gemm};
use rbprop::run::build_trainer;
use rbprop::train::{Ensemble, Trainer};
use std::time::Instant;

const BATCH: usize = 100;
const NONE: Augment = Augment {
    translate: 0,
    flip: false,
};
const EXAMPLES: usize = 3000;
const ROUNDS: usize = 5;
const CHANNELS: [&str; 9] = [
    "bp", "rbp", "srbp", "bp-nof", "rbp-nof", "srbp-nof", "sbp", "sbp-nof", "top",
];

fn members(seed: u64) -> Vec<Trainer> {
    CHANNELS
        .iter()
        .map(|c| {
            let cfg = TrainConfig {
                channel: c.parse().unwrap(),
                seed,
                ..TrainConfig::default()
            };
            build_trainer(&cfg, (1, 28, 28), 10).unwrap()
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn solo_epochs(ts: &mut [Trainer], data: &Dataset, seed: u64, epoch: usize) {
    for t in ts {
        std::hint::black_box(t.epoch(data, BATCH, seed, epoch, NONE, |_| {}));
    }
}

fn ensemble_epoch(ens: &mut Ensemble, ts: &mut [Trainer], data: &Dataset, seed: u64, epoch: usize) {
    let mut m: Vec<&mut Trainer> = ts.iter_mut().collect();
    std::hint::black_box(ens.epoch(&mut m, data, BATCH, seed, epoch, NONE, |_, _| {
        std::ops::ControlFlow::Continue(())
    }));
}

fn main() {
    let mut data = data::embedded().train;
    data.truncate(EXAMPLES);
    let runs = 2.0 * CHANNELS.len() as f64;
    let ways = [
        "solo, 2 jobs (today's reproduce --jobs 2)",
        "ensembles of 9, 2 jobs, 1 thread each",
        "ensemble of 9, 2 threads, one at a time",
        "solo, 1 thread",
        "ensemble of 9, 1 thread",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    let (mut a, mut b) = (members(1), members(2));
    let (mut ea, mut eb) = (Ensemble::new(), Ensemble::new());
    let (p1, p1b, p2) = (pool(1), pool(1), pool(2));
    for round in 0..=ROUNDS {
        let epoch = round + 1;
        let mut timed = |way: usize, f: &mut dyn FnMut()| {
            let clock = Instant::now();
            f();
            if round > 0 {
                // round 0 warms up
                times[way].push(clock.elapsed().as_secs_f64());
            }
        };
        timed(0, &mut || {
            std::thread::scope(|s| {
                s.spawn(|| p1.install(|| solo_epochs(&mut a, &data, 1, epoch)));
                s.spawn(|| p1b.install(|| solo_epochs(&mut b, &data, 2, epoch)));
            })
        });
        timed(1, &mut || {
            std::thread::scope(|s| {
                s.spawn(|| p1.install(|| ensemble_epoch(&mut ea, &mut a, &data, 1, epoch)));
                s.spawn(|| p1b.install(|| ensemble_epoch(&mut eb, &mut b, &data, 2, epoch)));
            })
        });
        timed(2, &mut || {
            p2.install(|| {
                ensemble_epoch(&mut ea, &mut a, &data, 1, epoch);
                ensemble_epoch(&mut eb, &mut b, &data, 2, epoch);
            })
        });
        timed(3, &mut || {
            p1.install(|| {
                solo_epochs(&mut a, &data, 1, epoch);
                solo_epochs(&mut b, &data, 2, epoch);
            })
        });
        timed(4, &mut || {
            p1.install(|| {
                ensemble_epoch(&mut ea, &mut a, &data, 1, epoch);
                ensemble_epoch(&mut eb, &mut b, &data, 2, epoch);
            })
        });
    }
    println!(
        "18 runs (9 channels × 2 seeds), an epoch of {EXAMPLES} examples each, batch {BATCH}; median of {ROUNDS} alternating rounds"
    );
    println!(
        "{:<44} {:>10} {:>16} {:>12}",
        "", "s/round", "run-epochs/min", "vs today"
    );
    let median = |t: &Vec<f64>| {
        let mut t = t.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let today = median(&times[0]);
    for (way, t) in ways.iter().zip(&times) {
        let m = median(t);
        println!(
            "{way:<44} {m:>10.3} {:>16.0} {:>11.2}×   (min {:.3}, max {:.3})",
            runs * 60.0 / m,
            today / m,
            t.iter().copied().fold(f64::INFINITY, f64::min),
            t.iter().copied().fold(0.0, f64::max)
        );
    }
    // layer 0's products alone, one thread
    p1.install(|| {
        let x = &data.images[..BATCH * 784];
        let ws: Vec<Vec<f32>> = members(1)
            .iter()
            .map(|t| t.net.layers[0].w.clone())
            .collect();
        let wide: Vec<f32> = ws.concat();
        let reps = 200;
        let time = |f: &mut dyn FnMut()| {
            let mut t: Vec<f64> = (0..ROUNDS)
                .map(|_| {
                    let c = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    c.elapsed().as_secs_f64() / reps as f64
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[ROUNDS / 2]
        };
        let mut out = vec![0.0; BATCH * 100];
        let solo = time(&mut || {
            for w in &ws {
                gemm(1.0, Mat::new(x, BATCH, 784), Mat::t(w, 100, 784), 0.0, &mut out);
            }
        });
        let mut wide_out = vec![0.0; BATCH * 900];
        let shared = time(&mut || {
            gemm(1.0, Mat::new(x, BATCH, 784), Mat::t(&wide, 900, 784), 0.0, &mut wide_out);
        });
        let flop = 2.0 * 9.0 * (BATCH * 784 * 100) as f64;
        println!(
            "layer 0 forward, 1 thread: 9 solo products {:.1} µs ({:.1} GFLOP/s), one wide {:.1} µs ({:.1} GFLOP/s)",
            solo * 1e6,
            flop / solo / 1e9,
            shared * 1e6,
            flop / shared / 1e9
        );
        let delta = vec![0.01f32; BATCH * 900];
        let mut g = vec![0.0; 100 * 784];
        let solo = time(&mut || {
            for m in 0..9 {
                let d = &delta[m * BATCH * 100..(m + 1) * BATCH * 100];
                gemm(-0.001, Mat::t(d, BATCH, 100), Mat::new(x, BATCH, 784), 1.0, &mut g);
            }
        });
        let mut wg = vec![0.0; 900 * 784];
        let shared = time(&mut || {
            gemm(1.0, Mat::t(&delta, BATCH, 900), Mat::new(x, BATCH, 784), 0.0, &mut wg);
        });
        println!(
            "layer 0 weight product, 1 thread: 9 solo {:.1} µs ({:.1} GFLOP/s), one wide {:.1} µs ({:.1} GFLOP/s)",
            solo * 1e6,
            flop / solo / 1e9,
            shared * 1e6,
            flop / shared / 1e9
        );
    });
}
