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
//! β f(a_1) a_2(a_1) = α, again the first root reached (a polynomial for integer μ and for
//! μ = 1/k); for μ > 1 the line a_1 = 0 of fixed points stops a trajectory heading for it, so a
//! prediction never jumps across it.

use super::integrate::System;
use super::poly::Poly;
use super::systems::{Algo, Chain, PowerKind, power, power_kind};

/// A predicted limit of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The real roots of βP(a_1) − α: for a linear chain of length ≤ 3 those of the expanded
    /// polynomial where βP − α vanishes to within the rounding of its evaluation, and the
    /// limit's a_1 (for longer chains only that); for μ = 1/k in a_1, mapped from the roots in
    /// a_1^(1/k); for sign(x)|x|^μ the one found.
    pub roots: Vec<f64>,
    /// The predicted end state a_1..a_L.
    pub limit: Vec<f64>,
    /// The conserved constants K_i of the parabolas.
    pub constants: Vec<f64>,
    /// The limit is on the line a_1 = 0 of fixed points of a power μ > 1 (f'(0) = 0), which the
    /// trajectory reaches before any solution of βP = α: not on the curve βP = α.
    pub on_barrier: bool,
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

/// A closed interval [lo, hi] of reals, for enclosures (no outward rounding: callers widen).
#[derive(Clone, Copy, Debug)]
struct Iv(f64, f64);

impl Iv {
    fn point(x: f64) -> Self {
        Iv(x, x)
    }
    fn add(self, o: Iv) -> Self {
        Iv(self.0 + o.0, self.1 + o.1)
    }
    fn shift(self, c: f64) -> Self {
        Iv(self.0 + c, self.1 + c)
    }
    fn scale(self, c: f64) -> Self {
        if c >= 0.0 {
            Iv(c * self.0, c * self.1)
        } else {
            Iv(c * self.1, c * self.0)
        }
    }
    fn mul(self, o: Iv) -> Self {
        let c = [self.0 * o.0, self.0 * o.1, self.1 * o.0, self.1 * o.1];
        Iv(
            c.iter().copied().fold(f64::INFINITY, f64::min),
            c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }
    fn square(self) -> Self {
        if self.0 >= 0.0 {
            Iv(self.0 * self.0, self.1 * self.1)
        } else if self.1 <= 0.0 {
            Iv(self.1 * self.1, self.0 * self.0)
        } else {
            Iv(0.0, (self.0 * self.0).max(self.1 * self.1))
        }
    }
}

/// The root nearest to `x0` among those at or ahead of it in the direction `dir`.
fn first_ahead(roots: &[f64], x0: f64, dir: f64) -> Option<f64> {
    roots
        .iter()
        .copied()
        .filter(|r| (r - x0) * dir >= -1e-12 * x0.abs().max(1.0))
        .min_by(|a, b| (a - x0).abs().total_cmp(&(b - x0).abs()))
}

/// The sign of the constant that multiplies α − βP in da_1/dt (RBP: ∏_{k>1} c_k; SRBP: c_1).
fn chain_sign(chain: &Chain) -> f64 {
    match chain.algo {
        Algo::Rbp => chain.c[1..chain.len].iter().product::<f64>().signum(),
        Algo::Srbp => chain.c[0].signum(),
        Algo::Bp => f64::NAN,
    }
}

/// The limit for a first zero of βP(a_1) − α known to lie in [lo, hi] (`x` the best point in
/// it): each weight from its parabola, the last from βP = α, with enclosures over [lo, hi] and
/// the evaluation's rounding. A weight known to no better than 1e-8 (relative, or absolute
/// below 1) is refused: the limit is too ill-conditioned in a_1 to be computed in double
/// precision, and no number is better than a wrong one.
fn limit_within(
    chain: &Chain,
    r: &[f64],
    constants: &[f64],
    lo: f64,
    hi: f64,
    x: f64,
) -> Result<Vec<f64>, String> {
    let l = chain.len;
    let eps = f64::EPSILON;
    let (mut iv, mut p, mut err) = (Iv(lo, hi), x, 0.0f64);
    let mut limit = vec![x];
    let mut bounds = vec![(lo, hi, 0.0)];
    for i in 0..l - 1 {
        let h = r[i] / 2.0;
        let sq = h * p * p;
        let next = sq + constants[i];
        err = (r[i] * p).abs() * err + 2.0 * eps * (sq.abs() + constants[i].abs() + next.abs());
        iv = iv.square().scale(h).shift(constants[i]);
        p = next;
        limit.push(p);
        bounds.push((iv.0, iv.1, err));
    }
    // on βP = α the last weight is α/(β ∏ the others): well conditioned where the parabola
    // cancels (K ≈ −r a²/2 for large starts)
    let others: f64 = limit[..l - 1].iter().product();
    let last = chain.alpha / (chain.beta * others);
    if others != 0.0 && last.is_finite() {
        let prod = bounds[..l - 1]
            .iter()
            .fold(Iv::point(1.0), |acc, &(a, b, _)| acc.mul(Iv(a, b)));
        let rel: f64 = bounds[..l - 1]
            .iter()
            .zip(&limit)
            .map(|(&(_, _, e), v)| e / v.abs())
            .sum::<f64>()
            + (l as f64 + 2.0) * eps;
        limit[l - 1] = last;
        bounds[l - 1] = if prod.0 > 0.0 || prod.1 < 0.0 {
            let q = [
                chain.alpha / (chain.beta * prod.0),
                chain.alpha / (chain.beta * prod.1),
            ];
            (q[0].min(q[1]), q[0].max(q[1]), rel * last.abs())
        } else {
            (f64::NEG_INFINITY, f64::INFINITY, 0.0)
        };
    }
    for (k, (&(a, b, e), v)) in bounds.iter().zip(&limit).enumerate() {
        let spread = (b - a) + 2.0 * e;
        if spread.is_nan() || spread > 1e-8 * v.abs().max(1.0) {
            return Err(format!(
                "a{} of the limit is known only to ±{:.1e} in double precision                  (the parabolas amplify a1's rounding along the chain)",
                k + 1,
                spread / 2.0
            ));
        }
    }
    Ok(limit)
}

/// Predicts the end point of the chain started at `a0` (fixed channel weights only).
pub fn predict_chain(chain: &Chain, a0: &[f64]) -> Result<Prediction, String> {
    if chain.adaptive {
        return Err("no conserved parabola for an adaptive channel".into());
    }
    let l = chain.len;
    if a0.len() != l || l < 2 {
        return Err(format!(
            "a chain of length {l} needs {l} ≥ 2 starting weights"
        ));
    }
    if !(a0.iter().chain(&chain.c).all(|v| v.is_finite())
        && chain.alpha.is_finite()
        && chain.beta.is_finite())
    {
        return Err("the start, α, β and the channel weights must be finite".into());
    }
    let mut d = vec![0.0; chain.dim()];
    chain.deriv(a0, &mut d);
    let dir = d[0].signum();
    if chain.mu != 1.0 {
        return predict_power(chain, a0, dir);
    }
    let r = ratios(chain)?;
    let constants: Vec<f64> = (0..l - 1)
        .map(|i| a0[i + 1] - r[i] / 2.0 * a0[i] * a0[i])
        .collect();
    // the weights along the trajectory as functions of a_1, evaluated by their recurrence (the
    // expanded polynomial of degree 2^L − 1 loses every digit for long chains)
    // an enclosure of g(x) = βP(x) − α over [lo, hi]: a range that excludes 0 holds no root.
    // By interval arithmetic through the recurrence, of the values and of the slopes
    // (p_{i+1}' = r_i p_i p_i'), in the mean-value form g(m) + g'([lo, hi])·[lo − m, hi − m]
    // about the midpoint m — tight near a root, where the plain interval form is not (it
    // overestimates by about the interval's width, so a double root would be crept up on) —
    // intersected with the plain form.
    let through = |x: Iv| -> (Iv, Iv) {
        let (mut p, mut dp) = (x, Iv::point(1.0));
        let (mut prod, mut dprod) = (x, Iv::point(1.0));
        for i in 0..l - 1 {
            let h = r[i] / 2.0;
            (p, dp) = (
                p.square().scale(h).shift(constants[i]),
                p.mul(dp).scale(r[i]),
            );
            (prod, dprod) = (prod.mul(p), dprod.mul(p).add(prod.mul(dp)));
        }
        (
            prod.scale(chain.beta).shift(-chain.alpha),
            dprod.scale(chain.beta),
        )
    };
    // a bound on the rounding error of evaluating g at x through the recurrence, propagated
    // to first order: e(p_{i+1}) = |r_i p_i| e(p_i) + ε(|r_i p_i²/2| + |K_i|) (two roundings),
    // e(P p) = |p| e(P) + |P| e(p) + ε|P p|
    let rounding = |x: f64| -> f64 {
        let eps = f64::EPSILON;
        let (mut p, mut ep) = (x, 0.0f64);
        let (mut prod, mut eprod) = (x, 0.0f64);
        for i in 0..l - 1 {
            let sq = r[i] / 2.0 * p * p;
            let next = sq + constants[i];
            ep = (r[i] * p).abs() * ep + 2.0 * eps * (sq.abs() + constants[i].abs() + next.abs());
            p = next;
            eprod = p.abs() * eprod + prod.abs() * ep + eps * (prod * p).abs();
            prod *= p;
        }
        chain.beta * eprod + eps * ((chain.beta * prod).abs() + chain.alpha.abs())
    };
    let enclose = |lo: f64, hi: f64| -> (f64, f64) {
        let m = 0.5 * (lo + hi);
        let (at_m, _) = through(Iv::point(m));
        let (plain, slope) = through(Iv(lo, hi));
        let spread = slope.mul(Iv(lo - m, hi - m));
        let centred = at_m.add(spread);
        // widened by a bound on the rounding of g(m) (no outward rounding here): the
        // parabolas' constants cancel against their squares along a long chain, so the
        // evaluation's own error can be far above one ulp of g; a range that only that error
        // keeps off 0 is not proven free
        let slack = 4.0 * rounding(m);
        if !(centred.0.is_finite() && centred.1.is_finite()) {
            return (plain.0 - slack, plain.1 + slack);
        }
        (
            plain.0.max(centred.0) - slack,
            plain.1.min(centred.1) + slack,
        )
    };
    // every real root, where the polynomial is short enough to be solved reliably
    let roots = if l <= 3 {
        let mut polys = vec![Poly::x()];
        for i in 0..l - 1 {
            let sq = polys[i].mul(&polys[i]);
            polys.push(sq.scale_add(r[i] / 2.0, constants[i]));
        }
        let product = polys.iter().skip(1).fold(polys[0].clone(), |p, q| p.mul(q));
        product.scale_add(chain.beta, -chain.alpha).real_roots()
    } else {
        Vec::new()
    };
    // g's sign at x where the enclosure proves it, else 0 (g may vanish there)
    let certified = |x: f64| -> f64 {
        let (lo, hi) = enclose(x, x);
        if lo > 0.0 {
            1.0
        } else if hi < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    // the expanded polynomial's coefficients cancel for large starts, and its solver's roots
    // may then be far from any zero of g: only those where g vanishes to within the rounding
    // of its evaluation are kept
    let mut roots: Vec<f64> = roots.into_iter().filter(|&r| certified(r) == 0.0).collect();
    let x0 = a0[0];
    let limit = if d[0] == 0.0 {
        a0.to_vec()
    } else {
        // a_1 moves monotonically (its rate has the sign of α − βP) until βP(a_1) = α: the
        // first zero of g ahead of a_1(0). [x0, found) is proven free of zeros.
        let found = first_zero(enclose, x0, dir)
            .ok_or("no fixed point in the direction of motion: the trajectory diverges")?;
        // g keeps its start's sign on [x0, found); a point ahead where g provably has the
        // other sign brackets the first zero in [found, y]
        let start_sign = -dir * chain_sign(chain);
        let scale = found.abs().max(1.0);
        let mut step = 8.0 * f64::EPSILON * scale;
        let mut bracket = None;
        while step <= 1e-6 * scale {
            let y = found + dir * step;
            if certified(y) == -start_sign {
                bracket = Some(if dir > 0.0 { (found, y) } else { (y, found) });
                break;
            }
            step *= 2.0;
        }
        // the short polynomials' solver polishes the zero (which one is first is the search's
        // answer), where its root lies in the bracket
        let polished = roots
            .iter()
            .copied()
            .filter(|r| (r - found) * dir >= -8.0 * f64::EPSILON * scale)
            .filter(|&r| bracket.is_none_or(|(lo, hi)| lo <= r && r <= hi))
            .min_by(|a, b| (a - found).abs().total_cmp(&(b - found).abs()))
            .filter(|r| (r - found).abs() <= 1e-6 * scale);
        let (lo, hi) = match (bracket, polished) {
            (Some(b), _) => b,
            // no sign change: a zero that g only touches (the parabola tangent to βP = α),
            // which the polynomial's solver confirms for short chains
            (None, Some(r)) => (r, r),
            (None, None) => {
                return Err(format!(
                    "the first zero of βP(a1) − α ahead of a1 = {x0} cannot be                      told apart in double precision (near a1 = {found}, g changes sign nowhere                      within 1e-6 of it: a touching zero, or one the rounding hides)"
                ));
            }
        };
        let x = polished.unwrap_or(0.5 * (lo + hi));
        if l <= 3 && polished.is_none() {
            roots.push(x);
            roots.sort_by(f64::total_cmp);
        }
        limit_within(chain, &r, &constants, lo, hi, x)?
    };
    if !limit.iter().all(|v| v.is_finite()) {
        return Err("the predicted limit is not finite".into());
    }
    let roots = if roots.is_empty() {
        vec![limit[0]]
    } else {
        roots
    };
    Ok(Prediction {
        roots,
        limit,
        constants,
        on_barrier: false,
    })
}

/// The non-linear A[1,1,1] with f(x) = x^μ: along a trajectory a_2 = a_1²/(2cμ) + K (for every
/// reading, since da_2/da_1 = f(a_1)/(c f'(a_1)) = a_1/(cμ)), and the limit solves
/// β f(a_1) a_2(a_1) = α: a polynomial of degree μ + 2 in a_1 for integer μ, of degree 2k + 1 in
/// s = a_1^(1/k) for μ = 1/k (k odd), and scanned for sign(x)|x|^μ. For μ > 1, f'(0) = 0 and
/// a_1 = 0 is a line of fixed points: a trajectory heading for it stops there.
fn predict_power(chain: &Chain, a0: &[f64], dir: f64) -> Result<Prediction, String> {
    if chain.len != 2 {
        return Err("the non-linear chain is defined for A[1,1,1]".into());
    }
    let kind = power_kind(chain.mu, chain.signed)?;
    let (m, c) = (
        chain.mu,
        match chain.algo {
            Algo::Rbp => chain.c[1],
            Algo::Srbp => chain.c[0],
            Algo::Bp => return Err("the parabola invariant holds for RBP and SRBP, not BP".into()),
        },
    );
    if c == 0.0 {
        return Err("the channel weight is 0 (a trivial case: no learning)".into());
    }
    let (alpha, beta) = (chain.alpha, chain.beta);
    let k = a0[1] - a0[0] * a0[0] / (2.0 * c * m);
    let a2 = |x: f64| x * x / (2.0 * c * m) + k;
    let x0 = a0[0];
    if dir == 0.0 {
        return Ok(Prediction {
            roots: vec![],
            limit: a0.to_vec(),
            constants: vec![k],
            on_barrier: m > 1.0 && x0 == 0.0,
        });
    }
    let (roots, first) = match kind {
        PowerKind::Int(n) => {
            // β x^n (x²/(2cμ) + K) − α
            let mut coef = vec![0.0; n as usize + 3];
            coef[0] -= alpha;
            coef[n as usize] += beta * k;
            coef[n as usize + 2] += beta / (2.0 * c * m);
            let roots = Poly(coef).real_roots();
            let first = first_ahead(&roots, x0, dir);
            (roots, first)
        }
        PowerKind::OddRoot(kk) => {
            // in s = x^(1/k), x = s^k (increasing, so the direction is the same):
            // β s (s^{2k}/(2cμ) + K) − α
            let mut coef = vec![0.0; 2 * kk as usize + 2];
            coef[0] -= alpha;
            coef[1] += beta * k;
            coef[2 * kk as usize + 1] += beta / (2.0 * c * m);
            let s_roots = Poly(coef).real_roots();
            let s0 = power(x0, m, false);
            let first = first_ahead(&s_roots, s0, dir).map(|s| s.powi(kk as i32));
            (s_roots.iter().map(|s| s.powi(kk as i32)).collect(), first)
        }
        PowerKind::Signed => {
            let f = |x: f64| beta * power(x, m, true) * a2(x) - alpha;
            let first = scan(f, x0, dir);
            (first.into_iter().collect(), first)
        }
    };
    // the barrier a_1 = 0 of μ > 1, if it lies ahead of a_1(0) and before the first root
    let barrier_ahead = m > 1.0 && x0 != 0.0 && -x0 * dir > 0.0;
    if barrier_ahead && first.is_none_or(|r| r * dir > 0.0) {
        return Ok(Prediction {
            roots,
            limit: vec![0.0, k],
            constants: vec![k],
            on_barrier: true,
        });
    }
    let x = first.ok_or("no fixed point in the direction of motion: the trajectory diverges")?;
    let fx = power(x, m, chain.signed);
    let y = if fx != 0.0 && (alpha / (beta * fx)).is_finite() {
        alpha / (beta * fx) // on β f(a_1) a_2 = α, without the parabola's cancellation
    } else {
        a2(x)
    };
    Ok(Prediction {
        roots,
        limit: vec![x, y],
        constants: vec![k],
        on_barrier: false,
    })
}

/// The first zero of a function from `x0` in the direction `dir`, or none before |x| passes
/// 1e8, from `enclose(lo, hi)`: a range holding the function's values on [lo, hi]. The search
/// steps only across intervals whose enclosure excludes 0 — intervals proven to hold no root —
/// doubling the step after each and halving it when the enclosure may hold 0; it stops where no
/// step longer than the rounding of x is proven free: the first zero (of any multiplicity), to
/// within rounding.
fn first_zero(enclose: impl Fn(f64, f64) -> (f64, f64), x0: f64, dir: f64) -> Option<f64> {
    let mut x = x0;
    let mut h = 1e-6 * x0.abs().max(1.0);
    for _ in 0..10_000_000 {
        let (lo, hi) = if dir > 0.0 { (x, x + h) } else { (x - h, x) };
        let (gl, gh) = enclose(lo, hi);
        if gl > 0.0 || gh < 0.0 {
            x += dir * h;
            if x.abs() > 1e8 || !x.is_finite() {
                return None;
            }
            h *= 2.0;
        } else if h <= 8.0 * f64::EPSILON * x.abs().max(f64::MIN_POSITIVE) {
            return Some(x);
        } else {
            h /= 2.0;
        }
    }
    None
}

/// The first sign change of `f` from `x0` in the direction `dir`, by marching outwards with
/// growing steps and bisecting; `None` beyond |x| = 1e8.
fn scan(f: impl Fn(f64) -> f64, x0: f64, dir: f64) -> Option<f64> {
    let (mut lo, f0) = (x0, f(x0));
    if f0 == 0.0 {
        return Some(x0);
    }
    let mut h = 1e-6 * x0.abs().max(1.0);
    let mut hi = lo + dir * h;
    while f(hi).signum() == f0.signum() && f(hi) != 0.0 {
        lo = hi;
        h *= 1.2;
        hi = lo + dir * h;
        if hi.abs() > 1e8 || !hi.is_finite() {
            return None;
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
    Some(0.5 * (lo + hi))
}

/// Where a fixed point on the hyperbola a_1 a_2 = α/β of A[1,1,1] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    /// a_1² + c·a_2 > 0: nearby trajectories come back.
    Attracting,
    /// a_1² + c·a_2 = 0 (to 1e-6 relative): the parabola touches the hyperbola (a double root
    /// of the cubic); it attracts from one side along the parabola and repels on the other.
    Tangent,
    /// a_1² + c·a_2 < 0: nearby trajectories leave.
    Repelling,
}

impl Stability {
    /// A label for output.
    pub fn describe(self) -> &'static str {
        match self {
            Stability::Attracting => "stable (attracting)",
            Stability::Tangent => {
                "semi-stable (tangent: attracts from one side along its parabola, repels on the other)"
            }
            Stability::Repelling => "unstable (repelling)",
        }
    }
}

/// The stability of the fixed point (a_1, a_2) on the hyperbola of A[1,1,1] (linear, RBP or
/// SRBP): linearised, the eigenvalues are 0 and −β(a_1² + c a_2). The sign of a_1² + c a_2 is
/// that of the cubic's derivative at the root, so it vanishes exactly at a double root, which
/// the root solver finds only to about √ε: |a_1² + c a_2| ≤ 1e-6 (a_1² + |c a_2|) is tangent.
pub fn stability_on_hyperbola(a1: f64, a2: f64, c: f64) -> Stability {
    let s = a1 * a1 + c * a2;
    if s.abs() <= 1e-6 * (a1 * a1 + (c * a2).abs()) {
        Stability::Tangent
    } else if s > 0.0 {
        Stability::Attracting
    } else {
        Stability::Repelling
    }
}

/// For A[1,1,1] (linear, RBP or SRBP): whether a point of the hyperbola a_1 a_2 = α/β attracts
/// (a_1² + c·a_2 > 0, not tangent; see [`stability_on_hyperbola`]).
pub fn stable_on_hyperbola(a1: f64, a2: f64, c: f64) -> bool {
    stability_on_hyperbola(a1, a2, c) == Stability::Attracting
}

/// The channel weight c of an A[1,1,1] chain (the one that multiplies δ for the lower weight).
pub fn chain_c(chain: &Chain) -> f64 {
    match chain.algo {
        Algo::Rbp => chain.c[1],
        Algo::Srbp => chain.c[0],
        Algo::Bp => f64::NAN,
    }
}
