//! `rbp dynamics …`: the learning dynamics of paper §3 from the command line.

use super::sayln;
use anyhow::{Context, bail, ensure};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use rbprop::dynamics::field::{self, FieldSpec};
use rbprop::dynamics::integrate::{Limits, Outcome, Trajectory, dopri5, rk4, rosenbrock, solve};
use rbprop::dynamics::predict::{chain_c, predict_chain, stability_on_hyperbola};
use rbprop::dynamics::sgd::simulate_a111;
use rbprop::dynamics::systems::{Algo, Autoencoder, Chain, General, Wide, power, power_kind};
use rbprop::error::Error;
use std::path::PathBuf;

/// Longest end time: an integration runs to it unless it converges first.
const MAX_T_END: f64 = 1e9;
/// Most steps of one integration (fixed-step rk4: --t-end / --step; the adaptive methods stop
/// there too).
const MAX_STEPS: usize = 10_000_000;
/// Most per-example updates of `dynamics sgd` (--time / --eta).
const MAX_SGD_STEPS: f64 = 1e8;
/// Most arrows per axis of the field figure.
const MAX_GRID: usize = 200;
/// Longest chain.
const MAX_LENGTH: usize = 64;
/// Most units N of `wide` and `autoencoder`.
const MAX_UNITS: usize = 10_000;
/// Largest N0, N1, N2 of `general`.
const MAX_SIZE: usize = 100;

#[derive(Subcommand, Debug)]
pub enum DynamicsCommand {
    /// A linear chain A[1,…,1] (or the non-linear A[1,1,1] with --mu): integrate from a start,
    /// print the end point, the predicted fixed point and its stability.
    #[command(allow_negative_numbers = true)]
    Chain(ChainArgs),
    /// Draw the A[1,1,1] RBP vector field with the fixed-point hyperbola, the unstable region
    /// and trajectories (SVG or PNG).
    #[command(allow_negative_numbers = true)]
    Field(FieldArgs),
    /// A[1,N,1]: converges to the hypersurface Σ a_i b_i = α/β.
    #[command(allow_negative_numbers = true)]
    Wide(WideArgs),
    /// The linear autoencoder A[N,1,N] on decorrelated data: converges with a ∝ c.
    #[command(allow_negative_numbers = true)]
    Autoencoder(AutoencoderArgs),
    /// The general linear A[N0,N1,N2] with data statistics Σ_II, Σ_TI.
    General(GeneralArgs),
    /// The per-example learning rule of A[1,1,1] against its expected ODE.
    #[command(allow_negative_numbers = true)]
    Sgd(SgdArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// α = E[T·I] (or E[T·I^μ]).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// β = E[I²] (or E[I^{2μ}]), > 0.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Estimate α and β from a CSV file of samples `input,target` (overrides --alpha/--beta).
    #[arg(long, value_name = "CSV")]
    pub stats: Option<PathBuf>,
    /// Integrate up to this time (at most 1e9).
    #[arg(long, default_value_t = 1000.0)]
    pub t_end: f64,
    /// Integrator: auto (Dormand-Prince 5(4), handing over to Rosenbrock when the system turns
    /// stiff), dopri (Dormand-Prince only), rosenbrock (the implicit Rosenbrock 2(3) of ode23s)
    /// or rk4 (fixed step --step).
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Step of rk4 (at most 1e7 steps to --t-end).
    #[arg(long, default_value_t = 1e-3)]
    pub step: f64,
    /// Relative tolerance of the adaptive methods, in [1e-14, 0.1].
    #[arg(long, default_value_t = 1e-10)]
    pub rtol: f64,
}

#[derive(Args, Debug)]
pub struct ChainArgs {
    /// Number of weights L (A[1,1,1] has length 2).
    #[arg(long, default_value_t = 2)]
    pub length: usize,
    /// Learning channel.
    #[arg(long, default_value = "rbp", value_parser = PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap()))]
    pub algo: Algo,
    /// Channel weights: RBP c_2..c_L, SRBP c_1..c_(L−1) (one value is repeated) [default: 1].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<String>,
    /// Starting weights a_1,…,a_L.
    #[arg(long, value_name = "A1,A2,…", allow_hyphen_values = true)]
    pub from: String,
    /// Hidden non-linearity f(x) = x^μ (A[1,1,1] only; fractions like 1/3 allowed): the plain
    /// power for integer μ (x² is even), the real odd root for μ = 1/k with k odd.
    #[arg(long, default_value = "1")]
    pub mu: String,
    /// Read x^μ as sign(x)|x|^μ instead (odd for every μ; any μ > 0).
    #[arg(long)]
    pub signed_power: bool,
    /// Adaptive channel: c learns like the forward weight it stands for (c_k(0) = a_k(0) gives BP).
    #[arg(long)]
    pub adaptive: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct FieldArgs {
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Channel weight c.
    #[arg(long, default_value_t = 1.0)]
    pub c: f64,
    /// Half-width of the plotted square.
    #[arg(long, default_value_t = 3.0)]
    pub range: f64,
    /// Arrows per axis (at most 200).
    #[arg(long, default_value_t = 25)]
    pub grid: usize,
    /// Starting points of drawn trajectories, `a1,a2` (repeatable) [default: six starts].
    #[arg(long = "start", value_name = "A1,A2", allow_hyphen_values = true)]
    pub starts: Vec<String>,
    /// Output file (.svg or .png).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct WideArgs {
    /// Hidden units N.
    #[arg(long, default_value_t = 3)]
    pub n: usize,
    #[arg(long, default_value = "rbp", value_parser = PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap()))]
    pub algo: Algo,
    /// Channel weights c_1..c_N [default: seeded N(0,1)].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<String>,
    /// Start a_1..a_N,b_1..b_N [default: seeded N(0, 0.25)].
    #[arg(long, value_name = "…", allow_hyphen_values = true)]
    pub from: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct AutoencoderArgs {
    /// Input/output size N.
    #[arg(long, default_value_t = 4)]
    pub n: usize,
    #[arg(long, default_value = "rbp", value_parser = PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap()))]
    pub algo: Algo,
    /// Channel vector c [default: seeded N(0,1)].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<String>,
    /// Start a (N values) then b (N values) [default: seeded N(0, 0.25)].
    #[arg(long, value_name = "…", allow_hyphen_values = true)]
    pub from: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000.0)]
    pub t_end: f64,
}

#[derive(Args, Debug)]
pub struct GeneralArgs {
    /// N0,N1,N2.
    #[arg(long, default_value = "4,2,3")]
    pub sizes: String,
    #[arg(long, default_value = "rbp", value_parser = PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap()))]
    pub algo: Algo,
    /// CSV of samples: N0 input columns then N2 target columns; Σ_II and Σ_TI are estimated
    /// from it [default: seeded synthetic data T = M·I + noise].
    #[arg(long, value_name = "CSV")]
    pub stats: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000.0)]
    pub t_end: f64,
}

#[derive(Args, Debug)]
pub struct SgdArgs {
    #[arg(long, default_value = "rbp", value_parser = PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap()))]
    pub algo: Algo,
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    #[arg(long, default_value_t = 1.0)]
    pub c: f64,
    /// Standard deviation of the target noise.
    #[arg(long, default_value_t = 0.5)]
    pub noise: f64,
    /// Start a1,a2.
    #[arg(long, default_value = "0.5,0.5", allow_hyphen_values = true)]
    pub from: String,
    /// Learning rate η (ODE time t = η·examples).
    #[arg(long, default_value_t = 1e-3)]
    pub eta: f64,
    /// ODE time to simulate.
    #[arg(long, default_value_t = 10.0)]
    pub time: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(cmd: DynamicsCommand) -> anyhow::Result<()> {
    match cmd {
        DynamicsCommand::Chain(a) => chain(a),
        DynamicsCommand::Field(a) => draw_field(a),
        DynamicsCommand::Wide(a) => wide(a),
        DynamicsCommand::Autoencoder(a) => autoencoder(a),
        DynamicsCommand::General(a) => general(a),
        DynamicsCommand::Sgd(a) => sgd(a),
    }
}

/// Parses `1,2.5,-3` (fractions like 1/3 allowed; every value finite).
pub fn numbers(text: &str, what: &str) -> anyhow::Result<Vec<f64>> {
    text.split(',')
        .map(|s| {
            let v = number(s.trim()).with_context(|| format!("{what}: `{s}` is not a number"))?;
            Ok(finite(what, v)?)
        })
        .collect()
}

fn number(s: &str) -> anyhow::Result<f64> {
    if let Some((a, b)) = s.split_once('/') {
        let (a, b): (f64, f64) = (a.trim().parse()?, b.trim().parse()?);
        ensure!(b != 0.0, "division by zero");
        return Ok(a / b);
    }
    Ok(s.parse()?)
}

/// `v` if it is finite, else an error naming `flag`.
fn finite(flag: &str, v: f64) -> Result<f64, Error> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::config(
            flag,
            format!("must be a finite number, got {v}"),
        ))
    }
}

/// `v` if it is finite and > 0, else an error naming `flag`.
fn positive(flag: &str, v: f64) -> Result<f64, Error> {
    if finite(flag, v)? > 0.0 {
        Ok(v)
    } else {
        Err(Error::config(flag, format!("must be > 0, got {v}")))
    }
}

/// An end time: finite, > 0, at most [`MAX_T_END`].
fn end_time(flag: &str, v: f64) -> Result<f64, Error> {
    if v.is_nan() || v <= 0.0 {
        return Err(Error::config(flag, format!("must be > 0, got {v}")));
    }
    if v > MAX_T_END {
        return Err(Error::config(
            flag,
            format!("the end time is limited to {MAX_T_END:e}, got {v}"),
        ));
    }
    Ok(v)
}

/// A count: at most `max`, checked before anything is allocated.
fn count(flag: &str, v: usize, max: usize) -> Result<usize, Error> {
    if v > max {
        return Err(Error::config(flag, format!("at most {max}, got {v}")));
    }
    Ok(v)
}

/// Integration limits of the shared flags, checked: --t-end, --rtol, --method and, for rk4,
/// --step with at most [`MAX_STEPS`] steps.
fn checked_limits(c: &Common) -> Result<Limits, Error> {
    let t_end = end_time("--t-end", c.t_end)?;
    let rtol = finite("--rtol", c.rtol)?;
    if !(1e-14..=0.1).contains(&rtol) {
        return Err(Error::config(
            "--rtol",
            format!(
                "must lie in [1e-14, 0.1] (below 1e-14 double precision cannot follow), got {rtol}"
            ),
        ));
    }
    match c.method.as_str() {
        "auto" | "dopri" | "rosenbrock" => {}
        "rk4" => {
            let h = positive("--step", c.step)?;
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
        m => {
            return Err(Error::config(
                "--method",
                format!("must be auto, dopri, rosenbrock or rk4, got `{m}`"),
            ));
        }
    }
    Ok(Limits {
        t_end,
        max_steps: MAX_STEPS,
        ..Limits::default()
    })
}

fn integrate(
    sys: &impl rbprop::dynamics::integrate::System,
    y0: &[f64],
    c: &Common,
) -> anyhow::Result<Trajectory> {
    let limits = checked_limits(c)?;
    let (rtol, atol) = (c.rtol, c.rtol * 1e-2);
    Ok(match c.method.as_str() {
        "dopri" => dopri5(sys, y0, rtol, atol, &limits),
        "rosenbrock" => rosenbrock(sys, y0, rtol, atol, &limits),
        "rk4" => rk4(sys, y0, c.step, &limits, 100),
        _ => solve(sys, y0, rtol, atol, &limits),
    })
}

/// An error unless the trajectory converged or reached its end time: a blow-up, a stiff stop
/// or an exhausted step budget is reported, never compared with a prediction.
fn finished(traj: &Trajectory, method: &str) -> Result<(), Error> {
    let t = traj.t_end();
    let steps = traj.times.len() - 1;
    let (problem, hint) = match traj.outcome {
        Outcome::Converged | Outcome::Reached => return Ok(()),
        Outcome::BlewUp => (
            format!(
                "the trajectory blew up at t = {t:.6e} after {steps} steps (a weight exceeded \
                 1e12 in magnitude or became NaN/infinite); nothing to compare with a prediction"
            ),
            if method == "rk4" {
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

/// max_i |x_i − y_i|, NaN if any difference is NaN (f64::max would skip it).
fn max_diff(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).fold(0.0, |m: f64, (a, b)| {
        let d = (a - b).abs();
        if m.is_nan() || d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    })
}

/// α, β from the flags or from `--stats` (E[T f(I)], E[f(I)²] with f(x) = x^μ).
fn stats(c: &Common, mu: f64, signed: bool) -> anyhow::Result<(f64, f64)> {
    let Some(path) = &c.stats else {
        finite("--alpha", c.alpha)?;
        positive("--beta", c.beta)?;
        return Ok((c.alpha, c.beta));
    };
    let rows = read_csv(path, 2)?;
    let n = rows.len() as f64;
    let f = |x: f64| power(x, mu, signed);
    let alpha = rows.iter().map(|r| r[1] * f(r[0])).sum::<f64>() / n;
    let beta = rows.iter().map(|r| f(r[0]).powi(2)).sum::<f64>() / n;
    ensure!(
        alpha.is_finite() && beta.is_finite(),
        "{}: the estimated α = {alpha}, β = {beta} are not finite",
        path.display()
    );
    ensure!(
        beta > 0.0,
        "{}: the inputs are all zero (β = 0)",
        path.display()
    );
    Ok((alpha, beta))
}

/// Reads a CSV of numbers with exactly `cols` columns (a header line is skipped).
fn read_csv(path: &PathBuf, cols: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<Vec<f64>, _> =
            line.split(',').map(|s| s.trim().parse::<f64>()).collect();
        match parsed {
            Ok(r) if r.len() == cols => {
                if let Some(c) = r.iter().position(|v| !v.is_finite()) {
                    bail!(
                        "{}: line {}, column {}: {} is not a finite number",
                        path.display(),
                        i + 1,
                        c + 1,
                        r[c]
                    );
                }
                rows.push(r)
            }
            Ok(r) => bail!(
                "{}: line {} has {} columns, expected {cols}",
                path.display(),
                i + 1,
                r.len()
            ),
            Err(_) if i == 0 => continue, // header
            Err(e) => bail!("{}: line {}: {e}", path.display(), i + 1),
        }
    }
    ensure!(!rows.is_empty(), "{}: no samples", path.display());
    Ok(rows)
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Converged => "converged",
        Outcome::BlewUp => "blew up",
        Outcome::Reached => "reached the end time",
        Outcome::Stiff => "stopped: stiff",
        Outcome::StepLimit => "stopped: step limit",
    }
}

fn fmt(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.9}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn chain(a: ChainArgs) -> anyhow::Result<()> {
    let l = a.length;
    ensure!(
        l >= 2,
        "--length must be ≥ 2 (A[1,1,1] has length 2), got {l}"
    );
    count("--length", l, MAX_LENGTH)?;
    let mu = finite("--mu", number(&a.mu).context("--mu")?)?;
    ensure!(
        mu == 1.0 || l == 2,
        "--mu is defined for A[1,1,1] (--length 2)"
    );
    if mu != 1.0 {
        power_kind(mu, a.signed_power).map_err(|e| Error::config("--mu", e))?;
    }
    let from = numbers(&a.from, "--from")?;
    ensure!(
        from.len() == l,
        "--from needs {l} values a_1..a_{l}, got {}",
        from.len()
    );
    if mu < 1.0 && from[0] == 0.0 {
        return Err(Error::config(
            "--from",
            format!("a_1 = 0 is singular for μ = {mu} < 1 (f'(0) is infinite)"),
        )
        .into());
    }
    let (alpha, beta) = stats(&a.common, mu, a.signed_power)?;
    let given =
        a.c.as_deref()
            .map(|s| numbers(s, "--c"))
            .transpose()?
            .unwrap_or_else(|| vec![1.0]);
    ensure!(
        given.len() == 1 || given.len() == l - 1,
        "--c needs 1 or {} values",
        l - 1
    );
    let cs = |k: usize| if given.len() == 1 { given[0] } else { given[k] };
    let c: Vec<f64> = match a.algo {
        Algo::Rbp => std::iter::once(0.0).chain((0..l - 1).map(cs)).collect(),
        Algo::Srbp => (0..l - 1).map(cs).chain(std::iter::once(1.0)).collect(),
        Algo::Bp => vec![0.0; l],
    };
    ensure!(
        !a.adaptive || a.algo == Algo::Rbp,
        "--adaptive applies to rbp"
    );
    let sys = Chain {
        alpha,
        beta,
        algo: a.algo,
        c: c.clone(),
        adaptive: a.adaptive,
        mu,
        signed: a.signed_power,
        len: l,
    };
    let mut y0 = from.clone();
    if a.adaptive {
        y0.extend(&c);
    }
    let traj = integrate(&sys, &y0, &a.common)?;
    let end = &traj.end()[..l];
    sayln!(
        "A[{}] under {:?}, α = {alpha}, β = {beta}{}",
        vec!["1"; l + 1].join(","),
        a.algo,
        if mu == 1.0 {
            String::new()
        } else if a.signed_power {
            format!(", f(x) = sign(x)|x|^{mu}")
        } else {
            format!(", f(x) = x^{mu}")
        }
    );
    sayln!("start      a = ({})", fmt(&from));
    sayln!(
        "end        a = ({})  at t = {:.3} ({}, {} steps{})",
        fmt(end),
        traj.t_end(),
        outcome(traj.outcome),
        traj.times.len() - 1,
        match traj.implicit_from {
            Some(t) => format!("; stiff, Rosenbrock from t = {t:.3e}"),
            None => String::new(),
        }
    );
    finished(&traj, &a.common.method)?;
    sayln!(
        "           P = {:.12}   α/β = {:.12}",
        sys.product(end),
        alpha / beta
    );
    if a.algo != Algo::Bp && !a.adaptive {
        match predict_chain(&sys, &from) {
            Ok(p) => {
                let how = if p.on_barrier {
                    "on the line a1 = 0 of fixed points (f'(0) = 0 for μ > 1), reached before any \
                     solution of β·f(a1)·a2(a1) = α"
                        .to_string()
                } else if mu == 1.0 {
                    format!(
                        "first root reached of a degree-{} polynomial; its real roots: {}",
                        (1usize << l) - 1,
                        fmt(&p.roots)
                    )
                } else {
                    "first solution of β·f(a1)·a2(a1) = α reached along the parabola".to_string()
                };
                sayln!("predicted  a = ({})  ({how})", fmt(&p.limit));
                let err = max_diff(&p.limit, end);
                if !err.is_finite() {
                    return Err(Error::Integration {
                        problem: format!("|end − predicted| is {err}: not a number"),
                        hint: "the end point or the prediction is not finite".into(),
                    }
                    .into());
                }
                sayln!("           |end − predicted| = {err:.3e}");
                if l == 2 && mu == 1.0 {
                    let cc = chain_c(&sys);
                    sayln!(
                        "stability  a1² + c·a2 = {:.6} → {}",
                        p.limit[0].powi(2) + cc * p.limit[1],
                        stability_on_hyperbola(p.limit[0], p.limit[1], cc).describe()
                    );
                }
            }
            Err(e) => sayln!("predicted  none: {e}"),
        }
    }
    Ok(())
}

fn draw_field(a: FieldArgs) -> anyhow::Result<()> {
    finite("--alpha", a.alpha)?;
    positive("--beta", a.beta)?;
    positive("--range", a.range)?;
    if finite("--c", a.c)? == 0.0 {
        return Err(Error::config("--c", "must be ≠ 0 (c = 0: no learning)").into());
    }
    count("--grid", a.grid, MAX_GRID)?;
    let starts = if a.starts.is_empty() {
        vec![
            (0.5, 0.5),
            (-2.0, 2.5),
            (2.5, -1.0),
            (-0.5, -2.5),
            (1.5, 2.5),
            (-2.5, -0.5),
        ]
        .into_iter()
        .map(|(x, y)| (x * a.range / 3.0, y * a.range / 3.0))
        .collect()
    } else {
        a.starts
            .iter()
            .map(|s| {
                let v = numbers(s, "--start")?;
                ensure!(v.len() == 2, "--start takes a1,a2");
                Ok((v[0], v[1]))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let spec = FieldSpec {
        alpha: a.alpha,
        beta: a.beta,
        c: a.c,
        range: a.range,
        grid: a.grid,
        starts,
    };
    field::draw(&spec, &a.out)?;
    sayln!("wrote {}", a.out.display());
    Ok(())
}

fn seeded(n: usize, sd: f64, seed: u64, name: &str) -> Vec<f64> {
    rbprop::rng::normal_vec(n, sd, &mut rbprop::rng::stream(seed, name))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The channel vector c (N values, default seeded N(0, 1)) and the start a then b (2N values,
/// default seeded N(0, 0.25)) of the A[1,N,1] and autoencoder systems.
fn channel_and_start(
    n: usize,
    c: Option<&str>,
    from: Option<&str>,
    seed: u64,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    ensure!(n >= 1, "--n must be ≥ 1");
    count("--n", n, MAX_UNITS)?;
    let c = match c {
        Some(s) => numbers(s, "--c")?,
        None => seeded(n, 1.0, seed, "dynamics/c"),
    };
    ensure!(c.len() == n, "--c needs {n} values");
    let y0 = match from {
        Some(s) => numbers(s, "--from")?,
        None => seeded(2 * n, 0.5, seed, "dynamics/start"),
    };
    ensure!(
        y0.len() == 2 * n,
        "--from needs 2N = {} values (a then b)",
        2 * n
    );
    Ok((c, y0))
}

fn wide(a: WideArgs) -> anyhow::Result<()> {
    let n = a.n;
    let (alpha, beta) = stats(&a.common, 1.0, false)?;
    let (c, y0) = channel_and_start(n, a.c.as_deref(), a.from.as_deref(), a.seed)?;
    let sys = Wide {
        alpha,
        beta,
        algo: a.algo,
        c,
    };
    let traj = integrate(&sys, &y0, &a.common)?;
    finished(&traj, &a.common.method)?;
    let end = traj.end();
    let p: f64 = end[..n].iter().zip(&end[n..]).map(|(x, y)| x * y).sum();
    sayln!("A[1,{n},1] under {:?}, α = {alpha}, β = {beta}", a.algo);
    sayln!(
        "end a = ({})\n    b = ({})  at t = {:.3} ({})",
        fmt(&end[..n]),
        fmt(&end[n..]),
        traj.t_end(),
        outcome(traj.outcome)
    );
    sayln!(
        "Σ a_i b_i = {p:.12}   α/β = {:.12}   difference {:.3e}",
        alpha / beta,
        (p - alpha / beta).abs()
    );
    Ok(())
}

fn autoencoder(a: AutoencoderArgs) -> anyhow::Result<()> {
    let n = a.n;
    let t_end = end_time("--t-end", a.t_end)?;
    let (c, y0) = channel_and_start(n, a.c.as_deref(), a.from.as_deref(), a.seed)?;
    let sys = Autoencoder {
        algo: a.algo,
        c: c.clone(),
    };
    let traj = solve(
        &sys,
        &y0,
        1e-10,
        1e-12,
        &Limits {
            t_end,
            max_steps: MAX_STEPS,
            ..Limits::default()
        },
    );
    finished(&traj, "auto")?;
    let end = traj.end();
    let (av, bv) = end.split_at(n);
    let cos = |x: &[f64], y: &[f64]| {
        let d: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        d / (x.iter().map(|v| v * v).sum::<f64>().sqrt()
            * y.iter().map(|v| v * v).sum::<f64>().sqrt())
    };
    sayln!(
        "A[{n},1,{n}] autoencoder under {:?} (E[I Iᵀ] = Id, T = I)",
        a.algo
    );
    sayln!(
        "end a = ({})\n    b = ({})  at t = {:.3} ({})",
        fmt(av),
        fmt(bv),
        traj.t_end(),
        outcome(traj.outcome)
    );
    let reference = if a.algo == Algo::Bp { bv } else { &c[..] };
    sayln!(
        "cos(a, {}) = {:.12}  (1: a ∝ {})",
        if a.algo == Algo::Bp { "b" } else { "c" },
        cos(av, reference),
        if a.algo == Algo::Bp { "b" } else { "c" }
    );
    Ok(())
}

fn general(a: GeneralArgs) -> anyhow::Result<()> {
    let s = numbers(&a.sizes, "--sizes")?;
    ensure!(
        s.len() == 3 && s.iter().all(|v| *v >= 1.0 && v.fract() == 0.0),
        "--sizes takes N0,N1,N2"
    );
    if let Some(v) = s.iter().find(|v| **v > MAX_SIZE as f64) {
        return Err(Error::config(
            "--sizes",
            format!("each size is at most {MAX_SIZE}, got {v}"),
        )
        .into());
    }
    let t_end = end_time("--t-end", a.t_end)?;
    let [n0, n1, n2] = [s[0] as usize, s[1] as usize, s[2] as usize];
    let (sigma_ii, sigma_ti) = match &a.stats {
        Some(path) => {
            let rows = read_csv(path, n0 + n2)?;
            let m = rows.len() as f64;
            let mut sii = vec![0.0; n0 * n0];
            let mut sti = vec![0.0; n2 * n0];
            for r in &rows {
                for i in 0..n0 {
                    for j in 0..n0 {
                        sii[i * n0 + j] += r[i] * r[j] / m;
                    }
                    for t in 0..n2 {
                        sti[t * n0 + i] += r[n0 + t] * r[i] / m;
                    }
                }
            }
            (sii, sti)
        }
        None => {
            // synthetic: I ~ N(0, Id) so Σ_II = Id, T = M I + noise so Σ_TI = M
            let m = seeded(n2 * n0, 1.0, a.seed, "dynamics/target-map");
            (
                (0..n0 * n0)
                    .map(|k| if k % (n0 + 1) == 0 { 1.0 } else { 0.0 })
                    .collect(),
                m,
            )
        }
    };
    let c = seeded(n1 * n2, 1.0, a.seed, "dynamics/c");
    let sys = General {
        sizes: [n0, n1, n2],
        sigma_ii,
        sigma_ti: sigma_ti.clone(),
        algo: a.algo,
        c,
    };
    let y0 = seeded(n1 * n0 + n2 * n1, 0.3, a.seed, "dynamics/start");
    let traj = solve(
        &sys,
        &y0,
        1e-9,
        1e-11,
        &Limits {
            t_end,
            max_steps: MAX_STEPS,
            ..Limits::default()
        },
    );
    finished(&traj, "auto")?;
    let p = sys.product(traj.end());
    let p0 = sys.product(&y0);
    sayln!(
        "A[{n0},{n1},{n2}] under {:?}: {} at t = {:.3}",
        a.algo,
        outcome(traj.outcome),
        traj.t_end()
    );
    let mut d = vec![0.0; y0.len()];
    use rbprop::dynamics::integrate::System;
    sys.deriv(traj.end(), &mut d);
    sayln!(
        "product B·A: start ({})\n             end   ({})",
        fmt(&p0),
        fmt(&p)
    );
    sayln!(
        "‖dA/dt, dB/dt‖∞ at the end = {:.3e} (the product converges; rank ≤ N1 = {n1})",
        d.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    );
    Ok(())
}

fn sgd(a: SgdArgs) -> anyhow::Result<()> {
    let from = numbers(&a.from, "--from")?;
    ensure!(from.len() == 2, "--from takes a1,a2");
    finite("--alpha", a.alpha)?;
    positive("--beta", a.beta)?;
    finite("--c", a.c)?;
    if finite("--noise", a.noise)? < 0.0 {
        return Err(Error::config("--noise", format!("must be ≥ 0, got {}", a.noise)).into());
    }
    positive("--eta", a.eta)?;
    let time = end_time("--time", a.time)?;
    let steps = (time / a.eta).round();
    if steps > MAX_SGD_STEPS {
        return Err(Error::config(
            "--eta",
            format!(
                "--time / --eta = {steps:.3e} examples exceed the limit of {MAX_SGD_STEPS:e}; \
                 take a larger --eta or a smaller --time"
            ),
        )
        .into());
    }
    let steps = steps as usize;
    let record = (steps / 20).max(1);
    let sim = simulate_a111(
        a.algo,
        a.alpha,
        a.beta,
        a.c,
        a.noise,
        [from[0], from[1]],
        a.eta,
        steps,
        record,
        a.seed,
    );
    let sys = Chain {
        alpha: a.alpha,
        beta: a.beta,
        algo: a.algo,
        c: vec![0.0, a.c],
        adaptive: false,
        mu: 1.0,
        signed: false,
        len: 2,
    };
    sayln!(
        "A[1,1,1] under {:?}: per-example rule with η = {} vs the expected ODE",
        a.algo,
        a.eta
    );
    sayln!(
        "{:>8} {:>12} {:>12} {:>12} {:>12}",
        "t",
        "a1 (SGD)",
        "a1 (ODE)",
        "a2 (SGD)",
        "a2 (ODE)"
    );
    let mut worst: f64 = 0.0;
    for (t, a1, a2) in sim {
        if !(a1.is_finite() && a2.is_finite()) {
            return Err(Error::Integration {
                problem: format!(
                    "the per-example rule diverged by t = {t:.3}: a1 = {a1}, a2 = {a2}"
                ),
                hint: "lower --eta".into(),
            }
            .into());
        }
        let ode = solve(
            &sys,
            &from,
            1e-10,
            1e-12,
            &Limits {
                t_end: t.max(1e-12),
                converge: 0.0,
                max_steps: MAX_STEPS,
                ..Limits::default()
            },
        );
        finished(&ode, "auto")?;
        let e = ode.end();
        worst = worst.max(max_diff(&[a1, a2], &e[..2]));
        sayln!(
            "{t:>8.3} {a1:>12.6} {:>12.6} {a2:>12.6} {:>12.6}",
            e[0],
            e[1]
        );
    }
    sayln!("largest deviation {worst:.4e}");
    Ok(())
}
