//! Row-major matrix products: `C = alpha · op(A) · op(B) + beta · C`.
//!
//! All matrices are row-major slices. `op(X)` is `X` or `Xᵀ`; a transpose costs nothing, it only
//! swaps the strides handed to the GEMM micro-kernels (the `matrixmultiply` crate, which picks
//! AVX2/FMA or AVX-512 kernels at run time). Large products are split by rows of `C` across the
//! current rayon pool, in blocks that start on a multiple of [`ROW_ALIGN`] rows; every element of
//! `C` is then computed by the same micro-kernel tile in the same order as without the split, so
//! neither the split nor the thread count changes any bit of the result (see [`row_blocks`]).

use rayon::prelude::*;

/// A read-only matrix operand: row-major `data` holding `rows × cols`, used as-is or transposed.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub trans: bool,
}

impl<'a> Mat<'a> {
    /// The stored matrix `rows × cols`, used as-is.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix buffer length");
        Mat {
            data,
            rows,
            cols,
            trans: false,
        }
    }
    /// The stored matrix `rows × cols`, used transposed (as `cols × rows`).
    pub fn t(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            trans: true,
            ..Mat::new(data, rows, cols)
        }
    }
    /// Shape of `op(X)`.
    fn op_shape(&self) -> (usize, usize) {
        if self.trans {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
    /// (row stride, column stride) of `op(X)`.
    fn strides(&self) -> (isize, isize) {
        if self.trans {
            (1, self.cols as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// Products smaller than this many multiply-adds per thread stay on one thread.
const MIN_MACS_PER_THREAD: usize = 1 << 20;

/// Row blocks of a split product start on multiples of this many rows: a multiple of the tile
/// height MR of every `matrixmultiply` f32 kernel (8 for AVX/FMA, NEON and the fallback, 16 for
/// AVX-512; 16 is its largest). The kernels compute `C ← α·AB + β·C` of a whole MR × NR tile in
/// one fused step but a partial tile (at the edge of the block) as `β·C + round(α·AB)`; with
/// α ≠ 1 and β ≠ 0 (the weight updates) the two differ in the last bit. Blocks aligned to the
/// tiles keep every element in the same kind of tile as the unsplit product.
pub const ROW_ALIGN: usize = 16;

/// How [`gemm`] splits an `m × n` product with inner dimension `k` on `threads` threads: the
/// row ranges of `C` computed as one task each (one range when the product stays on one thread).
/// Every range but the last starts and ends on a multiple of [`ROW_ALIGN`].
pub fn row_blocks(m: usize, n: usize, k: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    match block_rows(m, n, k, threads) {
        None => std::iter::once(0..m).collect(),
        Some(rows) => (0..m)
            .step_by(rows)
            .map(|r0| r0..(r0 + rows).min(m))
            .collect(),
    }
}

/// Rows per block of a split product, or none if it stays on one thread.
fn block_rows(m: usize, n: usize, k: usize, threads: usize) -> Option<usize> {
    let macs = m.saturating_mul(n).saturating_mul(k);
    if threads <= 1 || m < 2 * ROW_ALIGN || macs < 2 * MIN_MACS_PER_THREAD {
        return None;
    }
    let parts = threads.min(macs / MIN_MACS_PER_THREAD).max(1);
    Some(m.div_ceil(parts).div_ceil(ROW_ALIGN) * ROW_ALIGN)
}

/// `c (m×n) = alpha · op(a) · op(b) + beta · c`. With `beta == 0` the old content of `c` is ignored
/// (NaNs included). Panics if the shapes disagree: that is a programming error, not a user error.
pub fn gemm(alpha: f32, a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    let (m, k) = a.op_shape();
    let (kb, n) = b.op_shape();
    assert_eq!(k, kb, "gemm inner dimensions");
    assert_eq!(c.len(), m * n, "gemm output length");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        scale(c, beta);
        return;
    }
    let Some(rows_per) = block_rows(m, n, k, rayon::current_num_threads()) else {
        gemm_rows(alpha, a, b, beta, c, 0, m);
        return;
    };
    c.par_chunks_mut(rows_per * n)
        .enumerate()
        .for_each(|(i, chunk)| {
            let r0 = i * rows_per;
            gemm_rows(alpha, a, b, beta, chunk, r0, chunk.len() / n);
        });
}

fn scale(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else {
        c.iter_mut().for_each(|x| *x *= beta);
    }
}

/// Rows `r0 .. r0 + rows` of the product into `c` (which holds just those rows).
fn gemm_rows(alpha: f32, a: Mat, b: Mat, beta: f32, c: &mut [f32], r0: usize, rows: usize) {
    let (_, k) = a.op_shape();
    let (_, n) = b.op_shape();
    let (rsa, csa) = a.strides();
    let (rsb, csb) = b.strides();
    // With beta = 0 matrixmultiply overwrites C without reading it (its documented contract), so
    // stale values, NaN included, cannot leak into the result.
    // SAFETY: the asserts in `gemm` guarantee that every index the kernel forms,
    // (r0 + i)·rsa + p·csa for i < rows, p < k (and likewise for B and C), lies inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            k,
            n,
            alpha,
            a.data.as_ptr().offset(r0 as isize * rsa),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Adds `bias[j]` to every row of `x` (`rows × bias.len()`).
pub fn add_bias_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

/// `out[j] = Σ_rows x[r][j]` (column sums of `rows × out.len()`).
pub fn column_sums(x: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for row in x.chunks_exact(out.len()) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}
