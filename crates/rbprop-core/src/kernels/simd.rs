//! Vectorisable scalar math and run-time CPU dispatch for elementwise loops.
//!
//! The scalar functions below are branch-free (selects, not jumps) so that a loop over a slice
//! compiles to SIMD code. [`dispatch!`] compiles such a loop three times — for AVX-512, for
//! AVX2+FMA and for the baseline target — and picks at run time. Only plain `+ − × ÷` are used
//! (no fused multiply-add), so every version gives the same bits.

/// Defines `pub fn $name(args)` whose body is compiled for AVX-512, for AVX2+FMA and for the
/// baseline target, choosing at run time.
macro_rules! dispatch {
    ($(#[$m:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn widest($($arg: $ty),*) $body
                if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the CPU supports the features `widest` was compiled for.
                    return unsafe { widest($($arg),*) };
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $body
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            fn narrow($($arg: $ty),*) $body
            narrow($($arg),*)
        }
    };
}
pub(crate) use dispatch;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in a part exact in f32 and a remainder (Cody–Waite range reduction).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^x` to about 2 ulp for x in [−87, 88]; smaller x give ≈ 0, larger saturate at e^88; NaN stays NaN.
///
/// Range reduction x = n·ln2 + r with n = round(x·log2 e), |r| ≤ ln2/2, then a degree-7 Taylor
/// polynomial for e^r (truncation error r⁸/8! < 6e-9) times 2ⁿ. The rounding uses the "magic
/// number" trick: adding 1.5·2²³ + 127 to x·log2 e leaves n + 127 in the low mantissa bits, which
/// shifted into the exponent field give 2ⁿ — no float→int conversion, so the loop vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0 + 127.0; // 1.5·2²³ + exponent bias
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let two_n = f32::from_bits(t.to_bits() << 23);
    let y = p * two_n;
    if x.is_nan() { x } else { y }
}

/// `tanh(x)` to a few ulp; NaN stays NaN.
///
/// |x| < 1/16: odd Taylor series to x⁷ (error < 3e-11); otherwise (1 − e^{−2|x|}) / (1 + e^{−2|x|})
/// with |x| clamped at 9 (tanh(9) rounds to 1 in f32), sign restored.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs().min(9.0);
    let e = exp(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let a2 = a * a;
    let small = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0))));
    let t = if a < 0.0625 { small } else { big };
    let y = t.copysign(x);
    if x.is_nan() { x } else { y }
}

/// Logistic sigmoid `1 / (1 + e^{−x})`; NaN stays NaN.
#[inline(always)]
pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_tanh_logistic_match_std() {
        let mut worst = [0f64; 3];
        let mut x = -30.0f32;
        while x < 30.0 {
            let e = (x as f64).exp();
            worst[0] = worst[0].max(((exp(x) as f64 - e) / e).abs());
            let t = (x as f64).tanh();
            worst[1] = worst[1].max((tanh(x) as f64 - t).abs() / t.abs().max(1e-30));
            let s = 1.0 / (1.0 + (-x as f64).exp());
            worst[2] = worst[2].max(((logistic(x) as f64 - s) / s).abs());
            x += 0.000_37;
        }
        assert!(worst.iter().all(|w| *w < 1e-6), "relative errors {worst:?}");
        assert!(exp(f32::NAN).is_nan() && tanh(f32::NAN).is_nan() && logistic(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
    }
}
