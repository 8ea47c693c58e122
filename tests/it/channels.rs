//! Every channel's update against the independent reference, and the channel-wide invariants.

use super::gradcheck::{ACTIVATIONS, engine_update, trainer};
use super::reference::{self, RefChannel, RefNet};
use rbp::channel::{CHANNELS, Carrier, Channel};

/// The f64 reference of a channel, with the engine's feedback matrices copied in.
fn reference_channel(name: &str, channel: &Channel) -> RefChannel {
    let mats = || -> Vec<Vec<Vec<f64>>> {
        channel
            .routes
            .iter()
            .map(|r| {
                let t = &r.as_ref().unwrap().terms[0];
                let Carrier::Feedback(c) = &t.carrier else {
                    panic!("no feedback matrix")
                };
                // C is N_i × N_k with k the sending layer
                c.chunks(SIZES[t.from + 1])
                    .map(|row| row.iter().map(|&v| v as f64).collect())
                    .collect()
            })
            .collect()
    };
    match name {
        "bp" => RefChannel::Bp,
        "sbp" => RefChannel::Sbp,
        "rbp" => RefChannel::Rbp(mats()),
        "srbp" => RefChannel::Srbp(mats()),
        "top" => RefChannel::Top,
        other => panic!("no reference for {other}"),
    }
}

const SIZES: [usize; 5] = [3, 4, 3, 5, 2];

#[test]
fn every_channel_matches_its_independent_reference() {
    let mut checked = 0;
    for kind in CHANNELS {
        for derivative in [true, false] {
            if !derivative && !kind.has_nof {
                continue;
            }
            for act in ACTIVATIONS {
                let name = if derivative {
                    kind.name.to_string()
                } else {
                    format!("{}-nof", kind.name)
                };
                let mut t = trainer(&SIZES, act, &name, 5);
                let refchan = reference_channel(kind.name, &t.channel);
                let refnet = RefNet::from(&t.net);
                let (xs, ys) = reference::batch(7, SIZES[0], 2, 9);
                let (dw, db) = reference::update(&refnet, &refchan, derivative, &xs, &ys, 1.0);
                let got = engine_update(&mut t, &xs, &ys);
                for i in 0..dw.len() {
                    let want: Vec<f64> = dw[i].iter().flatten().chain(&db[i]).copied().collect();
                    let mine: Vec<f64> = got[i].0.iter().chain(&got[i].1).copied().collect();
                    let e = reference::rel_err(&mine, &want);
                    assert!(e < 1e-5, "{name} {act:?} layer {i}: relative error {e:e}");
                    if i + 1 < dw.len() && kind.name != "top" {
                        assert!(
                            want.iter().any(|v| *v != 0.0),
                            "{name}: hidden layer {i} got no update"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        4 * (2 * 4 + 1),
        "all channels × activations checked"
    );
}

#[test]
fn top_layer_update_is_identical_under_every_channel() {
    let mut first: Option<(Vec<f64>, Vec<f64>)> = None;
    for kind in CHANNELS {
        let mut t = trainer(&SIZES, rbp::kernels::Activation::Tanh, kind.name, 21);
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
    let mut t = trainer(&SIZES, rbp::kernels::Activation::Tanh, "top", 2);
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
fn random_channels_deliver_a_signal_different_from_bp() {
    // Guards against a channel silently doing BP: the hidden updates differ.
    let (xs, ys) = reference::batch(8, SIZES[0], 2, 1);
    let bp = engine_update(
        &mut trainer(&SIZES, rbp::kernels::Activation::Tanh, "bp", 3),
        &xs,
        &ys,
    );
    for name in ["rbp", "srbp", "sbp", "bp-nof"] {
        let other = engine_update(
            &mut trainer(&SIZES, rbp::kernels::Activation::Tanh, name, 3),
            &xs,
            &ys,
        );
        assert_ne!(
            bp[0], other[0],
            "{name} updates the first layer exactly like bp"
        );
    }
}

#[test]
fn bp_nof_and_sbp_nof_are_the_same_algorithm() {
    let (xs, ys) = reference::batch(8, SIZES[0], 2, 6);
    let a = engine_update(
        &mut trainer(&SIZES, rbp::kernels::Activation::Tanh, "bp-nof", 3),
        &xs,
        &ys,
    );
    let b = engine_update(
        &mut trainer(&SIZES, rbp::kernels::Activation::Tanh, "sbp-nof", 3),
        &xs,
        &ys,
    );
    assert_eq!(a, b);
}

#[test]
fn feedback_matrices_have_the_default_scale() {
    // C ~ N(0, 1/N_h) with N_h the receiving layer: check the sample variance on a big net.
    let t = trainer(
        &[50, 400, 300, 10],
        rbp::kernels::Activation::Tanh,
        "rbp",
        8,
    );
    for (i, _, c) in t.channel.feedback_matrices() {
        let n_h = [400, 300][i] as f64;
        let var = c.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / c.len() as f64;
        assert!(
            (var * n_h - 1.0).abs() < 0.05,
            "layer {i}: variance·N_h = {}",
            var * n_h
        );
    }
}
