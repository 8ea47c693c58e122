//! The inputs of the dynamics reports, checked: numbers and number lists as typed on a command
//! line (fractions like `1/3` allowed), bounds on every size that would be allocated, and the
//! data statistics of paper §3 estimated from a CSV file of samples (α = E\[T·f(I)\],
//! β = E\[f(I)²\] of A\[1,1,1\]; Σ_II = E\[I Iᵀ\], Σ_TI = E\[T Iᵀ\] of A\[N0,N1,N2\]).
//!
//! Errors name the option (`--from`, `--t-end`, …) they are about.

use super::systems::power;
use crate::error::Error;
use crate::report::{ReportError, ReportResult, ensure};
use std::path::{Path, PathBuf};

/// Longest end time: an integration runs to it unless it converges first.
pub const MAX_T_END: f64 = 1e9;
/// Most steps of one integration (fixed-step rk4: t_end / step; the adaptive methods stop
/// there too).
pub const MAX_STEPS: usize = 10_000_000;
/// Most per-example updates of the SGD comparison (time / η).
pub const MAX_SGD_STEPS: f64 = 1e8;
/// Most arrows per axis of the field figure.
pub const MAX_GRID: usize = 200;
/// Longest chain.
pub const MAX_LENGTH: usize = 64;
/// Most units N of `wide` and `autoencoder`.
pub const MAX_UNITS: usize = 10_000;
/// Largest N0, N1, N2 of `general`.
pub const MAX_SIZE: usize = 100;

/// Parses one number: a float or a fraction `a/b`; the error is the reason alone.
pub fn parse_number(s: &str) -> Result<f64, String> {
    if let Some((a, b)) = s.split_once('/') {
        let a: f64 = a.trim().parse().map_err(|e| format!("{e}"))?;
        let b: f64 = b.trim().parse().map_err(|e| format!("{e}"))?;
        if b == 0.0 {
            return Err("division by zero".into());
        }
        return Ok(a / b);
    }
    s.parse().map_err(|e| format!("{e}"))
}

/// A list of numbers as typed: `1,2.5,-3`, fractions like `1/3` allowed. Parsed once, where it
/// is read (a flag, a Python argument); a report checks that every value is finite and names
/// its option if not ([`Numbers::finite`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Numbers(pub Vec<f64>);

impl Numbers {
    /// The values, each finite, else an error naming `flag`.
    pub fn finite(&self, flag: &str) -> Result<Vec<f64>, Error> {
        self.0.iter().map(|&v| finite(flag, v)).collect()
    }
}

impl std::str::FromStr for Numbers {
    type Err = String;
    /// The error is the reason alone: `` `x` is not a number: invalid float literal``.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(|s| {
                parse_number(s.trim())
                    .map_err(|e| format!("`{}` is not a number: {e}", crate::error::bounded(s)))
            })
            .collect::<Result<_, _>>()
            .map(Numbers)
    }
}

/// Comma-separated, each value as Rust writes it (read back to the same bits).
impl std::fmt::Display for Numbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| format!("{v:?}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl From<Vec<f64>> for Numbers {
    fn from(v: Vec<f64>) -> Self {
        Numbers(v)
    }
}

/// One number as typed: a float or a fraction `a/b` (`--mu 1/3`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(pub f64);

impl std::str::FromStr for Number {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_number(text.trim()).map(Number)
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `v` if it is finite, else an error naming `flag`.
pub fn finite(flag: &str, v: f64) -> Result<f64, Error> {
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
pub fn positive(flag: &str, v: f64) -> Result<f64, Error> {
    if finite(flag, v)? > 0.0 {
        Ok(v)
    } else {
        Err(Error::config(flag, format!("must be > 0, got {v}")))
    }
}

/// An end time: > 0 and at most [`MAX_T_END`].
pub fn end_time(flag: &str, v: f64) -> Result<f64, Error> {
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
pub fn at_most(flag: &str, v: usize, max: usize) -> Result<usize, Error> {
    if v > max {
        return Err(Error::config(flag, format!("at most {max}, got {v}")));
    }
    Ok(v)
}

/// Reads a CSV of numbers with exactly `cols` columns; a first line that is not numbers is a
/// header and skipped, blank lines are skipped, and at least one sample is required.
pub fn read_samples(path: &Path, cols: usize) -> ReportResult<Vec<Vec<f64>>> {
    let invalid = |m: String| ReportError::Invalid(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
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
                    return Err(invalid(format!(
                        "line {}, column {}: {} is not a finite number",
                        i + 1,
                        c + 1,
                        r[c]
                    )));
                }
                rows.push(r)
            }
            Ok(r) => {
                return Err(invalid(format!(
                    "line {} has {} columns, expected {cols}",
                    i + 1,
                    r.len()
                )));
            }
            Err(_) if i == 0 => continue, // header
            Err(e) => return Err(invalid(format!("line {}: {e}", i + 1))),
        }
    }
    ensure(!rows.is_empty(), || {
        format!("{}: no samples", path.display())
    })?;
    Ok(rows)
}

/// The data statistics of A\[1,1,1\]: α = E\[T·f(I)\] and β = E\[f(I)²\], given or estimated.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    /// α = E\[T·I\] (or E\[T·I^μ\]); finite.
    pub alpha: f64,
    /// β = E\[I²\] (or E\[I^{2μ}\]); > 0.
    pub beta: f64,
    /// A CSV file of samples `input,target` to estimate α and β from instead (a header line
    /// allowed).
    pub stats: Option<PathBuf>,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            alpha: 1.0,
            beta: 1.0,
            stats: None,
        }
    }
}

impl Moments {
    /// (α, β): the given values, checked, or those estimated from `stats` with f(x) = x^μ
    /// (sign(x)|x|^μ if `signed`).
    pub fn resolve(&self, mu: f64, signed: bool) -> ReportResult<(f64, f64)> {
        let Some(path) = &self.stats else {
            finite("--alpha", self.alpha)?;
            positive("--beta", self.beta)?;
            return Ok((self.alpha, self.beta));
        };
        let (alpha, beta) = estimate_moments(&read_samples(path, 2)?, mu, signed);
        ensure(alpha.is_finite() && beta.is_finite(), || {
            format!(
                "{}: the estimated α = {alpha}, β = {beta} are not finite",
                path.display()
            )
        })?;
        ensure(beta > 0.0, || {
            format!("{}: the inputs are all zero (β = 0)", path.display())
        })?;
        Ok((alpha, beta))
    }
}

/// α = mean of T·f(I) and β = mean of f(I)² over samples `[input, target]`, with f(x) = x^μ
/// (sign(x)|x|^μ if `signed`).
pub fn estimate_moments(samples: &[Vec<f64>], mu: f64, signed: bool) -> (f64, f64) {
    let n = samples.len() as f64;
    let f = |x: f64| power(x, mu, signed);
    let alpha = samples.iter().map(|r| r[1] * f(r[0])).sum::<f64>() / n;
    let beta = samples.iter().map(|r| f(r[0]).powi(2)).sum::<f64>() / n;
    (alpha, beta)
}

/// Σ_II = mean of I Iᵀ (N0 × N0, row-major) and Σ_TI = mean of T Iᵀ (N2 × N0) over samples of
/// N0 input then N2 target columns.
pub fn second_moments(samples: &[Vec<f64>], n0: usize, n2: usize) -> (Vec<f64>, Vec<f64>) {
    let m = samples.len() as f64;
    let mut sii = vec![0.0; n0 * n0];
    let mut sti = vec![0.0; n2 * n0];
    for r in samples {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_fractions_and_errors_name_the_option() {
        assert_eq!(parse_number("1/3").unwrap(), 1.0 / 3.0);
        let n: Numbers = "1, 2/4,-3,1e-300".parse().unwrap();
        assert_eq!(n.0, [1.0, 0.5, -3.0, 1e-300]);
        assert_eq!(n.to_string().parse::<Numbers>().unwrap(), n);
        let e = |t: &str| t.parse::<Numbers>().unwrap_err();
        assert_eq!(e("1,x"), "`x` is not a number: invalid float literal");
        assert_eq!(e("1,1/0"), "`1/0` is not a number: division by zero");
        assert_eq!("1/3".parse::<Number>().unwrap().0, 1.0 / 3.0);
        let inf: Numbers = "1,inf".parse().unwrap();
        assert_eq!(
            inf.finite("--from").unwrap_err().to_string(),
            "invalid value for `--from`: must be a finite number, got inf"
        );
        assert_eq!(
            end_time("--t-end", 1e10).unwrap_err().to_string(),
            "invalid value for `--t-end`: the end time is limited to 1e9, got 10000000000"
        );
        assert!(at_most("--n", MAX_UNITS + 1, MAX_UNITS).is_err());
    }

    #[test]
    fn moments_of_t_equals_2i_are_alpha_4_and_beta_2() {
        // I ∈ {1, 2, -1}, T = 2I: E[T I] = 2·E[I²] = 2·2 = 4, E[I²] = 2
        let dir = std::env::temp_dir().join(format!("rbprop-moments-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samples.csv");
        std::fs::write(&path, "input,target\n1,2\n2,4\n\n-1,-2\n").unwrap();
        let m = Moments {
            stats: Some(path.clone()),
            ..Moments::default()
        };
        assert_eq!(m.resolve(1.0, false).unwrap(), (4.0, 2.0));
        // f(x) = x³: α = E[2 I⁴] = 2·18/3 = 12, β = E[I⁶] = 66/3 = 22
        assert_eq!(m.resolve(3.0, false).unwrap(), (12.0, 22.0));
        std::fs::write(&path, "1,2\n3\n").unwrap();
        let e = m.resolve(1.0, false).unwrap_err().to_string();
        assert!(
            e.ends_with("samples.csv: line 2 has 1 columns, expected 2"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let (sii, sti) = second_moments(&[vec![1.0, 0.0, 3.0], vec![0.0, 2.0, 4.0]], 2, 1);
        assert_eq!(sii, [0.5, 0.0, 0.0, 2.0]);
        assert_eq!(sti, [1.5, 4.0]);
    }
}
