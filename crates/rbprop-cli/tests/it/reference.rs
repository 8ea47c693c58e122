//! An independent f64 reference: the paper's equations written out per example with plain loops,
//! sharing no code with the engine (only the weights are copied in).

use rbprop::kernels::Activation;
use rbprop::model::Net;

/// A net in f64: `w[i][r][c]`, `b[i][r]`.
#[derive(Clone, Debug)]
pub struct RefNet {
    pub w: Vec<Vec<Vec<f64>>>,
    pub b: Vec<Vec<f64>>,
    pub act: Activation,
}

pub fn f(act: Activation, s: f64) -> f64 {
    match act {
        Activation::Tanh => s.tanh(),
        Activation::Logistic => 1.0 / (1.0 + (-s).exp()),
        Activation::Relu => s.max(0.0),
        Activation::Linear => s,
    }
}

/// f'(s), from s (not from the output, unlike the engine).
pub fn df(act: Activation, s: f64) -> f64 {
    match act {
        Activation::Tanh => 1.0 / s.cosh().powi(2),
        Activation::Logistic => {
            let e = (-s).exp();
            e / (1.0 + e).powi(2)
        }
        Activation::Relu => {
            if s > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Linear => 1.0,
    }
}

impl RefNet {
    pub fn from(net: &Net) -> Self {
        RefNet {
            w: net
                .layers
                .iter()
                .map(|l| {
                    (0..l.n_out)
                        .map(|r| (0..l.n_in).map(|c| l.w[r * l.n_in + c] as f64).collect())
                        .collect()
                })
                .collect(),
            b: net
                .layers
                .iter()
                .map(|l| l.b.iter().map(|&v| v as f64).collect())
                .collect(),
            act: net.activation,
        }
    }

    /// Pre-activations S_1..S_L and outputs O_0..O_{L} (O_L = softmax probabilities) of one example.
    pub fn forward(&self, x: &[f64]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut s_all = Vec::new();
        let mut o_all = vec![x.to_vec()];
        let depth = self.w.len();
        for i in 0..depth {
            let o = o_all.last().unwrap();
            let s: Vec<f64> = self.w[i]
                .iter()
                .zip(&self.b[i])
                .map(|(row, b)| row.iter().zip(o).map(|(w, x)| w * x).sum::<f64>() + b)
                .collect();
            let out = if i + 1 < depth {
                s.iter().map(|&v| f(self.act, v)).collect()
            } else {
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                e.iter().map(|v| v / z).collect()
            };
            s_all.push(s);
            o_all.push(out);
        }
        (s_all, o_all)
    }

    /// Mean cross-entropy over a batch.
    pub fn loss(&self, xs: &[Vec<f64>], ys: &[u8]) -> f64 {
        xs.iter()
            .zip(ys)
            .map(|(x, &y)| -self.forward(x).1.last().unwrap()[y as usize].ln())
            .sum::<f64>()
            / xs.len() as f64
    }
}

/// What a reference term reads from the upper layer.
#[derive(Clone, Debug)]
pub enum RefInput {
    Delta,
    Signal,
    /// −T
    Target,
    /// sign(δ_L)
    ErrorSign,
}

/// What carries it: Wᵀ, a copy of the engine's C (N_h × N_k), or a sign-symmetric matrix
/// recomputed here from W.
#[derive(Clone, Debug)]
pub enum RefCarrier {
    Wt,
    C(Vec<Vec<f64>>),
    /// σ(W)·sign(W)ᵀ
    SignUniform,
    /// (|B0| ⊙ sign(W))ᵀ, B0 in W's orientation
    SignFixed(Vec<Vec<f64>>),
}

/// One term of a hidden layer's signal: (sending layer, input, carrier).
pub type RefTerm = (usize, RefInput, RefCarrier);

/// How the reference forms hidden δ's: per hidden layer, its terms (None: frozen), and the
/// channel-wide derivative flag and quantizers: the signal's `(bits, α, mid-rise)`, the
/// updates' mid-tread `(bits, α)`.
#[derive(Clone, Debug)]
pub struct RefChannel {
    pub layers: Vec<Option<Vec<RefTerm>>>,
    pub derivative: bool,
    pub quantize_signal: Option<(u32, f64, bool)>,
    pub quantize_update: Option<(u32, f64)>,
}

/// The mid-rise quantizer, written independently: levels at odd multiples of Δ/2, Δ = 2α/2^b,
/// the nearest one below or at x shifted up half a step, the outermost at ±(α − Δ/2); an exact
/// 0 (no signal) stays 0.
pub fn quantize_mid_rise(x: f64, bits: u32, alpha: f64) -> f64 {
    if x == 0.0 {
        return x;
    }
    let delta = (2.0 * alpha / 2f64.powi(bits as i32)) as f32 as f64;
    let k = ((x / delta) as f32).floor() as f64;
    let top = alpha - delta / 2.0;
    (delta * (k + 0.5)).clamp(-top, top)
}

/// The mid-tread quantizer, written independently: α·sign(x) for b = 1; else
/// clip(α·round(x·s/α)/s, −α, α) with s = 2^(b−1) − 1 (ties to even).
pub fn quantize(x: f64, bits: u32, alpha: f64) -> f64 {
    if bits == 1 {
        return alpha
            * if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            };
    }
    let s = (2f64.powi(bits as i32 - 1) - 1.0) as f32 as f64;
    let v = ((x * s / alpha) as f32).round_ties_even() as f64;
    (alpha * v / s).clamp(-alpha, alpha)
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn matvec_t(w: &[Vec<f64>], d: &[f64]) -> Vec<f64> {
    // Wᵀ d, W: rows × cols, d: rows
    let cols = w[0].len();
    (0..cols)
        .map(|c| w.iter().zip(d).map(|(row, dv)| row[c] * dv).sum())
        .collect()
}

fn matvec(c: &[Vec<f64>], d: &[f64]) -> Vec<f64> {
    c.iter()
        .map(|row| row.iter().zip(d).map(|(a, b)| a * b).sum())
        .collect()
}

/// The expected change of every weight and bias after one update with learning rate `lr` on a
/// batch, `(ΔW[i][r][c], Δb[i][r])`, computed example by example from the paper's equations.
pub fn update(
    net: &RefNet,
    channel: &RefChannel,
    xs: &[Vec<f64>],
    ys: &[u8],
    lr: f64,
) -> (Vec<Vec<Vec<f64>>>, Vec<Vec<f64>>) {
    let depth = net.w.len();
    let mut dw: Vec<Vec<Vec<f64>>> = net
        .w
        .iter()
        .map(|l| vec![vec![0.0; l[0].len()]; l.len()])
        .collect();
    let mut db: Vec<Vec<f64>> = net.b.iter().map(|b| vec![0.0; b.len()]).collect();
    let per_example = |d: &[f64], o: &[f64], dw: &mut Vec<Vec<f64>>, db: &mut Vec<f64>| {
        for (r, dv) in d.iter().enumerate() {
            let q = |x: f64| match channel.quantize_update {
                Some((b, a)) => quantize(x, b, a),
                None => x,
            };
            db[r] += q(-lr * dv);
            for (c, ov) in o.iter().enumerate() {
                dw[r][c] += q(-lr * dv * ov);
            }
        }
    };
    for (x, &y) in xs.iter().zip(ys) {
        let (s, o, deltas) = deltas(net, channel, x, y);
        let _ = s;
        for i in 0..depth {
            if let Some(d) = &deltas[i] {
                per_example(d, &o[i], &mut dw[i], &mut db[i]);
            }
        }
    }
    let inv = 1.0 / xs.len() as f64;
    dw.iter_mut().flatten().flatten().for_each(|v| *v *= inv);
    db.iter_mut().flatten().for_each(|v| *v *= inv);
    (dw, db)
}

/// (S, O, δ per weight layer) of one example under `channel`.
#[allow(clippy::type_complexity)]
pub fn deltas(
    net: &RefNet,
    channel: &RefChannel,
    x: &[f64],
    y: u8,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Option<Vec<f64>>>) {
    let depth = net.w.len();
    let (s, o) = net.forward(x);
    let mut top = o[depth].clone();
    top[y as usize] -= 1.0;
    let mut deltas: Vec<Option<Vec<f64>>> = vec![None; depth];
    let mut signals: Vec<Option<Vec<f64>>> = vec![None; depth];
    deltas[depth - 1] = Some(top.clone());
    signals[depth - 1] = Some(top.clone());
    for i in (0..depth - 1).rev() {
        let Some(terms) = &channel.layers[i] else {
            continue;
        };
        let mut g = vec![0.0; net.w[i].len()];
        for (k, input, carrier) in terms {
            let v: Vec<f64> = match input {
                RefInput::Delta => deltas[*k].clone().unwrap(),
                RefInput::Signal => signals[*k].clone().unwrap(),
                RefInput::Target => (0..top.len())
                    .map(|j| if j == y as usize { -1.0 } else { 0.0 })
                    .collect(),
                RefInput::ErrorSign => top.iter().map(|v| sign(*v)).collect(),
            };
            let w = &net.w[*k];
            let contrib = match carrier {
                RefCarrier::Wt => matvec_t(w, &v),
                RefCarrier::C(c) => matvec(c, &v),
                RefCarrier::SignUniform => {
                    let all: Vec<f64> = w.iter().flatten().copied().collect();
                    let m = all.iter().sum::<f64>() / all.len() as f64;
                    let sd = (all.iter().map(|a| (a - m).powi(2)).sum::<f64>() / all.len() as f64)
                        .sqrt();
                    let sw: Vec<Vec<f64>> = w
                        .iter()
                        .map(|r| r.iter().map(|a| sd * sign(*a)).collect())
                        .collect();
                    matvec_t(&sw, &v)
                }
                RefCarrier::SignFixed(b0) => {
                    let sw: Vec<Vec<f64>> = w
                        .iter()
                        .zip(b0)
                        .map(|(r, br)| r.iter().zip(br).map(|(a, b)| b.abs() * sign(*a)).collect())
                        .collect();
                    matvec_t(&sw, &v)
                }
            };
            g.iter_mut().zip(contrib).for_each(|(g, c)| *g += c);
        }
        if let Some((b, a, mid_rise)) = channel.quantize_signal {
            g.iter_mut().for_each(|v| {
                *v = if mid_rise {
                    quantize_mid_rise(*v, b, a)
                } else {
                    quantize(*v, b, a)
                }
            });
        }
        let d: Vec<f64> = if channel.derivative {
            g.iter()
                .zip(&s[i])
                .map(|(g, s)| g * df(net.act, *s))
                .collect()
        } else {
            g.clone()
        };
        signals[i] = Some(g);
        deltas[i] = Some(d);
    }
    (s, o, deltas)
}

/// ‖a − b‖ / ‖b‖ over flattened matrices (0 if both are 0).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if den == 0.0 { num } else { num / den }
}

/// A small random batch: inputs in [0, 1), labels in 0..classes.
pub fn batch(n: usize, dim: usize, classes: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<u8>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let xs = (0..n)
        .map(|_| (0..dim).map(|_| rng.random::<f64>()).collect())
        .collect();
    let ys = (0..n).map(|_| rng.random_range(0..classes) as u8).collect();
    (xs, ys)
}

/// Row-major f32 copy of a batch, as the engine takes it.
pub fn flat(xs: &[Vec<f64>]) -> Vec<f32> {
    xs.iter().flatten().map(|&v| v as f32).collect()
}
