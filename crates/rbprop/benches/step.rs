//! One training step of the paper's MNIST net (784-100-100-100-100-10, tanh, batch 100) for every
//! channel and variant, on one thread: samples/s, GFLOP/s and the fraction of one core's peak.
//!
//!     cargo bench --bench step            # all channels
//!     cargo bench --bench step -- srbp    # channels whose name contains "srbp"
//!
//! FLOPs counted: 2·B·(multiply-adds) of the forward pass, of each learning layer's weight
//! update, of the channel's backward signal (one term = N_i·N_k multiply-adds per example) and of
//! adaptive feedback matrices' updates. Quantized updates count the same FLOPs as plain ones
//! (their per-example work is elementwise).
//! Elementwise work (activations, softmax) is not counted.

use rbprop::channel::quantize::{Alpha, Rounding};
use rbprop::channel::{CHANNELS, ChannelSpec, FeedbackInit, Quantizer};
use rbprop::config::TrainConfig;
use rbprop::data;
use rbprop::run::build_trainer;
use std::time::Instant;

const BATCH: usize = 100;
const WARMUP: usize = 300;
const STEPS: usize = 1000;
const ROUNDS: usize = 7;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let split = data::embedded();
    let peak = core_peak_gflops();
    println!(
        "one core's peak: {:.1} GFLOP/s measured (AVX2: 2 FMA units × 8 f32 lanes × 2 FLOP × {:.2} GHz)",
        peak.0, peak.1
    );
    let peak512 = avx512_peak_gflops();
    if let Some(p) = peak512 {
        println!(
            "one core's AVX-512 peak: {p:.1} GFLOP/s measured (the GEMM kernels use AVX-512 here)"
        );
    }
    println!(
        "{:<26} {:>10} {:>12} {:>9} {:>9} {:>8} {:>8}",
        "channel", "µs/step", "samples/s", "MFLOP", "GFLOP/s", "of AVX2", "of 512"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for (name, cfg) in cases() {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let mut t = build_trainer(&cfg, (1, 28, 28), 10).unwrap();
        let flop = step_flop(&t);
        let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..50)
            .map(|b| {
                let r = b * BATCH..(b + 1) * BATCH;
                (
                    split.train.images[r.start * 784..r.end * 784].to_vec(),
                    split.train.labels[r].to_vec(),
                )
            })
            .collect();
        // slow variants get fewer steps
        let steps = if cfg.channel_options.quantize_update.is_some() {
            STEPS / 20
        } else {
            STEPS
        };
        let mut times = Vec::new();
        pool.install(|| {
            for s in 0..WARMUP.min(steps) {
                let (x, y) = &batches[s % batches.len()];
                t.step(x, y);
            }
            for _ in 0..ROUNDS {
                let clock = Instant::now();
                for s in 0..steps {
                    let (x, y) = &batches[s % batches.len()];
                    std::hint::black_box(t.step(x, y));
                }
                times.push(clock.elapsed().as_secs_f64() / steps as f64);
            }
        });
        times.sort_by(f64::total_cmp);
        let sec = times[ROUNDS / 2];
        let gflops = flop / sec / 1e9;
        println!(
            "{:<26} {:>10.1} {:>12.0} {:>9.2} {:>9.1} {:>7.1}% {:>8}   (min {:.1} µs, max {:.1} µs)",
            name,
            sec * 1e6,
            BATCH as f64 / sec,
            flop / 1e6,
            gflops,
            100.0 * gflops / peak.0,
            // no AVX-512 on this CPU: no such peak to compare with
            peak512.map_or("—".to_string(), |p| format!("{:.1}%", 100.0 * gflops / p)),
            times[0] * 1e6,
            times[ROUNDS - 1] * 1e6
        );
    }
}

/// Every registered channel (and its -nof version), then the composable variants.
fn cases() -> Vec<(String, TrainConfig)> {
    let base = |channel: &str| {
        let spec = ChannelSpec::parse(channel, false).expect("registered");
        let c = TrainConfig {
            channel: channel.parse().unwrap(),
            ..TrainConfig::default()
        };
        let options = spec.kind.example_options(c.hidden.len());
        TrainConfig {
            weight_decay: options.weight_decay,
            channel_options: options,
            ..c
        }
    };
    let mut out = Vec::new();
    for kind in CHANNELS {
        out.push((kind.name.to_string(), base(kind.name)));
        if kind.has_nof {
            let name = format!("{}-nof", kind.name);
            out.push((name.clone(), base(&name)));
        }
    }
    for ch in ["rbp", "srbp"] {
        let mut c = base(ch);
        c.channel_options.feedback = FeedbackInit::Sparse(2.0);
        out.push((format!("{ch} --feedback sparse:2"), c));
        let mut c = base(ch);
        c.channel_options.average = 4;
        out.push((format!("{ch} --average 4"), c));
        let mut c = base(ch);
        c.channel_options.dropout = 0.25;
        out.push((format!("{ch} --channel-dropout 0.25"), c));
        let mut c = base(ch);
        c.channel_options.quantize_signal =
            Some(Quantizer::new(8, Alpha::Fixed(1.0), "q").unwrap());
        out.push((format!("{ch} --quantize-signal 8"), c));
        let mut c = base(ch);
        c.decay = 0.0;
        c.channel_options.quantize_update =
            Some(Quantizer::new(8, Alpha::Fixed(0.0625), "q").unwrap());
        out.push((format!("{ch} --quantize-update 8"), c.clone()));
        let q = c.channel_options.quantize_update.as_mut().unwrap();
        q.rounding = Rounding::Stochastic;
        out.push((format!("{ch} --quantize-update 8:1/16:stochastic"), c));
    }
    out
}

/// FLOPs of one step: forward, channel signal, weight updates.
fn step_flop(t: &rbprop::train::Trainer) -> f64 {
    let b = BATCH as f64;
    let mut macs = 0.0;
    for (i, l) in t.net.layers.iter().enumerate() {
        macs += l.macs() as f64; // forward
        if t.channel.learns(i) {
            macs += l.macs() as f64; // weight gradient
        }
    }
    // the signal, and the adaptive C's update O_iᵀ δ_k
    let (signal, adapt) = t.channel.multiplications(&t.net);
    macs += (signal + adapt) as f64;
    2.0 * b * macs
}

/// (GFLOP/s, GHz) of one core at AVX2 FMA peak: measured by a loop of independent 8-lane FMAs
/// (the clock the core really runs at, turbo included), reported with the implied clock.
fn core_peak_gflops() -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        let mut best: f64 = 0.0;
        for _ in 0..5 {
            // SAFETY: the features were detected above.
            best = best.max(unsafe { fma_loop() });
        }
        return (best, best / 32.0);
    }
    (f64::NAN, f64::NAN)
}

/// GFLOP/s of 12 independent chains of `vfmadd` on 8 f32 lanes (enough to cover FMA latency on
/// both ports).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop() -> f64 {
    use std::arch::x86_64::*;
    const ITERS: usize = 20_000_000;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let clock = Instant::now();
    for _ in 0..ITERS {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let sec = clock.elapsed().as_secs_f64();
    let mut sink = [0f32; 8];
    for x in acc {
        // SAFETY: `sink` holds 8 floats.
        unsafe { _mm256_storeu_ps(sink.as_mut_ptr(), x) };
        std::hint::black_box(sink);
    }
    (ITERS * 12 * 8 * 2) as f64 / sec / 1e9
}

/// The same with 16-lane AVX-512 FMAs (the GEMM kernels use them where the CPU has them).
fn avx512_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        let mut best: f64 = 0.0;
        for _ in 0..5 {
            // SAFETY: the feature was detected above.
            best = best.max(unsafe { fma512_loop() });
        }
        return Some(best);
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512_loop() -> f64 {
    use std::arch::x86_64::*;
    const ITERS: usize = 20_000_000;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); 12];
    let clock = Instant::now();
    for _ in 0..ITERS {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let sec = clock.elapsed().as_secs_f64();
    let mut sink = [0f32; 16];
    for x in acc {
        // SAFETY: `sink` holds 16 floats.
        unsafe { _mm512_storeu_ps(sink.as_mut_ptr(), x) };
        std::hint::black_box(sink);
    }
    (ITERS * 12 * 16 * 2) as f64 / sec / 1e9
}
