//! Integrators for `dy/dt = f(y)`: fixed-step classical Runge-Kutta (RK4) and the adaptive
//! Dormand-Prince 5(4) pair with error control, both detecting blow-up and convergence.

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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            t_end: 1e3,
            converge: 1e-12,
            blow_up: 1e12,
        }
    }
}

/// A computed trajectory: times and states (`states[k]` at `times[k]`).
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub outcome: Outcome,
}

impl Trajectory {
    /// A trajectory holding only its start `y` at t = 0.
    fn start(y: &[f64]) -> Self {
        Trajectory {
            times: vec![0.0],
            states: vec![y.to_vec()],
            outcome: Outcome::Reached,
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
    let speed = dy.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if !speed.is_finite() {
        return Some(Outcome::BlewUp);
    }
    (speed < limits.converge).then_some(Outcome::Converged)
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
/// `0.9·(1/err)^{1/5}` rule. Every accepted step is recorded.
pub fn dopri5(sys: &impl System, y0: &[f64], rtol: f64, atol: f64, limits: &Limits) -> Trajectory {
    let n = sys.dim();
    assert_eq!(y0.len(), n);
    let mut y = y0.to_vec();
    let mut k = vec![vec![0.0; n]; 7];
    let mut tmp = vec![0.0; n];
    let mut y5 = vec![0.0; n];
    let mut t = 0.0;
    let mut h = 1e-3f64.min(limits.t_end);
    let mut out = Trajectory::start(&y);
    let mut guard = 0usize;
    while t < limits.t_end {
        if let Some(o) = check(sys, &y, &mut k[0], limits) {
            out.outcome = o;
            break;
        }
        h = h.min(limits.t_end - t);
        loop {
            for (s, row) in A.iter().enumerate().skip(1) {
                for i in 0..n {
                    tmp[i] = y[i] + h * (0..s).map(|j| row[j] * k[j][i]).sum::<f64>();
                }
                let (_, rest) = k.split_at_mut(s);
                sys.deriv(&tmp, &mut rest[0]);
            }
            let mut err: f64 = 0.0;
            for i in 0..n {
                y5[i] = y[i] + h * (0..7).map(|s| B5[s] * k[s][i]).sum::<f64>();
                let y4 = y[i] + h * (0..7).map(|s| B4[s] * k[s][i]).sum::<f64>();
                let scale = atol + rtol * y[i].abs().max(y5[i].abs());
                err = err.max(((y5[i] - y4) / scale).abs());
            }
            guard += 1;
            if guard > 50_000_000 {
                out.outcome = Outcome::BlewUp;
                return out;
            }
            if err <= 1.0 {
                t += h;
                y.copy_from_slice(&y5);
                out.times.push(t);
                out.states.push(y.clone());
                let grow = if err == 0.0 {
                    5.0
                } else {
                    (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
                };
                h *= grow;
                break;
            }
            let shrink = if err.is_finite() {
                (0.9 * err.powf(-0.2)).clamp(0.1, 0.9)
            } else {
                0.1
            };
            h *= shrink;
            if h < 1e-14 * t.max(1.0) {
                out.outcome = Outcome::BlewUp; // the step collapsed: a singularity
                return out;
            }
        }
    }
    out
}
