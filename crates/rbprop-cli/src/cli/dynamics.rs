//! `rbp dynamics …`: the learning dynamics of paper §3 from the command line. The arguments
//! only; the reports are [`rbprop::dynamics::report`]'s.

use super::Out;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use rbprop::dynamics::input::{Moments, Number, Numbers};
use rbprop::dynamics::report::{self, *};
use rbprop::dynamics::solve::{Integration, Method};
use rbprop::dynamics::systems::Algo;
use std::path::PathBuf;

/// `--algo`: one of [`Algo::NAMES`].
fn algo() -> impl TypedValueParser<Value = Algo> {
    PossibleValuesParser::new(Algo::NAMES).map(|s| s.parse::<Algo>().unwrap())
}

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
    pub method: Method,
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
    #[arg(long, default_value = "rbp", value_parser = algo())]
    pub algo: Algo,
    /// Channel weights: RBP c_2..c_L, SRBP c_1..c_(L−1) (one value is repeated) [default: 1].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<Numbers>,
    /// Starting weights a_1,…,a_L.
    #[arg(long, value_name = "A1,A2,…", allow_hyphen_values = true)]
    pub from: Numbers,
    /// Hidden non-linearity f(x) = x^μ (A[1,1,1] only; fractions like 1/3 allowed): the plain
    /// power for integer μ (x² is even), the real odd root for μ = 1/k with k odd.
    #[arg(long, default_value = "1")]
    pub mu: Number,
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
    pub starts: Vec<Numbers>,
    /// Output file (.svg or .png).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct WideArgs {
    /// Hidden units N.
    #[arg(long, default_value_t = 3)]
    pub n: usize,
    #[arg(long, default_value = "rbp", value_parser = algo())]
    pub algo: Algo,
    /// Channel weights c_1..c_N [default: seeded N(0,1)].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<Numbers>,
    /// Start a_1..a_N,b_1..b_N [default: seeded N(0, 0.25)].
    #[arg(long, value_name = "…", allow_hyphen_values = true)]
    pub from: Option<Numbers>,
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
    #[arg(long, default_value = "rbp", value_parser = algo())]
    pub algo: Algo,
    /// Channel vector c [default: seeded N(0,1)].
    #[arg(long, value_name = "C,…", allow_hyphen_values = true)]
    pub c: Option<Numbers>,
    /// Start a (N values) then b (N values) [default: seeded N(0, 0.25)].
    #[arg(long, value_name = "…", allow_hyphen_values = true)]
    pub from: Option<Numbers>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1000.0)]
    pub t_end: f64,
}

#[derive(Args, Debug)]
pub struct GeneralArgs {
    /// N0,N1,N2.
    #[arg(long, default_value = "4,2,3")]
    pub sizes: Numbers,
    #[arg(long, default_value = "rbp", value_parser = algo())]
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
    #[arg(long, default_value = "rbp", value_parser = algo())]
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
    pub from: Numbers,
    /// Learning rate η (ODE time t = η·examples).
    #[arg(long, default_value_t = 1e-3)]
    pub eta: f64,
    /// ODE time to simulate.
    #[arg(long, default_value_t = 10.0)]
    pub time: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `$ty { f: $a.f, …, x, … }`: the fields `f` of the arguments that the options share by name,
/// then the variables `x`.
macro_rules! options {
    ($a:ident => $ty:ident { $($f:ident),* } $($x:ident),*) => {
        $ty { $($f: $a.$f,)* $($x,)* }
    };
}

pub fn run(cmd: DynamicsCommand) -> anyhow::Result<()> {
    let out = &mut Out;
    match cmd {
        DynamicsCommand::Chain(a) => {
            let (moments, integration) = a.common.split();
            let mu = a.mu.0;
            let o = options!(a => ChainOptions { length, algo, c, from, signed_power, adaptive }
                mu, moments, integration);
            report::chain(&o, out).map(drop)
        }
        DynamicsCommand::Field(a) => {
            let o = options!(a => FieldOptions { alpha, beta, c, range, grid, starts, out });
            report::field(&o, out)
        }
        DynamicsCommand::Wide(a) => {
            let (moments, integration) = a.common.split();
            let o = options!(a => WideOptions { n, algo, c, from, seed } moments, integration);
            report::wide(&o, out).map(drop)
        }
        DynamicsCommand::Autoencoder(a) => {
            let o = options!(a => AutoencoderOptions { n, algo, c, from, seed, t_end });
            report::autoencoder(&o, out).map(drop)
        }
        DynamicsCommand::General(a) => {
            let o = options!(a => GeneralOptions { sizes, algo, stats, seed, t_end });
            report::general(&o, out).map(drop)
        }
        DynamicsCommand::Sgd(a) => {
            let o =
                options!(a => SgdOptions { algo, alpha, beta, c, noise, from, eta, time, seed });
            report::sgd(&o, out).map(drop)
        }
    }
    .map_err(Into::into)
}

impl Common {
    /// The library's data statistics and integration settings.
    fn split(self) -> (Moments, Integration) {
        let integration = options!(self => Integration { t_end, method, step, rtol });
        let moments = options!(self => Moments { alpha, beta, stats });
        (moments, integration)
    }
}
