//! `rbp ls`: every run of a results directory, one line each.

use clap::{Args, ValueEnum};
use rbprop::experiment::list;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// A results directory written by `rbp reproduce`.
    pub results: PathBuf,
    /// Output format: text (aligned columns) or csv (a header line, then one row per run).
    #[arg(long, value_enum, default_value_t = LsFormat::Text)]
    pub format: LsFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LsFormat {
    Text,
    Csv,
}

pub fn run(a: LsArgs) -> anyhow::Result<()> {
    let listing = list::list(&a.results)?;
    super::say(&match a.format {
        LsFormat::Text => listing.text(),
        LsFormat::Csv => listing.csv(),
    });
    Ok(())
}
