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

/// Rows × columns of one register tile of [`add_quantized_outer`].
const TILE_ROWS: usize = 4;
const TILE_COLS: usize = 16;

/// `k ← clamp(round_half_even(x), −s, s)`: a scaled value to its signed number of steps.
#[inline(always)]
pub fn steps_of(x: f32, s: f32) -> f32 {
    let k = x.round_ties_even();
    let k = if k < -s { -s } else { k };
    if k > s { s } else { k }
}

/// The sums over examples of one tile: `acc[r][c] += Σ_e steps_of(coefs[e][r0 + r] · inputs[e][c0 + c])`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn outer_tile<const R: usize, const C: usize>(
    acc: &mut [f32],
    coefs: &[f32],
    inputs: &[f32],
    (n_rows, n_cols): (usize, usize),
    (r0, c0): (usize, usize),
    s: f32,
) {
    let mut tile = [[0.0f32; C]; R];
    for (coef, input) in coefs.chunks_exact(n_rows).zip(inputs.chunks_exact(n_cols)) {
        let o: &[f32; C] = input[c0..c0 + C].try_into().unwrap();
        for (r, row) in tile.iter_mut().enumerate() {
            let c = coef[r0 + r];
            for (t, o) in row.iter_mut().zip(o) {
                *t += steps_of(c * o, s);
            }
        }
    }
    for (r, row) in tile.iter().enumerate() {
        let a = &mut acc[(r0 + r) * n_cols + c0..][..C];
        a.iter_mut().zip(row).for_each(|(a, t)| *a += t);
    }
}

dispatch! {
    /// `acc += Σ_e Q(coef_e ⊛ input_e) · s/α` for a b ≥ 2 bit quantizer, in steps: `acc` is
    /// `n_rows × n_cols` (row-major), `coefs` holds each example's `n_rows` coefficients already
    /// multiplied by `s/α`, `inputs` each example's `n_cols` inputs. The sum over the examples is
    /// kept in registers, one tile of rows × columns at a time (the quantization of each
    /// example's product forbids a GEMM).
    pub fn add_quantized_outer(
        acc: &mut [f32],
        coefs: &[f32],
        inputs: &[f32],
        n_rows: usize,
        n_cols: usize,
        s: f32,
    ) {
        let dims = (n_rows, n_cols);
        let (rows, cols) = (n_rows / TILE_ROWS * TILE_ROWS, n_cols / TILE_COLS * TILE_COLS);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            for c0 in (0..cols).step_by(TILE_COLS) {
                outer_tile::<TILE_ROWS, TILE_COLS>(acc, coefs, inputs, dims, (r0, c0), s);
            }
            for c0 in cols..n_cols {
                outer_tile::<TILE_ROWS, 1>(acc, coefs, inputs, dims, (r0, c0), s);
            }
        }
        for r0 in rows..n_rows {
            for c0 in (0..cols).step_by(TILE_COLS) {
                outer_tile::<1, TILE_COLS>(acc, coefs, inputs, dims, (r0, c0), s);
            }
            for c0 in cols..n_cols {
                outer_tile::<1, 1>(acc, coefs, inputs, dims, (r0, c0), s);
            }
        }
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
    fn tiled_outer_sums_match_per_example_quantization() {
        // sizes that exercise full tiles and both tails
        for (n_rows, n_cols, batch) in [(9, 37, 5), (1, 1, 3), (4, 16, 2), (13, 50, 7)] {
            for bits in [2, 4, 8, 16] {
                let q = Quantizer::new(bits, 0.3, "q").unwrap();
                let s = q.steps();
                let val = |i: usize, m: f32| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * m;
                let coefs: Vec<f32> = (0..batch * n_rows).map(|i| val(i, 0.5)).collect();
                let inputs: Vec<f32> = (0..batch * n_cols).map(|i| val(i + 3, 1.5)).collect();
                let mut acc: Vec<f32> = (0..n_rows * n_cols).map(|i| val(i, 2.0)).collect();
                let start = acc.clone();
                let scaled: Vec<f32> = coefs.iter().map(|c| c * s / q.alpha).collect();
                add_quantized_outer(&mut acc, &scaled, &inputs, n_rows, n_cols, s);
                for r in 0..n_rows {
                    for c in 0..n_cols {
                        let want: f32 = (0..batch)
                            .map(|e| q.apply(coefs[e * n_rows + r] * inputs[e * n_cols + c]))
                            .sum();
                        let got = (acc[r * n_cols + c] - start[r * n_cols + c]) * q.alpha / s;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{n_rows}×{n_cols}×{batch} b={bits} [{r},{c}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
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
