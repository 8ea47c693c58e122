//! 2-D convolution by im2col + GEMM, per example, on row-major `C × H × W` maps.
//!
//! For one example with input x (`C_in × H × W`), the column matrix `cols` (`K × P`,
//! `K = C_in·k·k`, `P = H_out·W_out`) holds in row `(c, ky, kx)` and column `(oy, ox)` the input
//! value `x[c][oy·s + ky − pad][ox·s + kx − pad]` (0 outside the map). Then
//!
//! ```text
//!   forward:      y  (C_out × P) = W (C_out × K) · cols + b
//!   input grad:   dcols (K × P)  = Wᵀ · δ,  dx = col2im(dcols)     (any kernel in W's place)
//!   weight grad:  dW (C_out × K) = δ · colsᵀ,  db = Σ_p δ
//! ```

use super::{Mat, gemm};

/// Positions of a window of size `k` sliding with `stride` over `n` values padded by `pad` on
/// each side, or `None` if none fits (or `k` or `stride` is 0). Shared by convolution and
/// pooling.
pub fn windows(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    (k > 0 && stride > 0 && n + 2 * pad >= k).then(|| (n + 2 * pad - k) / stride + 1)
}

/// Shape of a convolution: input map, kernel, stride, zero padding and the output map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    /// Square kernel size k.
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub h_out: usize,
    pub w_out: usize,
}

impl ConvGeom {
    /// The geometry for an input `c_in × h × w`, or `None` if the kernel does not fit.
    pub fn new(
        c_in: usize,
        h: usize,
        w: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        let (h_out, w_out) = (windows(h, k, stride, pad)?, windows(w, k, stride, pad)?);
        Some(ConvGeom {
            c_in,
            h,
            w,
            c_out,
            k,
            stride,
            pad,
            h_out,
            w_out,
        })
    }
    /// Rows of the column matrix, `C_in·k·k` (the fan-in of an output unit).
    pub fn kdim(&self) -> usize {
        self.c_in * self.k * self.k
    }
    /// Output positions per channel, `H_out·W_out`.
    pub fn positions(&self) -> usize {
        self.h_out * self.w_out
    }
    /// Input values per example.
    pub fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }
    /// Output values per example.
    pub fn out_len(&self) -> usize {
        self.c_out * self.positions()
    }

    /// The output columns `ox` whose input column `ox·s + kx − pad` lies inside the map.
    #[inline]
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        let (s, pad) = (self.stride, self.pad);
        // ox·s + kx ≥ pad  and  ox·s + kx − pad ≤ w − 1
        let lo = pad.saturating_sub(kx).div_ceil(s);
        let hi = if self.w + pad > kx {
            ((self.w - 1 + pad - kx) / s + 1).min(self.w_out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Fills `cols` (`K × P`) from one example's input `x`.
    pub fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (p, s, pad) = (self.positions(), self.stride, self.pad as isize);
        let h = self.h as isize;
        for c in 0..self.c_in {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let row = (c * self.k + ky) * self.k + kx;
                    let dst = &mut cols[row * p..(row + 1) * p];
                    let (lo, hi) = self.valid_cols(kx);
                    for oy in 0..self.h_out {
                        let iy = (oy * s + ky) as isize - pad;
                        let out = &mut dst[oy * self.w_out..(oy + 1) * self.w_out];
                        if iy < 0 || iy >= h {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        if lo >= hi {
                            continue;
                        }
                        let first = lo * s + kx - self.pad;
                        if s == 1 {
                            out[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                        } else {
                            for (o, v) in out[lo..hi].iter_mut().zip(src[first..].iter().step_by(s))
                            {
                                *o = *v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds `cols` (`K × P`) back onto the input map `dx` (the adjoint of [`ConvGeom::im2col`]).
    pub fn col2im_add(&self, cols: &[f32], dx: &mut [f32]) {
        let (p, s, pad) = (self.positions(), self.stride, self.pad as isize);
        let h = self.h as isize;
        for c in 0..self.c_in {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let row = (c * self.k + ky) * self.k + kx;
                    let src = &cols[row * p..(row + 1) * p];
                    let (lo, hi) = self.valid_cols(kx);
                    if lo >= hi {
                        continue;
                    }
                    let first = lo * s + kx - self.pad;
                    for oy in 0..self.h_out {
                        let iy = (oy * s + ky) as isize - pad;
                        if iy < 0 || iy >= h {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * self.w..(iy as usize + 1) * self.w];
                        let from = &src[oy * self.w_out + lo..oy * self.w_out + hi];
                        if s == 1 {
                            dst[first..first + (hi - lo)]
                                .iter_mut()
                                .zip(from)
                                .for_each(|(d, v)| *d += v);
                        } else {
                            for (d, v) in dst[first..].iter_mut().step_by(s).zip(from) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// One example's forward pass: `y = W·cols(x) + b`. `cols` is scratch of `K × P`.
    pub fn forward(
        &self,
        weights: &[f32],
        bias: &[f32],
        x: &[f32],
        y: &mut [f32],
        cols: &mut [f32],
    ) {
        let (kd, p) = (self.kdim(), self.positions());
        self.im2col(x, cols);
        gemm(
            1.0,
            Mat::new(weights, self.c_out, kd),
            Mat::new(cols, kd, p),
            0.0,
            y,
        );
        for (row, b) in y.chunks_exact_mut(p).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }

    /// One example's input gradient through `weights` (W, or a kernel in its place):
    /// `dx = col2im(weightsᵀ · δ)`; `dx` is overwritten. `cols` is scratch of `K × P`.
    pub fn backward_data(&self, weights: &[f32], delta: &[f32], dx: &mut [f32], cols: &mut [f32]) {
        let (kd, p) = (self.kdim(), self.positions());
        gemm(
            1.0,
            Mat::t(weights, self.c_out, kd),
            Mat::new(delta, self.c_out, p),
            0.0,
            cols,
        );
        dx.fill(0.0);
        self.col2im_add(cols, dx);
    }

    /// One example's weight gradient, accumulated: `dw = alpha·δ·colsᵀ + beta·dw`,
    /// `db += alpha·Σ_p δ`. `cols` must hold `im2col(x)` of the same example.
    pub fn weight_grad(
        &self,
        delta: &[f32],
        cols: &[f32],
        alpha: f32,
        beta: f32,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let (kd, p) = (self.kdim(), self.positions());
        gemm(
            alpha,
            Mat::new(delta, self.c_out, p),
            Mat::t(cols, kd, p),
            beta,
            dw,
        );
        self.bias_grad(delta, alpha, db);
    }

    /// One example's bias gradient, accumulated: `db += alpha·Σ_p δ`.
    pub fn bias_grad(&self, delta: &[f32], alpha: f32, db: &mut [f32]) {
        for (row, b) in delta.chunks_exact(self.positions()).zip(db.iter_mut()) {
            *b += alpha * row.iter().sum::<f32>();
        }
    }
}
