//! The expected learning dynamics of paper §3 (section 7 of the paper), as ODE systems. Linear
//! units unless stated; α = E[T·I], β = E[I²] (> 0); the learning rate is absorbed in time.

use super::integrate::System;

/// Which learning channel drives the lower weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// Backpropagation: the channel weights are the forward weights.
    Bp,
    /// Random backpropagation: fixed channel weights c_k in place of a_k (k > i).
    Rbp,
    /// Skipped RBP: layer i receives the error through its own c_i (c_L = 1).
    Srbp,
}

impl Algo {
    /// Every algorithm, as named on the command line.
    pub const NAMES: [&'static str; 3] = ["bp", "rbp", "srbp"];
}

impl std::str::FromStr for Algo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bp" => Ok(Algo::Bp),
            "rbp" => Ok(Algo::Rbp),
            "srbp" => Ok(Algo::Srbp),
            _ => Err(format!("unknown algorithm `{s}` (one of: bp, rbp, srbp)")),
        }
    }
}

impl std::fmt::Display for Algo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algo::Bp => "bp",
            Algo::Rbp => "rbp",
            Algo::Srbp => "srbp",
        })
    }
}

/// A linear chain A[1, 1, …, 1] of length L (L weights a_1..a_L, P = ∏ a_i), or for L = 2 the
/// non-linear chain with hidden f(x) = x^μ, read as paper §3 says (see [`power`]): the plain
/// power for integer μ (x² is even), the real odd root for μ = 1/k with k odd, and
/// sign(x)|x|^μ only when `signed` names it.
///
/// - BP:   da_i/dt = (α − βP) ∏_{k≠i} a_k
/// - RBP:  da_i/dt = (α − βP) ∏_{k<i} a_k ∏_{k>i} c_k
/// - SRBP: da_i/dt = c_i (α − βP) ∏_{k<i} a_k,   c_L = 1
///
/// With `adaptive`, the channel weights are state too and follow the same rule as the forward
/// weight they stand for (RBP: dc_k/dt = da_k/dt), so c_k(0) = a_k(0) reproduces BP.
/// Non-linear (μ ≠ 1, L = 2), f(x) = x^μ: da_1/dt = c f'(a_1) (α − β f(a_1) a_2),
/// da_2/dt = f(a_1) (α − β f(a_1) a_2), with α = E[T f(I)], β = E[f(I)²] (c = a_2 for BP).
/// For μ > 1, f'(0) = 0 makes a_1 = 0 a line of fixed points that no trajectory crosses.
#[derive(Clone, Debug)]
pub struct Chain {
    pub alpha: f64,
    pub beta: f64,
    pub algo: Algo,
    /// Channel weights c_1..c_L (RBP uses c_2..c_L; SRBP c_1..c_{L−1}, c_L = 1; BP none).
    pub c: Vec<f64>,
    /// Channel weights are state variables (appended after the a's) following a_k's rule.
    pub adaptive: bool,
    /// Hidden power μ (1 = linear); only for L = 2.
    pub mu: f64,
    /// Read x^μ as sign(x)|x|^μ (the explicitly named option; see [`power`]).
    pub signed: bool,
    pub len: usize,
}

/// `sign(x)|x|^p`: the odd extension of |x|^p (the real cube root for p = 1/3).
pub fn odd_pow(x: f64, p: f64) -> f64 {
    x.signum() * x.abs().powf(p)
}

/// Largest integer μ, and largest odd k of μ = 1/k, of the non-linear chain: its fixed points
/// solve a polynomial of degree μ + 2 (or 2k + 1).
pub const MAX_POWER: u32 = 64;

/// How x^μ is read (paper §3, "Our reading of x^μ").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerKind {
    /// x^n for an integer n ≥ 1: the plain power (x² is even, x³ odd).
    Int(u32),
    /// x^(1/k) for an odd k ≥ 3: the real odd root (the real cube root for k = 3).
    OddRoot(u32),
    /// sign(x)|x|^μ: only when asked for by name.
    Signed,
}

/// The integer nearest to `v` if `v` is one (to rounding, so that 1/(1/3) counts as 3).
fn as_integer(v: f64) -> Option<u32> {
    let r = v.round();
    ((v - r).abs() <= 1e-9 * r.abs().max(1.0) && r >= 1.0 && r <= f64::from(u32::MAX))
        .then_some(r as u32)
}

/// Classifies μ under the reading of paper §3: an integer μ ≥ 1 is the plain power, μ = 1/k
/// with k odd is the real odd root, and `signed` selects sign(x)|x|^μ (any μ > 0). Any other μ
/// has no real value for x < 0 and is refused, as are μ ≤ 0, non-finite μ, and powers beyond
/// [`MAX_POWER`].
pub fn power_kind(mu: f64, signed: bool) -> Result<PowerKind, String> {
    if !mu.is_finite() || mu <= 0.0 {
        return Err(format!("μ must be a finite number > 0, got {mu}"));
    }
    if signed {
        return Ok(PowerKind::Signed);
    }
    if let Some(n) = as_integer(mu) {
        return if n <= MAX_POWER {
            Ok(PowerKind::Int(n))
        } else {
            Err(format!("integer μ is limited to {MAX_POWER}, got {mu}"))
        };
    }
    match as_integer(1.0 / mu) {
        Some(k) if k % 2 == 1 && k <= MAX_POWER => Ok(PowerKind::OddRoot(k)),
        Some(k) if k % 2 == 1 => Err(format!(
            "μ = 1/k is limited to k ≤ {MAX_POWER}, got k = {k}"
        )),
        _ => Err(format!(
            "x^{mu} is not real for x < 0: x^μ is read as the plain power for integer μ and as \
             the real odd root for μ = 1/k with k odd; sign(x)|x|^μ must be asked for by name"
        )),
    }
}

/// f(x) = x^μ under the reading of [`power_kind`] (for an unclassifiable μ without `signed`:
/// `x.powf(μ)`, NaN for x < 0).
pub fn power(x: f64, mu: f64, signed: bool) -> f64 {
    match power_kind(mu, signed) {
        Ok(PowerKind::Int(n)) => x.powi(n as i32),
        Ok(PowerKind::OddRoot(3)) => x.cbrt(),
        Ok(PowerKind::OddRoot(k)) => odd_pow(x, 1.0 / f64::from(k)),
        Ok(PowerKind::Signed) => odd_pow(x, mu),
        Err(_) => x.powf(mu),
    }
}

/// f'(x) for [`power`]: μ x^(μ−1) for integer μ (odd in x for even μ), μ|x|^(μ−1) for the odd
/// root and for sign(x)|x|^μ.
pub fn power_slope(x: f64, mu: f64, signed: bool) -> f64 {
    match power_kind(mu, signed) {
        Ok(PowerKind::Int(n)) => f64::from(n) * x.powi(n as i32 - 1),
        Ok(PowerKind::OddRoot(_)) | Ok(PowerKind::Signed) => mu * x.abs().powf(mu - 1.0),
        Err(_) => mu * x.powf(mu - 1.0),
    }
}

impl Chain {
    /// Channel weights at state `y` (from the state if adaptive).
    fn channel<'a>(&'a self, y: &'a [f64]) -> &'a [f64] {
        if self.adaptive {
            &y[self.len..]
        } else {
            &self.c
        }
    }

    /// P = ∏ a_i (linear) or f(a_1) a_2 with f(x) = x^μ ([`power`]).
    pub fn product(&self, a: &[f64]) -> f64 {
        if self.mu != 1.0 {
            power(a[0], self.mu, self.signed) * a[1]
        } else {
            a[..self.len].iter().product()
        }
    }
}

impl System for Chain {
    fn dim(&self) -> usize {
        if self.adaptive {
            2 * self.len
        } else {
            self.len
        }
    }

    fn deriv(&self, y: &[f64], dy: &mut [f64]) {
        let l = self.len;
        let a = &y[..l];
        let c = self.channel(y);
        let err = self.alpha - self.beta * self.product(a);
        if self.mu != 1.0 {
            let m = self.mu;
            let c2 = match self.algo {
                Algo::Bp => a[1],
                Algo::Rbp => c[1],
                Algo::Srbp => c[0],
            };
            dy[0] = c2 * power_slope(a[0], m, self.signed) * err;
            dy[1] = power(a[0], m, self.signed) * err;
        } else {
            for i in 0..l {
                let below: f64 = a[..i].iter().product();
                dy[i] = err
                    * below
                    * match self.algo {
                        Algo::Bp => a[i + 1..].iter().product::<f64>(),
                        Algo::Rbp => c[i + 1..l].iter().product::<f64>(),
                        Algo::Srbp => {
                            if i + 1 == l {
                                1.0
                            } else {
                                c[i]
                            }
                        }
                    };
            }
        }
        if self.adaptive {
            let (head, tail) = dy.split_at_mut(l);
            tail.copy_from_slice(head);
        }
    }
}

/// A[1, N, 1]: lower weights a_i, upper b_i, channel c_i; P = Σ a_i b_i.
/// RBP: da_i/dt = c_i (α − βP); BP: da_i/dt = b_i (α − βP); db_i/dt = a_i (α − βP).
/// State: [a_1..a_N, b_1..b_N].
#[derive(Clone, Debug)]
pub struct Wide {
    pub alpha: f64,
    pub beta: f64,
    pub algo: Algo,
    pub c: Vec<f64>,
}

impl System for Wide {
    fn dim(&self) -> usize {
        2 * self.c.len()
    }
    fn deriv(&self, y: &[f64], dy: &mut [f64]) {
        let n = self.c.len();
        let (a, b) = y.split_at(n);
        let err = self.alpha - self.beta * a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        for i in 0..n {
            dy[i] = err
                * if self.algo == Algo::Bp {
                    b[i]
                } else {
                    self.c[i]
                };
            dy[n + i] = err * a[i];
        }
    }
}

/// Linear autoencoder A[N, 1, N] on decorrelated normalised data (E[I Iᵀ] = Id, T = I):
/// lower a, upper b, channel c. RBP: da/dt = c − a (c·b); BP: da/dt = b − a (b·b);
/// db/dt = a − b (a·a). State: [a, b].
#[derive(Clone, Debug)]
pub struct Autoencoder {
    pub algo: Algo,
    pub c: Vec<f64>,
}

impl System for Autoencoder {
    fn dim(&self) -> usize {
        2 * self.c.len()
    }
    fn deriv(&self, y: &[f64], dy: &mut [f64]) {
        let n = self.c.len();
        let (a, b) = y.split_at(n);
        let ch: &[f64] = if self.algo == Algo::Bp { b } else { &self.c };
        let cb: f64 = ch.iter().zip(b).map(|(x, y)| x * y).sum();
        let aa: f64 = a.iter().map(|x| x * x).sum();
        for i in 0..n {
            dy[i] = ch[i] - a[i] * cb;
            dy[n + i] = a[i] - b[i] * aa;
        }
    }
}

/// General linear A[N0, N1, N2] with data statistics Σ_II (N0×N0) and Σ_TI (N2×N0):
/// E = Σ_TI − B A Σ_II;  dA/dt = C E (RBP; C = Bᵀ for BP),  dB/dt = E Aᵀ.
/// State: A (N1×N0) then B (N2×N1), row-major.
#[derive(Clone, Debug)]
pub struct General {
    pub sizes: [usize; 3],
    pub sigma_ii: Vec<f64>,
    pub sigma_ti: Vec<f64>,
    pub algo: Algo,
    /// C (N1×N2), row-major.
    pub c: Vec<f64>,
}

impl General {
    /// The product B·A (N2×N0) of a state.
    pub fn product(&self, y: &[f64]) -> Vec<f64> {
        let [n0, n1, n2] = self.sizes;
        let (a, b) = y.split_at(n1 * n0);
        let mut p = vec![0.0; n2 * n0];
        for r in 0..n2 {
            for c in 0..n0 {
                p[r * n0 + c] = (0..n1).map(|k| b[r * n1 + k] * a[k * n0 + c]).sum();
            }
        }
        p
    }
}

impl System for General {
    fn dim(&self) -> usize {
        let [n0, n1, n2] = self.sizes;
        n1 * n0 + n2 * n1
    }
    fn deriv(&self, y: &[f64], dy: &mut [f64]) {
        let [n0, n1, n2] = self.sizes;
        let (a, b) = y.split_at(n1 * n0);
        let ba = self.product(y);
        // E = Σ_TI − (BA) Σ_II   (N2×N0)
        let mut e = self.sigma_ti.clone();
        for r in 0..n2 {
            for c in 0..n0 {
                e[r * n0 + c] -= (0..n0)
                    .map(|k| ba[r * n0 + k] * self.sigma_ii[k * n0 + c])
                    .sum::<f64>();
            }
        }
        let (da, db) = dy.split_at_mut(n1 * n0);
        for r in 0..n1 {
            for c in 0..n0 {
                da[r * n0 + c] = (0..n2)
                    .map(|k| {
                        let ch = if self.algo == Algo::Bp {
                            b[k * n1 + r]
                        } else {
                            self.c[r * n2 + k]
                        };
                        ch * e[k * n0 + c]
                    })
                    .sum();
            }
        }
        for r in 0..n2 {
            for c in 0..n1 {
                db[r * n1 + c] = (0..n0).map(|k| e[r * n0 + k] * a[c * n0 + k]).sum();
            }
        }
    }
}
