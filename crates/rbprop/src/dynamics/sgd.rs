//! The actual per-example learning rule of A[1,1,1], to check that it tracks the expected ODE for
//! small learning rates (paper §3: the ODEs describe the expectation of the updates).
//!
//! Samples: I ~ N(0, β), T = (α/β)·I + ε with ε ~ N(0, σ²) independent, so E[T I] = α and
//! E[I²] = β. Each example: e = T − a_2 a_1 I; RBP: a_1 += η c e I, a_2 += η a_1 e I
//! (BP: c = a_2). After n examples the ODE time is t = η n.

use super::systems::Algo;
use crate::rng;
use rand_distr::{Distribution, StandardNormal};

/// Runs `steps` per-example updates; returns (t, a_1, a_2) every `record` steps.
#[allow(clippy::too_many_arguments)]
pub fn simulate_a111(
    algo: Algo,
    alpha: f64,
    beta: f64,
    c: f64,
    noise: f64,
    start: [f64; 2],
    eta: f64,
    steps: usize,
    record: usize,
    seed: u64,
) -> Vec<(f64, f64, f64)> {
    let mut rng = rng::stream(seed, "dynamics/sgd");
    let [mut a1, mut a2] = start;
    let mut out = vec![(0.0, a1, a2)];
    for n in 1..=steps {
        let z: f64 = StandardNormal.sample(&mut rng);
        let z2: f64 = StandardNormal.sample(&mut rng);
        let i = beta.sqrt() * z;
        let t = alpha / beta * i + noise * z2;
        let e = t - a2 * a1 * i;
        let ch = if algo == Algo::Bp { a2 } else { c };
        let d1 = eta * ch * e * i;
        let d2 = eta * a1 * e * i;
        a1 += d1;
        a2 += d2;
        if n.is_multiple_of(record.max(1)) {
            out.push((eta * n as f64, a1, a2));
        }
    }
    out
}
