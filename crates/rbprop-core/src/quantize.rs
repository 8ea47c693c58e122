//! The quantizer of the low-precision channel variants (paper §1; the formulas are our default).
//! Two uniform forms over [−α, α]:
//!
//! ```text
//!   mid-rise  (no zero level, 2^b levels; b = 1 is (α/2)·sign):
//!       Δ = 2α / 2^b,   Q(x) = clip(Δ·(floor(x/Δ) + 1/2), −α + Δ/2, α − Δ/2)
//!   mid-tread (a zero level, 2^b − 1 levels; b ≥ 2):
//!       s = 2^(b−1) − 1, Q(x) = (α/s)·clip(round(x·s/α), −s, s)
//! ```
//!
//! Error signals use mid-rise by default (every signal keeps its sign at every b); weight updates
//! use mid-tread (small updates vanish, as on low-precision hardware), with round-half-to-even or
//! unbiased stochastic rounding (`floor(x·s/α + u)`, u uniform in [0, 1)). The scale α is fixed
//! (`B:α`) or `auto` (the default): calibrated once per layer, at the first update, as the largest
//! magnitude of that layer's values in the first minibatch, then kept fixed as the paper's α was.

use crate::error::{Error, Result};
use crate::kernels::simd::dispatch;
use serde::{Deserialize, Serialize};

/// The scale α of a quantizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Alpha {
    /// Calibrated once per layer from the first minibatch (max |x|), then fixed.
    Auto,
    Fixed(f32),
}

impl Serialize for Alpha {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Alpha::Auto => s.serialize_str("auto"),
            Alpha::Fixed(a) => s.serialize_f32(*a),
        }
    }
}

impl<'de> Deserialize<'de> for Alpha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(a) => Ok(Alpha::Fixed(a as f32)),
            Raw::Text(t) if t == "auto" => Ok(Alpha::Auto),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "alpha must be a number or \"auto\", got \"{t}\""
            ))),
        }
    }
}

/// The levels of a quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// No zero level: 2^b levels at odd multiples of Δ/2.
    MidRise,
    /// A zero level: 2^b − 1 levels at multiples of α/s.
    MidTread,
}

/// How a value between two levels is rounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// To the nearest level (ties to even).
    #[default]
    Nearest,
    /// Up with probability equal to the fraction of the step (unbiased).
    Stochastic,
}

fn is_nearest(r: &Rounding) -> bool {
    *r == Rounding::Nearest
}

fn auto() -> Alpha {
    Alpha::Auto
}

/// A b-bit quantizer: its scale, form and rounding (the form defaults by use: mid-rise for
/// error signals, mid-tread for weight updates). Serialized as the string of its flag, in the
/// canonical form of [`Display`](std::fmt::Display) (`"8:1"`, `"2:auto:mid-tread"`); read from
/// that string (anything [`Quantizer::parse`] accepts) or from the table form of earlier
/// versions, [`QuantizerTable`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer {
    pub bits: u32,
    pub alpha: Alpha,
    pub form: Option<Form>,
    pub rounding: Rounding,
}

/// The table form a quantizer had in configuration files before it was written as its flag's
/// string: `{ bits = 8, alpha = 1.0, form = "mid-rise", rounding = "stochastic" }` (α defaults
/// to auto, the form to its use, the rounding to nearest). Still read; written only into the
/// canonical text of a run's settings that checkpoints hash.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizerTable {
    pub bits: u32,
    #[serde(default = "auto")]
    pub alpha: Alpha,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    #[serde(default, skip_serializing_if = "is_nearest")]
    pub rounding: Rounding,
}

impl From<Quantizer> for QuantizerTable {
    fn from(q: Quantizer) -> Self {
        let Quantizer {
            bits,
            alpha,
            form,
            rounding,
        } = q;
        QuantizerTable {
            bits,
            alpha,
            form,
            rounding,
        }
    }
}

impl From<QuantizerTable> for Quantizer {
    fn from(t: QuantizerTable) -> Self {
        let QuantizerTable {
            bits,
            alpha,
            form,
            rounding,
        } = t;
        Quantizer {
            bits,
            alpha,
            form,
            rounding,
        }
    }
}

impl Serialize for Quantizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Quantizer;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a quantizer such as \"8:1\" or \"2:auto:mid-tread\" (BITS[:ALPHA|auto][:mid-rise|mid-tread][:nearest|stochastic])",
                )
            }
            fn visit_str<E: serde::de::Error>(
                self,
                text: &str,
            ) -> std::result::Result<Quantizer, E> {
                Quantizer::parse(text, "quantizer").map_err(|e| match e {
                    Error::Config { problem, .. } => E::custom(problem),
                    e => E::custom(e),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Quantizer, A::Error> {
                QuantizerTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Quantizer::from)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A quantizer with its form resolved and its scale known: what is applied to numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Levels {
    pub form: Form,
    pub alpha: f32,
    pub bits: u32,
}

impl Quantizer {
    /// A quantizer with `bits` bits and scale `alpha`, nearest rounding, the form left to its
    /// use. Checks `1 ≤ bits ≤ 32` and a fixed `α > 0`; `key` names the setting in errors.
    pub fn new(bits: u32, alpha: Alpha, key: &str) -> Result<Self> {
        let q = Quantizer {
            bits,
            alpha,
            form: None,
            rounding: Rounding::Nearest,
        };
        q.check(key)?;
        Ok(q)
    }

    /// Checks the settings on their own; `key` names the setting in errors.
    pub fn check(&self, key: &str) -> Result<()> {
        if !(1..=32).contains(&self.bits) {
            return Err(Error::config(
                key,
                format!("bits must be in 1..=32, got {}", self.bits),
            ));
        }
        if let Alpha::Fixed(a) = self.alpha
            && !(a.is_finite() && a > 0.0)
        {
            return Err(Error::config(
                key,
                format!("scale α must be a finite number > 0 or auto, got {a}"),
            ));
        }
        if self.form == Some(Form::MidTread) && self.bits == 1 {
            return Err(Error::config(
                key,
                "a 1-bit mid-tread quantizer has only its zero level; use mid-rise, whose 1-bit form is the sign",
            ));
        }
        Ok(())
    }

    /// Parses `BITS[:ALPHA|auto][:mid-rise|mid-tread][:nearest|stochastic]` (α defaults to
    /// auto; the parts after BITS in any order).
    pub fn parse(text: &str, key: &str) -> Result<Self> {
        let mut parts = text.split(':').map(str::trim);
        let bad = |why: &str| {
            Error::config(
                key,
                format!(
                    "{why}; expected BITS[:ALPHA|auto][:mid-rise|mid-tread][:nearest|stochastic], got `{text}`"
                ),
            )
        };
        let bits = parts
            .next()
            .unwrap_or("")
            .parse::<u32>()
            .map_err(|_| bad("BITS must be a whole number"))?;
        let mut q = Quantizer {
            bits,
            alpha: Alpha::Auto,
            form: None,
            rounding: Rounding::Nearest,
        };
        for p in parts {
            match p {
                "auto" => q.alpha = Alpha::Auto,
                "mid-rise" => q.form = Some(Form::MidRise),
                "mid-tread" => q.form = Some(Form::MidTread),
                "nearest" => q.rounding = Rounding::Nearest,
                "stochastic" => q.rounding = Rounding::Stochastic,
                a => {
                    let a = a
                        .parse::<f32>()
                        .map_err(|_| bad(&format!("`{a}` is not a scale, a form or a rounding")))?;
                    q.alpha = Alpha::Fixed(a);
                }
            }
        }
        q.check(key)?;
        Ok(q)
    }

    /// The levels for a known scale `alpha`, the form defaulting to `default_form`.
    pub fn levels(&self, alpha: f32, default_form: Form) -> Levels {
        Levels {
            form: self.form.unwrap_or(default_form),
            alpha,
            bits: self.bits,
        }
    }

    /// A short description, e.g. `2 bits, mid-rise, α auto`.
    pub fn describe(&self, default_form: Form) -> String {
        let form = match self.form.unwrap_or(default_form) {
            Form::MidRise => "mid-rise",
            Form::MidTread => "mid-tread",
        };
        let alpha = match self.alpha {
            Alpha::Auto => "α auto".to_string(),
            Alpha::Fixed(a) => format!("α = {a}"),
        };
        let rounding = match self.rounding {
            Rounding::Nearest => "",
            Rounding::Stochastic => ", stochastic rounding",
        };
        format!("{} bits, {form}, {alpha}{rounding}", self.bits)
    }
}

/// The canonical string of a quantizer, as its flag takes it: `BITS:ALPHA|auto`, then the form
/// if set, then `stochastic` if so (`8:1`, `2:auto:mid-tread`, `4:auto:stochastic`);
/// [`Quantizer::parse`] reads it back to the same quantizer.
impl std::fmt::Display for Quantizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.bits)?;
        match self.alpha {
            Alpha::Auto => write!(f, ":auto")?,
            Alpha::Fixed(a) => write!(f, ":{a}")?,
        }
        match self.form {
            Some(Form::MidRise) => write!(f, ":mid-rise")?,
            Some(Form::MidTread) => write!(f, ":mid-tread")?,
            None => {}
        }
        if self.rounding == Rounding::Stochastic {
            write!(f, ":stochastic")?;
        }
        Ok(())
    }
}

/// The scale `auto` picks for `values`: their largest magnitude (none for all-zero or
/// non-finite values, which leave the scale uncalibrated).
pub fn calibrate(values: &[f32]) -> Option<f32> {
    let m = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (m.is_finite() && m > 0.0).then_some(m)
}

impl Levels {
    /// Steps per unit α of the mid-tread form: s = 2^(b−1) − 1.
    pub fn steps(&self) -> f32 {
        ((1u64 << (self.bits - 1)) - 1) as f32
    }

    /// Q(x) of one value (nearest rounding).
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        match self.form {
            Form::MidTread => quantize_one(x, self.alpha, self.steps()),
            Form::MidRise => mid_rise_one(x, self.alpha, self.delta()),
        }
    }

    /// The mid-rise step Δ = 2α / 2^b.
    pub fn delta(&self) -> f32 {
        2.0 * self.alpha / (1u64 << self.bits) as f32
    }

    /// `x ← Q(x)` elementwise (nearest rounding).
    pub fn apply_slice(&self, x: &mut [f32]) {
        match self.form {
            Form::MidTread => quantize_slice(x, self.alpha, self.steps()),
            Form::MidRise => mid_rise_slice(x, self.alpha, self.delta()),
        }
    }

    /// Of `values`: (how many quantize to zero, how many are clipped, i.e. lie beyond ±α).
    /// Mid-rise sends only exact zeros (no signal) to zero.
    pub fn census(&self, values: &[f32]) -> (usize, usize) {
        let clipped = values.iter().filter(|v| v.abs() > self.alpha).count();
        let zero = values.iter().filter(|v| self.apply(**v) == 0.0).count();
        (zero, clipped)
    }
}

/// Mid-rise Q(x); an exact zero stays zero: it is no signal (a neuron nothing reaches, such as
/// the inputs of a max-pooling window that did not win), and inventing ±Δ/2 for it would send a
/// signal where the channel sends none.
#[inline(always)]
fn mid_rise_one(x: f32, alpha: f32, delta: f32) -> f32 {
    if x == 0.0 {
        return x;
    }
    let half = 0.5 * delta;
    let v = delta * ((x / delta).floor() + 0.5);
    let hi = alpha - half;
    if v > hi {
        hi
    } else if v < -hi {
        -hi
    } else {
        v
    }
}

dispatch! {
    /// `x ← Q(x)` for the mid-rise quantizer with scale `alpha` and step `delta`.
    pub fn mid_rise_slice(x: &mut [f32], alpha: f32, delta: f32) {
        x.iter_mut().for_each(|v| *v = mid_rise_one(*v, alpha, delta));
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

/// The 32-bit key of the draws of one update for the entries whose 64-bit index has high half
/// `hi`: the SplitMix64 finaliser of the update's key and `hi`, folded to 32 bits.
#[inline(always)]
pub fn draw_key(key: u64, hi: u32) -> u32 {
    let mut z = key ^ (hi as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z ^ (z >> 32)) as u32
}

/// The uniform number in [0, 1) of the entry whose index has low half `lo`, under draw key `k`
/// ([`draw_key`]): a bijective 32-bit integer hash (lowbias32) of `lo ⊕ k`, top 24 bits. Only
/// 32-bit arithmetic, so that eight lanes draw at once on AVX2.
#[inline(always)]
pub fn uniform_lo(k: u32, lo: u32) -> f32 {
    let mut x = lo ^ k;
    x ^= x >> 16;
    x = x.wrapping_mul(0x21f0_aaad);
    x ^= x >> 15;
    x = x.wrapping_mul(0x735a_2d97);
    x ^= x >> 15;
    (x >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The uniform number in [0, 1) of entry `index` of an update drawn under `key` (distinct
/// entries of one update get distinct numbers' hashes: the hash is a bijection of the low half
/// for each high half).
#[inline(always)]
pub fn uniform(key: u64, index: u64) -> f32 {
    uniform_lo(draw_key(key, (index >> 32) as u32), index as u32)
}

/// `k ← clamp(floor(x + u), −s, s)`: a scaled value to its signed number of steps, rounded up
/// with probability equal to its fraction (unbiased for |x| ≤ s).
#[inline(always)]
pub fn steps_stochastic(x: f32, s: f32, u: f32) -> f32 {
    let k = (x + u).floor();
    let k = if k < -s { -s } else { k };
    if k > s { s } else { k }
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

/// Rows × columns of one register tile of [`add_quantized_outer_stochastic`]: half as wide as
/// the nearest form's, for the hash's temporaries need registers too.
const TILE_ROWS_STOCHASTIC: usize = 4;
const TILE_COLS_STOCHASTIC: usize = 8;

/// The sums over examples of one tile: `acc[r][c] += Σ_e step(coefs[e][r0 + r] · inputs[e][c0 + c], b, c)`
/// with `b + c` the entry's index, `b = (e·n_rows + r0 + r)·n_cols + c0`; each entry's sum runs over the
/// examples in order from 0, then is added to `acc`.
#[inline(always)]
fn outer_tile<const R: usize, const C: usize>(
    acc: &mut [f32],
    coefs: &[f32],
    inputs: &[f32],
    (n_rows, n_cols): (usize, usize),
    (r0, c0): (usize, usize),
    step: impl Fn(f32, usize, usize) -> f32,
) {
    let mut tile = [[0.0f32; C]; R];
    for (e, (coef, input)) in coefs
        .chunks_exact(n_rows)
        .zip(inputs.chunks_exact(n_cols))
        .enumerate()
    {
        let o: &[f32; C] = input[c0..c0 + C].try_into().unwrap();
        let c: &[f32; R] = coef[r0..r0 + R].try_into().unwrap();
        for (r, row) in tile.iter_mut().enumerate() {
            let base = (e * n_rows + r0 + r) * n_cols + c0;
            for (j, (t, o)) in row.iter_mut().zip(o).enumerate() {
                *t += step(c[r] * o, base, j);
            }
        }
    }
    for (r, row) in tile.iter().enumerate() {
        let a = &mut acc[(r0 + r) * n_cols + c0..][..C];
        a.iter_mut().zip(row).for_each(|(a, t)| *a += t);
    }
}

/// Every tile of `acc`: full `R × C` tiles, then the right and bottom edges one entry wide.
#[inline(always)]
fn outer_all<const R: usize, const C: usize>(
    acc: &mut [f32],
    coefs: &[f32],
    inputs: &[f32],
    n_rows: usize,
    n_cols: usize,
    step: impl Fn(f32, usize, usize) -> f32 + Copy,
) {
    let dims = (n_rows, n_cols);
    let (rows, cols) = (n_rows / R * R, n_cols / C * C);
    for r0 in (0..rows).step_by(R) {
        for c0 in (0..cols).step_by(C) {
            outer_tile::<R, C>(acc, coefs, inputs, dims, (r0, c0), step);
        }
        for c0 in cols..n_cols {
            outer_tile::<R, 1>(acc, coefs, inputs, dims, (r0, c0), step);
        }
    }
    for r0 in rows..n_rows {
        for c0 in (0..cols).step_by(C) {
            outer_tile::<1, C>(acc, coefs, inputs, dims, (r0, c0), step);
        }
        for c0 in cols..n_cols {
            outer_tile::<1, 1>(acc, coefs, inputs, dims, (r0, c0), step);
        }
    }
}

dispatch! {
    /// `acc += Σ_e Q(coef_e ⊛ input_e) · s/α` for a mid-tread quantizer, in steps: `acc` is
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
        outer_all::<TILE_ROWS, TILE_COLS>(acc, coefs, inputs, n_rows, n_cols, |x, _, _| steps_of(x, s));
    }
}

dispatch! {
    /// [`add_quantized_outer`] with stochastic rounding: entry (e, r, c) rounds up with
    /// probability equal to its fraction, drawn as `uniform(key, (e·n_rows + r)·n_cols + c)`.
    pub fn add_quantized_outer_stochastic(
        acc: &mut [f32],
        coefs: &[f32],
        inputs: &[f32],
        n_rows: usize,
        n_cols: usize,
        s: f32,
        key: u64,
    ) {
        let examples = inputs.len() / n_cols.max(1);
        let wide = (examples * n_rows * n_cols) as u64 > 1 << 32;
        outer_stochastic(acc, coefs, inputs, (n_rows, n_cols), s, key, wide);
    }
}

/// [`add_quantized_outer_stochastic`]'s body; `wide`: some index reaches 2³², so each entry's
/// draw key is that of its index's high half (otherwise one key serves all, in 32-bit lanes).
#[inline(always)]
fn outer_stochastic(
    acc: &mut [f32],
    coefs: &[f32],
    inputs: &[f32],
    (n_rows, n_cols): (usize, usize),
    s: f32,
    key: u64,
    wide: bool,
) {
    const R: usize = TILE_ROWS_STOCHASTIC;
    const C: usize = TILE_COLS_STOCHASTIC;
    if wide {
        outer_all::<R, C>(acc, coefs, inputs, n_rows, n_cols, |x, b, j| {
            steps_stochastic(x, s, uniform(key, (b + j) as u64))
        });
    } else {
        let k = draw_key(key, 0);
        outer_all::<R, C>(acc, coefs, inputs, n_rows, n_cols, |x, b, j| {
            steps_stochastic(x, s, uniform_lo(k, (b as u32).wrapping_add(j as u32)))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        q: Quantizer,
    }

    #[test]
    fn quantizers_serialize_as_their_flag_and_read_the_old_table_form() {
        for text in [
            "8:1",
            "2:auto:mid-tread",
            "1:auto:mid-rise",
            "4:0.0625:stochastic",
            "16:auto",
        ] {
            let q = Quantizer::parse(text, "q").unwrap();
            assert_eq!(q.to_string(), text);
            let toml = toml::to_string(&Holder { q }).unwrap();
            assert_eq!(toml.trim(), format!("q = \"{text}\""));
            assert_eq!(toml::from_str::<Holder>(&toml).unwrap().q, q);
        }
        // any order and the defaults spelled out read as the canonical quantizer
        let q: Holder = toml::from_str("q = \"4:stochastic:0.5:nearest:stochastic\"").unwrap();
        assert_eq!(q.q.to_string(), "4:0.5:stochastic");
        assert_eq!(
            toml::from_str::<Holder>("q = \"2\"").unwrap().q.to_string(),
            "2:auto"
        );
        // the table form of earlier versions
        for (table, text) in [
            ("{ bits = 8, alpha = 1.0 }", "8:1"),
            ("{ bits = 2 }", "2:auto"),
            (
                "{ bits = 2, alpha = \"auto\", form = \"mid-tread\" }",
                "2:auto:mid-tread",
            ),
            (
                "{ bits = 4, rounding = \"stochastic\" }",
                "4:auto:stochastic",
            ),
        ] {
            let q: Holder = toml::from_str(&format!("q = {table}")).unwrap();
            assert_eq!(q.q.to_string(), text, "{table}");
        }
        for (bad, says) in [
            ("q = \"many\"", "BITS must be a whole number"),
            ("q = \"8:fast\"", "`fast` is not a scale"),
            ("q = { bits = 8, alfa = 1 }", "unknown field `alfa`"),
            ("q = 8", "a quantizer such as"),
        ] {
            let e = toml::from_str::<Holder>(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    fn tread(bits: u32, alpha: f32) -> Levels {
        Levels {
            form: Form::MidTread,
            alpha,
            bits,
        }
    }

    fn rise(bits: u32, alpha: f32) -> Levels {
        Levels {
            form: Form::MidRise,
            alpha,
            bits,
        }
    }

    #[test]
    fn mid_rise_has_no_zero_level_and_one_bit_is_the_sign() {
        let q = rise(1, 0.5);
        assert_eq!(
            [q.apply(3.0), q.apply(1e-9), q.apply(-1e-9)],
            [0.25, 0.25, -0.25]
        );
        // 2 bits, α = 1: Δ = 0.5, levels ±0.25, ±0.75
        let q = rise(2, 1.0);
        assert_eq!(
            [
                q.apply(-5.0),
                q.apply(-0.6),
                q.apply(-0.1),
                q.apply(0.1),
                q.apply(0.6),
                q.apply(5.0)
            ],
            [-0.75, -0.75, -0.25, 0.25, 0.75, 0.75]
        );
        for bits in [1, 2, 3, 4, 8] {
            let q = rise(bits, 0.3);
            let mut levels: Vec<i64> = (-4000..=4000)
                .filter(|&i| i != 0)
                .map(|i| (q.apply(i as f32 / 5000.0) / q.delta() * 2.0).round() as i64)
                .collect();
            levels.dedup();
            assert_eq!(levels.len(), 1 << bits, "{bits} bits: {levels:?}");
            assert!(levels.iter().all(|k| k % 2 != 0), "a zero or even level");
            // an exact zero is no signal and stays zero (its sign kept); only it counts as zero
            assert_eq!(q.apply(0.0).to_bits(), 0.0f32.to_bits());
            assert_eq!(q.apply(-0.0).to_bits(), (-0.0f32).to_bits());
            assert_eq!(q.census(&[0.0, 1e-6, 0.31, -0.5]), (1, 2));
        }
    }

    #[test]
    fn mid_tread_levels_clipping_and_rounding() {
        // 2 bits: s = 1, levels {−α, 0, α}
        let q = tread(2, 1.0);
        assert_eq!(
            [q.apply(-0.7), q.apply(0.4), q.apply(0.6), q.apply(9.0)],
            [-1.0, 0.0, 1.0, 1.0]
        );
        assert_eq!(q.census(&[0.4, -0.2, 0.6, 2.0]), (2, 1));
        // 3 bits: s = 3, levels k/3 for k = −3..3 — 7 = 2³ − 1 levels
        let q = tread(3, 1.0);
        let mut levels: Vec<i32> = (-300..=300)
            .map(|i| (q.apply(i as f32 / 100.0) * 3.0).round() as i32)
            .collect();
        levels.dedup();
        assert_eq!(levels, (-3..=3).collect::<Vec<_>>());
        // ties go to even: 0.5 step → 0, 1.5 steps → 2 steps
        assert_eq!(q.apply(0.5 / 3.0), 0.0);
        assert!((q.apply(1.5 / 3.0) - 2.0 / 3.0).abs() < 1e-7);
        let q = tread(8, 1.0 / 16.0);
        let step = (1.0 / 16.0) / 127.0;
        assert!((q.apply(0.01) - (0.01f32 / step).round() * step).abs() < 1e-9);
        assert_eq!(q.apply(1.0), 1.0 / 16.0);
    }

    #[test]
    fn thirty_two_bits_is_nearly_exact_and_slices_match_scalars() {
        let xs: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) / 1001.0).collect();
        for q in [tread(32, 1.0), rise(32, 1.0)] {
            for &x in &xs {
                assert!((q.apply(x) - x).abs() <= 1e-6, "{x}");
            }
        }
        for q in [tread(4, 0.3), rise(4, 0.3), rise(1, 0.3)] {
            let mut v = xs.clone();
            q.apply_slice(&mut v);
            assert!(v.iter().zip(&xs).all(|(a, x)| *a == q.apply(*x)));
        }
    }

    #[test]
    fn stochastic_rounding_is_unbiased_and_stays_in_range() {
        for x in [0.3f32, -1.7, 2.25, 0.0, -0.01] {
            let n = 200_000u64;
            let mean: f64 = (0..n)
                .map(|i| steps_stochastic(x, 3.0, uniform(7, i)) as f64)
                .sum::<f64>()
                / n as f64;
            assert!((mean - x as f64).abs() < 0.01, "{x}: mean {mean}");
        }
        assert_eq!(steps_stochastic(9.0, 3.0, 0.99), 3.0);
        assert_eq!(steps_stochastic(-9.0, 3.0, 0.0), -3.0);
        assert!((0..10_000).all(|i| (0.0..1.0).contains(&uniform(3, i))));
        // across the 2³² boundary of the index, and uniform in its moments there too
        let n = 100_000u64;
        let us: Vec<f64> = (0..n)
            .map(|i| uniform(5, (1 << 32) - n / 2 + i) as f64)
            .collect();
        let mean = us.iter().sum::<f64>() / n as f64;
        let var = us.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (mean - 0.5).abs() < 0.005 && (var - 1.0 / 12.0).abs() < 0.002,
            "{mean} {var}"
        );
        // neighbouring entries are not correlated
        let corr = us
            .windows(2)
            .map(|w| (w[0] - 0.5) * (w[1] - 0.5))
            .sum::<f64>()
            / n as f64;
        assert!(corr.abs() < 0.002, "{corr}");
    }

    #[test]
    fn tiled_outer_sums_match_per_example_quantization() {
        // sizes that exercise full tiles and both tails
        for (n_rows, n_cols, batch) in [(9, 37, 5), (1, 1, 3), (4, 16, 2), (13, 50, 7), (8, 8, 4)] {
            for bits in [2, 4, 8, 16] {
                let q = tread(bits, 0.3);
                let s = q.steps();
                let val = |i: usize, m: f32| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * m;
                let coefs: Vec<f32> = (0..batch * n_rows).map(|i| val(i, 0.5)).collect();
                let inputs: Vec<f32> = (0..batch * n_cols).map(|i| val(i + 3, 1.5)).collect();
                let start: Vec<f32> = (0..n_rows * n_cols).map(|i| val(i, 2.0)).collect();
                let scaled: Vec<f32> = coefs.iter().map(|c| c * s / q.alpha).collect();
                let mut acc = start.clone();
                add_quantized_outer(&mut acc, &scaled, &inputs, n_rows, n_cols, s);
                let key = 12345u64;
                let mut sto = start.clone();
                add_quantized_outer_stochastic(&mut sto, &scaled, &inputs, n_rows, n_cols, s, key);
                // the path of updates with indices beyond 2³² gives the same bits
                let mut wide = start.clone();
                let dims = (n_rows, n_cols);
                outer_stochastic(&mut wide, &scaled, &inputs, dims, s, key, true);
                assert_eq!(wide, sto);
                for r in 0..n_rows {
                    for c in 0..n_cols {
                        // bit for bit: each entry's steps summed over the examples in order
                        // from 0, then added to the start
                        let i = r * n_cols + c;
                        let product = |e: usize| scaled[e * n_rows + r] * inputs[e * n_cols + c];
                        let nearest = (0..batch).fold(0.0f32, |t, e| t + steps_of(product(e), s));
                        assert_eq!(
                            acc[i].to_bits(),
                            (start[i] + nearest).to_bits(),
                            "[{r},{c}]"
                        );
                        let drawn = (0..batch).fold(0.0f32, |t, e| {
                            let u = uniform(key, ((e * n_rows + r) * n_cols + c) as u64);
                            t + steps_stochastic(product(e), s, u)
                        });
                        assert_eq!(sto[i].to_bits(), (start[i] + drawn).to_bits(), "[{r},{c}]");
                        let want: f32 = (0..batch)
                            .map(|e| q.apply(coefs[e * n_rows + r] * inputs[e * n_cols + c]))
                            .sum();
                        let got = (acc[r * n_cols + c] - start[r * n_cols + c]) * q.alpha / s;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{n_rows}×{n_cols}×{batch} b={bits} [{r},{c}]: {got} vs {want}"
                        );
                        // stochastic: floor(x + u) with u drawn for (e, r, c)
                        let want: f32 = (0..batch)
                            .map(|e| {
                                let u = uniform(key, ((e * n_rows + r) * n_cols + c) as u64);
                                steps_stochastic(
                                    scaled[e * n_rows + r] * inputs[e * n_cols + c],
                                    s,
                                    u,
                                )
                            })
                            .sum();
                        let got = sto[r * n_cols + c] - start[r * n_cols + c];
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + start[r * n_cols + c].abs()),
                            "stochastic [{r},{c}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn settings_parse_and_bad_ones_are_refused() {
        let err = |t: &str| {
            Quantizer::parse(t, "quantize-signal")
                .unwrap_err()
                .to_string()
        };
        assert!(err("0").contains("1..=32"));
        assert!(err("8:-1").contains("α"));
        assert!(err("8:NaN").contains("α"));
        assert!(err("x").contains("`x`"));
        assert!(err("4:fast").contains("`fast`"));
        assert!(err("1:mid-tread").contains("mid-rise"));
        let q = Quantizer::parse("4:0.5:mid-tread:stochastic", "k").unwrap();
        assert_eq!(
            q,
            Quantizer {
                bits: 4,
                alpha: Alpha::Fixed(0.5),
                form: Some(Form::MidTread),
                rounding: Rounding::Stochastic,
            }
        );
        assert_eq!(Quantizer::parse(&q.to_string(), "k").unwrap(), q);
        let q = Quantizer::parse("2", "k").unwrap();
        assert_eq!(
            (q.alpha, q.form, q.rounding),
            (Alpha::Auto, None, Rounding::Nearest)
        );
        // TOML: the old form {bits, alpha} still reads; alpha = "auto"
        #[derive(Deserialize)]
        struct T {
            q: Quantizer,
        }
        let t: T = toml::from_str("q = { bits = 2, alpha = 1.0 }").unwrap();
        assert_eq!(t.q.alpha, Alpha::Fixed(1.0));
        let t: T =
            toml::from_str("q = { bits = 2, alpha = \"auto\", form = \"mid-tread\" }").unwrap();
        assert_eq!((t.q.alpha, t.q.form), (Alpha::Auto, Some(Form::MidTread)));
        assert!(toml::from_str::<T>("q = { bits = 2, alpha = \"big\" }").is_err());
    }
}
