//! Max-pooling over square windows with stride and zero-cost padding (padded positions never
//! win), on row-major `C × H × W` maps. The forward pass records, for every output, the index of
//! the winning input; the backward pass routes each output's signal to that input (as BP does).

use super::conv::windows;
use super::simd::dispatch;

/// The running maximum after seeing `v` at `at_v`: `v` wins if larger, or if it is the first
/// NaN. Selects, not jumps (no short-circuit): which input wins is data, hard to predict.
#[inline(always)]
fn keep_max_nan(best: f32, at: usize, v: f32, at_v: usize) -> (f32, usize) {
    // v > best, or v is NaN while best is not: NaN only compares unordered
    #[allow(clippy::neg_cmp_op_on_partial_ord, clippy::eq_op)]
    let take = !(v <= best) & (best == best);
    (if take { v } else { best }, if take { at_v } else { at })
}

/// [`keep_max_nan`] for inputs without NaN: one comparison.
#[inline(always)]
fn keep_max(best: f32, at: usize, v: f32, at_v: usize) -> (f32, usize) {
    let take = v > best;
    (if take { v } else { best }, if take { at_v } else { at })
}

dispatch! {
    /// Whether `x` holds a NaN; `out[0]` receives the answer (1 or 0).
    pub fn nan_in(x: &[f32], out: &mut [u8]) {
        let mut any = false;
        for v in x {
            any |= v.is_nan();
        }
        out[0] = any as u8;
    }
}

/// Shape of a max-pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Square window size.
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub h_out: usize,
    pub w_out: usize,
}

impl PoolGeom {
    /// The geometry for a `c × h × w` map, or `None` if it does not fit (every window must hold
    /// at least one real input: pad < k).
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Option<Self> {
        if pad >= k {
            return None;
        }
        let (h_out, w_out) = (windows(h, k, stride, pad)?, windows(w, k, stride, pad)?);
        Some(PoolGeom {
            c,
            h,
            w,
            k,
            stride,
            pad,
            h_out,
            w_out,
        })
    }
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.c * self.h_out * self.w_out
    }

    /// One example: `y[c][oy][ox] = max` over the window, `arg` = the winning input's index
    /// within the example: the first maximum of a row-major scan of the window on ties; the
    /// first NaN wins, so that it propagates.
    pub fn forward(&self, x: &[f32], y: &mut [f32], arg: &mut [u32]) {
        // NaN needs the slower comparison; a vectorised check decides once per example
        let mut nan = [0u8];
        nan_in(&x[..self.in_len()], &mut nan);
        if nan[0] == 1 {
            self.scan(x, y, arg, keep_max_nan);
        } else {
            self.scan(x, y, arg, keep_max);
        }
    }

    /// Every window scanned in row-major order with `keep`.
    #[inline(always)]
    fn scan(
        &self,
        x: &[f32],
        y: &mut [f32],
        arg: &mut [u32],
        keep: impl Fn(f32, usize, f32, usize) -> (f32, usize),
    ) {
        let (s, pad, k) = (self.stride as isize, self.pad as isize, self.k as isize);
        // the input columns of every output column, computed once
        let cols: Vec<(usize, usize)> = (0..self.w_out)
            .map(|ox| {
                let x0 = ox as isize * s - pad;
                (x0.max(0) as usize, (x0 + k).min(self.w as isize) as usize)
            })
            .collect();
        let plane = self.h * self.w;
        for c in 0..self.c {
            let xp = &x[c * plane..(c + 1) * plane];
            for oy in 0..self.h_out {
                let y0 = oy as isize * s - pad;
                let (ylo, yhi) = (y0.max(0) as usize, (y0 + k).min(self.h as isize) as usize);
                let o0 = (c * self.h_out + oy) * self.w_out;
                for (ox, &(xlo, xhi)) in cols.iter().enumerate() {
                    let mut at = ylo * self.w + xlo;
                    let mut best = xp[at];
                    for iy in ylo..yhi {
                        let row = &xp[iy * self.w..(iy + 1) * self.w];
                        for (ix, &v) in row[xlo..xhi].iter().enumerate() {
                            (best, at) = keep(best, at, v, iy * self.w + xlo + ix);
                        }
                    }
                    y[o0 + ox] = best;
                    arg[o0 + ox] = (c * plane + at) as u32;
                }
            }
        }
    }

    /// One example: `dx[arg[o]] += dy[o]`, `dx` overwritten first.
    pub fn backward(&self, dy: &[f32], arg: &[u32], dx: &mut [f32]) {
        dx.fill(0.0);
        for (g, &a) in dy.iter().zip(arg) {
            dx[a as usize] += g;
        }
    }
}
