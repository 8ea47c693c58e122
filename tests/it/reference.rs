//! An independent f64 reference: the paper's equations written out per example with plain loops,
//! sharing no code with the engine (only the weights are copied in).

use rbp::kernels::Activation;
use rbp::model::Mlp;

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
    pub fn from(net: &Mlp) -> Self {
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

/// How the reference forms hidden δ's.
#[derive(Clone, Debug)]
pub enum RefChannel {
    Bp,
    Sbp,
    /// `c[h]` is C for hidden layer h (N_h × N_{h+1}).
    Rbp(Vec<Vec<Vec<f64>>>),
    /// `c[h]` is C for hidden layer h (N_h × N_L).
    Srbp(Vec<Vec<Vec<f64>>>),
    Top,
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
    derivative: bool,
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
    let scale = -lr / xs.len() as f64;
    for (x, &y) in xs.iter().zip(ys) {
        let (s, o) = net.forward(x);
        let mut top = o[depth].clone();
        top[y as usize] -= 1.0;
        // deltas[i] for weight layer i; signals[i] = what arrived before f'
        let mut deltas: Vec<Option<Vec<f64>>> = vec![None; depth];
        let mut signals: Vec<Option<Vec<f64>>> = vec![None; depth];
        deltas[depth - 1] = Some(top.clone());
        signals[depth - 1] = Some(top.clone());
        for i in (0..depth - 1).rev() {
            let g = match channel {
                RefChannel::Top => None,
                RefChannel::Bp => Some(matvec_t(&net.w[i + 1], deltas[i + 1].as_ref().unwrap())),
                RefChannel::Sbp => Some(matvec_t(&net.w[i + 1], signals[i + 1].as_ref().unwrap())),
                RefChannel::Rbp(c) => Some(matvec(&c[i], deltas[i + 1].as_ref().unwrap())),
                RefChannel::Srbp(c) => Some(matvec(&c[i], &top)),
            };
            if let Some(g) = g {
                let d: Vec<f64> = if derivative {
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
        }
        for i in 0..depth {
            let Some(d) = &deltas[i] else { continue };
            for (r, dv) in d.iter().enumerate() {
                db[i][r] += scale * dv;
                for (c, ov) in o[i].iter().enumerate() {
                    dw[i][r][c] += scale * dv * ov;
                }
            }
        }
    }
    (dw, db)
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
