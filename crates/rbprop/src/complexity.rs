//! The cost of each learning channel (paper §4): multiplications per example of a dense net,
//! predicted by the paper's formulas and counted by each channel, optionally next to measured
//! times (what `rbp complexity` prints).
//!
//! For a net N_0-N_1-…-N_L: the backward signal of BP and RBP costs Σ_{h=2..L} N_(h−1)·N_h,
//! that of SRBP N_L·Σ_{h=1..L−1} N_h; the forward pass and the weight updates cost
//! Σ_{h=1..L} N_(h−1)·N_h each, for every channel.

use crate::channel::{CHANNELS, ChannelKind, ChannelSpec};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::report::{ReportError, ReportResult, ensure, outln};
use crate::run::build_trainer;
use crate::train::Trainer;
use std::io::Write;
use std::time::Instant;

/// The layer sizes N_0..N_L of a dense net: `arch` (`N0-…-NL`, at least one hidden layer) when
/// given, else `inputs`, the comma-separated `hidden` sizes (at least one) and `outputs`.
pub fn net_sizes(
    arch: Option<&str>,
    hidden: &str,
    inputs: usize,
    outputs: usize,
) -> ReportResult<Vec<usize>> {
    let (inputs, hidden, outputs) = match arch {
        Some(arch) => {
            let sizes = TrainConfig::parse_hidden(&arch.replace('-', ","))?;
            ensure(sizes.len() >= 3, || {
                "--arch needs inputs, at least one hidden layer and outputs, e.g. 784-100-10".into()
            })?;
            (
                sizes[0],
                sizes[1..sizes.len() - 1].to_vec(),
                sizes[sizes.len() - 1],
            )
        }
        None => (inputs, TrainConfig::parse_hidden(hidden)?, outputs),
    };
    ensure(!hidden.is_empty(), || {
        "--hidden: the cost of a channel needs at least one hidden layer".into()
    })?;
    Ok(std::iter::once(inputs)
        .chain(hidden)
        .chain([outputs])
        .collect())
}

/// The paper's counts (§4) for the layer sizes N_0..N_L.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaperCounts {
    /// Backward signal of BP and RBP: Σ_{h=2..L} N_(h−1)·N_h.
    pub bp: usize,
    /// Backward signal of SRBP: N_L·Σ_{h=1..L−1} N_h.
    pub srbp: usize,
    /// Forward pass, and again the weight updates: Σ_{h=1..L} N_(h−1)·N_h.
    pub weights: usize,
}

impl PaperCounts {
    /// The counts of `sizes` (N_0..N_L, L ≥ 1).
    pub fn of(sizes: &[usize]) -> Self {
        let l = sizes.len() - 1;
        PaperCounts {
            bp: (2..=l).map(|h| sizes[h - 1] * sizes[h]).sum(),
            srbp: sizes[l] * sizes[1..l].iter().sum::<usize>(),
            weights: (1..=l).map(|h| sizes[h - 1] * sizes[h]).sum(),
        }
    }
    /// A whole step of BP: forward, signal, updates.
    pub fn step_bp(&self) -> usize {
        2 * self.weights + self.bp
    }
    /// A whole step of SRBP.
    pub fn step_srbp(&self) -> usize {
        2 * self.weights + self.srbp
    }
}

/// A trainer of channel `kind` on the dense net `sizes` (tanh, seed 1, the registry's example options).
pub fn build(kind: &ChannelKind, sizes: &[usize]) -> Result<Trainer> {
    let hidden = sizes[1..sizes.len() - 1].to_vec();
    let options = kind.example_options(hidden.len());
    let config = TrainConfig {
        channel: ChannelSpec::parse(kind.name, false)?,
        hidden,
        weight_decay: options.weight_decay,
        channel_options: options,
        ..TrainConfig::default()
    };
    build_trainer(&config, (sizes[0], 1, 1), sizes[sizes.len() - 1])
}

/// Multiplications per example of one channel, as it counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelCost {
    /// The backward signal of every hidden layer.
    pub signal: usize,
    /// The updates of adaptive feedback matrices C.
    pub adapt: usize,
    /// A whole step: forward pass, updates of the layers that learn, signal, C updates.
    pub step: usize,
}

/// The cost of the channel of `t`, a trainer on the dense net `sizes`.
pub fn channel_cost(t: &Trainer, sizes: &[usize]) -> ChannelCost {
    let (signal, adapt) = t.channel.multiplications(&t.net);
    let l = sizes.len() - 1;
    let learning: usize = (0..l)
        .filter(|&i| t.channel.learns(i))
        .map(|i| sizes[i] * sizes[i + 1])
        .sum();
    ChannelCost {
        signal,
        adapt,
        step: PaperCounts::of(sizes).weights + learning + signal + adapt,
    }
}

/// A fixed batch of 100 examples with inputs in [0, 1) and labels cycling over the outputs.
pub fn probe_batch(inputs: usize, outputs: usize) -> (Vec<f32>, Vec<u8>) {
    let x = (0..100 * inputs)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let y = (0..100).map(|i| (i % outputs) as u8).collect();
    (x, y)
}

/// Measured seconds per step of a channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// The channel's backward pass alone (δ of every hidden layer).
    pub signal: f64,
    /// A whole step: forward, loss, signal, updates.
    pub step: f64,
}

/// Times the channel of `t` on the batch `x`, `y` in the current thread pool: the median of 7
/// rounds of 300 repetitions, for the signal alone and for a whole step.
pub fn time_channel(t: &mut Trainer, x: &[f32], y: &[u8]) -> Timing {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = |t: &mut Trainer, signal_only: bool| -> f64 {
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
    Timing {
        signal: rounds(t, true),
        step: rounds(t, false),
    }
}

/// Writes the cost table of every channel on the dense net `sizes` (from [`net_sizes`]): the
/// paper's counts, then one row per channel; with `measure`, the measured times too (batch 100,
/// one thread, the signal relative to BP's). Returns the rows written, channel by channel.
pub fn report(
    sizes: &[usize],
    measure: bool,
    out: &mut dyn Write,
) -> ReportResult<Vec<(ChannelCost, Option<Timing>)>> {
    let p = PaperCounts::of(sizes);
    let net = sizes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("-");
    outln!(out, "net {net}: multiplications per example (paper §4)")?;
    outln!(
        out,
        "  backward signal  BP, RBP: Σ_h N_(h−1)·N_h = {}    SRBP: N_L·Σ_h N_h = {}    ratio SRBP/BP {:.3}",
        p.bp,
        p.srbp,
        p.srbp as f64 / p.bp as f64
    )?;
    outln!(
        out,
        "  forward pass and weight updates: {} each, for every channel",
        p.weights
    )?;
    outln!(
        out,
        "  whole step  BP {}  SRBP {}    ratio {:.3}",
        p.step_bp(),
        p.step_srbp(),
        p.step_srbp() as f64 / p.step_bp() as f64
    )?;
    outln!(out, "")?;
    let mut header = format!(
        "{:<10} {:>12} {:>12} {:>12}",
        "channel", "signal", "C update", "whole step"
    );
    if measure {
        header += &format!(
            " {:>14} {:>12} {:>10}",
            "signal µs/step", "step µs", "signal/BP"
        );
    }
    outln!(out, "{header}")?;
    let (x, y) = probe_batch(sizes[0], sizes[sizes.len() - 1]);
    let pool = match measure {
        true => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(|e| ReportError::Invalid(e.to_string()))?,
        ),
        false => None,
    };
    let mut bp_time = None;
    let mut rows = Vec::new();
    for kind in CHANNELS {
        let mut t = build(kind, sizes)?;
        let cost = channel_cost(&t, sizes);
        let mut line = format!(
            "{:<10} {:>12} {:>12} {:>12}",
            kind.name, cost.signal, cost.adapt, cost.step
        );
        let timing = pool
            .as_ref()
            .map(|pool| pool.install(|| time_channel(&mut t, &x, &y)));
        if let Some(time) = timing {
            let ratio = match bp_time {
                None => {
                    bp_time = Some(time.signal);
                    1.0
                }
                Some(bp) => time.signal / bp,
            };
            line += &format!(
                " {:>14.1} {:>12.1} {:>10.3}",
                time.signal * 1e6,
                time.step * 1e6,
                ratio
            );
        }
        outln!(out, "{line}")?;
        rows.push((cost, timing));
    }
    if measure {
        outln!(
            out,
            "\nsignal: the channel's backward pass alone (δ of every hidden layer); step: forward, loss, signal, updates."
        )?;
        outln!(
            out,
            "Median of 7 rounds of 300 repetitions; batch 100, one thread."
        )?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MixSignal;

    fn kind(name: &str) -> &'static ChannelKind {
        CHANNELS.iter().find(|k| k.name == name).unwrap()
    }

    #[test]
    fn the_paper_counts_of_784_100_100_100_100_10() {
        let sizes = net_sizes(None, "100,100,100,100", 784, 10).unwrap();
        assert_eq!(sizes, [784, 100, 100, 100, 100, 10]);
        assert_eq!(
            net_sizes(Some("784-100-100-100-100-10"), "", 1, 1).unwrap(),
            sizes
        );
        let p = PaperCounts::of(&sizes);
        // BP: 3·100·100 + 100·10; SRBP: 10·400; weights: 784·100 + 3·100·100 + 100·10
        assert_eq!((p.bp, p.srbp, p.weights), (31_000, 4_000, 109_400));
        assert_eq!((p.step_bp(), p.step_srbp()), (249_800, 222_800));
        let e = |arch, hidden| net_sizes(arch, hidden, 784, 10).unwrap_err().to_string();
        assert!(e(Some("784-10"), "").starts_with("--arch needs inputs"));
        assert_eq!(
            e(None, ""),
            "--hidden: the cost of a channel needs at least one hidden layer"
        );
    }

    #[test]
    fn each_channel_counts_what_the_paper_predicts() {
        let sizes = [20, 30, 20, 10];
        let p = PaperCounts::of(&sizes);
        let cost = |name| channel_cost(&build(kind(name), &sizes).unwrap(), &sizes);
        assert_eq!(cost("bp").signal, p.bp);
        assert_eq!(cost("bp").step, p.step_bp());
        assert_eq!(cost("rbp").signal, p.bp);
        assert_eq!(cost("srbp").signal, p.srbp);
        assert_eq!(cost("srbp").step, p.step_srbp());
        // an adaptive channel updates every feedback matrix: as many again as its signal
        assert_eq!(cost("arbp").adapt, cost("arbp").signal);
        // top-only: no signal, only the top layer learns
        assert_eq!(cost("top").step, p.weights + 20 * 10);
    }

    #[test]
    fn mix_alternates_from_srbp_and_kp_gets_a_weight_decay() {
        assert_eq!(
            kind("mix").example_options(3).mix,
            [MixSignal::Srbp, MixSignal::Bp, MixSignal::Srbp]
        );
        assert_eq!(kind("kp").example_options(3).weight_decay, 1e-4);
        let plain = kind("rbp").example_options(3);
        assert!(plain.mix.is_empty() && plain.weight_decay == 0.0);
    }

    #[test]
    fn the_report_prints_the_formulas_and_one_row_per_channel() {
        let mut out = Vec::new();
        let rows = report(&[20, 50, 5], false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("net 20-50-5: multiplications per example (paper §4)\n"));
        assert!(text.contains("SRBP: N_L·Σ_h N_h = 250    ratio SRBP/BP 1.000"));
        assert_eq!(rows.len(), CHANNELS.len());
        assert_eq!(text.lines().count(), 6 + CHANNELS.len());
        assert!(rows.iter().all(|(_, timing)| timing.is_none()));
    }
}
