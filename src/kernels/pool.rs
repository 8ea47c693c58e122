//! Max-pooling over square windows with stride and zero-cost padding (padded positions never
//! win), on row-major `C × H × W` maps. The forward pass records, for every output, the index of
//! the winning input; the backward pass routes each output's signal to that input (as BP does).

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
        if k == 0 || stride == 0 || pad >= k || h + 2 * pad < k || w + 2 * pad < k {
            return None;
        }
        let h_out = (h + 2 * pad - k) / stride + 1;
        let w_out = (w + 2 * pad - k) / stride + 1;
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
    /// within the example (first maximum on ties).
    pub fn forward(&self, x: &[f32], y: &mut [f32], arg: &mut [u32]) {
        let (s, pad) = (self.stride as isize, self.pad as isize);
        for c in 0..self.c {
            let base = c * self.h * self.w;
            for oy in 0..self.h_out {
                let y0 = oy as isize * s - pad;
                let (ylo, yhi) = (
                    y0.max(0) as usize,
                    ((y0 + self.k as isize).min(self.h as isize)) as usize,
                );
                for ox in 0..self.w_out {
                    let x0 = ox as isize * s - pad;
                    let (xlo, xhi) = (
                        x0.max(0) as usize,
                        ((x0 + self.k as isize).min(self.w as isize)) as usize,
                    );
                    let (mut best, mut at) = (f32::NEG_INFINITY, base + ylo * self.w + xlo);
                    for iy in ylo..yhi {
                        for ix in xlo..xhi {
                            let i = base + iy * self.w + ix;
                            // NaN wins, so that it propagates
                            if x[i] > best || x[i].is_nan() && !best.is_nan() {
                                best = x[i];
                                at = i;
                            }
                        }
                    }
                    let o = (c * self.h_out + oy) * self.w_out + ox;
                    y[o] = x[at];
                    arg[o] = at as u32;
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
