//! What the channel actually delivers: per hidden layer, how the signal compares with the true
//! gradient, on a fixed probe batch (opt-in, `--diagnostics`).
//!
//! - `delta_angle`: the angle (degrees) between the δ the channel delivers and backprop's δ for
//!   the same weights and batch, both flattened over the batch (defined for every channel, SRBP
//!   included). 0 for BP; below 90° means the channel's signal points downhill.
//! - `weight_angle`, `norm_ratio`: where a feedback matrix C stands in the place of W_{h+1}ᵀ
//!   (same shape), the angle between C and W_{h+1}ᵀ and ‖C‖/‖W_{h+1}‖.
//! - `orthant`: among the layer's weight-update entries where BP's gradient-descent update is not
//!   zero, the fraction whose sign the channel's update shares (a zero update of the channel counts
//!   as disagreeing).

use super::{Carrier, Channel, ChannelOptions, ChannelSpec};
use crate::kernels::loss::softmax_cross_entropy;
use crate::model::{Activations, Net};
use crate::rng;
use serde::{Deserialize, Serialize};

/// Diagnostics of one hidden layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnostics {
    /// Paper numbering: hidden layers are 1..L−1.
    pub layer: usize,
    /// Angle in degrees between the delivered δ and BP's δ.
    pub delta_angle: f64,
    /// Angle in degrees between C and W_{h+1}ᵀ, where C takes W_{h+1}ᵀ's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_angle: Option<f64>,
    /// ‖C‖ / ‖W_{h+1}‖, where C takes W_{h+1}ᵀ's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_ratio: Option<f64>,
    /// Fraction of update entries in the gradient's orthant.
    pub orthant: f64,
    /// Angle in degrees between this channel's weight update of the layer and BP's (on the
    /// probe batch). Not written into `metrics.jsonl` (whose format predates it): the Python
    /// package's `alignment()` reports it.
    #[serde(skip)]
    pub update_angle: f64,
    /// With a quantized error signal: the fractions of the layer's signal entries (probe batch)
    /// that the quantizer sends to zero and that it clips (|x| > α).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_zero: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_clipped: Option<f64>,
    /// With quantized weight updates: the same fractions of the per-example update entries of a
    /// dense layer at the current learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_zero: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_clipped: Option<f64>,
}

/// Forward pass, δ_L and the channel's hidden δ's on a batch: (activations, deltas).
fn run_channel(
    net: &Net,
    channel: &mut Channel,
    x: &[f32],
    labels: &[u8],
) -> (Activations, Vec<Vec<f32>>) {
    let batch = labels.len();
    let top = net.depth() - 1;
    let mut acts = Activations::new(net, batch);
    acts.out[0].copy_from_slice(x);
    net.forward(&mut acts, batch);
    let mut deltas: Vec<Vec<f32>> = net
        .layers
        .iter()
        .map(|l| vec![0.0; batch * l.n_out])
        .collect();
    let mut signals = deltas.clone();
    let classes = net.layers[top].n_out;
    softmax_cross_entropy(
        &mut acts.out[top + 1],
        labels,
        classes,
        Some(&mut deltas[top]),
    );
    channel.backward(net, &acts, labels, &mut deltas, &mut signals);
    (acts, deltas)
}

fn angle_deg(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 90.0;
    }
    (ab / (aa.sqrt() * bb.sqrt()))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Diagnostics of every hidden layer that learns, for `net` and `channel` on a probe batch, at
/// learning rate `rate`. The channel is cloned, so its noise stream (dropout) is not advanced.
pub fn probe(
    net: &Net,
    channel: &Channel,
    x: &[f32],
    labels: &[u8],
    rate: f64,
) -> Vec<LayerDiagnostics> {
    let batch = labels.len();
    let sizes = net.sizes();
    let mut mine = channel.clone();
    mine.census = Some(vec![(0, 0, 0); channel.routes.len()]);
    let (acts, deltas) = run_channel(net, &mut mine, x, labels);
    let census = mine.census.take().unwrap_or_default();
    let bp_spec = ChannelSpec::parse("bp", false).expect("bp is registered");
    let mut bp = Channel::new(
        &bp_spec,
        &ChannelOptions::default(),
        net,
        &mut rng::stream(0, "unused"),
        rng::stream(0, "unused"),
    )
    .expect("bp builds for every net");
    let (_, bp_deltas) = run_channel(net, &mut bp, x, labels);
    let mut out = Vec::new();
    for (i, route) in channel.routes.iter().enumerate() {
        let Some(route) = route else { continue };
        let layer = &net.layers[i];
        let n_out = sizes[i + 1];
        let d = &deltas[i][..batch * n_out];
        let g = &bp_deltas[i][..batch * n_out];
        // updates −Σ δ ⊛ input of both (the common factor η/B does not change signs)
        let input = acts.input_of(net, i);
        let (mut up, mut up_bp) = (vec![0.0; layer.w.len()], vec![0.0; layer.w.len()]);
        let mut unused = vec![0.0; layer.b.len()];
        layer.weight_grad(&deltas[i], input, batch, -1.0, 0.0, &mut up, &mut unused);
        layer.weight_grad(
            &bp_deltas[i],
            input,
            batch,
            -1.0,
            0.0,
            &mut up_bp,
            &mut unused,
        );
        let agree = up
            .iter()
            .zip(&up_bp)
            .filter(|(a, b)| (**a > 0.0 && **b > 0.0) || (**a < 0.0 && **b < 0.0))
            .count();
        let moving = up_bp.iter().filter(|b| **b != 0.0).count().max(1);
        let (mut weight_angle, mut norm_ratio) = (None, None);
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        if let [t] = route.terms.as_slice() {
            match (&t.carrier, t.from == i + 1) {
                (Carrier::Feedback(f), true) => {
                    // Wᵀ in C's orientation (N_i × N_{i+1})
                    let w = &net.layers[i + 1];
                    let wt: Vec<f32> = (0..w.n_in * w.n_out)
                        .map(|x| w.w[(x % w.n_out) * w.n_in + x / w.n_out])
                        .collect();
                    weight_angle = Some(angle_deg(&f.c, &wt));
                    norm_ratio = Some(norm(&f.c) / norm(&w.w));
                }
                (Carrier::Kernel(f), true) => {
                    let w = &net.layers[i + 1].w;
                    weight_angle = Some(angle_deg(&f.c, w));
                    norm_ratio = Some(norm(&f.c) / norm(w));
                }
                _ => {}
            }
        }
        let (signal_zero, signal_clipped) = match census.get(i) {
            Some(&(z, c, n)) if channel.quantize_signal.is_some() && n > 0 => {
                (Some(z as f64 / n as f64), Some(c as f64 / n as f64))
            }
            _ => (None, None),
        };
        let (update_zero, update_clipped) = update_census(channel, layer, i, d, input, rate);
        out.push(LayerDiagnostics {
            layer: i + 1,
            delta_angle: angle_deg(d, g),
            weight_angle,
            norm_ratio,
            orthant: agree as f64 / moving as f64,
            update_angle: angle_deg(&up, &up_bp),
            signal_zero,
            signal_clipped,
            update_zero,
            update_clipped,
        });
    }
    out
}

/// Fractions of a dense layer's per-example update entries `−rate · δ_e[r] · input_e[c]` that
/// the update quantizer sends to zero and that it clips, when updates are quantized and the
/// layer's scale is calibrated.
fn update_census(
    channel: &Channel,
    layer: &crate::model::Layer,
    i: usize,
    delta: &[f32],
    input: &[f32],
    rate: f64,
) -> (Option<f64>, Option<f64>) {
    let (Some(q), crate::model::Kind::Dense) = (channel.quantize_update, layer.kind) else {
        return (None, None);
    };
    let alpha = channel.update_alpha[i];
    if alpha <= 0.0 {
        return (None, None);
    }
    let levels = q.levels(alpha, super::quantize::Form::MidTread);
    let half_step = 0.5 * alpha / levels.steps();
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    let (mut zero, mut clipped, mut total) = (0usize, 0usize, 0usize);
    for (d, o) in delta.chunks_exact(n_out).zip(input.chunks_exact(n_in)) {
        for &dr in d {
            let c = (rate as f32 * dr).abs();
            for &oc in o {
                let v = c * oc.abs();
                zero += (v < half_step) as usize;
                clipped += (v > alpha) as usize;
            }
            total += n_in;
        }
    }
    let total = total.max(1) as f64;
    (Some(zero as f64 / total), Some(clipped as f64 / total))
}
