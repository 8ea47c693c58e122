//! BP against central finite differences of an independent f64 loss.

use super::reference::{self, RefNet};
use rbprop::channel::{Channel, ChannelOptions, ChannelSpec};
use rbprop::kernels::Activation;
use rbprop::model::Net;
use rbprop::rng;
use rbprop::train::{Sgd, Trainer};

pub const ACTIVATIONS: [Activation; 4] = [
    Activation::Tanh,
    Activation::Logistic,
    Activation::Relu,
    Activation::Linear,
];

/// Learning rate of the test trainers: large, so that the change of a weight after one step is
/// far above the rounding of the weight itself (the change is divided by it again).
pub const LR: f64 = 1e4;

/// A trainer for `sizes` with `channel`, SGD at learning rate [`LR`] and no decay.
pub fn trainer(sizes: &[usize], act: Activation, channel: &str, seed: u64) -> Trainer {
    trainer_with(sizes, act, channel, &ChannelOptions::default(), seed)
}

/// [`trainer`] with channel options.
pub fn trainer_with(
    sizes: &[usize],
    act: Activation,
    channel: &str,
    options: &ChannelOptions,
    seed: u64,
) -> Trainer {
    let mut net = Net::new(sizes, act, &mut rng::stream(seed, "init"));
    // non-zero biases, so that their gradients and use are exercised
    for (i, l) in net.layers.iter_mut().enumerate() {
        for (j, b) in l.b.iter_mut().enumerate() {
            *b = 0.1 * ((i + 2 * j) % 5) as f32 - 0.2;
        }
    }
    let spec = ChannelSpec::parse(channel, false).unwrap();
    let channel = Channel::new(
        &spec,
        options,
        &net,
        &mut rng::stream(seed, "feedback"),
        rng::stream(seed, "noise"),
    )
    .unwrap();
    Trainer::new(
        net,
        channel,
        Sgd {
            lr: LR,
            decay: 0.0,
            momentum: 0.0,
            weight_decay: options.weight_decay,
        },
    )
}

/// Engine's change of each layer (weights, biases) after one step, per unit learning rate.
pub fn engine_update(t: &mut Trainer, xs: &[Vec<f64>], ys: &[u8]) -> Vec<(Vec<f64>, Vec<f64>)> {
    let before = t.net.clone();
    t.step(&reference::flat(xs), ys);
    before
        .layers
        .iter()
        .zip(&t.net.layers)
        .map(|(a, b)| {
            (
                a.w.iter()
                    .zip(&b.w)
                    .map(|(x, y)| (*y - *x) as f64 / LR)
                    .collect(),
                a.b.iter()
                    .zip(&b.b)
                    .map(|(x, y)| (*y - *x) as f64 / LR)
                    .collect(),
            )
        })
        .collect()
}

/// Central finite differences of the reference loss w.r.t. every weight and bias.
fn fd_gradient(net: &RefNet, xs: &[Vec<f64>], ys: &[u8]) -> Vec<(Vec<f64>, Vec<f64>)> {
    let eps = 1e-6;
    let mut out = Vec::new();
    for i in 0..net.w.len() {
        let mut gw = Vec::new();
        for r in 0..net.w[i].len() {
            for c in 0..net.w[i][r].len() {
                let mut p = net.clone();
                p.w[i][r][c] += eps;
                let mut m = net.clone();
                m.w[i][r][c] -= eps;
                gw.push((p.loss(xs, ys) - m.loss(xs, ys)) / (2.0 * eps));
            }
        }
        let mut gb = Vec::new();
        for r in 0..net.b[i].len() {
            let mut p = net.clone();
            p.b[i][r] += eps;
            let mut m = net.clone();
            m.b[i][r] -= eps;
            gb.push((p.loss(xs, ys) - m.loss(xs, ys)) / (2.0 * eps));
        }
        out.push((gw, gb));
    }
    out
}

/// The engine computes in f32; against the exact gradient its relative error is bounded by
/// f32 rounding (≈1e-7 per operation, a few hundred operations deep): we require < 1e-4, well
/// inside the 1e-3 asked of an f32 implementation.
const F32_BOUND: f64 = 1e-4;

#[test]
fn bp_matches_finite_differences_for_every_activation() {
    for act in ACTIVATIONS {
        for (sizes, seed) in [(vec![3, 4, 3, 2], 7u64), (vec![5, 6, 4, 5, 3], 11)] {
            let mut t = trainer(&sizes, act, "bp", seed);
            let refnet = RefNet::from(&t.net);
            let (xs, ys) = reference::batch(6, sizes[0], *sizes.last().unwrap(), seed);
            let fd = fd_gradient(&refnet, &xs, &ys);
            let got = engine_update(&mut t, &xs, &ys);
            for (i, ((gw, gb), (fw, fb))) in got.iter().zip(&fd).enumerate() {
                let neg: Vec<f64> = fw.iter().chain(fb).map(|v| -v).collect();
                let mine: Vec<f64> = gw.iter().chain(gb).copied().collect();
                let e = reference::rel_err(&mine, &neg);
                assert!(
                    e < F32_BOUND,
                    "{act:?} {sizes:?} layer {i}: relative error {e:e} vs finite differences"
                );
            }
        }
    }
}

#[test]
fn reference_bp_is_itself_the_gradient() {
    // The oracle used for the other channels agrees with finite differences in f64.
    for act in ACTIVATIONS {
        let t = trainer(&[3, 4, 3, 2], act, "bp", 3);
        let net = RefNet::from(&t.net);
        let (xs, ys) = reference::batch(5, 3, 2, 3);
        let fd = fd_gradient(&net, &xs, &ys);
        let bp = reference::RefChannel {
            layers: (1..4)
                .map(|k| {
                    Some(vec![(
                        k,
                        reference::RefInput::Delta,
                        reference::RefCarrier::Wt,
                    )])
                })
                .collect(),
            derivative: true,
            quantize_signal: None,
            quantize_update: None,
        };
        let (dw, db) = reference::update(&net, &bp, &xs, &ys, 1.0);
        for i in 0..dw.len() {
            let mine: Vec<f64> = dw[i].iter().flatten().chain(&db[i]).copied().collect();
            let neg: Vec<f64> = fd[i].0.iter().chain(&fd[i].1).map(|v| -v).collect();
            let e = reference::rel_err(&mine, &neg);
            assert!(e < 1e-7, "{act:?} layer {i}: {e:e}");
        }
    }
}
