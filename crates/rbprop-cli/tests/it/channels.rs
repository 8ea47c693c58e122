//! Every registered channel and variant against the independent reference, the structure each
//! algorithm must have (from the paper, written here by hand), and the channel-wide invariants.

use super::gradcheck::{ACTIVATIONS, LR, engine_update, trainer, trainer_with};
use super::reference::{self, RefCarrier, RefChannel, RefInput, RefNet};
use rbprop::channel::quantize::{Alpha, Form};
use rbprop::channel::{
    CHANNELS, Carrier, Channel, ChannelOptions, FeedbackInit, Input, Quantizer, SignScale,
};
use rbprop::kernels::Activation;

const SIZES: [usize; 5] = [3, 4, 3, 5, 2];

/// Options every channel needs to be built (the registry's example: mix needs its list, kp its
/// weight decay).
fn options_for(name: &str) -> ChannelOptions {
    let spec = rbprop::channel::ChannelSpec::parse(name, false).unwrap();
    spec.kind.example_options(SIZES.len() - 2)
}

/// What hidden layer i of a net with hidden layers 0..TOP must receive, per the paper:
/// (sending layer, input, carrier kind).
fn expected(name: &str, i: usize, top: usize) -> Option<Vec<(usize, Input, &'static str)>> {
    Some(match name {
        "bp" => vec![(i + 1, Input::Delta, "W")],
        "sbp" => vec![(i + 1, Input::Signal, "W")],
        "rbp" => vec![(i + 1, Input::Delta, "C")],
        "srbp" => vec![(top, Input::Delta, "C")],
        "arbp" | "kp" => vec![(i + 1, Input::Delta, "C*")],
        "asrbp" => vec![(top, Input::Delta, "C*")],
        "cascade" => ((i + 1)..=top)
            .rev()
            .map(|k| (k, Input::Delta, "C"))
            .collect(),
        "mix" => vec![if i == 1 {
            (i + 1, Input::Delta, "W")
        } else {
            (top, Input::Delta, "C")
        }],
        "usf" => vec![(i + 1, Input::Delta, "sign")],
        "frsf" => vec![(i + 1, Input::Delta, "sign|B0|")],
        "brsf" => vec![(i + 1, Input::Delta, "sign|R|")],
        "drtp" => vec![(top, Input::Target, "C")],
        "sdfa" => vec![(top, Input::ErrorSign, "C")],
        "top" => return None,
        other => panic!("no expectation written for channel `{other}`: add one"),
    })
}

/// The reference channel: structure from the engine (checked against `expected` first), random
/// matrices copied, arithmetic independent.
fn reference_channel(name: &str, channel: &Channel) -> RefChannel {
    reference_channel_for(name, channel, &SIZES)
}

fn reference_channel_for(name: &str, channel: &Channel, sizes: &[usize]) -> RefChannel {
    let top = sizes.len() - 2;
    let rows = |m: &[f32], cols: usize| -> Vec<Vec<f64>> {
        m.chunks(cols)
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect()
    };
    // magnitudes the channel will redraw in its next backward pass (brSF), top layer first,
    // from a copy of its noise stream: |R| of W_{i+1}'s shape, R ~ N(0, 1/fan_in)
    let mut noise = channel.noise_stream();
    let mut redrawn: Vec<Vec<f32>> = vec![Vec::new(); top];
    for i in (0..top).rev() {
        let redraws = channel.routes[i]
            .iter()
            .flat_map(|r| &r.terms)
            .any(|t| matches!(t.carrier, Carrier::SignOfForward(SignScale::Redrawn)));
        if redraws {
            let sd = (1.0 / sizes[i + 1] as f64).sqrt();
            redrawn[i] = rbprop::rng::normal_vec(sizes[i + 2] * sizes[i + 1], sd, &mut noise);
        }
    }
    let layers = channel
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let want = expected(name, i, top);
            let Some(r) = r else {
                assert!(want.is_none(), "{name}: layer {i} has no route");
                return None;
            };
            let want = want.unwrap_or_else(|| panic!("{name}: layer {i} should be frozen"));
            assert_eq!(r.terms.len(), want.len(), "{name}: layer {i} term count");
            Some(
                r.terms
                    .iter()
                    .zip(want)
                    .map(|(t, (k, input, kind))| {
                        assert_eq!(
                            (t.from, t.input),
                            (k, input),
                            "{name}: layer {i} term source"
                        );
                        let carrier = match (&t.carrier, kind) {
                            (Carrier::ForwardTranspose, "W") => RefCarrier::Wt,
                            (Carrier::Feedback(f), "C") if f.adapt.is_none() => {
                                RefCarrier::C(rows(&f.c, sizes[k + 1]))
                            }
                            (Carrier::Feedback(f), "C*") if f.adapt.is_some() => {
                                RefCarrier::C(rows(&f.c, sizes[k + 1]))
                            }
                            (Carrier::SignOfForward(SignScale::Uniform), "sign") => {
                                RefCarrier::SignUniform
                            }
                            (Carrier::SignOfForward(SignScale::Fixed(b0)), "sign|B0|") => {
                                RefCarrier::SignFixed(rows(b0, sizes[i + 1]))
                            }
                            (Carrier::SignOfForward(SignScale::Redrawn), "sign|R|") => {
                                RefCarrier::SignFixed(rows(&redrawn[i], sizes[i + 1]))
                            }
                            (c, kind) => panic!("{name}: layer {i} carrier {c:?}, expected {kind}"),
                        };
                        let input = match input {
                            Input::Delta => RefInput::Delta,
                            Input::Signal => RefInput::Signal,
                            Input::Target => RefInput::Target,
                            Input::ErrorSign => RefInput::ErrorSign,
                        };
                        (k, input, carrier)
                    })
                    .collect(),
            )
        })
        .collect();
    RefChannel {
        layers,
        derivative: channel.derivative,
        quantize_signal: channel.quantize_signal.map(|q| {
            (
                q.bits,
                fixed(q.alpha),
                q.form.unwrap_or(Form::MidRise) == Form::MidRise,
            )
        }),
        quantize_update: channel.quantize_update.map(|q| (q.bits, fixed(q.alpha))),
    }
}

/// Engine vs reference update of every layer for one step; returns the worst relative error.
fn check(name: &str, act: Activation, options: &ChannelOptions, seed: u64) -> f64 {
    // f32 and f64 values can fall on either side of a quantization boundary (one level apart)
    let tol = if options.quantize_signal.is_some() || options.quantize_update.is_some() {
        1e-4
    } else {
        1e-5
    };
    let mut t = trainer_with(&SIZES, act, name, options, seed);
    // weight decay of W is not part of the channel's update (KP's decay of C is tested below)
    t.sgd.weight_decay = 0.0;
    let refchan = reference_channel(name.trim_end_matches("-nof"), &t.channel);
    let refnet = RefNet::from(&t.net);
    let (xs, ys) = reference::batch(7, SIZES[0], 2, seed + 1);
    // the engine's change is divided by LR; quantized updates depend on the learning rate itself
    let (mut dw, mut db) = reference::update(&refnet, &refchan, &xs, &ys, LR);
    dw.iter_mut().flatten().flatten().for_each(|v| *v /= LR);
    db.iter_mut().flatten().for_each(|v| *v /= LR);
    let got = engine_update(&mut t, &xs, &ys);
    let mut worst: f64 = 0.0;
    let top_norm = dw
        .last()
        .unwrap()
        .iter()
        .flatten()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    for i in 0..dw.len() {
        let want: Vec<f64> = dw[i].iter().flatten().chain(&db[i]).copied().collect();
        let mine: Vec<f64> = got[i].0.iter().chain(&got[i].1).copied().collect();
        // relative error, with a floor of 1 % of the top layer's update: sparse 0/1 channels can
        // deliver exactly cancelling signals (Σ_k (O_k − T_k) = 0 under softmax), where f32
        // leaves ~1e-9 and f64 ~1e-17
        let norm = want
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
            .max(1e-2 * top_norm);
        let diff = mine
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let e = diff / norm;
        assert!(
            e < tol,
            "{name} {act:?} {options:?} layer {i}: relative error {e:e}\nengine {mine:?}\nreference {want:?}"
        );
        if i + 1 < dw.len()
            && !name.starts_with("top")
            && !matches!(options.feedback, FeedbackInit::Sparse(_))
        {
            assert!(
                want.iter().any(|v| *v != 0.0),
                "{name}: hidden layer {i} got no update"
            );
        }
        worst = worst.max(e);
    }
    worst
}

#[test]
fn every_registered_channel_matches_its_independent_reference() {
    let mut checked = 0;
    for kind in CHANNELS {
        for derivative in [true, false] {
            if !derivative && !kind.has_nof {
                continue;
            }
            let name = if derivative {
                kind.name.to_string()
            } else {
                format!("{}-nof", kind.name)
            };
            for act in ACTIVATIONS {
                check(&name, act, &options_for(kind.name), 5);
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        4 * (2 * CHANNELS.len() - 1),
        "all channels × activations checked"
    );
}

#[test]
fn brsf_redraws_its_magnitudes_at_every_step() {
    // after a step, the next step's reference takes fresh magnitudes from the advanced noise
    // stream; a carrier that kept its first draw would not match it
    let mut t = trainer_with(&SIZES, Activation::Tanh, "brsf", &options_for("brsf"), 6);
    t.sgd.decay = 0.0;
    let (xs, ys) = reference::batch(5, SIZES[0], 2, 12);
    for step in 0..3 {
        let refchan = reference_channel("brsf", &t.channel);
        let refnet = RefNet::from(&t.net);
        let (dw, _) = reference::update(&refnet, &refchan, &xs, &ys, LR);
        let got = engine_update(&mut t, &xs, &ys);
        let want: Vec<f64> = dw[0].iter().flatten().map(|v| v / LR).collect();
        let e = reference::rel_err(&got[0].0, &want);
        assert!(e < 1e-5, "step {step}: relative error {e:e}");
    }
}

#[test]
fn every_feedback_distribution_and_averaging_matches_the_reference() {
    for feedback in [
        "normal",
        "uniform",
        "shifted",
        "shifted:2",
        "sparse:1",
        "sparse:2",
        "congruent",
    ] {
        for average in [1, 3] {
            for name in ["rbp", "srbp", "cascade", "drtp"] {
                let options = ChannelOptions {
                    feedback: FeedbackInit::parse(feedback).unwrap(),
                    average,
                    ..ChannelOptions::default()
                };
                check(name, Activation::Tanh, &options, 3);
            }
        }
    }
}

fn fixed(a: Alpha) -> f64 {
    match a {
        Alpha::Fixed(a) => a as f64,
        Alpha::Auto => panic!("the reference takes a fixed scale"),
    }
}

#[test]
fn quantized_signal_and_updates_match_the_reference() {
    for bits in [1, 2, 3, 8, 16] {
        for name in ["bp", "rbp", "srbp", "sbp"] {
            for form in [Form::MidRise, Form::MidTread] {
                if form == Form::MidTread && bits == 1 {
                    continue;
                }
                let mut q = Quantizer::new(bits, Alpha::Fixed(0.05), "q").unwrap();
                q.form = Some(form);
                let options = ChannelOptions {
                    quantize_signal: Some(q),
                    ..ChannelOptions::default()
                };
                check(name, Activation::Tanh, &options, 4);
            }
            if bits == 1 {
                continue; // updates are mid-tread: 2 bits at least
            }
            // updates are quantized after scaling by the learning rate: pick α for LR
            let options = ChannelOptions {
                quantize_update: Some(
                    Quantizer::new(bits, Alpha::Fixed((LR * 0.02) as f32), "q").unwrap(),
                ),
                ..ChannelOptions::default()
            };
            check(name, Activation::Tanh, &options, 4);
        }
    }
}

#[test]
fn auto_scales_are_the_first_minibatch_maxima_then_stay() {
    // per hidden layer, α of the signal quantizer is max |signal| over the first minibatch: the
    // signal of the same net and batch through the unquantized channel
    for name in ["rbp", "srbp", "bp"] {
        let plain = ChannelOptions::default();
        let auto = ChannelOptions {
            quantize_signal: Some(Quantizer::parse("2", "q").unwrap()),
            quantize_update: Some(Quantizer::parse("4", "q").unwrap()),
            ..ChannelOptions::default()
        };
        let mut a = trainer_with(&SIZES, Activation::Tanh, name, &plain, 9);
        let mut b = trainer_with(&SIZES, Activation::Tanh, name, &auto, 9);
        b.sgd.decay = 0.0;
        assert!(b.channel.signal_alpha.iter().all(|a| *a == 0.0));
        let (xs, ys) = reference::batch(6, SIZES[0], 2, 11);
        let x: Vec<f32> = xs.iter().flatten().map(|v| *v as f32).collect();
        a.step(&x, &ys);
        b.step(&x, &ys);
        // (below the top hidden layer, RBP's and BP's raw signals are made of quantized δ's,
        // so they equal the plain channel's only for SRBP, whose signals all come from δ_L)
        let top_hidden = SIZES.len() - 3;
        let layers = if name == "srbp" { 0 } else { top_hidden };
        for i in layers..=top_hidden {
            let want = a.signal(i)[..6 * SIZES[i + 1]]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(b.channel.signal_alpha[i], want, "{name} layer {i}");
        }
        // the update scale of each layer: max over examples and entries of |η · δ_e[r] · o_e[c]|
        assert!(b.channel.update_alpha.iter().all(|a| *a > 0.0), "{name}");
        let first = (
            b.channel.signal_alpha.clone(),
            b.channel.update_alpha.clone(),
        );
        b.step(&x, &ys);
        assert_eq!(
            (
                b.channel.signal_alpha.clone(),
                b.channel.update_alpha.clone()
            ),
            first,
            "{name}: the scales changed after the first update"
        );
    }
}

#[test]
fn adaptive_channels_update_c_by_the_product_of_its_ends() {
    // ΔC = −η·factor/B · Σ O_i δ_kᵀ − η·decay·C, computed here from the reference's δ's.
    for (name, options) in [
        (
            "arbp",
            ChannelOptions {
                adapt_factor: Some(0.3),
                ..ChannelOptions::default()
            },
        ),
        ("asrbp", ChannelOptions::default()),
        ("kp", options_for("kp")),
    ] {
        let mut t = trainer_with(&SIZES, Activation::Tanh, name, &options, 2);
        let lr = 0.5;
        t.sgd.lr = lr;
        let refchan = reference_channel(name, &t.channel);
        let refnet = RefNet::from(&t.net);
        let (xs, ys) = reference::batch(6, SIZES[0], 2, 8);
        let before: Vec<Vec<f32>> = t
            .channel
            .feedback_matrices()
            .iter()
            .map(|m| m.2.to_vec())
            .collect();
        t.step(&reference::flat(&xs), &ys);
        let (factor, decay) = match name {
            "kp" => (1.0, options.weight_decay),
            _ => (options.adapt_factor.unwrap_or(0.1), 0.0),
        };
        for (m, (i, k, after)) in t.channel.feedback_matrices().into_iter().enumerate() {
            let n_k = SIZES[k + 1];
            let mut want: Vec<f64> = before[m]
                .iter()
                .map(|c| *c as f64 * (1.0 - lr * decay))
                .collect();
            for (x, &y) in xs.iter().zip(&ys) {
                let (_, o, d) = reference::deltas(&refnet, &refchan, x, y);
                let dk = d[k].as_ref().unwrap();
                for (r, ov) in o[i + 1].iter().enumerate() {
                    for (c, dv) in dk.iter().enumerate() {
                        want[r * n_k + c] -= lr * factor / xs.len() as f64 * ov * dv;
                    }
                }
            }
            let mine: Vec<f64> = after.iter().map(|v| *v as f64).collect();
            let e = reference::rel_err(&mine, &want);
            assert!(e < 1e-5, "{name} C[{i},{k}]: relative error {e:e}");
            assert_ne!(&before[m], after, "{name}: C did not change");
        }
    }
}

#[test]
fn arbp_with_factor_one_keeps_c_minus_w_transpose_constant() {
    let options = ChannelOptions {
        adapt_factor: Some(1.0),
        ..ChannelOptions::default()
    };
    let mut t = trainer_with(&SIZES, Activation::Tanh, "arbp", &options, 12);
    t.sgd.lr = 0.1;
    let diff = |t: &rbprop::train::Trainer| -> Vec<Vec<f64>> {
        t.channel
            .feedback_matrices()
            .iter()
            .map(|(i, k, c)| {
                let w = &t.net.layers[*k];
                let (n_i, n_k) = (SIZES[i + 1], SIZES[k + 1]);
                (0..n_i * n_k)
                    .map(|x| c[x] as f64 - w.w[(x % n_k) * w.n_in + x / n_k] as f64)
                    .collect()
            })
            .collect()
    };
    let start = diff(&t);
    let c0: Vec<f32> = t
        .channel
        .feedback_matrices()
        .iter()
        .flat_map(|m| m.2.to_vec())
        .collect();
    for s in 0..200 {
        let (xs, ys) = reference::batch(10, SIZES[0], 2, 100 + s);
        t.step(&reference::flat(&xs), &ys);
    }
    let c1: Vec<f32> = t
        .channel
        .feedback_matrices()
        .iter()
        .flat_map(|m| m.2.to_vec())
        .collect();
    let moved = c0
        .iter()
        .zip(&c1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 0.05, "C barely moved: max change {moved}");
    for (a, b) in start.iter().flatten().zip(diff(&t).iter().flatten()) {
        assert!((a - b).abs() < 1e-5, "C − Wᵀ drifted: {a} → {b}");
    }
}

#[test]
fn channel_dropout_zeroes_or_rescales_each_signal_entry() {
    let sizes = [20, 64, 48, 10];
    let r = 0.25;
    let plain = trainer(&sizes, Activation::Tanh, "srbp", 4);
    let options = ChannelOptions {
        dropout: r,
        ..ChannelOptions::default()
    };
    let noisy = trainer_with(&sizes, Activation::Tanh, "srbp", &options, 4);
    let refnet = RefNet::from(&plain.net);
    let (xs, ys) = reference::batch(50, sizes[0], 10, 3);
    let rc_plain = reference_channel_for("srbp", &plain.channel, &sizes);
    // run the engine's channel on the batch and compare hidden δ's entry by entry
    let mut acts = rbprop::model::Activations::new(&plain.net, 50);
    acts.out[0] = reference::flat(&xs);
    plain.net.forward(&mut acts, 50);
    let mut deltas: Vec<Vec<f32>> = sizes[1..].iter().map(|n| vec![0.0; 50 * n]).collect();
    let mut signals = deltas.clone();
    for (e, &y) in ys.iter().enumerate() {
        let (_, o, _) = reference::deltas(&refnet, &rc_plain, &xs[e], y);
        for (j, p) in o[3].iter().enumerate() {
            deltas[2][e * 10 + j] = (*p - if j == y as usize { 1.0 } else { 0.0 }) as f32;
        }
    }
    let mut ch = noisy.channel.clone();
    ch.backward(&noisy.net, &acts, &ys, &mut deltas, &mut signals);
    let (mut zeros, mut total) = (0, 0);
    for (e, (x, &y)) in xs.iter().zip(&ys).enumerate() {
        let (_, _, want) = reference::deltas(&refnet, &rc_plain, x, y);
        for i in 0..2 {
            let n = sizes[i + 1];
            for (j, w) in want[i].as_ref().unwrap().iter().enumerate() {
                let got = deltas[i][e * n + j] as f64;
                total += 1;
                if got == 0.0 {
                    zeros += 1;
                } else {
                    let scaled = w / (1.0 - r);
                    assert!(
                        (got - scaled).abs() <= 1e-5 * scaled.abs().max(1e-3),
                        "{got} vs {scaled}"
                    );
                }
            }
        }
    }
    let frac = zeros as f64 / total as f64;
    assert!(
        (frac - r).abs() < 0.03,
        "dropped fraction {frac} for r = {r}"
    );
}

#[test]
fn top_layer_update_is_identical_under_every_channel() {
    let mut first: Option<(Vec<f64>, Vec<f64>)> = None;
    for kind in CHANNELS {
        let mut t = trainer_with(
            &SIZES,
            Activation::Tanh,
            kind.name,
            &options_for(kind.name),
            21,
        );
        t.sgd.weight_decay = 0.0;
        let (xs, ys) = reference::batch(8, SIZES[0], 2, 4);
        let top = engine_update(&mut t, &xs, &ys).pop().unwrap();
        match &first {
            None => first = Some(top),
            Some(f) => assert_eq!(f, &top, "top-layer update of {} differs", kind.name),
        }
    }
}

#[test]
fn top_never_changes_hidden_weights() {
    let mut t = trainer(&SIZES, Activation::Tanh, "top", 2);
    let before = t.net.clone();
    for s in 0..20 {
        let (xs, ys) = reference::batch(8, SIZES[0], 2, s);
        t.step(&reference::flat(&xs), &ys);
    }
    let depth = before.layers.len();
    for i in 0..depth - 1 {
        assert_eq!(
            before.layers[i], t.net.layers[i],
            "hidden layer {i} changed"
        );
    }
    assert_ne!(
        before.layers[depth - 1],
        t.net.layers[depth - 1],
        "top layer must learn"
    );
}

#[test]
fn other_channels_deliver_a_signal_different_from_bp() {
    // Guards against a channel silently doing BP: the first layer's update differs.
    let (xs, ys) = reference::batch(8, SIZES[0], 2, 1);
    let bp = engine_update(&mut trainer(&SIZES, Activation::Tanh, "bp", 3), &xs, &ys);
    for kind in CHANNELS.iter().filter(|k| k.name != "bp") {
        let mut t = trainer_with(
            &SIZES,
            Activation::Tanh,
            kind.name,
            &options_for(kind.name),
            3,
        );
        let other = engine_update(&mut t, &xs, &ys);
        assert_ne!(
            bp[0], other[0],
            "{} updates the first layer exactly like bp",
            kind.name
        );
    }
}

#[test]
fn bp_nof_and_sbp_nof_are_the_same_algorithm() {
    let (xs, ys) = reference::batch(8, SIZES[0], 2, 6);
    let a = engine_update(
        &mut trainer(&SIZES, Activation::Tanh, "bp-nof", 3),
        &xs,
        &ys,
    );
    let b = engine_update(
        &mut trainer(&SIZES, Activation::Tanh, "sbp-nof", 3),
        &xs,
        &ys,
    );
    assert_eq!(a, b);
}

#[test]
fn scaled_feedback_is_the_normal_matrices_times_the_gain() {
    // the same draws: with a power-of-two gain every entry is exactly g times the normal one
    let sizes = [50, 40, 30, 10];
    for channel in ["rbp", "srbp"] {
        let of = |feedback: &str| {
            let options = ChannelOptions {
                feedback: FeedbackInit::parse(feedback).unwrap(),
                ..ChannelOptions::default()
            };
            trainer_with(&sizes, Activation::Tanh, channel, &options, 8)
                .channel
                .feedback_matrices()
                .into_iter()
                .map(|(_, _, c)| c.to_vec())
                .collect::<Vec<_>>()
        };
        let (normal, scaled) = (of("normal"), of("scaled:4"));
        assert_eq!(normal.len(), scaled.len());
        for (n, s) in normal.iter().zip(&scaled) {
            assert!(n.iter().zip(s).all(|(n, s)| 4.0 * n == *s), "{channel}");
        }
    }
    for bad in ["scaled", "scaled:0", "scaled:-2", "scaled:inf", "scaled:x"] {
        let e = FeedbackInit::parse(bad).unwrap_err().to_string();
        assert!(e.contains("feedback") && e.contains(bad), "{bad}: {e}");
    }
    assert_eq!(
        FeedbackInit::parse("scaled:4").unwrap().to_string(),
        "scaled:4"
    );
}

#[test]
fn feedback_distributions_have_their_moments() {
    // C ~ N(0, 1/N_h) by default; uniform has the same variance; shifted has mean σ; sparse:n has
    // n ones per sending column on average; k averaged Gaussians have variance σ²/k.
    let sizes = [50, 400, 300, 10];
    let stats = |feedback: &str, average: usize| -> Vec<(f64, f64, f64)> {
        let options = ChannelOptions {
            feedback: FeedbackInit::parse(feedback).unwrap(),
            average,
            ..ChannelOptions::default()
        };
        let t = trainer_with(&sizes, Activation::Tanh, "rbp", &options, 8);
        t.channel
            .feedback_matrices()
            .iter()
            .map(|(i, _, c)| {
                let n_h = sizes[i + 1] as f64;
                let n = c.len() as f64;
                let mean = c.iter().map(|v| *v as f64).sum::<f64>() / n;
                let var = c.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n;
                (n_h, mean, var)
            })
            .collect()
    };
    for (n_h, mean, var) in stats("normal", 1) {
        assert!(mean.abs() < 0.01 / n_h.sqrt() * 10.0 && (var * n_h - 1.0).abs() < 0.05);
    }
    for (n_h, _, var) in stats("uniform", 1) {
        assert!(
            (var * n_h - 1.0).abs() < 0.05,
            "uniform variance·N_h = {}",
            var * n_h
        );
    }
    for (n_h, mean, _) in stats("shifted", 1) {
        assert!(
            (mean * n_h.sqrt() - 1.0).abs() < 0.05,
            "shifted mean/σ = {}",
            mean * n_h.sqrt()
        );
    }
    for (n_h, _, var) in stats("normal", 4) {
        assert!(
            (var * n_h * 4.0 - 1.0).abs() < 0.08,
            "k = 4 variance·N_h·k = {}",
            var * n_h * 4.0
        );
    }
    for (i, (n_h, mean, _)) in stats("sparse:2", 1).into_iter().enumerate() {
        // each entry is 1 with p = 2/N_h: the count of ones is Binomial(entries, p)
        let entries = (sizes[i + 1] * sizes[i + 2]) as f64;
        let (ones, expect) = (mean * entries, entries * 2.0 / n_h);
        assert!(
            (ones - expect).abs() < 4.0 * expect.sqrt(),
            "{ones} ones, expected {expect}"
        );
    }
    // the controls on the same kind of support: ±1 with random signs (mean 0, E[C²] = p) and
    // N(0, 1) (mean 0, E[C²] = p)
    for kind in ["sparse-signed:8", "sparse-gaussian:8"] {
        let options = ChannelOptions {
            feedback: FeedbackInit::parse(kind).unwrap(),
            ..ChannelOptions::default()
        };
        let t = trainer_with(&sizes, Activation::Tanh, "rbp", &options, 8);
        for (i, _, c) in t.channel.feedback_matrices() {
            let p = 8.0 / sizes[i + 1] as f64;
            let n = c.len() as f64;
            let nonzero = c.iter().filter(|v| **v != 0.0).count() as f64;
            let mean = c.iter().map(|v| *v as f64).sum::<f64>() / n;
            let second = c.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n;
            assert!(
                (nonzero - n * p).abs() < 4.0 * (n * p).sqrt(),
                "{kind}: {nonzero} non-zero entries, expected {}",
                n * p
            );
            assert!(mean.abs() < 4.0 * (p / n).sqrt(), "{kind}: mean {mean}");
            assert!(
                (second / p - 1.0).abs() < 0.2,
                "{kind}: E[C²]/p = {}",
                second / p
            );
            if kind.starts_with("sparse-signed") {
                assert!(c.iter().all(|v| [-1.0, 0.0, 1.0].contains(v)), "{kind}");
            }
        }
    }
}

#[test]
fn impossible_combinations_say_why() {
    let build = |name: &str, options: ChannelOptions| {
        let spec = rbprop::channel::ChannelSpec::parse(name, false).unwrap();
        let net = rbprop::model::Net::new(
            &SIZES,
            Activation::Tanh,
            &mut rbprop::rng::stream(1, "init"),
        );
        Channel::new(
            &spec,
            &options,
            &net,
            &mut rbprop::rng::stream(1, "f"),
            rbprop::rng::stream(1, "n"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let sparse = ChannelOptions {
        feedback: FeedbackInit::Sparse(2.0),
        ..ChannelOptions::default()
    };
    assert!(build("bp", sparse).contains("no random feedback matrices"));
    assert!(
        build(
            "rbp",
            ChannelOptions {
                adapt_factor: Some(0.5),
                ..ChannelOptions::default()
            }
        )
        .contains("not adaptive")
    );
    assert!(build("mix", ChannelOptions::default()).contains("--mix"));
    assert!(
        build(
            "mix",
            ChannelOptions {
                mix: vec![rbprop::channel::MixSignal::Bp],
                ..ChannelOptions::default()
            }
        )
        .contains("3 hidden layers")
    );
    assert!(build("kp", ChannelOptions::default()).contains("weight decay"));
    assert!(
        build(
            "top",
            ChannelOptions {
                dropout: 0.1,
                ..ChannelOptions::default()
            }
        )
        .contains("no signal")
    );
    assert!(
        build(
            "rbp",
            ChannelOptions {
                feedback: FeedbackInit::Sparse(9.0),
                ..ChannelOptions::default()
            }
        )
        .contains("exceeds")
    );
    assert!(
        build(
            "rbp",
            ChannelOptions {
                dropout: 1.0,
                ..ChannelOptions::default()
            }
        )
        .contains("[0, 1)")
    );
}
