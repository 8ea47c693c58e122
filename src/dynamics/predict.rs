//! Where a trajectory ends, predicted from the conserved quantities (paper §3), and whether that
//! point is stable.
//!
//! For RBP and SRBP chains each a_{i+1} is quadratic in a_i along a trajectory:
//! RBP: da_{i+1}/da_i = a_i / c_{i+1}, so a_{i+1} = a_i²/(2c_{i+1}) + K_i;
//! SRBP: da_{i+1}/da_i = a_i c_{i+1}/c_i, so a_{i+1} = c_{i+1} a_i²/(2c_i) + K_i (c_L = 1).
//! The product P is then a polynomial of degree 2^L − 1 in a_1 and the limit solves βP(a_1) = α
//! (for A[1,1,1]: the depressed cubic a_1³ + 2cK a_1 − 2cα/β = 0). Where it has several real
//! roots, the limit is the first one reached from a_1(0) moving in the direction of da_1/dt(0).
//! For the non-linear A[1,1,1] with f(x) = x^μ: a_2 = a_1²/(2cμ) + K and the limit solves
//! β a_1^μ a_2(a_1) = α, found by scanning in the same direction.

use super::integrate::System;
use super::poly::Poly;
use super::systems::{Algo, Chain, odd_pow};

/// A predicted limit of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Every real root of βP(a_1) − α (linear chains; empty for non-linear ones).
    pub roots: Vec<f64>,
    /// The predicted end state a_1..a_L.
    pub limit: Vec<f64>,
    /// The conserved constants K_i of the parabolas.
    pub constants: Vec<f64>,
}

/// Coefficient r_i of a_{i+1} = r_i a_i²/2 + K_i.
fn ratios(chain: &Chain) -> Result<Vec<f64>, String> {
    let l = chain.len;
    let c_eff = |k: usize| if k + 1 == l { 1.0 } else { chain.c[k] };
    (0..l - 1)
        .map(|i| {
            let r = match chain.algo {
                Algo::Rbp => 1.0 / chain.c[i + 1],
                Algo::Srbp => c_eff(i + 1) / c_eff(i),
                Algo::Bp => {
                    return Err("the parabola invariants hold for RBP and SRBP, not BP".to_string());
                }
            };
            if r.is_finite() {
                Ok(r)
            } else {
                Err("a channel weight is 0 (a trivial case: no learning)".into())
            }
        })
        .collect()
}

/// Predicts the end point of the chain started at `a0` (fixed channel weights only).
pub fn predict_chain(chain: &Chain, a0: &[f64]) -> Result<Prediction, String> {
    if chain.adaptive {
        return Err("no conserved parabola for an adaptive channel".into());
    }
    let l = chain.len;
    let mut d = vec![0.0; chain.dim()];
    chain.deriv(a0, &mut d);
    let dir = d[0].signum();
    if chain.mu != 1.0 {
        return predict_power(chain, a0, dir);
    }
    let r = ratios(chain)?;
    let mut polys = vec![Poly::x()];
    let mut constants = Vec::new();
    for i in 0..l - 1 {
        let k = a0[i + 1] - r[i] / 2.0 * a0[i] * a0[i];
        constants.push(k);
        let sq = polys[i].mul(&polys[i]);
        polys.push(sq.scale_add(r[i] / 2.0, k));
    }
    let product = polys.iter().skip(1).fold(polys[0].clone(), |p, q| p.mul(q));
    let f = product.scale_add(chain.beta, -chain.alpha);
    let roots = f.real_roots();
    let x0 = a0[0];
    let limit_a1 = if d[0] == 0.0 {
        x0
    } else {
        *roots
            .iter()
            .filter(|r| (*r - x0) * dir >= -1e-12 * x0.abs().max(1.0))
            .min_by(|a, b| (*a - x0).abs().total_cmp(&(*b - x0).abs()))
            .ok_or("no fixed point in the direction of motion: the trajectory diverges")?
    };
    let limit = polys.iter().map(|p| p.eval(limit_a1)).collect();
    Ok(Prediction {
        roots,
        limit,
        constants,
    })
}

fn predict_power(chain: &Chain, a0: &[f64], dir: f64) -> Result<Prediction, String> {
    if chain.len != 2 {
        return Err("the non-linear chain is defined for A[1,1,1]".into());
    }
    let (m, c) = (
        chain.mu,
        match chain.algo {
            Algo::Rbp => chain.c[1],
            Algo::Srbp => chain.c[0],
            Algo::Bp => return Err("the parabola invariant holds for RBP and SRBP, not BP".into()),
        },
    );
    let k = a0[1] - a0[0] * a0[0] / (2.0 * c * m);
    let a2 = |x: f64| x * x / (2.0 * c * m) + k;
    let f = |x: f64| chain.beta * odd_pow(x, m) * a2(x) - chain.alpha;
    let x0 = a0[0];
    if dir == 0.0 {
        return Ok(Prediction {
            roots: vec![],
            limit: a0.to_vec(),
            constants: vec![k],
        });
    }
    // march outwards with growing steps until f changes sign, then bisect
    let (mut lo, f0) = (x0, f(x0));
    let mut h = 1e-6 * x0.abs().max(1.0);
    let mut hi = lo + dir * h;
    while (f(hi).signum() == f0.signum()) && f(hi) != 0.0 {
        lo = hi;
        h *= 1.2;
        hi = lo + dir * h;
        if hi.abs() > 1e8 {
            return Err(
                "no fixed point in the direction of motion: the trajectory diverges".into(),
            );
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if f(mid).signum() == f0.signum() {
            lo = mid
        } else {
            hi = mid
        }
    }
    let x = 0.5 * (lo + hi);
    Ok(Prediction {
        roots: vec![x],
        limit: vec![x, a2(x)],
        constants: vec![k],
    })
}

/// For A[1,1,1] (linear, RBP or SRBP): a point of the hyperbola a_1 a_2 = α/β attracts if
/// a_1² + c·a_2 > 0 and repels if < 0 (linearisation: eigenvalues 0 and −β(a_1² + c a_2)).
pub fn stable_on_hyperbola(a1: f64, a2: f64, c: f64) -> bool {
    a1 * a1 + c * a2 > 0.0
}

/// The channel weight c of an A[1,1,1] chain (the one that multiplies δ for the lower weight).
pub fn chain_c(chain: &Chain) -> f64 {
    match chain.algo {
        Algo::Rbp => chain.c[1],
        Algo::Srbp => chain.c[0],
        Algo::Bp => f64::NAN,
    }
}
