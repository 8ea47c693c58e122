//! One training step of the paper's MNIST net (784-100-100-100-100-10, tanh, batch 100) on the
//! GPU backend, for BP, RBP and SRBP, with the CPU backend on one thread beside it. The step
//! includes uploading the minibatch and reading back its loss (one sync per step).
//!
//!     cargo bench -p rbprop-gpu --bench gpu_step
//!     cargo bench -p rbprop-gpu --bench gpu_step -- srbp    # channels whose name contains "srbp"
//!     RBP_ADAPTER=NAME cargo bench -p rbprop-gpu --bench gpu_step   # another adapter
//!
//! Without an adapter it says `no GPU adapter` and exits successfully.

use rbprop::backend::{Backend, Cpu};
use rbprop::config::TrainConfig;
use rbprop::data;
use rbprop::run::build_trainer;
use rbprop::train::Trainer;
use rbprop_gpu::Gpu;
use std::time::Instant;

const BATCH: usize = 100;
const WARMUP: usize = 5;
/// Each round runs steps for at least this long (and at least `MIN_STEPS` steps).
const ROUND_SECONDS: f64 = 1.0;
const MIN_STEPS: usize = 3;
const ROUNDS: usize = 5;

/// Median µs per step over `ROUNDS` rounds.
fn time<B: Backend>(t: &mut Trainer<B>, batches: &[(Vec<f32>, Vec<u8>)]) -> f64 {
    for s in 0..WARMUP {
        let (x, y) = &batches[s % batches.len()];
        t.step(x, y);
    }
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let clock = Instant::now();
            let mut steps = 0;
            while steps < MIN_STEPS || clock.elapsed().as_secs_f64() < ROUND_SECONDS {
                let (x, y) = &batches[steps % batches.len()];
                t.step(x, y);
                steps += 1;
            }
            clock.elapsed().as_secs_f64() * 1e6 / steps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let adapter = std::env::var("RBP_ADAPTER").ok();
    let info = match Gpu::init(adapter.as_deref()) {
        Ok(info) => info,
        Err(e) => {
            println!("no GPU adapter: {e}");
            return;
        }
    };
    println!(
        "adapter: {} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    );
    let split = data::embedded();
    let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..50)
        .map(|b| {
            let r = b * BATCH..(b + 1) * BATCH;
            (
                split.train.images[r.start * 784..r.end * 784].to_vec(),
                split.train.labels[r].to_vec(),
            )
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    println!(
        "{:<8} {:>12} {:>14} {:>12} {:>14}",
        "channel", "gpu µs/step", "gpu samples/s", "cpu µs/step", "cpu samples/s"
    );
    for channel in ["bp", "rbp", "srbp"] {
        if !filter.is_empty() && !filter.iter().any(|f| channel.contains(f.as_str())) {
            continue;
        }
        let cfg = TrainConfig {
            channel: channel.into(),
            ..TrainConfig::default()
        };
        let host = build_trainer(&cfg, (1, 28, 28), 10).unwrap();
        let mut gpu: Trainer<Gpu> = host.to_backend();
        let g = time(&mut gpu, &batches);
        let mut cpu: Trainer<Cpu> = host.to_backend();
        let c = pool.install(|| time(&mut cpu, &batches));
        println!(
            "{channel:<8} {g:>12.0} {:>14.0} {c:>12.0} {:>14.0}",
            BATCH as f64 * 1e6 / g,
            BATCH as f64 * 1e6 / c
        );
    }
}
