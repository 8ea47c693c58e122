//! `rbp complexity`: the cost of each learning channel (paper §4), predicted and measured.

use super::sayln;
use clap::Args;
use rbprop::channel::CHANNELS;
use rbprop::config::TrainConfig;
use rbprop::run::build_trainer;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ComplexityArgs {
    /// The whole dense net as N0-N1-…-NL (e.g. 784-100-100-100-100-10); overrides --hidden,
    /// --inputs, --outputs.
    #[arg(long, value_name = "N0-…-NL")]
    pub arch: Option<String>,
    /// Hidden layer sizes.
    #[arg(long, default_value = "100,100,100,100", value_name = "N,N,…")]
    pub hidden: String,
    /// Input size N0.
    #[arg(long, default_value_t = 784)]
    pub inputs: usize,
    /// Output size NL.
    #[arg(long, default_value_t = 10)]
    pub outputs: usize,
    /// Also time the backward signal and the whole step of each channel (batch 100, one thread).
    #[arg(long)]
    pub measure: bool,
}

pub fn run(mut args: ComplexityArgs) -> anyhow::Result<()> {
    if let Some(arch) = &args.arch {
        let sizes = TrainConfig::parse_hidden(&arch.replace('-', ","))?;
        anyhow::ensure!(
            sizes.len() >= 3,
            "--arch needs inputs, at least one hidden layer and outputs, e.g. 784-100-10"
        );
        args.inputs = sizes[0];
        args.outputs = sizes[sizes.len() - 1];
        args.hidden = sizes[1..sizes.len() - 1]
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
    }
    let hidden = TrainConfig::parse_hidden(&args.hidden)?;
    anyhow::ensure!(
        !hidden.is_empty(),
        "--hidden: the cost of a channel needs at least one hidden layer"
    );
    let sizes: Vec<usize> = std::iter::once(args.inputs)
        .chain(hidden.iter().copied())
        .chain([args.outputs])
        .collect();
    let l = sizes.len() - 1;
    // paper §4
    let bp: usize = (2..=l).map(|h| sizes[h - 1] * sizes[h]).sum();
    let srbp: usize = sizes[l] * sizes[1..l].iter().sum::<usize>();
    let weights: usize = (1..=l).map(|h| sizes[h - 1] * sizes[h]).sum();
    sayln!(
        "net {}: multiplications per example (paper §4)",
        sizes
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("-")
    );
    sayln!(
        "  backward signal  BP, RBP: Σ_h N_(h−1)·N_h = {bp}    SRBP: N_L·Σ_h N_h = {srbp}    ratio SRBP/BP {:.3}",
        srbp as f64 / bp as f64
    );
    sayln!("  forward pass and weight updates: {weights} each, for every channel");
    sayln!(
        "  whole step  BP {}  SRBP {}    ratio {:.3}",
        2 * weights + bp,
        2 * weights + srbp,
        (2 * weights + srbp) as f64 / (2 * weights + bp) as f64
    );
    sayln!("");
    let mut header = format!(
        "{:<10} {:>12} {:>12} {:>12}",
        "channel", "signal", "C update", "whole step"
    );
    if args.measure {
        header += &format!(
            " {:>14} {:>12} {:>10}",
            "signal µs/step", "step µs", "signal/BP"
        );
    }
    sayln!("{header}");
    let (x, y) = probe_batch(args.inputs, args.outputs);
    let mut bp_time = None;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    for kind in CHANNELS {
        let mut cfg = TrainConfig {
            channel: kind.name.into(),
            hidden: hidden.clone(),
            ..TrainConfig::default()
        };
        match kind.name {
            "mix" => {
                cfg.channel_options.mix = (0..hidden.len())
                    .map(|i| if i % 2 == 0 { "srbp" } else { "bp" }.into())
                    .collect()
            }
            "kp" => cfg.weight_decay = 1e-4,
            _ => {}
        }
        let mut t = build_trainer(&cfg, (args.inputs, 1, 1), args.outputs)?;
        let (signal, adapt) = t.channel.multiplications(&t.net);
        let learning: usize = (0..l)
            .filter(|&i| t.channel.learns(i))
            .map(|i| sizes[i] * sizes[i + 1])
            .sum();
        let mut line = format!(
            "{:<10} {:>12} {:>12} {:>12}",
            kind.name,
            signal,
            adapt,
            weights + learning + signal + adapt
        );
        if args.measure {
            let (signal_s, step_s) = pool.install(|| time_channel(&mut t, &x, &y));
            let ratio = match bp_time {
                None => {
                    bp_time = Some(signal_s);
                    1.0
                }
                Some(b) => signal_s / b,
            };
            line += &format!(
                " {:>14.1} {:>12.1} {:>10.3}",
                signal_s * 1e6,
                step_s * 1e6,
                ratio
            );
        }
        sayln!("{line}");
    }
    if args.measure {
        sayln!(
            "\nsignal: the channel's backward pass alone (δ of every hidden layer); step: forward, loss, signal, updates."
        );
        sayln!("Median of 7 rounds of 300 repetitions; batch 100, one thread.");
    }
    Ok(())
}

/// A fixed batch of 100 examples in [0, 1).
fn probe_batch(inputs: usize, outputs: usize) -> (Vec<f32>, Vec<u8>) {
    let x = (0..100 * inputs)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let y = (0..100).map(|i| (i % outputs) as u8).collect();
    (x, y)
}

/// (seconds of the channel's backward signal, seconds of a whole step), medians.
fn time_channel(t: &mut rbprop::train::Trainer, x: &[f32], y: &[u8]) -> (f64, f64) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = |t: &mut rbprop::train::Trainer, signal_only: bool| -> f64 {
        t.forward_loss(x, y);
        let mut times = Vec::new();
        for _ in 0..7 {
            let clock = Instant::now();
            for _ in 0..300 {
                if signal_only {
                    t.channel_backward(y);
                } else {
                    std::hint::black_box(t.step(x, y));
                }
            }
            times.push(clock.elapsed().as_secs_f64() / 300.0);
        }
        median(times)
    };
    (rounds(t, true), rounds(t, false))
}
