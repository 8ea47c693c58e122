//! Integrating a system of the reports: the integrator and its settings, checked, and the
//! verdict on a trajectory (a blow-up, a stiff stop or an exhausted step budget is an error,
//! never compared with a prediction).

use super::input::{MAX_STEPS, end_time, finite, positive};
use super::integrate::{Limits, Outcome, System, Trajectory, dopri5, rk4, rosenbrock, solve};
use crate::error::Error;

/// How to integrate: end time, method and its accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    /// Integrate up to this time (at most [`super::input::MAX_T_END`]) unless the system
    /// converges first.
    pub t_end: f64,
    /// The integrator.
    pub method: Method,
    /// Step of rk4 (at most [`MAX_STEPS`] steps to the end time).
    pub step: f64,
    /// Relative tolerance of the adaptive methods, in [1e-14, 0.1]; the absolute one is 1% of it.
    pub rtol: f64,
}

/// An integrator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// Dormand-Prince 5(4), handing over to Rosenbrock when the system turns stiff.
    #[default]
    Auto,
    /// Dormand-Prince 5(4) only.
    Dopri,
    /// The implicit Rosenbrock 2(3) of ode23s.
    Rosenbrock,
    /// Classical Runge-Kutta with the fixed step [`Integration::step`].
    Rk4,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Auto, Method::Dopri, Method::Rosenbrock, Method::Rk4];

    /// The name a flag takes: `auto`, `dopri`, `rosenbrock`, `rk4`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Dopri => "dopri",
            Method::Rosenbrock => "rosenbrock",
            Method::Rk4 => "rk4",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "must be auto, dopri, rosenbrock or rk4, got `{}`",
                    crate::error::bounded(s)
                )
            })
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for Integration {
    fn default() -> Self {
        Integration {
            t_end: 1000.0,
            method: Method::Auto,
            step: 1e-3,
            rtol: 1e-10,
        }
    }
}

impl Integration {
    /// The integration limits, every setting checked (errors name `--t-end`, `--rtol`,
    /// `--step`).
    pub fn limits(&self) -> Result<Limits, Error> {
        let t_end = end_time("--t-end", self.t_end)?;
        let rtol = finite("--rtol", self.rtol)?;
        if !(1e-14..=0.1).contains(&rtol) {
            return Err(Error::config(
                "--rtol",
                format!(
                    "must lie in [1e-14, 0.1] (below 1e-14 double precision cannot follow), got {rtol}"
                ),
            ));
        }
        if self.method == Method::Rk4 {
            let h = positive("--step", self.step)?;
            let steps = t_end / h;
            if steps > MAX_STEPS as f64 {
                return Err(Error::config(
                    "--step",
                    format!(
                        "--t-end / --step = {steps:.3e} steps exceed the limit of {MAX_STEPS}; \
                         take a larger --step or a smaller --t-end"
                    ),
                ));
            }
        }
        Ok(Limits {
            t_end,
            max_steps: MAX_STEPS,
            ..Limits::default()
        })
    }

    /// Integrates `sys` from `y0` with these settings (checked first). The trajectory may end
    /// in any [`Outcome`]; see [`finished`].
    pub fn integrate(&self, sys: &impl System, y0: &[f64]) -> Result<Trajectory, Error> {
        let limits = self.limits()?;
        let (rtol, atol) = (self.rtol, self.rtol * 1e-2);
        Ok(match self.method {
            Method::Dopri => dopri5(sys, y0, rtol, atol, &limits),
            Method::Rosenbrock => rosenbrock(sys, y0, rtol, atol, &limits),
            Method::Rk4 => rk4(sys, y0, self.step, &limits, 100),
            Method::Auto => solve(sys, y0, rtol, atol, &limits),
        })
    }
}

/// [`solve`] (the automatic method) to `t_end` with tolerances `rtol`, `atol`, at most
/// [`MAX_STEPS`] steps and the default convergence test.
pub fn solve_to(sys: &impl System, y0: &[f64], t_end: f64, rtol: f64, atol: f64) -> Trajectory {
    let limits = Limits {
        t_end,
        max_steps: MAX_STEPS,
        ..Limits::default()
    };
    solve(sys, y0, rtol, atol, &limits)
}

/// `Ok` if the trajectory converged or reached its end time; otherwise an
/// [`Error::Integration`] saying what stopped it, with a hint for `method` (the method's
/// name as in [`Integration::method`]).
pub fn finished(traj: &Trajectory, method: Method) -> Result<(), Error> {
    let t = traj.t_end();
    let steps = traj.times.len() - 1;
    let (problem, hint) = match traj.outcome {
        Outcome::Converged | Outcome::Reached => return Ok(()),
        Outcome::BlewUp => (
            format!(
                "the trajectory blew up at t = {t:.6e} after {steps} steps (a weight exceeded \
                 1e12 in magnitude or became NaN/infinite); nothing to compare with a prediction"
            ),
            if method == Method::Rk4 {
                "a fixed step beyond the stability limit of a stiff system blows up: take a \
                 smaller --step or --method auto"
            } else {
                "the dynamics diverge from this start, or its scale is beyond double precision"
            },
        ),
        Outcome::Stiff => (
            format!(
                "the system is stiff: at t = {t:.6e}, after {steps} steps, Dormand-Prince's step \
                 stayed at its stability limit, too small to reach --t-end"
            ),
            "use --method auto (the default), which hands over to the implicit Rosenbrock \
             method, or --method rosenbrock",
        ),
        Outcome::StepLimit if steps < MAX_STEPS => (
            format!(
                "the step size collapsed at t = {t:.6e}, after {steps} steps: the vector field \
                 is singular there (for μ < 1, f'(a1) is infinite at a1 = 0, which the \
                 integrators cannot step across)"
            ),
            "start elsewhere, or end the integration (--t-end) before that point",
        ),
        Outcome::StepLimit => (
            format!("the integration stopped at t = {t:.6e} after the limit of {steps} steps"),
            "loosen --rtol, take a larger --step or a smaller --t-end; for a stiff system use \
             --method auto",
        ),
    };
    Err(Error::Integration {
        problem,
        hint: hint.to_string(),
    })
}

/// How an integration ended, in words.
pub fn describe(o: Outcome) -> &'static str {
    match o {
        Outcome::Converged => "converged",
        Outcome::BlewUp => "blew up",
        Outcome::Reached => "reached the end time",
        Outcome::Stiff => "stopped: stiff",
        Outcome::StepLimit => "stopped: step limit",
    }
}

/// max_i |x_i − y_i|, NaN if any difference is NaN (f64::max would skip it).
pub fn max_diff(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).fold(0.0, |m: f64, (a, b)| {
        let d = (a - b).abs();
        if m.is_nan() || d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::systems::{Algo, Chain};

    fn a111(c: f64) -> Chain {
        Chain {
            alpha: 1.0,
            beta: 1.0,
            algo: Algo::Rbp,
            c: vec![0.0, c],
            adaptive: false,
            mu: 1.0,
            signed: false,
            len: 2,
        }
    }

    #[test]
    fn every_method_ends_on_the_hyperbola_a1_a2_equals_alpha_over_beta() {
        for method in Method::ALL {
            let settings = Integration {
                method,
                step: 1e-2,
                t_end: 200.0,
                ..Integration::default()
            };
            let traj = settings.integrate(&a111(1.0), &[0.5, 0.5]).unwrap();
            finished(&traj, method).unwrap();
            let end = traj.end();
            assert!((end[0] * end[1] - 1.0).abs() < 1e-6, "{method}: {end:?}");
        }
    }

    #[test]
    fn bad_settings_and_a_blow_up_are_errors_naming_the_flag() {
        let e = |s: Integration| s.limits().unwrap_err().to_string();
        assert_eq!(
            "euler".parse::<Method>().unwrap_err(),
            "must be auto, dopri, rosenbrock or rk4, got `euler`"
        );
        for m in Method::ALL {
            assert_eq!(m.to_string().parse::<Method>(), Ok(m));
        }
        assert!(
            e(Integration {
                rtol: 1.0,
                ..Integration::default()
            })
            .starts_with("invalid value for `--rtol`: must lie in [1e-14, 0.1]")
        );
        // the t_end check comes before the step's
        assert_eq!(
            e(Integration {
                t_end: 0.0,
                method: Method::Rk4,
                step: 0.0,
                ..Integration::default()
            }),
            "invalid value for `--t-end`: must be > 0, got 0"
        );
        let rk4 = Integration {
            method: Method::Rk4,
            step: 1.0,
            ..Integration::default()
        };
        let traj = rk4.integrate(&a111(1.0), &[3.0, 3.0]).unwrap();
        assert_eq!(describe(traj.outcome), "blew up");
        let e = finished(&traj, Method::Rk4).unwrap_err().to_string();
        assert!(e.contains("take a smaller --step or --method auto"), "{e}");
        assert!(max_diff(&[1.0, f64::NAN], &[1.0, 2.0]).is_nan());
        assert_eq!(max_diff(&[1.0, 5.0], &[1.5, 3.0]), 2.0);
    }
}
