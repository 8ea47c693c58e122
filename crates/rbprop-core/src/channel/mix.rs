//! The per-layer choice of the `mix` channel (paper §1's SRBP+BP mixture): which signal each
//! hidden layer receives.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The signal a hidden layer of the `mix` channel receives (`--mix`, one per hidden layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MixSignal {
    /// BP's signal from the layer above, `W_{h+1}ᵀ δ_{h+1}`.
    Bp,
    /// The skipped random signal from the output, `C_h δ_L`.
    Srbp,
}

impl MixSignal {
    /// Parses `bp` or `srbp` (any case).
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "bp" => Ok(MixSignal::Bp),
            "srbp" => Ok(MixSignal::Srbp),
            _ => Err(Error::config(
                "mix",
                format!(
                    "each entry must be bp or srbp, got `{}`",
                    crate::error::bounded(text.trim())
                ),
            )),
        }
    }

    /// Parses a comma-separated list, one entry per hidden layer (`bp,srbp,srbp`).
    pub fn parse_list(text: &str) -> Result<Vec<Self>> {
        text.split(',').map(MixSignal::parse).collect()
    }
}

impl std::str::FromStr for MixSignal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MixSignal::parse(s)
    }
}

impl std::fmt::Display for MixSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MixSignal::Bp => "bp",
            MixSignal::Srbp => "srbp",
        })
    }
}

impl TryFrom<String> for MixSignal {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        MixSignal::parse(&s)
    }
}

impl From<MixSignal> for String {
    fn from(m: MixSignal) -> String {
        m.to_string()
    }
}
