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

/// The windows of one output row whose columns lie inside the map, stride 2, inputs without
/// NaN: `best[i]`, `at[i]` ← the maximum of the window at columns `x0 + 2i ..+ k` and rows
/// `ylo..yhi` of the plane `xp` (row length `w`; `geom = [w, ylo, yhi, k, x0]`) and the index of
/// its first occurrence in a row-major scan, plus `offset`: [`PoolGeom::scan`]'s answer, eight
/// windows per AVX2 register (a row's last register partly filled: maps are small), each kept
/// in registers through its whole window.
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_columns_stride2(
    xp: &[f32],
    [w, ylo, yhi, k, x0]: [usize; 5],
    offset: u32,
    best: &mut [f32],
    at: &mut [u32],
) {
    use std::arch::x86_64::*;
    let n = best.len();
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let twice = _mm256_add_epi32(lane, lane);
    for i in (0..n).step_by(8) {
        let m = (n - i).min(8);
        let live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m as i32), lane));
        let (mut b, mut a) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut first = true;
        for iy in ylo..yhi {
            for j in 0..k {
                let start = iy * w + x0 + j + 2 * i;
                let row = &xp[start..];
                let v = if row.len() >= 16 {
                    // SAFETY: row[0 .. 16] is in bounds
                    let (v0, v1) = unsafe {
                        let p = row.as_ptr();
                        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
                    };
                    // the even entries: 0 2 8 10 | 4 6 12 14, then in order
                    let mixed = _mm256_shuffle_ps::<0b10_00_10_00>(v0, v1);
                    let q = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(mixed));
                    _mm256_castpd_ps(q)
                } else {
                    // the end of the plane: the lanes in use one by one
                    let mut t = [0.0f32; 8];
                    for (l, t) in t.iter_mut().enumerate().take(m) {
                        *t = row[2 * l];
                    }
                    // SAFETY: t holds 8 values
                    unsafe { _mm256_loadu_ps(t.as_ptr()) }
                };
                let take = if first {
                    live
                } else {
                    _mm256_and_ps(live, _mm256_cmp_ps::<_CMP_GT_OQ>(v, b))
                };
                first = false;
                let idx =
                    _mm256_add_epi32(_mm256_set1_epi32((offset + start as u32) as i32), twice);
                b = _mm256_blendv_ps(b, v, take);
                a = _mm256_blendv_ps(a, _mm256_castsi256_ps(idx), take);
            }
        }
        let (mut bs, mut is) = ([0.0f32; 8], [0u32; 8]);
        // SAFETY: bs and is hold 8 values
        unsafe {
            _mm256_storeu_ps(bs.as_mut_ptr(), b);
            _mm256_storeu_si256(is.as_mut_ptr() as *mut __m256i, _mm256_castps_si256(a));
        }
        best[i..i + m].copy_from_slice(&bs[..m]);
        at[i..i + m].copy_from_slice(&is[..m]);
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
            self.scan(x, y, arg, keep_max_nan, 0..0);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.stride == 2 && std::is_x86_feature_detected!("avx2") {
            // the output columns whose windows lie inside the map go eight at a time
            let inner = self.inner_columns();
            self.scan(x, y, arg, keep_max, inner.clone());
            if inner.is_empty() {
                return;
            }
            let (w, plane) = (self.w, self.h * self.w);
            let x0 = inner.start * 2 - self.pad;
            for c in 0..self.c {
                let xp = &x[c * plane..(c + 1) * plane];
                for oy in 0..self.h_out {
                    let y0 = (oy * 2) as isize - self.pad as isize;
                    let ylo = y0.max(0) as usize;
                    let yhi = ((y0 + self.k as isize) as usize).min(self.h);
                    let o0 = (c * self.h_out + oy) * self.w_out;
                    let out = o0 + inner.start..o0 + inner.end;
                    let geom = [w, ylo, yhi, self.k, x0];
                    let offset = (c * plane) as u32;
                    // SAFETY: the CPU supports AVX2 (checked above)
                    unsafe {
                        max_columns_stride2(xp, geom, offset, &mut y[out.clone()], &mut arg[out])
                    };
                }
            }
            return;
        }
        self.scan(x, y, arg, keep_max, 0..0);
    }

    /// The output columns whose windows hold no padding.
    fn inner_columns(&self) -> std::ops::Range<usize> {
        let (s, pad, k) = (self.stride, self.pad, self.k);
        let start = pad.div_ceil(s);
        // the last window inside: ox·s − pad + k ≤ w
        let end = if self.w + pad >= k {
            ((self.w + pad - k) / s + 1).min(self.w_out)
        } else {
            0
        };
        start..end.max(start)
    }

    /// Every window scanned in row-major order with `keep`, but for the output columns `skip`.
    #[inline(always)]
    fn scan(
        &self,
        x: &[f32],
        y: &mut [f32],
        arg: &mut [u32],
        keep: impl Fn(f32, usize, f32, usize) -> (f32, usize),
        skip: std::ops::Range<usize>,
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
                    if skip.contains(&ox) {
                        continue;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_columns_at_once_give_the_scans_maxima_and_first_winners() {
        // (c, h, w, k, stride, pad): the paper's 3×3/2, padded, stride 1 and 3, a window as wide
        // as the map, none inside
        let shapes = [
            (3, 32, 32, 3, 2, 0),
            (2, 15, 16, 3, 2, 1),
            (1, 7, 9, 2, 1, 0),
            (2, 8, 11, 3, 3, 1),
            (1, 5, 5, 5, 1, 2),
            (1, 3, 3, 3, 2, 2),
            (2, 20, 37, 4, 2, 1),
            (1, 5, 70, 3, 2, 1),
            (2, 3, 300, 3, 2, 0),
            (1, 1, 1, 2, 2, 1),
        ];
        for (c, h, w, k, s, pad) in shapes {
            let g = PoolGeom::new(c, h, w, k, s, pad).unwrap();
            // few distinct values: many ties, so the first winner matters
            let x: Vec<f32> = (0..g.in_len())
                .map(|i| ((i * 7919 + 13) % 5) as f32 - 2.0)
                .collect();
            let (mut y, mut arg) = (vec![0.0; g.out_len()], vec![0u32; g.out_len()]);
            g.forward(&x, &mut y, &mut arg);
            let (mut y_ref, mut arg_ref) = (vec![0.0; g.out_len()], vec![0u32; g.out_len()]);
            g.scan(&x, &mut y_ref, &mut arg_ref, keep_max, 0..0);
            let shape = (c, h, w, k, s, pad);
            assert_eq!(y, y_ref, "{shape:?}");
            assert_eq!(arg, arg_ref, "{shape:?}");
            assert!(arg.iter().zip(&y).all(|(&a, &v)| x[a as usize] == v));
        }
    }
}
