//! Conv nets end to end: BP against finite differences of an independent f64 forward pass, and
//! hand-computed (f64, written from the paper's equations) RBP and SRBP updates through
//! convolution and pooling.

use super::gradcheck::LR;
use super::reference::rel_err;
use rand::{Rng, SeedableRng};
use rbprop::channel::{Carrier, Channel, ChannelOptions, ChannelSpec};
use rbprop::kernels::Activation;
use rbprop::model::{Kind, Net, parse_arch};
use rbprop::rng;
use rbprop::train::{Sgd, Trainer};

const INPUT: (usize, usize, usize) = (2, 6, 5);
const ARCH: &str = "conv3k3-pool3s2-conv2k3s1p1-pool2s2p0-fc4";
const CLASSES: usize = 3;

fn net(seed: u64) -> Net {
    let mut n = Net::from_arch(
        INPUT,
        &parse_arch(ARCH).unwrap(),
        CLASSES,
        Activation::Tanh,
        &mut rng::stream(seed, "init"),
    )
    .unwrap();
    for l in &mut n.layers {
        for (j, b) in l.b.iter_mut().enumerate() {
            *b = 0.05 * (j % 3) as f32 - 0.05;
        }
    }
    n
}

fn trainer(channel: &str, seed: u64) -> Trainer {
    trainer_with(channel, &ChannelOptions::default(), seed)
}

fn trainer_with(channel: &str, options: &ChannelOptions, seed: u64) -> Trainer {
    let n = net(seed);
    let spec = ChannelSpec::parse(channel, false).unwrap();
    let ch = Channel::new(
        &spec,
        options,
        &n,
        &mut rng::stream(seed, "feedback"),
        rng::stream(seed, "noise"),
    )
    .unwrap();
    Trainer::new(
        n,
        ch,
        Sgd {
            lr: LR,
            decay: 0.0,
            momentum: 0.0,
            weight_decay: 0.0,
        },
    )
}

// ---- an independent f64 reference of the same net, written with plain loops ----

struct RefLayer {
    w: Vec<f64>,
    b: Vec<f64>,
    kind: Kind,
    pool: Option<rbprop::kernels::pool::PoolGeom>,
    n_in: usize,
    n_out: usize,
}

fn reference(n: &Net) -> Vec<RefLayer> {
    n.layers
        .iter()
        .map(|l| RefLayer {
            w: l.w.iter().map(|v| *v as f64).collect(),
            b: l.b.iter().map(|v| *v as f64).collect(),
            kind: l.kind,
            pool: l.pool,
            n_in: l.n_in,
            n_out: l.n_out,
        })
        .collect()
}

/// y = W ⊛ x + b (pre-activation).
fn linear(l: &RefLayer, w: &[f64], x: &[f64]) -> Vec<f64> {
    match l.kind {
        Kind::Dense => (0..l.n_out)
            .map(|o| l.b[o] + (0..l.n_in).map(|i| w[o * l.n_in + i] * x[i]).sum::<f64>())
            .collect(),
        Kind::Conv(g) => {
            let mut y = vec![0.0; l.n_out];
            for o in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut s = l.b[o];
                        for c in 0..g.c_in {
                            for ky in 0..g.k {
                                for kx in 0..g.k {
                                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < g.h
                                        && (ix as usize) < g.w
                                    {
                                        s += w[((o * g.c_in + c) * g.k + ky) * g.k + kx]
                                            * x[(c * g.h + iy as usize) * g.w + ix as usize];
                                    }
                                }
                            }
                        }
                        y[(o * g.h_out + oy) * g.w_out + ox] = s;
                    }
                }
            }
            y
        }
    }
}

/// `l`'s shape with zero biases (weights are passed to `linear` separately).
fn without_bias(l: &RefLayer) -> RefLayer {
    RefLayer {
        w: vec![],
        b: vec![0.0; l.b.len()],
        kind: l.kind,
        pool: None,
        n_in: l.n_in,
        n_out: l.n_out,
    }
}

/// The adjoint of `linear` in x: dx = Wᵀ ⊛ d.
fn linear_t(l: &RefLayer, w: &[f64], d: &[f64]) -> Vec<f64> {
    // by linearity: dx_i = Σ_o d_o ∂y_o/∂x_i, computed with unit inputs
    let zero_b = without_bias(l);
    (0..l.n_in)
        .map(|i| {
            let mut e = vec![0.0; l.n_in];
            e[i] = 1.0;
            linear(&zero_b, w, &e)
                .iter()
                .zip(d)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Max-pool: (pooled, index of each max).
fn pool(p: &rbprop::kernels::pool::PoolGeom, x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let (mut y, mut at) = (vec![0.0; p.out_len()], vec![0; p.out_len()]);
    for c in 0..p.c {
        for oy in 0..p.h_out {
            for ox in 0..p.w_out {
                let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
                for ky in 0..p.k {
                    for kx in 0..p.k {
                        let iy = (oy * p.stride + ky) as isize - p.pad as isize;
                        let ix = (ox * p.stride + kx) as isize - p.pad as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                            let i = (c * p.h + iy as usize) * p.w + ix as usize;
                            if x[i] > best {
                                (best, arg) = (x[i], i);
                            }
                        }
                    }
                }
                let o = (c * p.h_out + oy) * p.w_out + ox;
                (y[o], at[o]) = (best, arg);
            }
        }
    }
    (y, at)
}

struct Pass {
    /// input of each layer
    inputs: Vec<Vec<f64>>,
    /// pre-activation of each layer
    s: Vec<Vec<f64>>,
    /// max positions of each pooling layer
    at: Vec<Vec<usize>>,
    probs: Vec<f64>,
}

fn forward(r: &[RefLayer], x: &[f64]) -> Pass {
    let mut p = Pass {
        inputs: vec![],
        s: vec![],
        at: vec![],
        probs: vec![],
    };
    let mut h = x.to_vec();
    for (i, l) in r.iter().enumerate() {
        p.inputs.push(h.clone());
        let s = linear(l, &l.w, &h);
        p.s.push(s.clone());
        if i + 1 == r.len() {
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            p.probs = e.iter().map(|v| v / z).collect();
        } else {
            let o: Vec<f64> = s.iter().map(|v| v.tanh()).collect();
            match &l.pool {
                Some(pg) => {
                    let (y, at) = pool(pg, &o);
                    p.at.push(at);
                    h = y;
                }
                None => {
                    p.at.push(vec![]);
                    h = o;
                }
            }
        }
    }
    p
}

fn loss(r: &[RefLayer], xs: &[Vec<f64>], ys: &[u8]) -> f64 {
    xs.iter()
        .zip(ys)
        .map(|(x, &y)| -forward(r, x).probs[y as usize].ln())
        .sum::<f64>()
        / xs.len() as f64
}

/// dW (flattened) of one example for layer i from δ_i (pre-activation gradient).
fn weight_update(l: &RefLayer, input: &[f64], delta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    // ∂(Σ δ·S)/∂W by linearity, through unit weights
    let zero_b = without_bias(l);
    let mut dw = vec![0.0; l.w.len()];
    for (k, g) in dw.iter_mut().enumerate() {
        let mut e = vec![0.0; l.w.len()];
        e[k] = 1.0;
        *g = linear(&zero_b, &e, input)
            .iter()
            .zip(delta)
            .map(|(a, b)| a * b)
            .sum();
    }
    let db = match l.kind {
        Kind::Dense => delta.to_vec(),
        Kind::Conv(g) => (0..g.c_out)
            .map(|o| {
                delta[o * g.positions()..(o + 1) * g.positions()]
                    .iter()
                    .sum()
            })
            .collect(),
    };
    (dw, db)
}

/// How the reference sends the error to hidden layer i.
enum RefChan {
    Bp,
    /// random weights in each W_{i+1}'s place (W's shape)
    Rbp(Vec<Vec<f64>>),
    /// dense C_i (N_i × N_L) onto layer i's output before pooling
    Srbp(Vec<Vec<f64>>),
}

fn reference_update(
    r: &[RefLayer],
    ch: &RefChan,
    xs: &[Vec<f64>],
    ys: &[u8],
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let depth = r.len();
    let mut acc: Vec<(Vec<f64>, Vec<f64>)> = r
        .iter()
        .map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()]))
        .collect();
    for (x, &y) in xs.iter().zip(ys) {
        let p = forward(r, x);
        let mut deltas: Vec<Vec<f64>> = vec![vec![]; depth];
        let mut top = p.probs.clone();
        top[y as usize] -= 1.0;
        deltas[depth - 1] = top.clone();
        for i in (0..depth - 1).rev() {
            let signal = match ch {
                RefChan::Srbp(c) => {
                    let c = &c[i];
                    let n = r[i].n_out;
                    (0..n)
                        .map(|u| (0..top.len()).map(|k| c[u * top.len() + k] * top[k]).sum())
                        .collect()
                }
                RefChan::Bp | RefChan::Rbp(_) => {
                    let w = match ch {
                        RefChan::Rbp(b) => &b[i],
                        _ => &r[i + 1].w,
                    };
                    let at_input = linear_t(&r[i + 1], w, &deltas[i + 1]);
                    // route back through layer i's pooling
                    match &r[i].pool {
                        Some(_) => {
                            let mut g = vec![0.0; r[i].n_out];
                            for (o, v) in at_input.iter().enumerate() {
                                g[p.at[i][o]] += v;
                            }
                            g
                        }
                        None => at_input,
                    }
                }
            };
            deltas[i] = signal
                .iter()
                .zip(&p.s[i])
                .map(|(g, s)| g / s.cosh().powi(2))
                .collect::<Vec<f64>>();
        }
        for i in 0..depth {
            let (dw, db) = weight_update(&r[i], &p.inputs[i], &deltas[i]);
            acc[i]
                .0
                .iter_mut()
                .zip(dw)
                .for_each(|(a, d)| *a -= d / xs.len() as f64);
            acc[i]
                .1
                .iter_mut()
                .zip(db)
                .for_each(|(a, d)| *a -= d / xs.len() as f64);
        }
    }
    acc
}

fn batch(seed: u64, n: usize) -> (Vec<Vec<f64>>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dim = INPUT.0 * INPUT.1 * INPUT.2;
    (
        (0..n)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect(),
        (0..n).map(|_| rng.random_range(0..CLASSES as u8)).collect(),
    )
}

fn engine_update(t: &mut Trainer, xs: &[Vec<f64>], ys: &[u8]) -> Vec<(Vec<f64>, Vec<f64>)> {
    super::gradcheck::engine_update(t, xs, ys)
}

#[test]
fn conv_net_bp_matches_finite_differences_of_an_independent_forward_pass() {
    let mut t = trainer("bp", 4);
    let r = reference(&t.net);
    let (xs, ys) = batch(9, 4);
    let got = engine_update(&mut t, &xs, &ys);
    let eps = 1e-6;
    for i in 0..r.len() {
        let mut fd = Vec::new();
        for k in 0..r[i].w.len() {
            let mut rp = reference(&net(4));
            let mut rm = reference(&net(4));
            rp[i].w[k] += eps;
            rm[i].w[k] -= eps;
            fd.push(-(loss(&rp, &xs, &ys) - loss(&rm, &xs, &ys)) / (2.0 * eps));
        }
        let e = rel_err(&got[i].0, &fd);
        assert!(
            e < 1e-4,
            "layer {i} ({:?}): relative error {e:e}",
            r[i].kind
        );
    }
}

#[test]
fn rbp_and_srbp_through_conv_and_pooling_match_the_hand_computed_update() {
    for name in ["bp", "rbp", "srbp"] {
        let mut t = trainer(name, 6);
        let r = reference(&t.net);
        let ch = match name {
            "bp" => RefChan::Bp,
            _ => {
                let mats: Vec<Vec<f64>> = t
                    .channel
                    .routes
                    .iter()
                    .map(|route| match &route.as_ref().unwrap().terms[0].carrier {
                        Carrier::Kernel(f) | Carrier::Feedback(f) => {
                            f.c.iter().map(|v| *v as f64).collect()
                        }
                        other => panic!("{name}: unexpected carrier {other:?}"),
                    })
                    .collect();
                if name == "rbp" {
                    // through conv and pooling, RBP uses random weights of W_{i+1}'s shape; between
                    // dense layers a matrix C = Bᵀ (N_i × N_{i+1}), the same algorithm
                    let mut ws = Vec::new();
                    for (i, route) in t.channel.routes.iter().enumerate() {
                        let next = &t.net.layers[i + 1];
                        match &route.as_ref().unwrap().terms[0].carrier {
                            Carrier::Kernel(_) => {
                                assert!(
                                    t.net.layers[i].pool.is_some() || next.kind != Kind::Dense,
                                    "layer {i}"
                                );
                                ws.push(mats[i].clone());
                            }
                            Carrier::Feedback(_) => {
                                assert!(
                                    t.net.layers[i].pool.is_none() && next.kind == Kind::Dense,
                                    "layer {i}"
                                );
                                let (n_i, n_k) = (next.n_in, next.n_out);
                                ws.push(
                                    (0..n_k * n_i)
                                        .map(|x| mats[i][(x % n_i) * n_k + x / n_i])
                                        .collect(),
                                );
                            }
                            _ => unreachable!(),
                        }
                        assert_eq!(ws[i].len(), next.w.len());
                    }
                    RefChan::Rbp(ws)
                } else {
                    RefChan::Srbp(mats)
                }
            }
        };
        let (xs, ys) = batch(3, 5);
        let want = reference_update(&r, &ch, &xs, &ys);
        let got = engine_update(&mut t, &xs, &ys);
        for i in 0..want.len() {
            let e = rel_err(&got[i].0, &want[i].0).max(rel_err(&got[i].1, &want[i].1));
            assert!(e < 1e-5, "{name} layer {i}: relative error {e:e}");
        }
    }
}

/// Max-pooling routes a layer's signal to each window's winning input only; the others receive
/// exactly 0, which the quantizer must leave at 0 (a mid-rise quantizer that mapped it to Δ/2
/// sent every non-winning neuron a signal and made 2-bit BP fall to chance on the conv grid).
#[test]
fn a_quantized_signal_reaches_only_the_pooling_winners() {
    for name in ["bp", "rbp", "srbp"] {
        for q in ["2", "1", "4:auto:mid-tread"] {
            let options = ChannelOptions {
                quantize_signal: Some(rbprop::channel::Quantizer::parse(q, "q").unwrap()),
                ..ChannelOptions::default()
            };
            let mut plain = trainer(name, 5);
            let mut quant = trainer_with(name, &options, 5);
            let (xs, ys) = batch(8, 6);
            engine_update(&mut plain, &xs, &ys);
            engine_update(&mut quant, &xs, &ys);
            let mut silent = 0;
            for (i, layer) in plain.net.layers.iter().enumerate() {
                if layer.pool.is_none() || i + 1 == plain.net.depth() {
                    continue;
                }
                let n = 6 * layer.n_out;
                let (p, q_) = (&plain.signal(i)[..n], &quant.signal(i)[..n]);
                // no signal stays none; mid-rise (no zero level) keeps every other one
                let mid_rise = !q.contains("mid-tread");
                for (k, (a, b)) in p.iter().zip(q_).enumerate() {
                    assert!(
                        if *a == 0.0 {
                            *b == 0.0
                        } else {
                            !mid_rise || *b != 0.0
                        },
                        "{name} {q} layer {i} [{k}]: {a} → {b}"
                    );
                }
                silent += p.iter().filter(|v| **v == 0.0).count();
            }
            // (SRBP sends its projection of the error to every neuron of a map, winner or not)
            assert!(
                silent > 0 || name == "srbp",
                "{name}: no input lost its pooling window"
            );
        }
    }
}

#[test]
fn conv_training_is_identical_for_one_and_two_threads() {
    let split = rbprop::data::embedded();
    let cfg = rbprop::config::TrainConfig {
        arch: Some("conv4k5-pool3s2-fc16".into()),
        epochs: 1,
        train_limit: Some(400),
        ..Default::default()
    };
    let one = rbprop::run::run(&cfg, &split, None, &mut rbprop::run::Silent).unwrap();
    let two = rbprop::run::run(
        &rbprop::config::TrainConfig { threads: 2, ..cfg },
        &split,
        None,
        &mut rbprop::run::Silent,
    )
    .unwrap();
    assert_eq!(one[0].test_acc, two[0].test_acc);
    assert_eq!(one[0].train_loss, two[0].train_loss);
}

#[test]
fn every_registered_channel_runs_on_a_conv_net_or_says_why_not() {
    use rbprop::channel::quantize::Alpha;
    use rbprop::channel::{CHANNELS, FeedbackInit, Quantizer};
    let split = rbprop::data::embedded();
    for kind in CHANNELS {
        let mut cfg = rbprop::config::TrainConfig {
            channel: kind.name.parse().unwrap(),
            arch: Some("conv4k3-pool2-conv4k3-fc8".into()),
            epochs: 1,
            train_limit: Some(200),
            batch: 50,
            ..Default::default()
        };
        match kind.name {
            "mix" => {
                cfg.channel_options.mix =
                    rbprop::channel::MixSignal::parse_list("srbp,bp,srbp").unwrap()
            }
            "kp" => cfg.weight_decay = 1e-4,
            _ => {}
        }
        let ms = rbprop::run::run(&cfg, &split, None, &mut rbprop::run::Silent)
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name));
        assert!(ms[0].test_loss.is_finite(), "{}", kind.name);
    }
    // variants on conv layers: distributions, averaging, noise and precision
    let base = rbprop::config::TrainConfig {
        channel: "arbp".parse().unwrap(),
        arch: Some("conv4k3-pool2-fc8".into()),
        epochs: 1,
        train_limit: Some(200),
        batch: 50,
        decay: 0.0,
        ..Default::default()
    };
    let mut v = base.clone();
    v.channel_options.feedback = FeedbackInit::Sparse(2.0);
    v.channel_options.average = 2;
    v.channel_options.dropout = 0.2;
    v.channel_options.quantize_signal = Some(Quantizer::new(8, Alpha::Fixed(1.0), "q").unwrap());
    v.channel_options.quantize_update = Some(Quantizer::new(8, Alpha::Fixed(0.0625), "q").unwrap());
    let ms = rbprop::run::run(&v, &split, None, &mut rbprop::run::Silent).unwrap();
    assert!(ms[0].test_loss.is_finite());
    // and what does not fit is refused with the reason
    let mut c = base.clone();
    c.channel_options.feedback = FeedbackInit::Congruent;
    let e = rbprop::run::run(&c, &split, None, &mut rbprop::run::Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dense nets without pooling"), "{e}");
    let big = rbprop::config::TrainConfig {
        channel: "cascade".parse().unwrap(),
        arch: Some("conv64k3-conv64k3-fc8".into()),
        ..base
    };
    let e = rbprop::run::run(&big, &split, None, &mut rbprop::run::Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too large"), "{e}");
}
