//! The dynamics of paper §3 as reports (what `rbp dynamics …` prints): set up a system from
//! plain options, integrate it, compare the end with the theory's prediction, and write the
//! result as text to a `&mut dyn Write`, line by line, so that what was found before a failure
//! is shown before the error. Each report also returns its numbers.
//!
//! Options are typed values, parsed where they are read (lists of numbers are
//! [`super::input::Numbers`], a method is a [`super::solve::Method`]); a report checks them in a
//! fixed order, so that the first invalid option is the one reported.

use super::field::{self, FieldSpec};
use super::input::{
    MAX_GRID, MAX_LENGTH, MAX_SGD_STEPS, MAX_SIZE, MAX_STEPS, MAX_UNITS, Moments, Numbers, at_most,
    end_time, finite, positive, read_samples, second_moments,
};
use super::integrate::{Limits, System, solve};
use super::predict::{Prediction, chain_c, predict_chain, stability_on_hyperbola};
use super::sgd::simulate_a111;
use super::solve::{Integration, Method, describe, finished, max_diff, solve_to};
use super::systems::{Algo, Autoencoder, Chain, General, Wide, power_kind};
use crate::error::Error;
use crate::report::{ReportResult, ensure, outln};
use std::io::Write;
use std::path::PathBuf;

/// A linear chain A\[1,…,1\] of `length` weights (or the non-linear A\[1,1,1\] with f(x) = x^μ).
#[derive(Clone, Debug)]
pub struct ChainOptions {
    /// Number of weights L ≥ 2 (A\[1,1,1\] has length 2), at most [`MAX_LENGTH`].
    pub length: usize,
    /// Learning channel.
    pub algo: Algo,
    /// Channel weights: RBP c_2..c_L, SRBP c_1..c_(L−1); one value is repeated; default 1.
    pub c: Option<Numbers>,
    /// Starting weights a_1,…,a_L.
    pub from: Numbers,
    /// Hidden non-linearity f(x) = x^μ (A\[1,1,1\] only).
    pub mu: f64,
    /// Read x^μ as sign(x)|x|^μ.
    pub signed_power: bool,
    /// Adaptive channel (RBP only): c learns like the forward weight it stands for.
    pub adaptive: bool,
    /// α and β.
    pub moments: Moments,
    pub integration: Integration,
}

/// What [`chain`] found.
#[derive(Clone, Debug)]
pub struct ChainReport {
    /// The end weights a_1..a_L.
    pub end: Vec<f64>,
    /// α/β, which the product P = a_1·…·a_L (or f-weighted) converges to off the barrier.
    pub target: f64,
    /// The predicted limit, when the theory gives one (not for BP or an adaptive channel).
    pub predicted: Option<Prediction>,
    /// The recorded times of the integration, from 0.
    pub times: Vec<f64>,
    /// The state at each recorded time: a_1..a_L, then the channel's c_1..c_{L−1} when it adapts.
    pub states: Vec<Vec<f64>>,
}

/// The channel weights of a chain of length `l` under `algo` from the given ones (one value is
/// repeated): RBP (0, c_2, …, c_L), SRBP (c_1, …, c_(L−1), 1), BP none (zeros).
pub fn chain_channel(algo: Algo, given: &[f64], l: usize) -> Vec<f64> {
    let cs = |k: usize| if given.len() == 1 { given[0] } else { given[k] };
    match algo {
        Algo::Rbp => std::iter::once(0.0).chain((0..l - 1).map(cs)).collect(),
        Algo::Srbp => (0..l - 1).map(cs).chain(std::iter::once(1.0)).collect(),
        Algo::Bp => vec![0.0; l],
    }
}

/// Comma-separated values with nine decimals.
fn fmt(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.9}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Integrates a chain from its start, prints the end point, the product against α/β, and (RBP,
/// SRBP) the predicted fixed point, its distance to the end and, for the linear A\[1,1,1\], its
/// stability a1² + c·a2.
pub fn chain(o: &ChainOptions, out: &mut dyn Write) -> ReportResult<ChainReport> {
    let l = o.length;
    ensure(l >= 2, || {
        format!("--length must be ≥ 2 (A[1,1,1] has length 2), got {l}")
    })?;
    at_most("--length", l, MAX_LENGTH)?;
    let mu = finite("--mu", o.mu)?;
    ensure(mu == 1.0 || l == 2, || {
        "--mu is defined for A[1,1,1] (--length 2)".into()
    })?;
    if mu != 1.0 {
        power_kind(mu, o.signed_power).map_err(|e| Error::config("--mu", e))?;
    }
    let from = o.from.finite("--from")?;
    ensure(from.len() == l, || {
        format!("--from needs {l} values a_1..a_{l}, got {}", from.len())
    })?;
    if mu < 1.0 && from[0] == 0.0 {
        return Err(Error::config(
            "--from",
            format!("a_1 = 0 is singular for μ = {mu} < 1 (f'(0) is infinite)"),
        )
        .into());
    }
    let (alpha, beta) = o.moments.resolve(mu, o.signed_power)?;
    let given = match &o.c {
        Some(c) => c.finite("--c")?,
        None => vec![1.0],
    };
    ensure(given.len() == 1 || given.len() == l - 1, || {
        format!("--c needs 1 or {} values", l - 1)
    })?;
    let c = chain_channel(o.algo, &given, l);
    ensure(!o.adaptive || o.algo == Algo::Rbp, || {
        "--adaptive applies to rbp".into()
    })?;
    let sys = Chain {
        alpha,
        beta,
        algo: o.algo,
        c: c.clone(),
        adaptive: o.adaptive,
        mu,
        signed: o.signed_power,
        len: l,
    };
    let mut y0 = from.clone();
    if o.adaptive {
        y0.extend(&c);
    }
    let traj = o.integration.integrate(&sys, &y0)?;
    let end = &traj.end()[..l];
    let f = if mu == 1.0 {
        String::new()
    } else if o.signed_power {
        format!(", f(x) = sign(x)|x|^{mu}")
    } else {
        format!(", f(x) = x^{mu}")
    };
    outln!(
        out,
        "A[{}] under {:?}, α = {alpha}, β = {beta}{f}",
        vec!["1"; l + 1].join(","),
        o.algo
    )?;
    outln!(out, "start      a = ({})", fmt(&from))?;
    let stiff = match traj.implicit_from {
        Some(t) => format!("; stiff, Rosenbrock from t = {t:.3e}"),
        None => String::new(),
    };
    outln!(
        out,
        "end        a = ({})  at t = {:.3} ({}, {} steps{stiff})",
        fmt(end),
        traj.t_end(),
        describe(traj.outcome),
        traj.times.len() - 1
    )?;
    finished(&traj, o.integration.method)?;
    outln!(
        out,
        "           P = {:.12}   α/β = {:.12}",
        sys.product(end),
        alpha / beta
    )?;
    let mut report = ChainReport {
        end: end.to_vec(),
        target: alpha / beta,
        predicted: None,
        times: traj.times.clone(),
        states: traj.states.clone(),
    };
    if o.algo == Algo::Bp || o.adaptive {
        return Ok(report);
    }
    let p = match predict_chain(&sys, &from) {
        Ok(p) => p,
        Err(e) => {
            outln!(out, "predicted  not predicted: {e}")?;
            return Ok(report);
        }
    };
    let how = if p.on_barrier {
        "on the line a1 = 0 of fixed points (f'(0) = 0 for μ > 1), reached before any \
         solution of β·f(a1)·a2(a1) = α"
            .to_string()
    } else if mu == 1.0 && l <= 3 {
        format!(
            "first root reached of a degree-{} polynomial; its real roots (confirmed by evaluation): {}",
            (1usize << l) - 1,
            fmt(&p.roots)
        )
    } else if mu == 1.0 {
        format!(
            "first root of βP(a1) = α reached along the trajectory, P of degree 2^{l} − 1 in a1, each weight from its parabola, the last from βP = α"
        )
    } else {
        "first solution of β·f(a1)·a2(a1) = α reached along the parabola".to_string()
    };
    outln!(out, "predicted  a = ({})  ({how})", fmt(&p.limit))?;
    let err = max_diff(&p.limit, end);
    if !err.is_finite() {
        return Err(Error::Integration {
            problem: format!("|end − predicted| is {err}: not a number"),
            hint: "the end point or the prediction is not finite".into(),
        }
        .into());
    }
    outln!(out, "           |end − predicted| = {err:.3e}")?;
    if l == 2 && mu == 1.0 {
        let cc = chain_c(&sys);
        outln!(
            out,
            "stability  a1² + c·a2 = {:.6} → {}",
            p.limit[0].powi(2) + cc * p.limit[1],
            stability_on_hyperbola(p.limit[0], p.limit[1], cc).describe()
        )?;
    }
    report.predicted = Some(p);
    Ok(report)
}

/// The A\[1,1,1\] RBP vector-field figure.
#[derive(Clone, Debug)]
pub struct FieldOptions {
    pub alpha: f64,
    /// > 0.
    pub beta: f64,
    /// Channel weight c ≠ 0.
    pub c: f64,
    /// Half-width of the plotted square, > 0.
    pub range: f64,
    /// Arrows per axis, at most [`MAX_GRID`].
    pub grid: usize,
    /// Starting points of drawn trajectories, each `a1,a2`; none: six starts scaled to the range.
    pub starts: Vec<Numbers>,
    /// Output file (.svg or .png).
    pub out: PathBuf,
}

/// The starts drawn when none are given: six points spread over the square of half-width
/// `range`.
pub fn default_starts(range: f64) -> Vec<(f64, f64)> {
    [
        (0.5, 0.5),
        (-2.0, 2.5),
        (2.5, -1.0),
        (-0.5, -2.5),
        (1.5, 2.5),
        (-2.5, -0.5),
    ]
    .into_iter()
    .map(|(x, y)| (x * range / 3.0, y * range / 3.0))
    .collect()
}

/// Checks the options, draws the figure into `o.out` and says so.
pub fn field(o: &FieldOptions, out: &mut dyn Write) -> ReportResult<()> {
    finite("--alpha", o.alpha)?;
    positive("--beta", o.beta)?;
    positive("--range", o.range)?;
    if finite("--c", o.c)? == 0.0 {
        return Err(Error::config("--c", "must be ≠ 0 (c = 0: no learning)").into());
    }
    at_most("--grid", o.grid, MAX_GRID)?;
    let starts = if o.starts.is_empty() {
        default_starts(o.range)
    } else {
        o.starts
            .iter()
            .map(|s| {
                let v = s.finite("--start")?;
                ensure(v.len() == 2, || "--start takes a1,a2".into())?;
                Ok((v[0], v[1]))
            })
            .collect::<ReportResult<_>>()?
    };
    let spec = FieldSpec {
        alpha: o.alpha,
        beta: o.beta,
        c: o.c,
        range: o.range,
        grid: o.grid,
        starts,
    };
    field::draw(&spec, &o.out)?;
    outln!(out, "wrote {}", o.out.display())
}

/// `n` values drawn from N(0, sd²) by the stream `name` of `seed`.
pub fn seeded(n: usize, sd: f64, seed: u64, name: &str) -> Vec<f64> {
    crate::rng::normal_vec(n, sd, &mut crate::rng::stream(seed, name))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The channel vector c (N values, default seeded N(0, 1)) and the start a then b (2N values,
/// default seeded N(0, 0.25)) of the A\[1,N,1\] and autoencoder systems.
fn channel_and_start(
    n: usize,
    c: Option<&Numbers>,
    from: Option<&Numbers>,
    seed: u64,
) -> ReportResult<(Vec<f64>, Vec<f64>)> {
    ensure(n >= 1, || "--n must be ≥ 1".into())?;
    at_most("--n", n, MAX_UNITS)?;
    let c = match c {
        Some(c) => c.finite("--c")?,
        None => seeded(n, 1.0, seed, "dynamics/c"),
    };
    ensure(c.len() == n, || format!("--c needs {n} values"))?;
    let y0 = match from {
        Some(f) => f.finite("--from")?,
        None => seeded(2 * n, 0.5, seed, "dynamics/start"),
    };
    ensure(y0.len() == 2 * n, || {
        format!("--from needs 2N = {} values (a then b)", 2 * n)
    })?;
    Ok((c, y0))
}

/// A\[1,N,1\]: N hidden units between one input and one output.
#[derive(Clone, Debug)]
pub struct WideOptions {
    /// Hidden units N, in 1..=[`MAX_UNITS`].
    pub n: usize,
    pub algo: Algo,
    /// Channel weights c_1..c_N; default seeded N(0, 1).
    pub c: Option<Numbers>,
    /// Start a_1..a_N, b_1..b_N; default seeded N(0, 0.25).
    pub from: Option<Numbers>,
    pub seed: u64,
    pub moments: Moments,
    pub integration: Integration,
}

/// What [`wide`] found: the end weights and Σ a_i b_i, which converges to α/β.
#[derive(Clone, Debug)]
pub struct WideReport {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// Σ a_i b_i at the end.
    pub sum: f64,
    /// α/β.
    pub target: f64,
}

/// Integrates A\[1,N,1\] and prints the end point and Σ a_i b_i against α/β.
pub fn wide(o: &WideOptions, out: &mut dyn Write) -> ReportResult<WideReport> {
    let n = o.n;
    let (alpha, beta) = o.moments.resolve(1.0, false)?;
    let (c, y0) = channel_and_start(n, o.c.as_ref(), o.from.as_ref(), o.seed)?;
    let sys = Wide {
        alpha,
        beta,
        algo: o.algo,
        c,
    };
    let traj = o.integration.integrate(&sys, &y0)?;
    finished(&traj, o.integration.method)?;
    let (a, b) = traj.end().split_at(n);
    let sum: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    outln!(
        out,
        "A[1,{n},1] under {:?}, α = {alpha}, β = {beta}",
        o.algo
    )?;
    outln!(
        out,
        "end a = ({})\n    b = ({})  at t = {:.3} ({})",
        fmt(a),
        fmt(b),
        traj.t_end(),
        describe(traj.outcome)
    )?;
    outln!(
        out,
        "Σ a_i b_i = {sum:.12}   α/β = {:.12}   difference {:.3e}",
        alpha / beta,
        (sum - alpha / beta).abs()
    )?;
    Ok(WideReport {
        a: a.to_vec(),
        b: b.to_vec(),
        sum,
        target: alpha / beta,
    })
}

/// The linear autoencoder A\[N,1,N\] on decorrelated data (E\[I Iᵀ\] = Id, T = I).
#[derive(Clone, Debug)]
pub struct AutoencoderOptions {
    /// Input/output size N, in 1..=[`MAX_UNITS`].
    pub n: usize,
    pub algo: Algo,
    /// Channel vector c; default seeded N(0, 1).
    pub c: Option<Numbers>,
    /// Start a (N values) then b (N values); default seeded N(0, 0.25).
    pub from: Option<Numbers>,
    pub seed: u64,
    /// End time (automatic method, tolerance 1e-10).
    pub t_end: f64,
}

/// The cosine of the angle between `x` and `y`.
pub fn cosine(x: &[f64], y: &[f64]) -> f64 {
    let d: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
    d / (x.iter().map(|v| v * v).sum::<f64>().sqrt() * y.iter().map(|v| v * v).sum::<f64>().sqrt())
}

/// Integrates the autoencoder and prints the end point and cos(a, c) (BP: cos(a, b)), which
/// converges to 1: a ∝ c. Returns that cosine.
pub fn autoencoder(o: &AutoencoderOptions, out: &mut dyn Write) -> ReportResult<f64> {
    let n = o.n;
    let t_end = end_time("--t-end", o.t_end)?;
    let (c, y0) = channel_and_start(n, o.c.as_ref(), o.from.as_ref(), o.seed)?;
    let sys = Autoencoder {
        algo: o.algo,
        c: c.clone(),
    };
    let traj = solve_to(&sys, &y0, t_end, 1e-10, 1e-12);
    finished(&traj, Method::Auto)?;
    let (av, bv) = traj.end().split_at(n);
    outln!(
        out,
        "A[{n},1,{n}] autoencoder under {:?} (E[I Iᵀ] = Id, T = I)",
        o.algo
    )?;
    outln!(
        out,
        "end a = ({})\n    b = ({})  at t = {:.3} ({})",
        fmt(av),
        fmt(bv),
        traj.t_end(),
        describe(traj.outcome)
    )?;
    let (reference, name) = if o.algo == Algo::Bp {
        (bv, "b")
    } else {
        (&c[..], "c")
    };
    let cos = cosine(av, reference);
    outln!(out, "cos(a, {name}) = {cos:.12}  (1: a ∝ {name})")?;
    Ok(cos)
}

/// The general linear A\[N0,N1,N2\] with data statistics Σ_II, Σ_TI.
#[derive(Clone, Debug)]
pub struct GeneralOptions {
    /// `N0,N1,N2`, each in 1..=[`MAX_SIZE`].
    pub sizes: Numbers,
    pub algo: Algo,
    /// CSV of samples (N0 input then N2 target columns) to estimate Σ_II and Σ_TI from;
    /// default synthetic: Σ_II = Id, Σ_TI = a seeded N(0, 1) matrix M (T = M·I + noise).
    pub stats: Option<PathBuf>,
    pub seed: u64,
    /// End time (automatic method, tolerance 1e-9).
    pub t_end: f64,
}

/// What [`general`] found.
#[derive(Clone, Debug)]
pub struct GeneralReport {
    /// The product B·A (N2 × N0, row-major) at the start and at the end.
    pub start: Vec<f64>,
    pub end: Vec<f64>,
    /// ‖dA/dt, dB/dt‖∞ at the end: how far from a fixed point.
    pub speed: f64,
}

/// Integrates A\[N0,N1,N2\] from a seeded start and prints the product B·A at the start and the
/// end, and the speed left at the end.
pub fn general(o: &GeneralOptions, out: &mut dyn Write) -> ReportResult<GeneralReport> {
    let s = o.sizes.finite("--sizes")?;
    ensure(
        s.len() == 3 && s.iter().all(|v| *v >= 1.0 && v.fract() == 0.0),
        || "--sizes takes N0,N1,N2".into(),
    )?;
    if let Some(v) = s.iter().find(|v| **v > MAX_SIZE as f64) {
        return Err(Error::config(
            "--sizes",
            format!("each size is at most {MAX_SIZE}, got {v}"),
        )
        .into());
    }
    let t_end = end_time("--t-end", o.t_end)?;
    let [n0, n1, n2] = [s[0] as usize, s[1] as usize, s[2] as usize];
    let (sigma_ii, sigma_ti) = match &o.stats {
        Some(path) => second_moments(&read_samples(path, n0 + n2)?, n0, n2),
        // synthetic: I ~ N(0, Id) so Σ_II = Id, T = M I + noise so Σ_TI = M
        None => (
            (0..n0 * n0)
                .map(|k| if k % (n0 + 1) == 0 { 1.0 } else { 0.0 })
                .collect(),
            seeded(n2 * n0, 1.0, o.seed, "dynamics/target-map"),
        ),
    };
    let sys = General {
        sizes: [n0, n1, n2],
        sigma_ii,
        sigma_ti,
        algo: o.algo,
        c: seeded(n1 * n2, 1.0, o.seed, "dynamics/c"),
    };
    let y0 = seeded(n1 * n0 + n2 * n1, 0.3, o.seed, "dynamics/start");
    let traj = solve_to(&sys, &y0, t_end, 1e-9, 1e-11);
    finished(&traj, Method::Auto)?;
    let report = GeneralReport {
        start: sys.product(&y0),
        end: sys.product(traj.end()),
        speed: {
            let mut d = vec![0.0; y0.len()];
            sys.deriv(traj.end(), &mut d);
            d.iter().fold(0.0f64, |m, v| m.max(v.abs()))
        },
    };
    outln!(
        out,
        "A[{n0},{n1},{n2}] under {:?}: {} at t = {:.3}",
        o.algo,
        describe(traj.outcome),
        traj.t_end()
    )?;
    outln!(
        out,
        "product B·A: start ({})\n             end   ({})",
        fmt(&report.start),
        fmt(&report.end)
    )?;
    outln!(
        out,
        "‖dA/dt, dB/dt‖∞ at the end = {:.3e} (the product converges; rank ≤ N1 = {n1})",
        report.speed
    )?;
    Ok(report)
}

/// The per-example rule of A\[1,1,1\] against its expected ODE.
#[derive(Clone, Debug)]
pub struct SgdOptions {
    pub algo: Algo,
    pub alpha: f64,
    /// > 0.
    pub beta: f64,
    pub c: f64,
    /// Standard deviation of the target noise, ≥ 0.
    pub noise: f64,
    /// Start `a1,a2`.
    pub from: Numbers,
    /// Learning rate η > 0 (ODE time t = η·examples).
    pub eta: f64,
    /// ODE time to simulate (at most [`MAX_SGD_STEPS`] examples).
    pub time: f64,
    pub seed: u64,
}

/// One row of [`sgd`]: at ODE time `t`, (a1, a2) of the per-example rule and of the ODE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdRow {
    pub t: f64,
    pub sgd: [f64; 2],
    pub ode: [f64; 2],
}

/// Runs the per-example rule and prints it every 1/20 of the time next to the ODE's solution,
/// then the largest deviation. Returns the rows.
pub fn sgd(o: &SgdOptions, out: &mut dyn Write) -> ReportResult<Vec<SgdRow>> {
    let from = o.from.finite("--from")?;
    ensure(from.len() == 2, || "--from takes a1,a2".into())?;
    finite("--alpha", o.alpha)?;
    positive("--beta", o.beta)?;
    finite("--c", o.c)?;
    if finite("--noise", o.noise)? < 0.0 {
        return Err(Error::config("--noise", format!("must be ≥ 0, got {}", o.noise)).into());
    }
    positive("--eta", o.eta)?;
    let time = end_time("--time", o.time)?;
    let steps = (time / o.eta).round();
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
        o.algo,
        o.alpha,
        o.beta,
        o.c,
        o.noise,
        [from[0], from[1]],
        o.eta,
        steps,
        record,
        o.seed,
    );
    let sys = Chain {
        alpha: o.alpha,
        beta: o.beta,
        algo: o.algo,
        c: vec![0.0, o.c],
        adaptive: false,
        mu: 1.0,
        signed: false,
        len: 2,
    };
    outln!(
        out,
        "A[1,1,1] under {:?}: per-example rule with η = {} vs the expected ODE",
        o.algo,
        o.eta
    )?;
    outln!(
        out,
        "{:>8} {:>12} {:>12} {:>12} {:>12}",
        "t",
        "a1 (SGD)",
        "a1 (ODE)",
        "a2 (SGD)",
        "a2 (ODE)"
    )?;
    let mut worst: f64 = 0.0;
    let mut rows = Vec::new();
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
        let limits = Limits {
            t_end: t.max(1e-12),
            converge: 0.0,
            max_steps: MAX_STEPS,
            ..Limits::default()
        };
        let ode = solve(&sys, &from, 1e-10, 1e-12, &limits);
        finished(&ode, Method::Auto)?;
        let e = ode.end();
        worst = worst.max(max_diff(&[a1, a2], &e[..2]));
        outln!(
            out,
            "{t:>8.3} {a1:>12.6} {:>12.6} {a2:>12.6} {:>12.6}",
            e[0],
            e[1]
        )?;
        rows.push(SgdRow {
            t,
            sgd: [a1, a2],
            ode: [e[0], e[1]],
        });
    }
    outln!(out, "largest deviation {worst:.4e}")?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::predict::Stability;

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    fn chain_from(from: &str) -> ChainOptions {
        ChainOptions {
            length: 2,
            algo: Algo::Rbp,
            c: None,
            from: from.parse().unwrap(),
            mu: 1.0,
            signed_power: false,
            adaptive: false,
            moments: Moments::default(),
            integration: Integration::default(),
        }
    }

    #[test]
    fn the_channel_of_a_chain_sits_where_each_algorithm_reads_it() {
        assert_eq!(chain_channel(Algo::Rbp, &[0.7], 3), [0.0, 0.7, 0.7]);
        assert_eq!(chain_channel(Algo::Srbp, &[0.7, 1.3], 3), [0.7, 1.3, 1.0]);
        assert_eq!(chain_channel(Algo::Bp, &[0.7], 3), [0.0; 3]);
    }

    #[test]
    fn a111_from_minus_1_minus_2_ends_at_the_predicted_stable_root() {
        // c = 1, α = β = 1: the parabola through (−1, −2) meets a1·a2 = 1 first at
        // (−2, −1/2), where a1² + c·a2 = 3.5 > 0: attracting
        let mut out = Vec::new();
        let r = chain(&chain_from("-1,-2"), &mut out).unwrap();
        let p = r.predicted.unwrap();
        assert!(max_diff(&p.limit, &[-2.0, -0.5]) < 1e-9, "{:?}", p.limit);
        assert!(max_diff(&r.end, &p.limit) < 1e-8, "{:?}", r.end);
        assert_eq!(r.target, 1.0);
        assert_eq!(
            stability_on_hyperbola(-2.0, -0.5, 1.0),
            Stability::Attracting
        );
        let t = text(out);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A[1,1,1] under Rbp, α = 1, β = 1");
        assert_eq!(lines[1], "start      a = (-1.000000000, -2.000000000)");
        assert_eq!(
            lines[4],
            "predicted  a = (-2.000000000, -0.500000000)  (first root reached of a degree-3 \
             polynomial; its real roots (confirmed by evaluation): -2.000000000, -0.414213562, 2.414213562)"
        );
        assert_eq!(
            lines[6],
            "stability  a1² + c·a2 = 3.500000 → stable (attracting)"
        );
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn chain_options_are_checked_in_order_and_a_blow_up_is_reported_after_the_end_line() {
        let e = |o: ChainOptions| chain(&o, &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(
            e(ChainOptions {
                length: 1,
                ..chain_from("1")
            }),
            "--length must be ≥ 2 (A[1,1,1] has length 2), got 1"
        );
        assert_eq!(
            e(chain_from("1,2,3")),
            "--from needs 2 values a_1..a_2, got 3"
        );
        assert_eq!(
            e(ChainOptions {
                mu: f64::NAN,
                ..chain_from("1,1")
            }),
            "invalid value for `--mu`: must be a finite number, got NaN"
        );
        let mut out = Vec::new();
        let blow_up = ChainOptions {
            integration: Integration {
                method: Method::Rk4,
                step: 1.0,
                ..Integration::default()
            },
            ..chain_from("3,3")
        };
        let e = chain(&blow_up, &mut out).unwrap_err();
        assert!(e.to_string().contains("blew up"), "{e}");
        let t = text(out);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.contains("(blew up, 1 steps)"), "{t}");
    }

    #[test]
    fn wide_converges_to_the_hypersurface_sum_a_b_equals_alpha_over_beta() {
        let o = WideOptions {
            n: 4,
            algo: Algo::Rbp,
            c: None,
            from: None,
            seed: 3,
            moments: Moments {
                alpha: 1.5,
                beta: 0.5,
                stats: None,
            },
            integration: Integration::default(),
        };
        let mut out = Vec::new();
        let r = wide(&o, &mut out).unwrap();
        assert_eq!(r.target, 3.0);
        assert!((r.sum - 3.0).abs() < 1e-8, "{}", r.sum);
        assert!(text(out).starts_with("A[1,4,1] under Rbp, α = 1.5, β = 0.5\n"));
    }

    #[test]
    fn the_autoencoder_aligns_a_with_c_and_under_bp_with_b() {
        for algo in [Algo::Rbp, Algo::Srbp, Algo::Bp] {
            let o = AutoencoderOptions {
                n: 3,
                algo,
                c: None,
                from: None,
                seed: 2,
                t_end: 1000.0,
            };
            let mut out = Vec::new();
            let cos = autoencoder(&o, &mut out).unwrap();
            assert!((cos - 1.0).abs() < 1e-9, "{algo:?}: {cos}");
            let name = if algo == Algo::Bp { "b" } else { "c" };
            assert!(text(out).contains(&format!("cos(a, {name}) = 1.0000000")));
        }
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
    }

    #[test]
    fn general_bp_with_a_wide_hidden_layer_learns_the_target_map() {
        // Σ_II = Id and N1 = N0: the least-squares fixed point of BP is B·A = Σ_TI = M
        let o = GeneralOptions {
            sizes: "3,3,2".parse().unwrap(),
            algo: Algo::Bp,
            stats: None,
            seed: 5,
            t_end: 1000.0,
        };
        let r = general(&o, &mut Vec::new()).unwrap();
        let m = seeded(2 * 3, 1.0, 5, "dynamics/target-map");
        assert!(max_diff(&r.end, &m) < 1e-6, "{:?} vs {m:?}", r.end);
        assert!(r.speed < 1e-8, "{}", r.speed);
        let e = general(
            &GeneralOptions {
                sizes: "3,2".parse().unwrap(),
                ..o
            },
            &mut Vec::new(),
        );
        assert_eq!(e.unwrap_err().to_string(), "--sizes takes N0,N1,N2");
    }

    #[test]
    fn per_example_sgd_tracks_the_ode_and_starts_at_the_start() {
        let o = SgdOptions {
            algo: Algo::Rbp,
            alpha: 1.0,
            beta: 1.0,
            c: 1.0,
            noise: 0.5,
            from: "0.5,0.5".parse().unwrap(),
            eta: 1e-3,
            time: 10.0,
            seed: 1,
        };
        let mut out = Vec::new();
        let rows = sgd(&o, &mut out).unwrap();
        assert_eq!(rows.len(), 21);
        // the first row is the start (the ODE taken to t = 1e-12)
        assert_eq!((rows[0].t, rows[0].sgd), (0.0, [0.5, 0.5]));
        assert!(max_diff(&rows[0].ode, &[0.5, 0.5]) < 1e-9);
        let worst = rows
            .iter()
            .map(|r| max_diff(&r.sgd, &r.ode))
            .fold(0.0, f64::max);
        assert!(worst < 0.05, "{worst}");
        // the ODE ends on the hyperbola a1·a2 = α/β
        let end = rows.last().unwrap().ode;
        assert!((end[0] * end[1] - 1.0).abs() < 1e-6, "{end:?}");
        let t = text(out);
        assert!(
            t.ends_with(&format!("largest deviation {worst:.4e}\n")),
            "{t}"
        );
    }

    #[test]
    fn the_field_figure_is_written_and_its_default_starts_scale_with_the_range() {
        assert_eq!(default_starts(3.0)[1], (-2.0, 2.5));
        assert_eq!(default_starts(1.5)[0], (0.25, 0.25));
        let dir = std::env::temp_dir().join(format!("rbprop-field-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.svg");
        let o = FieldOptions {
            alpha: 1.0,
            beta: 1.0,
            c: -0.8,
            range: 3.0,
            grid: 5,
            starts: vec!["0.5,-0.5".parse().unwrap()],
            out: path.clone(),
        };
        let mut out = Vec::new();
        field(&o, &mut out).unwrap();
        assert_eq!(text(out), format!("wrote {}\n", path.display()));
        assert!(std::fs::read_to_string(&path).unwrap().contains("</svg>"));
        let bad = FieldOptions {
            starts: vec!["1".parse().unwrap()],
            ..o
        };
        let e = field(&bad, &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(e, "--start takes a1,a2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
