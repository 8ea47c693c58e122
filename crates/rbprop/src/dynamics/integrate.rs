//! Integrators for `dy/dt = f(y)`: fixed-step classical Runge-Kutta (RK4), the adaptive
//! Dormand-Prince 5(4) pair with error control and Hairer's stiffness test, the linearly
//! implicit Rosenbrock 2(3) pair of Shampine & Reichelt (ode23s) for stiff systems, and
//! [`solve`], which starts with Dormand-Prince and hands over to Rosenbrock when the problem
//! turns stiff. All detect blow-up and convergence and stop after [`Limits::max_steps`].

/// An autonomous ODE system `dy/dt = f(y)`.
pub trait System {
    /// Number of state variables.
    fn dim(&self) -> usize;
    /// Writes `f(y)` into `dy`.
    fn deriv(&self, y: &[f64], dy: &mut [f64]);
}

/// How an integration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// ‖f(y)‖∞ fell below the convergence tolerance: a fixed point.
    Converged,
    /// Some |y_i| exceeded the blow-up bound, or became NaN.
    BlewUp,
    /// The end time was reached first.
    Reached,
    /// An explicit method stopped: its step stayed at its stability limit (Hairer's test), too
    /// small to reach the end time within [`Limits::max_steps`]. A stiff system: use
    /// [`rosenbrock`] or [`solve`].
    Stiff,
    /// [`Limits::max_steps`] steps were taken (or the step no longer advanced t) before the end
    /// time.
    StepLimit,
}

/// Settings shared by both integrators.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Integrate up to this time.
    pub t_end: f64,
    /// Stop as converged when ‖f(y)‖∞ < this (0 disables).
    pub converge: f64,
    /// Stop as blown up when some |y_i| > this.
    pub blow_up: f64,
    /// Stop after this many steps (attempted ones, for the adaptive methods).
    pub max_steps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            t_end: 1e3,
            converge: 1e-12,
            blow_up: 1e12,
            max_steps: 10_000_000,
        }
    }
}

/// A computed trajectory: times and states (`states[k]` at `times[k]`).
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub outcome: Outcome,
    /// When [`solve`] handed over to the Rosenbrock method: the time it did.
    pub implicit_from: Option<f64>,
}

impl Trajectory {
    /// A trajectory holding only its start `y` at t = 0.
    fn start(y: &[f64]) -> Self {
        Trajectory {
            times: vec![0.0],
            states: vec![y.to_vec()],
            outcome: Outcome::Reached,
            implicit_from: None,
        }
    }

    /// The last state.
    pub fn end(&self) -> &[f64] {
        self.states.last().expect("a trajectory has its start")
    }
    /// The last time.
    pub fn t_end(&self) -> f64 {
        *self.times.last().expect("a trajectory has its start")
    }
}

fn check(sys: &impl System, y: &[f64], dy: &mut [f64], limits: &Limits) -> Option<Outcome> {
    if y.iter().any(|v| !v.is_finite() || v.abs() > limits.blow_up) {
        return Some(Outcome::BlewUp);
    }
    sys.deriv(y, dy);
    // every component, not a max fold: f64::max would skip a NaN
    if dy.iter().any(|v| !v.is_finite()) {
        return Some(Outcome::BlewUp);
    }
    let speed = dy.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (speed < limits.converge).then_some(Outcome::Converged)
}

/// The scaled error max_i |e_i| / (atol + rtol·max(|y_i|, |z_i|)), infinite if any term is NaN.
fn scaled_error(e: &[f64], y: &[f64], z: &[f64], rtol: f64, atol: f64) -> f64 {
    let mut err: f64 = 0.0;
    for i in 0..e.len() {
        let v = (e[i] / (atol + rtol * y[i].abs().max(z[i].abs()))).abs();
        if v.is_nan() {
            return f64::INFINITY;
        }
        err = err.max(v);
    }
    err
}

/// Classical fourth-order Runge-Kutta with fixed step `h`, recording every `record` steps.
pub fn rk4(sys: &impl System, y0: &[f64], h: f64, limits: &Limits, record: usize) -> Trajectory {
    let n = sys.dim();
    assert_eq!(y0.len(), n);
    let mut y = y0.to_vec();
    let (mut k1, mut k2, mut k3, mut k4, mut tmp) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let mut t = 0.0;
    let mut out = Trajectory::start(&y);
    let mut step = 0usize;
    while t < limits.t_end {
        if let Some(o) = check(sys, &y, &mut k1, limits) {
            out.outcome = o;
            break;
        }
        let h = h.min(limits.t_end - t);
        if step >= limits.max_steps || t + h == t {
            out.outcome = Outcome::StepLimit;
            break;
        }
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k1[i];
        }
        sys.deriv(&tmp, &mut k2);
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k2[i];
        }
        sys.deriv(&tmp, &mut k3);
        for i in 0..n {
            tmp[i] = y[i] + h * k3[i];
        }
        sys.deriv(&tmp, &mut k4);
        for i in 0..n {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        t += h;
        step += 1;
        if step.is_multiple_of(record.max(1)) {
            out.times.push(t);
            out.states.push(y.clone());
        }
    }
    if out.t_end() != t {
        out.times.push(t);
        out.states.push(y);
    }
    out
}

// Dormand-Prince 5(4) tableau (Dormand & Prince 1980).
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// 5th-order weights (= the last row of A: first same as last).
const B5: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];
/// 4th-order weights of the embedded error estimate.
const B4: [f64; 7] = [
    5179.0 / 57600.0,
    0.0,
    7571.0 / 16695.0,
    393.0 / 640.0,
    -92097.0 / 339200.0,
    187.0 / 2100.0,
    1.0 / 40.0,
];

/// Adaptive Dormand-Prince 5(4): each step's local error estimate (5th − 4th order) is kept
/// below `atol + rtol·|y|` per component; the step grows or shrinks by the usual
/// `0.9·(1/err)^{1/5}` rule. Every accepted step is recorded. Hairer's stiffness test (h·ρ >
/// 3.25 on 15 accepted steps, ρ estimated from the last two stages) stops it with
/// [`Outcome::Stiff`] once the remaining steps at the current size exceed the step budget.
pub fn dopri5(sys: &impl System, y0: &[f64], rtol: f64, atol: f64, limits: &Limits) -> Trajectory {
    assert_eq!(y0.len(), sys.dim());
    let mut out = Trajectory::start(y0);
    let mut h = 1e-3f64.min(limits.t_end);
    dopri5_run(sys, &mut out, &mut h, rtol, atol, limits, usize::MAX);
    out
}

/// At most this many further steps at a stability-limited size before [`solve`] hands over
/// to the Rosenbrock method.
const HAND_OVER_STEPS: usize = 10_000;

/// Dormand-Prince from the end of `out`; stops as [`Outcome::Stiff`] when the stiffness test
/// fires and the end time is more than `min(patience, steps left)` steps away.
fn dopri5_run(
    sys: &impl System,
    out: &mut Trajectory,
    h: &mut f64,
    rtol: f64,
    atol: f64,
    limits: &Limits,
    patience: usize,
) {
    let n = sys.dim();
    let mut y = out.end().to_vec();
    let mut t = out.t_end();
    let mut k = vec![vec![0.0; n]; 7];
    let (mut tmp, mut y5, mut y4, mut e, mut stage6) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let (mut stiff, mut calm) = (0usize, 0usize);
    let mut steps = out.times.len() - 1;
    out.outcome = Outcome::Reached;
    while t < limits.t_end {
        if let Some(o) = check(sys, &y, &mut k[0], limits) {
            out.outcome = o;
            return;
        }
        *h = h.min(limits.t_end - t);
        loop {
            if steps >= limits.max_steps || t + *h == t {
                out.outcome = Outcome::StepLimit;
                return;
            }
            steps += 1;
            for (s, row) in A.iter().enumerate().skip(1) {
                for i in 0..n {
                    tmp[i] = y[i] + *h * (0..s).map(|j| row[j] * k[j][i]).sum::<f64>();
                }
                if s == 5 {
                    stage6.copy_from_slice(&tmp);
                }
                let (_, rest) = k.split_at_mut(s);
                sys.deriv(&tmp, &mut rest[0]);
            }
            for i in 0..n {
                y5[i] = y[i] + *h * (0..7).map(|s| B5[s] * k[s][i]).sum::<f64>();
                y4[i] = y[i] + *h * (0..7).map(|s| B4[s] * k[s][i]).sum::<f64>();
                e[i] = y5[i] - y4[i];
            }
            let err = scaled_error(&e, &y, &y5, rtol, atol);
            if err <= 1.0 {
                // stiffness: h·ρ with ρ ≈ ‖f(y5) − f(stage 6)‖ / ‖y5 − stage 6‖
                let num: f64 = (0..n).map(|i| (k[6][i] - k[5][i]).powi(2)).sum();
                let den: f64 = (0..n).map(|i| (y5[i] - stage6[i]).powi(2)).sum();
                if den > 0.0 && *h * (num / den).sqrt() > 3.25 {
                    calm = 0;
                    stiff += 1;
                } else {
                    calm += 1;
                    if calm >= 6 {
                        stiff = 0;
                    }
                }
                t += *h;
                y.copy_from_slice(&y5);
                out.times.push(t);
                out.states.push(y.clone());
                let grow = if err == 0.0 {
                    5.0
                } else {
                    (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
                };
                if stiff >= 15 {
                    let left = limits.max_steps.saturating_sub(steps).min(patience);
                    if (limits.t_end - t) / *h > left as f64 {
                        out.outcome = Outcome::Stiff;
                        return;
                    }
                }
                *h *= grow;
                break;
            }
            let shrink = if err.is_finite() {
                (0.9 * err.powf(-0.2)).clamp(0.1, 0.9)
            } else {
                0.1
            };
            *h *= shrink;
        }
    }
}

/// The linearly implicit Rosenbrock 2(3) pair of Shampine & Reichelt (MATLAB's ode23s), for
/// stiff systems: with W = I − h·d·J (J the Jacobian at y by forward differences,
/// d = 1/(2 + √2)), k1 = W⁻¹f(y), k2 = W⁻¹(f(y + h k1/2) − k1) + k1, y_new = y + h k2, and the
/// error estimate h/6 (k1 − 2k2 + k3) with k3 = W⁻¹(f(y_new) − e32(k2 − f(y + h k1/2))
/// − 2(k1 − f(y))), e32 = 6 + √2. L-stable, so the step follows accuracy, not stability.
/// The step grows or shrinks by `0.8·(1/err)^{1/3}`; every accepted step is recorded. Dense
/// linear algebra: meant for small systems.
pub fn rosenbrock(
    sys: &impl System,
    y0: &[f64],
    rtol: f64,
    atol: f64,
    limits: &Limits,
) -> Trajectory {
    assert_eq!(y0.len(), sys.dim());
    let mut out = Trajectory::start(y0);
    let mut h = 1e-3f64.min(limits.t_end);
    rosenbrock_run(sys, &mut out, &mut h, rtol, atol, limits);
    out
}

/// Largest state for which [`solve`] hands over to the dense Rosenbrock method.
pub const MAX_IMPLICIT_DIM: usize = 512;

/// Dormand-Prince 5(4) while it is efficient; when Hairer's stiffness test fires and the end
/// time is more than 10⁴ stability-limited steps away, the Rosenbrock method takes over from
/// there (for states up to [`MAX_IMPLICIT_DIM`]; larger ones stop as [`Outcome::Stiff`]).
pub fn solve(sys: &impl System, y0: &[f64], rtol: f64, atol: f64, limits: &Limits) -> Trajectory {
    assert_eq!(y0.len(), sys.dim());
    let mut out = Trajectory::start(y0);
    let mut h = 1e-3f64.min(limits.t_end);
    let patience = if sys.dim() <= MAX_IMPLICIT_DIM {
        HAND_OVER_STEPS
    } else {
        usize::MAX
    };
    dopri5_run(sys, &mut out, &mut h, rtol, atol, limits, patience);
    if out.outcome == Outcome::Stiff && sys.dim() <= MAX_IMPLICIT_DIM {
        out.implicit_from = Some(out.t_end());
        rosenbrock_run(sys, &mut out, &mut h, rtol, atol, limits);
    }
    out
}

fn rosenbrock_run(
    sys: &impl System,
    out: &mut Trajectory,
    h: &mut f64,
    rtol: f64,
    atol: f64,
    limits: &Limits,
) {
    let n = sys.dim();
    let d = 1.0 / (2.0 + std::f64::consts::SQRT_2);
    let e32 = 6.0 + std::f64::consts::SQRT_2;
    let mut y = out.end().to_vec();
    let mut t = out.t_end();
    let mut f0 = vec![0.0; n];
    let (mut f1, mut f2, mut tmp, mut ynew, mut e) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let mut jac = vec![0.0; n * n];
    let mut steps = out.times.len() - 1;
    out.outcome = Outcome::Reached;
    while t < limits.t_end {
        if let Some(o) = check(sys, &y, &mut f0, limits) {
            out.outcome = o;
            return;
        }
        jacobian(sys, &y, &f0, &mut jac, &mut tmp, &mut f1);
        *h = h.min(limits.t_end - t);
        loop {
            if steps >= limits.max_steps || t + *h == t {
                out.outcome = Outcome::StepLimit;
                return;
            }
            steps += 1;
            // W = I − h d J, factorised once per attempt
            let mut w: Vec<f64> = jac.iter().map(|v| -*h * d * v).collect();
            for i in 0..n {
                w[i * n + i] += 1.0;
            }
            let Some(lu) = Lu::new(w, n) else {
                *h *= 0.25;
                continue;
            };
            let mut k1 = f0.clone();
            lu.solve(&mut k1);
            for i in 0..n {
                tmp[i] = y[i] + 0.5 * *h * k1[i];
            }
            sys.deriv(&tmp, &mut f1);
            let mut k2: Vec<f64> = (0..n).map(|i| f1[i] - k1[i]).collect();
            lu.solve(&mut k2);
            for i in 0..n {
                k2[i] += k1[i];
                ynew[i] = y[i] + *h * k2[i];
            }
            sys.deriv(&ynew, &mut f2);
            let mut k3: Vec<f64> = (0..n)
                .map(|i| f2[i] - e32 * (k2[i] - f1[i]) - 2.0 * (k1[i] - f0[i]))
                .collect();
            lu.solve(&mut k3);
            for i in 0..n {
                e[i] = *h / 6.0 * (k1[i] - 2.0 * k2[i] + k3[i]);
            }
            let err = scaled_error(&e, &y, &ynew, rtol, atol);
            if err <= 1.0 && ynew.iter().all(|v| v.is_finite()) {
                t += *h;
                y.copy_from_slice(&ynew);
                out.times.push(t);
                out.states.push(y.clone());
                *h *= if err == 0.0 {
                    5.0
                } else {
                    (0.8 * err.powf(-1.0 / 3.0)).clamp(0.2, 5.0)
                };
                break;
            }
            *h *= if err.is_finite() {
                (0.8 * err.powf(-1.0 / 3.0)).clamp(0.1, 0.9)
            } else {
                0.1
            };
        }
    }
}

/// The Jacobian of `sys` at `y` (row-major, `jac[i·n + j] = ∂f_i/∂y_j`) by forward differences
/// with steps √ε·max(|y_j|, 1); `f0` = f(y).
fn jacobian(
    sys: &impl System,
    y: &[f64],
    f0: &[f64],
    jac: &mut [f64],
    yp: &mut [f64],
    fp: &mut [f64],
) {
    let n = y.len();
    yp.copy_from_slice(y);
    for j in 0..n {
        let step = f64::EPSILON.sqrt() * y[j].abs().max(1.0);
        yp[j] = y[j] + step;
        let dj = yp[j] - y[j]; // the step actually taken
        sys.deriv(yp, fp);
        for i in 0..n {
            jac[i * n + j] = (fp[i] - f0[i]) / dj;
        }
        yp[j] = y[j];
    }
}

/// An LU factorisation with partial pivoting of a dense n×n matrix.
struct Lu {
    a: Vec<f64>,
    piv: Vec<usize>,
    n: usize,
}

impl Lu {
    /// `None` if the matrix is singular (or not finite).
    fn new(mut a: Vec<f64>, n: usize) -> Option<Self> {
        let mut piv: Vec<usize> = (0..n).collect();
        for c in 0..n {
            let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))?;
            let pv = a[p * n + c];
            if pv == 0.0 || !pv.is_finite() {
                return None;
            }
            if p != c {
                for j in 0..n {
                    a.swap(p * n + j, c * n + j);
                }
                piv.swap(p, c);
            }
            for r in c + 1..n {
                let m = a[r * n + c] / pv;
                a[r * n + c] = m;
                for j in c + 1..n {
                    a[r * n + j] -= m * a[c * n + j];
                }
            }
        }
        Some(Lu { a, piv, n })
    }

    /// Solves A x = b in place.
    fn solve(&self, b: &mut [f64]) {
        let n = self.n;
        let mut x: Vec<f64> = self.piv.iter().map(|&p| b[p]).collect();
        for r in 0..n {
            for j in 0..r {
                x[r] -= self.a[r * n + j] * x[j];
            }
        }
        for r in (0..n).rev() {
            for j in r + 1..n {
                x[r] -= self.a[r * n + j] * x[j];
            }
            x[r] /= self.a[r * n + r];
        }
        b.copy_from_slice(&x);
    }
}
