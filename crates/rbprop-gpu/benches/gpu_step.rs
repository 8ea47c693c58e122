//! One training step of the paper's MNIST net (784-100-100-100-100-10, tanh, batch 100) on the
//! GPU backend, for BP, RBP and SRBP, with the CPU backend on one thread beside it; then one step
//! of the paper's CIFAR-10 net (3 × conv 5×5 + max-pool, fc64; batch 128, 32×32×3 inputs) and
//! the epoch it makes (391 steps), against the CPU backend on every core (or `RBP_CPU_THREADS`). A step includes
//! uploading the minibatch; losses are read back as an epoch reads them
//! (every `Backend::LOSS_READ_INTERVAL` steps, and at the end of each timed round).
//!
//!     cargo bench -p rbprop-gpu --bench gpu_step
//!     cargo bench -p rbprop-gpu --bench gpu_step -- srbp    # channels whose name contains "srbp"
//!     cargo bench -p rbprop-gpu --bench gpu_step -- conv    # the conv net only
//!     RBP_ADAPTER=NAME cargo bench -p rbprop-gpu --bench gpu_step   # another adapter
//!     RBP_CPU_THREADS=2 cargo bench -p rbprop-gpu --bench gpu_step  # the conv CPU side on 2 threads
//!     RBP_GPU_PROFILE=1 cargo bench -p rbprop-gpu --bench gpu_step  # + device time per kernel
//!     cargo bench -p rbprop-gpu --bench gpu_step -- probe   # the device probes only
//!     RBP_GPU_PRODUCT=direct cargo bench -p rbprop-gpu --bench gpu_step  # the direct products
//!     cargo bench -p rbprop-gpu --bench gpu_step -- ensemble  # stacked ensembles (only then)
//!     RBP_ENSEMBLES=1,8 cargo bench -p rbprop-gpu --bench gpu_step -- ensemble  # other sizes
//!
//! `ensemble`: steps of K members stacked on the device (`rbprop::train::Stack`, one dispatch
//! per operation for all of them) for K = 1, 8, 32, 64 (1 and 8 on a CPU's Vulkan driver): the
//! MNIST net's BP and SRBP steps and the CIFAR-10 net's RBP step, per stacked step and per
//! member-step, against the CPU backend's solo step (one thread for the MNIST net, every core
//! for the CIFAR-10 net).
//!
//! First (with no filter, or `probe`) the device probes of `rbprop_gpu::probe`: the cost of a
//! dispatch, a submission and a round trip, the latency of a dependent load, a copy's bandwidth
//! and the dense step's products alone (smaller sizes on a CPU's Vulkan driver).
//!
//! Without an adapter it says `no GPU adapter` and exits successfully.

use rbprop::backend::{Backend, Cpu};
use rbprop::config::TrainConfig;
use rbprop::data;
use rbprop::run::build_trainer;
use rbprop::train::{Stack, Trainer};
use rbprop_gpu::Gpu;
use std::time::Instant;

const BATCH: usize = 100;
const WARMUP: usize = 5;
/// Each round runs steps for at least this long (and at least `MIN_STEPS` steps).
const ROUND_SECONDS: f64 = 1.0;
const MIN_STEPS: usize = 3;
const ROUNDS: usize = 5;

/// Median µs per step over `ROUNDS` rounds, and the mean µs the host spent recording a step.
fn time<B: Backend>(t: &mut Trainer<B>, batches: &[(Vec<f32>, Vec<u8>)]) -> (f64, f64) {
    time_rounds(t, batches, WARMUP, ROUNDS)
}

/// Median µs per step over `rounds` rounds after `warmup` steps, and the mean µs per step the
/// host spent in the trainer's calls (recording the step; the rest is waiting for the device).
fn time_rounds<B: Backend>(
    t: &mut Trainer<B>,
    batches: &[(Vec<f32>, Vec<u8>)],
    warmup: usize,
    rounds: usize,
) -> (f64, f64) {
    time_steps::<B>(
        |s| {
            let (x, y) = &batches[s % batches.len()];
            t.step_kept(x, y)
        },
        warmup,
        rounds,
    )
}

/// [`time_rounds`] of steps that `step(s)` takes (step `s` of a round), their losses read as
/// an epoch reads them.
fn time_steps<B: Backend>(
    mut step_kept: impl FnMut(usize) -> B::Loss,
    warmup: usize,
    rounds: usize,
) -> (f64, f64) {
    let mut kept = Vec::new();
    let mut host = 0.0;
    let mut step = |s: usize, kept: &mut Vec<B::Loss>| {
        let clock = Instant::now();
        kept.push(step_kept(s));
        host += clock.elapsed().as_secs_f64();
        if kept.len() >= B::LOSS_READ_INTERVAL {
            B::read_member_losses(kept);
            kept.clear();
        }
    };
    for s in 0..warmup {
        step(s, &mut kept);
    }
    B::read_member_losses(&kept);
    kept.clear();
    let mut total_steps = 0;
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let clock = Instant::now();
            let mut steps = 0;
            while steps < MIN_STEPS || clock.elapsed().as_secs_f64() < ROUND_SECONDS {
                step(steps, &mut kept);
                steps += 1;
            }
            B::read_member_losses(&kept);
            kept.clear();
            total_steps += steps;
            clock.elapsed().as_secs_f64() * 1e6 / steps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let recorded = host;
    (
        times[rounds / 2],
        recorded * 1e6 / (total_steps + warmup) as f64,
    )
}

/// With `RBP_GPU_PROFILE` set (and timestamps on the adapter): `steps` more steps with every
/// dispatch timed on the device, printed per kernel against the steps' wall time.
fn kernel_times(t: &mut Trainer<Gpu>, batches: &[(Vec<f32>, Vec<u8>)], steps: usize) {
    if Gpu::profile().is_none() {
        return;
    }
    let clock = Instant::now();
    let kept: Vec<_> = (0..steps)
        .map(|s| {
            let (x, y) = &batches[s % batches.len()];
            t.step_kept(x, y)
        })
        .collect();
    Gpu::read_losses(&kept);
    let wall = clock.elapsed().as_secs_f64() * 1e6 / steps as f64;
    let rows = Gpu::profile().expect("profiling is on");
    let device: f64 = rows.iter().map(|r| r.2).sum::<f64>() * 1e3 / steps as f64;
    let dispatches: usize = rows.iter().map(|r| r.1).sum();
    println!(
        "    {steps} profiled steps: {:.0} µs/step wall, {device:.0} µs/step in {} kernels ({:.0} dispatches/step)",
        wall,
        rows.len(),
        dispatches as f64 / steps as f64
    );
    for (name, n, ms) in rows {
        println!(
            "      {name:<22} {:>6.1} dispatches/step {:>10.1} µs/step {:>8.1} µs each",
            n as f64 / steps as f64,
            ms * 1e3 / steps as f64,
            ms * 1e3 / n as f64
        );
    }
}

/// The paper's CIFAR-10 net: a step on the GPU and on the CPU (every core), and the epoch of
/// 50,000 examples they make.
fn conv(filter: &[String]) {
    const CIFAR_BATCH: usize = 128;
    const STEPS_PER_EPOCH: f64 = 391.0; // ⌈50,000 / 128⌉
    let cores = std::env::var("RBP_CPU_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .unwrap();
    // random images: the step's cost depends only on the shapes
    let mut rng = rbprop::rng::stream(1, "bench");
    let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..4)
        .map(|b| {
            let x = rbprop::rng::normal_vec(CIFAR_BATCH * 3 * 32 * 32, 1.0, &mut rng);
            let y = (0..CIFAR_BATCH).map(|i| ((i + b) % 10) as u8).collect();
            (x, y)
        })
        .collect();
    println!(
        "\npaper-cifar10 (batch {CIFAR_BATCH}): {:<6} {:>12} {:>14} {:>12} {:>16} {:>8}",
        "channel",
        "gpu ms/step",
        "host ms/step",
        "gpu s/epoch",
        &format!("cpu×{cores} s/epoch"),
        "speedup"
    );
    for channel in ["bp", "rbp", "srbp"] {
        if !filter.is_empty()
            && !filter
                .iter()
                .any(|f| channel.contains(f.as_str()) || "conv".contains(f.as_str()))
        {
            continue;
        }
        let cfg = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some("paper-cifar10".into()),
            batch: CIFAR_BATCH,
            lr: 0.01,
            momentum: 0.9,
            threads: cores,
            ..TrainConfig::default()
        };
        let host = build_trainer(&cfg, (3, 32, 32), 10).unwrap();
        let mut gpu: Trainer<Gpu> = host.to_backend();
        let (g, g_host) = time_rounds(&mut gpu, &batches, 2, 3);
        let mut cpu: Trainer<Cpu> = host.to_backend();
        let (c, _) = pool.install(|| time_rounds(&mut cpu, &batches, 1, 3));
        println!(
            "{:<21}{channel:<6} {:>12.1} {:>14.1} {:>12.1} {:>16.1} {:>7.1}×",
            "",
            g / 1e3,
            g_host / 1e3,
            g * STEPS_PER_EPOCH / 1e6,
            c * STEPS_PER_EPOCH / 1e6,
            c / g
        );
        kernel_times(&mut gpu, &batches, 3);
    }
}

/// Ensembles of K members stacked on the device against the CPU's solo step: the MNIST net's
/// BP and SRBP (batch 100) and the CIFAR-10 net's RBP (batch 128).
fn ensembles(small: bool) {
    let sizes: Vec<usize> = match std::env::var("RBP_ENSEMBLES") {
        Ok(v) => v.split(',').filter_map(|k| k.trim().parse().ok()).collect(),
        Err(_) if small => vec![1, 8],
        Err(_) => vec![1, 8, 32, 64],
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rng = rbprop::rng::stream(1, "bench");
    println!(
        "\nensembles stacked on the device: {:<28} {:>4} {:>14} {:>16} {:>16} {:>10} {:>10}",
        "net, channel", "K", "µs/step", "µs/member-step", "samples/s", "vs K = 1", "vs cpu"
    );
    let nets = [
        ("paper-mnist", "bp", BATCH, (1, 28, 28), 0.0, 1),
        ("paper-mnist", "srbp", BATCH, (1, 28, 28), 0.0, 1),
        ("paper-cifar10", "rbp", 128, (3, 32, 32), 0.9, cores),
    ];
    // a CPU's Vulkan driver takes seconds per CIFAR-10 step: the dense nets only
    let nets = if small { &nets[..2] } else { &nets[..] };
    for &(arch, channel, batch, shape, momentum, cpu_threads) in nets {
        let dim = shape.0 * shape.1 * shape.2;
        let one: Vec<(Vec<f32>, Vec<u8>)> = (0..4)
            .map(|b| {
                let x = rbprop::rng::normal_vec(batch * dim, 1.0, &mut rng)
                    .iter()
                    .map(|v| v.abs().min(1.0))
                    .collect();
                let y = (0..batch).map(|i| ((i + b) % 10) as u8).collect();
                (x, y)
            })
            .collect();
        let config = |seed| TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some(arch.into()),
            batch,
            lr: 0.01,
            momentum,
            seed,
            threads: cpu_threads,
            ..TrainConfig::default()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cpu_threads)
            .build()
            .unwrap();
        let mut cpu: Trainer<Cpu> = build_trainer(&config(1), shape, 10).unwrap();
        let (cpu_us, _) = pool.install(|| time_rounds(&mut cpu, &one, 1, 3));
        let mut solo_us = None;
        for &k in &sizes {
            let mut members: Vec<Trainer<Gpu>> = (1..=k as u64)
                .map(|seed| {
                    build_trainer(&config(seed), shape, 10)
                        .unwrap()
                        .to_backend()
                })
                .collect();
            let mut refs: Vec<&mut Trainer<Gpu>> = members.iter_mut().collect();
            let mut stack = Stack::new(&mut refs);
            let batches: Vec<(Vec<f32>, Vec<u8>)> = one
                .iter()
                .map(|(x, y)| (x.repeat(k), y.repeat(k)))
                .collect();
            let (us, _) = time_steps::<Gpu>(
                |s| {
                    let (x, y) = &batches[s % batches.len()];
                    stack.step_kept(x, y)
                },
                2,
                3,
            );
            let per_member = us / k as f64;
            let base = *solo_us.get_or_insert(per_member);
            println!(
                "{:<32} {:<28} {k:>4} {us:>14.0} {per_member:>16.1} {:>16.0} {:>9.2}× {:>9.2}×",
                "",
                format!("{arch}, {channel} (cpu×{cpu_threads})"),
                (batch * k) as f64 * 1e6 / us,
                base / per_member,
                cpu_us / per_member
            );
        }
    }
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
    let small = info.device_type == rbprop_gpu::DeviceType::Cpu;
    if filter.iter().any(|f| f == "ensemble") {
        ensembles(small);
        return;
    }
    if filter.is_empty() || filter.iter().any(|f| f == "probe") {
        println!(
            "device probes{}:",
            if small { " (small sizes)" } else { "" }
        );
        for p in rbprop_gpu::probe::run(small) {
            println!("  {:<52} {:>12.2} {}", p.what, p.value, p.unit);
        }
        if filter.iter().any(|f| f == "probe") {
            return;
        }
    }
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
        "{:<8} {:>12} {:>14} {:>14} {:>12} {:>14}",
        "channel", "gpu µs/step", "host µs/step", "gpu samples/s", "cpu µs/step", "cpu samples/s"
    );
    for channel in ["bp", "rbp", "srbp"] {
        if !filter.is_empty() && !filter.iter().any(|f| channel.contains(f.as_str())) {
            continue;
        }
        let cfg = TrainConfig {
            channel: channel.parse().unwrap(),
            ..TrainConfig::default()
        };
        let host = build_trainer(&cfg, (1, 28, 28), 10).unwrap();
        let mut gpu: Trainer<Gpu> = host.to_backend();
        let (g, g_host) = time(&mut gpu, &batches);
        let mut cpu: Trainer<Cpu> = host.to_backend();
        let (c, _) = pool.install(|| time(&mut cpu, &batches));
        println!(
            "{channel:<8} {g:>12.0} {g_host:>14.0} {:>14.0} {c:>12.0} {:>14.0}",
            BATCH as f64 * 1e6 / g,
            BATCH as f64 * 1e6 / c
        );
        kernel_times(&mut gpu, &batches, 20);
    }
    conv(&filter);
}
