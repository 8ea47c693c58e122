//! `rbp complexity`: the cost of each learning channel (paper §4), predicted and measured; the
//! report is [`rbprop::complexity`]'s.

use super::Out;
use clap::Args;
use rbprop::complexity;

#[derive(Args, Debug)]
pub struct ComplexityArgs {
    /// The whole dense net as N0-N1-…-NL (e.g. 784-100-100-100-100-10); overrides --hidden,
    /// --inputs, --outputs.
    #[arg(long, value_name = "N0-…-NL")]
    pub arch: Option<String>,
    /// Hidden layer sizes.
    #[arg(long, default_value = "100,100,100,100", value_name = "N,N,…")]
    pub hidden: String,
    /// Input size N0.
    #[arg(long, default_value_t = 784)]
    pub inputs: usize,
    /// Output size NL.
    #[arg(long, default_value_t = 10)]
    pub outputs: usize,
    /// Also time the backward signal and the whole step of each channel (batch 100, one thread).
    #[arg(long)]
    pub measure: bool,
}

pub fn run(args: ComplexityArgs) -> anyhow::Result<()> {
    let (arch, hidden) = (args.arch.as_deref(), &args.hidden);
    let sizes = complexity::net_sizes(arch, hidden, args.inputs, args.outputs)?;
    complexity::report(&sizes, args.measure, &mut Out)?;
    Ok(())
}
