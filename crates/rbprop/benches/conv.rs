//! Time per epoch of the paper's CIFAR-10 net (`--preset paper-cifar10`: 3 × (conv 5×5 + max-pool
//! 3×3/2), fc64, softmax; batch 128, momentum) for BP, RBP and SRBP, on synthetic data of the
//! right shape, with every thread of the machine (or `RBP_THREADS`).
//!
//!     cargo bench --bench conv            # bp, rbp, srbp
//!     cargo bench --bench conv -- srbp
//!
//! An epoch is 50,000 images = 391 steps of 128; we time `STEPS` steps after warm-up and scale.
//! FLOPs: 2 × multiply-adds of the forward pass, of every weight gradient and of the channel's
//! signal (`Channel::multiplications`).

use rbprop::config::TrainConfig;
use rbprop::run::build_trainer;
use std::time::Instant;

const BATCH: usize = 128;
const STEPS: usize = 40;
const EPOCH: usize = 50_000;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let threads = std::env::var("RBP_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    // synthetic CIFAR-shaped data: deterministic pseudo-random pixels and labels
    let x: Vec<f32> = (0..BATCH * 3072)
        .map(|i| (((i * 2_654_435_761usize) >> 7) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let y: Vec<u8> = (0..BATCH).map(|i| (i % 10) as u8).collect();
    println!("paper-cifar10 net, batch {BATCH}, {threads} thread(s); epoch = {EPOCH} images");
    println!(
        "{:<8} {:>10} {:>12} {:>12} {:>10} {:>9}",
        "channel", "ms/step", "images/s", "s/epoch", "GFLOP/s", "GF/image"
    );
    for channel in ["bp", "rbp", "srbp"] {
        if !filter.is_empty() && !filter.iter().any(|f| channel.contains(f.as_str())) {
            continue;
        }
        let cfg = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some("paper-cifar10".into()),
            lr: 0.01,
            momentum: 0.9,
            decay: 1e-5,
            batch: BATCH,
            ..TrainConfig::default()
        };
        let mut t = build_trainer(&cfg, (3, 32, 32), 10).unwrap();
        let sizes_macs: usize = t.net.layers.iter().map(|l| 2 * l.macs()).sum::<usize>()
            + t.channel.multiplications(&t.net).0;
        let flop_per_image = 2.0 * sizes_macs as f64;
        let mut times = Vec::new();
        pool.install(|| {
            for _ in 0..3 {
                t.step(&x, &y);
            }
            for _ in 0..3 {
                let clock = Instant::now();
                for _ in 0..STEPS {
                    std::hint::black_box(t.step(&x, &y));
                }
                times.push(clock.elapsed().as_secs_f64() / STEPS as f64);
            }
        });
        times.sort_by(f64::total_cmp);
        let sec = times[1];
        println!(
            "{:<8} {:>10.1} {:>12.0} {:>12.1} {:>10.1} {:>9.4}   (rounds: {:.1}–{:.1} ms)",
            channel,
            sec * 1e3,
            BATCH as f64 / sec,
            sec * EPOCH.div_ceil(BATCH) as f64,
            flop_per_image * BATCH as f64 / sec / 1e9,
            flop_per_image / 1e9,
            times[0] * 1e3,
            times[2] * 1e3
        );
    }
}
