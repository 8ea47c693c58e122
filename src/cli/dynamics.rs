//! `rbp dynamics …`: the learning dynamics of paper §3 from the command line.

use super::sayln;
use anyhow::{Context, bail, ensure};
use clap::{Args, Subcommand};
use rbp::dynamics::field::{self, FieldSpec};
use rbp::dynamics::integrate::{Limits, Outcome, Trajectory, dopri5, rk4};
use rbp::dynamics::predict::{chain_c, predict_chain, stable_on_hyperbola};
use rbp::dynamics::sgd::simulate_a111;
use rbp::dynamics::systems::{Algo, Autoencoder, Chain, General, Wide, odd_pow};
use std::path::PathBuf;

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
    /// Integrate up to this time.
    #[arg(long, default_value_t = 1000.0)]
    pub t_end: f64,
    /// Integrator: dopri (adaptive Dormand-Prince 5(4)) or rk4 (fixed step --step).
    #[arg(long, default_value = "dopri")]
    pub method: String,
    /// Step of rk4.
    #[arg(long, default_value_t = 1e-3)]
    pub step: f64,
    /// Relative tolerance of dopri.
    #[arg(long, default_value_t = 1e-10)]
    pub rtol: f64,
}

#[derive(Args, Debug)]
pub struct ChainArgs {
    /// Number of weights L (A[1,1,1] has length 2).
    #[arg(long, default_value_t = 2)]
    pub length: usize,
    /// Learning channel.
    #[arg(long, value_enum, default_value_t = Algo::Rbp)]
    pub algo: Algo,
    /// Channel weights: RBP c_2..c_L, SRBP c_1..c_(L−1) (one value is repeated) [default: 1].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<String>,
    /// Starting weights a_1,…,a_L.
    #[arg(long, value_name = "A1,A2,…", allow_hyphen_values = true)]
    pub from: String,
    /// Hidden non-linearity f(x) = x^μ (A[1,1,1] only; fractions like 1/3 allowed; odd real power).
    #[arg(long, default_value = "1")]
    pub mu: String,
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
    /// Arrows per axis.
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
    #[arg(long, value_enum, default_value_t = Algo::Rbp)]
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
    #[arg(long, value_enum, default_value_t = Algo::Rbp)]
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
    #[arg(long, value_enum, default_value_t = Algo::Rbp)]
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
    #[arg(long, value_enum, default_value_t = Algo::Rbp)]
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

/// Parses `1,2.5,-3` (fractions like 1/3 allowed).
pub fn numbers(text: &str, what: &str) -> anyhow::Result<Vec<f64>> {
    text.split(',')
        .map(|s| number(s.trim()).with_context(|| format!("{what}: `{s}` is not a number")))
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

fn integrate(
    sys: &impl rbp::dynamics::integrate::System,
    y0: &[f64],
    c: &Common,
    t_end: f64,
) -> anyhow::Result<Trajectory> {
    let limits = Limits {
        t_end,
        ..Limits::default()
    };
    Ok(match c.method.as_str() {
        "dopri" => dopri5(sys, y0, c.rtol, c.rtol * 1e-2, &limits),
        "rk4" => {
            ensure!(c.step > 0.0, "--step must be > 0, got {}", c.step);
            rk4(sys, y0, c.step, &limits, 100)
        }
        m => bail!("--method must be dopri or rk4, got `{m}`"),
    })
}

/// α, β from the flags or from `--stats` (E[T I^μ], E[I^{2μ}]).
fn stats(c: &Common, mu: f64) -> anyhow::Result<(f64, f64)> {
    let Some(path) = &c.stats else {
        ensure!(c.beta > 0.0, "--beta must be > 0, got {}", c.beta);
        return Ok((c.alpha, c.beta));
    };
    let rows = read_csv(path, 2)?;
    let n = rows.len() as f64;
    let alpha = rows.iter().map(|r| r[1] * odd_pow(r[0], mu)).sum::<f64>() / n;
    let beta = rows.iter().map(|r| odd_pow(r[0], mu).powi(2)).sum::<f64>() / n;
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
            Ok(r) if r.len() == cols => rows.push(r),
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
    let mu = number(&a.mu).context("--mu")?;
    ensure!(
        mu == 1.0 || l == 2,
        "--mu is defined for A[1,1,1] (--length 2)"
    );
    let from = numbers(&a.from, "--from")?;
    ensure!(
        from.len() == l,
        "--from needs {l} values a_1..a_{l}, got {}",
        from.len()
    );
    let (alpha, beta) = stats(&a.common, mu)?;
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
        signed: false,
        len: l,
    };
    let mut y0 = from.clone();
    if a.adaptive {
        y0.extend(&c);
    }
    let traj = integrate(&sys, &y0, &a.common, a.common.t_end)?;
    let end = &traj.end()[..l];
    sayln!(
        "A[{}] under {:?}, α = {alpha}, β = {beta}{}",
        vec!["1"; l + 1].join(","),
        a.algo,
        if mu != 1.0 {
            format!(", f(x) = x^{mu}")
        } else {
            String::new()
        }
    );
    sayln!("start      a = ({})", fmt(&from));
    sayln!(
        "end        a = ({})  at t = {:.3} ({}, {} steps)",
        fmt(end),
        traj.t_end(),
        outcome(traj.outcome),
        traj.times.len() - 1
    );
    sayln!(
        "           P = {:.12}   α/β = {:.12}",
        sys.product(end),
        alpha / beta
    );
    if a.algo != Algo::Bp && !a.adaptive {
        match predict_chain(&sys, &from) {
            Ok(p) => {
                let how = if mu == 1.0 {
                    format!(
                        "first root reached of a degree-{} polynomial; its real roots: {}",
                        (1usize << l) - 1,
                        fmt(&p.roots)
                    )
                } else {
                    "first solution of β·a1^μ·a2(a1) = α reached along the parabola".to_string()
                };
                sayln!("predicted  a = ({})  ({how})", fmt(&p.limit));
                let err = p
                    .limit
                    .iter()
                    .zip(end)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                sayln!("           |end − predicted| = {err:.3e}");
                if l == 2 && mu == 1.0 {
                    let cc = chain_c(&sys);
                    let s = stable_on_hyperbola(p.limit[0], p.limit[1], cc);
                    sayln!(
                        "stability  a1² + c·a2 = {:.6} → {}",
                        p.limit[0].powi(2) + cc * p.limit[1],
                        if s {
                            "stable (attracting)"
                        } else {
                            "unstable (repelling)"
                        }
                    );
                }
            }
            Err(e) => sayln!("predicted  none: {e}"),
        }
    }
    Ok(())
}

fn draw_field(a: FieldArgs) -> anyhow::Result<()> {
    ensure!(
        a.beta > 0.0 && a.c != 0.0 && a.range > 0.0,
        "--beta, --range must be > 0 and --c ≠ 0"
    );
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
    rbp::rng::normal_vec(n, sd, &mut rbp::rng::stream(seed, name))
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
    let (alpha, beta) = stats(&a.common, 1.0)?;
    let (c, y0) = channel_and_start(n, a.c.as_deref(), a.from.as_deref(), a.seed)?;
    let sys = Wide {
        alpha,
        beta,
        algo: a.algo,
        c,
    };
    let traj = integrate(&sys, &y0, &a.common, a.common.t_end)?;
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
    let (c, y0) = channel_and_start(n, a.c.as_deref(), a.from.as_deref(), a.seed)?;
    let sys = Autoencoder {
        algo: a.algo,
        c: c.clone(),
    };
    let traj = dopri5(
        &sys,
        &y0,
        1e-10,
        1e-12,
        &Limits {
            t_end: a.t_end,
            ..Limits::default()
        },
    );
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
    let traj = dopri5(
        &sys,
        &y0,
        1e-9,
        1e-11,
        &Limits {
            t_end: a.t_end,
            ..Limits::default()
        },
    );
    let p = sys.product(traj.end());
    let p0 = sys.product(&y0);
    sayln!(
        "A[{n0},{n1},{n2}] under {:?}: {} at t = {:.3}",
        a.algo,
        outcome(traj.outcome),
        traj.t_end()
    );
    let mut d = vec![0.0; y0.len()];
    use rbp::dynamics::integrate::System;
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
    ensure!(a.eta > 0.0 && a.beta > 0.0, "--eta and --beta must be > 0");
    let steps = (a.time / a.eta).round() as usize;
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
        let ode = dopri5(
            &sys,
            &from,
            1e-10,
            1e-12,
            &Limits {
                t_end: t.max(1e-12),
                converge: 0.0,
                ..Limits::default()
            },
        );
        let e = ode.end();
        worst = worst.max((a1 - e[0]).abs()).max((a2 - e[1]).abs());
        sayln!(
            "{t:>8.3} {a1:>12.6} {:>12.6} {a2:>12.6} {:>12.6}",
            e[0],
            e[1]
        );
    }
    sayln!("largest deviation {worst:.4e}");
    Ok(())
}
