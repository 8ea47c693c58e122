//! The quantizer of the low-precision channel variants (paper §1; the formula is our default).
//!
//! ```text
//!   Q_{1,α}(x) = α · sign(x)                         (sign(0) = 0)
//!   Q_{b,α}(x) = clip(α · round(x · s / α) / s, −α, α),   s = 2^(b−1) − 1,  b ≥ 2
//! ```
//!
//! so a b-bit quantizer has 2^b − 1 levels, evenly spaced by α/s and symmetric around 0, and
//! clips at ±α. `round` rounds half to even (the rounding of the hardware; it differs from
//! half-away-from-zero only on exact ties). Used on the error signal arriving at hidden neurons
//! (α = 1 by default) and on each example's weight update before the minibatch sum (α = 2⁻⁴).

use crate::error::{Error, Result};
use crate::kernels::simd::dispatch;
use serde::{Deserialize, Serialize};

/// A b-bit symmetric quantizer with scale α.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantizer {
    pub bits: u32,
    pub alpha: f32,
}

impl Quantizer {
    /// Checks `1 ≤ bits ≤ 32` and `α > 0`; `key` names the setting in errors.
    pub fn new(bits: u32, alpha: f32, key: &str) -> Result<Self> {
        if !(1..=32).contains(&bits) {
            return Err(Error::config(
                key,
                format!("bits must be in 1..=32, got {bits}"),
            ));
        }
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::config(
                key,
                format!("scale α must be > 0, got {alpha}"),
            ));
        }
        Ok(Quantizer { bits, alpha })
    }

    /// Parses `BITS` or `BITS:ALPHA` (α defaults to `default_alpha`).
    pub fn parse(text: &str, default_alpha: f32, key: &str) -> Result<Self> {
        let (b, a) = match text.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (text, None),
        };
        let bits = b.trim().parse::<u32>().map_err(|_| {
            Error::config(key, format!("expected BITS or BITS:ALPHA, got `{text}`"))
        })?;
        let alpha = match a {
            None => default_alpha,
            Some(a) => a.trim().parse::<f32>().map_err(|_| {
                Error::config(
                    key,
                    format!("expected BITS:ALPHA with a number α, got `{text}`"),
                )
            })?,
        };
        Quantizer::new(bits, alpha, key)
    }

    /// Steps per unit α: s = 2^(b−1) − 1 (0 for b = 1).
    pub fn steps(&self) -> f32 {
        ((1u64 << (self.bits - 1)) - 1) as f32
    }

    /// Q(x) of one value.
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        quantize_one(x, self.alpha, self.steps())
    }

    /// `x ← Q(x)` elementwise.
    pub fn apply_slice(&self, x: &mut [f32]) {
        quantize_slice(x, self.alpha, self.steps());
    }
}

#[inline(always)]
fn quantize_one(x: f32, alpha: f32, s: f32) -> f32 {
    if s == 0.0 {
        let sign = if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        };
        alpha * sign
    } else {
        (alpha * (x * (s / alpha)).round_ties_even() / s).clamp(-alpha, alpha)
    }
}

dispatch! {
    /// `x ← Q(x)` for the quantizer with scale `alpha` and `s` steps per unit α.
    pub fn quantize_slice(x: &mut [f32], alpha: f32, s: f32) {
        x.iter_mut().for_each(|v| *v = quantize_one(*v, alpha, s));
    }
}

dispatch! {
    /// `acc += Q(coef · o)` elementwise: one example's quantized update of a weight row.
    pub fn add_quantized_row(acc: &mut [f32], o: &[f32], coef: f32, alpha: f32, s: f32) {
        acc.iter_mut().zip(o).for_each(|(a, o)| *a += quantize_one(coef * o, alpha, s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bit_is_alpha_times_sign() {
        let q = Quantizer::new(1, 0.5, "q").unwrap();
        assert_eq!(q.apply(3.0), 0.5);
        assert_eq!(q.apply(-1e-9), -0.5);
        assert_eq!(q.apply(0.0), 0.0);
    }

    #[test]
    fn levels_clipping_and_rounding() {
        // 2 bits: s = 1, levels {−α, 0, α}
        let q = Quantizer::new(2, 1.0, "q").unwrap();
        assert_eq!(
            [q.apply(-0.7), q.apply(0.4), q.apply(0.6), q.apply(9.0)],
            [-1.0, 0.0, 1.0, 1.0]
        );
        // 3 bits: s = 3, levels k/3 for k = −3..3 — 7 = 2³ − 1 levels
        let q = Quantizer::new(3, 1.0, "q").unwrap();
        let mut levels: Vec<i32> = (-300..=300)
            .map(|i| (q.apply(i as f32 / 100.0) * 3.0).round() as i32)
            .collect();
        levels.dedup();
        assert_eq!(levels, (-3..=3).collect::<Vec<_>>());
        assert_eq!(q.apply(0.2), 1.0 / 3.0);
        assert_eq!(q.apply(-5.0), -1.0);
        // ties go to even: 0.5 step → 0, 1.5 steps → 2 steps
        assert_eq!(q.apply(0.5 / 3.0), 0.0);
        assert!((q.apply(1.5 / 3.0) - 2.0 / 3.0).abs() < 1e-7);
        // with α: 8 bits, α = 1/16, step α/127
        let q = Quantizer::new(8, 1.0 / 16.0, "q").unwrap();
        let x = 0.01f32;
        let step = (1.0 / 16.0) / 127.0;
        assert!((q.apply(x) - (x / step).round() * step).abs() < 1e-9);
        assert_eq!(q.apply(1.0), 1.0 / 16.0);
    }

    #[test]
    fn thirty_two_bits_is_nearly_exact_and_slices_match_scalars() {
        let q = Quantizer::new(32, 1.0, "q").unwrap();
        let xs: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) / 1001.0).collect();
        for &x in &xs {
            assert!((q.apply(x) - x).abs() <= 1e-7, "{x}");
        }
        let q = Quantizer::new(4, 0.3, "q").unwrap();
        let mut v = xs.clone();
        q.apply_slice(&mut v);
        assert!(v.iter().zip(&xs).all(|(a, x)| *a == q.apply(*x)));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            Quantizer::parse("0", 1.0, "quantize-signal")
                .unwrap_err()
                .to_string()
                .contains("1..=32")
        );
        assert!(
            Quantizer::parse("8:-1", 1.0, "quantize-signal")
                .unwrap_err()
                .to_string()
                .contains("α")
        );
        assert!(
            Quantizer::parse("x", 1.0, "quantize-signal")
                .unwrap_err()
                .to_string()
                .contains("`x`")
        );
        assert_eq!(
            Quantizer::parse("4:0.5", 1.0, "k").unwrap(),
            Quantizer {
                bits: 4,
                alpha: 0.5
            }
        );
    }
}
