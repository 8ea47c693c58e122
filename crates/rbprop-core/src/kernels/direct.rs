//! Direct convolution for stride 1: no column matrix, the multiply-adds read the zero-padded
//! input map itself.
//!
//! With stride 1, the inputs that output positions `(oy, ox .. ox + V)` see through kernel tap
//! `(c, ky, kx)` are the `V` consecutive values `xp[c][oy + ky][ox + kx ..]` of the padded map
//! `xp`. So a register tile of `CO_T` output channels × `R` output rows × `V` columns is summed over
//! every tap with one vector load per row and one broadcast weight per channel — the weights of
//! one tile, laid out tap-major, stay in L1 while the tile slides over the map. The map is padded
//! to whole tiles (extra rows and columns compute values that are never stored), so there are no
//! edge cases in the inner loops.
//!
//! ```text
//!   forward:       y[o][oy][ox]   = b[o] + Σ_{c,ky,kx} W[o][c][ky][kx] · xp[c][oy+ky][ox+kx]
//!   input grad:    the forward map of δ (padded by k−1−pad) through the flipped kernel with
//!                  input and output channels swapped
//!   weight grad:   dW[o][c][ky][kx] += Σ_{oy,ox} δ[o][oy][ox] · xp[c][oy+ky][ox+kx]
//! ```
//!
//! The inner loops are written on fixed-size arrays and compiled for AVX-512 and for AVX2+FMA
//! (each lane's multiply-adds come in the same order, so both give the same bits); without
//! fused multiply-add in hardware the caller falls back to im2col + GEMM ([`available`]).

use super::conv::ConvGeom;
use super::simd::dispatch;

dispatch! {
    /// `db[o] += alpha · Σ_q m[q][o]` for the rows of `m` (`stride` columns, a multiple of 16 ≥
    /// `db.len()`), each column summed in row order from −0.0, as `Iterator::sum` does.
    pub fn column_sums(m: &[f32], stride: usize, alpha: f32, db: &mut [f32]) {
        for (o0, db) in (0..db.len()).step_by(16).zip(db.chunks_mut(16)) {
            let mut acc = [-0.0f32; 16];
            for row in m.chunks_exact(stride) {
                let row: &[f32; 16] = row[o0..o0 + 16].try_into().unwrap();
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            for (b, a) in db.iter_mut().zip(acc) {
                *b += alpha * a;
            }
        }
    }
}

dispatch! {
    /// `dt[q][o] = m[o][q]` for the `rows × cols` matrix `m`, `dt` with `stride ≥ rows` columns
    /// (zero beyond `rows`): 8 × 8 blocks gathered in registers, each written as 8 rows of 8.
    pub fn transpose(m: &[f32], rows: usize, cols: usize, stride: usize, dt: &mut [f32]) {
        let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
        for q0 in (0..cols8).step_by(8) {
            for o0 in (0..rows8).step_by(8) {
                let mut t = [[0.0f32; 8]; 8];
                for (a, src) in m[o0 * cols + q0..].chunks(cols).take(8).enumerate() {
                    for (b, v) in src[..8].iter().enumerate() {
                        t[b][a] = *v;
                    }
                }
                for (b, row) in t.iter().enumerate() {
                    dt[(q0 + b) * stride + o0..][..8].copy_from_slice(row);
                }
            }
        }
        // the right edge (columns of m past the last block of 8), then the bottom one
        for q in cols8..cols {
            for o in 0..rows8 {
                dt[q * stride + o] = m[o * cols + q];
            }
        }
        for o in rows8..rows {
            for (q, v) in m[o * cols..(o + 1) * cols].iter().enumerate() {
                dt[q * stride + o] = *v;
            }
        }
        for row in dt[..cols * stride].chunks_exact_mut(stride) {
            row[rows..].fill(0.0);
        }
    }
}

/// Output channels per register tile.
pub const CO_T: usize = 8;

/// Whether this CPU runs the direct kernels (x86-64 with AVX2 and FMA).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn wide_512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The padded layout of one stride-1 convolution: which vector width, how the input map is
/// padded and how far the output is rounded up to whole tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direct {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k: usize,
    pub pad: usize,
    pub h_out: usize,
    pub w_out: usize,
    /// Lanes per vector: 16, 8 or 4.
    pub lanes: usize,
    /// Output rows rounded up to whole tiles.
    pub hr: usize,
    /// Output columns rounded up to whole vectors.
    pub wr: usize,
    /// Padded input map: `hp × wp` per channel (the input sits at `(pad, pad)`).
    pub hp: usize,
    pub wp: usize,
    /// Output channels rounded up to whole tiles.
    pub co_r: usize,
    /// Output rows per forward tile.
    pub rows_t: usize,
    /// Whether the layout is for the AVX-512 kernels (else the AVX2 ones).
    pub avx512: bool,
}

impl Direct {
    /// The layout of `g`, or `None` where the direct kernels do not apply (stride > 1).
    pub fn new(g: &ConvGeom) -> Option<Self> {
        if g.stride != 1 || g.pad >= g.k {
            return None;
        }
        Some(Direct::of(
            g.c_in,
            g.h,
            g.w,
            g.c_out,
            g.k,
            g.pad,
            wide_512(),
        ))
    }

    /// [`Direct::new`] for the AVX2 kernels even where AVX-512 is present (to compare the two).
    pub fn new_avx2(g: &ConvGeom) -> Option<Self> {
        Direct::new(g)?;
        Some(Direct::of(g.c_in, g.h, g.w, g.c_out, g.k, g.pad, false))
    }

    fn of(
        c_in: usize,
        h: usize,
        w: usize,
        c_out: usize,
        k: usize,
        pad: usize,
        avx512: bool,
    ) -> Self {
        let (h_out, w_out) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
        let lanes = if w_out > 8 {
            16
        } else if w_out > 4 {
            8
        } else {
            4
        };
        // two output rows per tile with 32 vector registers; with AVX2's 16, two rows of
        // one-register vectors or one row of two-register ones
        let rows_t = if avx512 || lanes <= 8 { 2 } else { 1 };
        let (hr, wr) = (
            h_out.next_multiple_of(rows_t),
            w_out.next_multiple_of(lanes),
        );
        Direct {
            c_in,
            h,
            w,
            c_out,
            k,
            pad,
            h_out,
            w_out,
            lanes,
            hr,
            wr,
            hp: hr + k - 1,
            wp: wr + k - 1,
            co_r: c_out.next_multiple_of(CO_T),
            rows_t,
            avx512,
        }
    }

    /// The stride-1 convolution whose forward pass is this one's input gradient: δ padded by
    /// k − 1 − pad, input and output channels swapped (weights from [`Direct::flipped_weights`]).
    pub fn transposed(&self) -> Direct {
        Direct::of(
            self.c_out,
            self.h_out,
            self.w_out,
            self.c_in,
            self.k,
            self.k - 1 - self.pad,
            self.avx512,
        )
    }

    /// Padded input values per example.
    pub fn padded_len(&self) -> usize {
        self.c_in * self.hp * self.wp
    }
    /// Tile-rounded output values per example.
    pub fn out_len(&self) -> usize {
        self.co_r * self.hr * self.wr
    }
    /// Taps of one output unit: `C_in·k·k`.
    fn taps(&self) -> usize {
        self.c_in * self.k * self.k
    }
    /// Length of the weights in tile layout.
    pub fn weights_len(&self) -> usize {
        self.co_r * self.taps()
    }

    /// `W` (`C_out × C_in·k·k`, row-major) in tile layout: `[block][tap][CO_T]`, zero for the
    /// channels that round `C_out` up.
    pub fn tile_weights(&self, w: &[f32], out: &mut Vec<f32>) {
        let taps = self.taps();
        out.clear();
        out.resize(self.weights_len(), 0.0);
        for o in 0..self.c_out {
            let (blk, c) = (o / CO_T, o % CO_T);
            for (t, v) in w[o * taps..(o + 1) * taps].iter().enumerate() {
                out[(blk * taps + t) * CO_T + c] = *v;
            }
        }
    }

    /// The weights, in tile layout, of [`Direct::transposed`]: `W'[c][o][ky][kx] =
    /// W[o][c][k−1−ky][k−1−kx]` of a layer whose forward layout is `self`.
    pub fn flipped_weights(&self, w: &[f32], out: &mut Vec<f32>) {
        let (k, taps) = (self.k, self.taps());
        let t = self.transposed();
        let t_taps = t.taps();
        out.clear();
        out.resize(t.weights_len(), 0.0);
        for o in 0..self.c_out {
            for c in 0..self.c_in {
                for ky in 0..k {
                    for kx in 0..k {
                        let v = w[o * taps + (c * k + ky) * k + kx];
                        let tap = (o * k + (k - 1 - ky)) * k + (k - 1 - kx);
                        out[((c / CO_T) * t_taps + tap) * CO_T + c % CO_T] = v;
                    }
                }
            }
        }
    }

    /// Copies one example's map `x` (`C_in × h × w`) into the zeroed padded map `xp`.
    pub fn pad_input(&self, x: &[f32], xp: &mut [f32]) {
        xp.fill(0.0);
        for c in 0..self.c_in {
            for iy in 0..self.h {
                let src = &x[(c * self.h + iy) * self.w..][..self.w];
                let at = (c * self.hp + iy + self.pad) * self.wp + self.pad;
                xp[at..at + self.w].copy_from_slice(src);
            }
        }
    }

    /// Output positions per channel.
    pub fn positions(&self) -> usize {
        self.h_out * self.w_out
    }
    /// Output channels rounded up to whole weight-gradient vectors.
    pub fn co_16(&self) -> usize {
        self.c_out.next_multiple_of(WG_LANES)
    }
    /// Length of a transposed δ ([`Direct::transpose_delta`]).
    pub fn delta_t_len(&self) -> usize {
        self.positions() * self.co_16()
    }

    /// One example's δ (`C_out × positions`) transposed into `dt` (`positions × co_16`, zero
    /// for the channels that round `C_out` up), for [`Direct::weight_grad`].
    pub fn transpose_delta(&self, delta: &[f32], dt: &mut [f32]) {
        transpose(delta, self.c_out, self.positions(), self.co_16(), dt);
    }

    /// One example's bias gradient from its transposed δ ([`Direct::transpose_delta`]),
    /// accumulated: `db += alpha·Σ_p δ`, each channel's sum taken in the order of positions from
    /// −0.0 — [`ConvGeom::bias_grad`]'s sums, to the bit — 16 channels at a time.
    pub fn bias_grad(&self, dt: &[f32], alpha: f32, db: &mut [f32]) {
        column_sums(
            &dt[..self.delta_t_len()],
            self.co_16(),
            alpha,
            &mut db[..self.c_out],
        );
    }

    /// `y = bias + conv(xp)` for one example: `xp` from [`Direct::pad_input`], `wt` from
    /// [`Direct::tile_weights`] (or [`Direct::flipped_weights`] of the forward layout), `ys`
    /// scratch of [`Direct::out_len`]. `bias` may be empty (no bias).
    pub fn forward(&self, wt: &[f32], bias: &[f32], xp: &[f32], ys: &mut [f32], y: &mut [f32]) {
        if (self.hr, self.wr, self.co_r) == (self.h_out, self.w_out, self.c_out) {
            // the map fills whole tiles: straight into `y`
            run_tiles(self, wt, xp, y);
            if !bias.is_empty() {
                for (row, b) in y.chunks_exact_mut(self.positions()).zip(bias) {
                    row.iter_mut().for_each(|v| *v += b);
                }
            }
            return;
        }
        run_tiles(self, wt, xp, ys);
        let (hr, wr) = (self.hr, self.wr);
        for o in 0..self.c_out {
            let b = bias.get(o).copied().unwrap_or(0.0);
            for oy in 0..self.h_out {
                let src = &ys[(o * hr + oy) * wr..][..self.w_out];
                let dst = &mut y[(o * self.h_out + oy) * self.w_out..][..self.w_out];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = s + b);
            }
        }
    }

    /// `dw += alpha · Σ_p δ ⊛ xp` for one example (`dw` is `C_out × C_in·k·k`, row-major):
    /// `dt` from [`Direct::transpose_delta`], `xp` from [`Direct::pad_input`].
    pub fn weight_grad(&self, dt: &[f32], xp: &[f32], alpha: f32, dw: &mut [f32]) {
        run_weight_grad(self, dt, xp, alpha, dw);
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A vector of `N` f32 lanes: the few operations the kernels use. Every lane computes
/// `a·b + c` with one rounding, so all implementations give the same bits.
trait Lanes: Copy {
    const N: usize;
    /// # Safety
    /// The CPU supports the implementation's instructions.
    unsafe fn zero() -> Self;
    /// # Safety
    /// `p .. p + N` is readable.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// The CPU supports the implementation's instructions.
    unsafe fn splat(x: f32) -> Self;
    /// `a·b + self`, fused.
    /// # Safety
    /// The CPU supports the implementation's instructions.
    unsafe fn fmadd(self, a: Self, b: Self) -> Self;
    /// # Safety
    /// `p .. p + N` is writable.
    unsafe fn store(self, p: *mut f32);
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::*;

    /// 16 lanes in one AVX-512 register.
    #[derive(Clone, Copy)]
    pub struct Z16(__m512);
    /// 16 lanes in two AVX registers.
    #[derive(Clone, Copy)]
    pub struct Y16(__m256, __m256);
    /// 8 lanes.
    #[derive(Clone, Copy)]
    pub struct Y8(__m256);
    /// 4 lanes.
    #[derive(Clone, Copy)]
    pub struct X4(__m128);

    impl Lanes for Y16 {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Y16(_mm256_setzero_ps(), _mm256_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Y16(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Y16(_mm256_set1_ps(x), _mm256_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn fmadd(self, a: Self, b: Self) -> Self {
            unsafe {
                Y16(
                    _mm256_fmadd_ps(a.0, b.0, self.0),
                    _mm256_fmadd_ps(a.1, b.1, self.1),
                )
            }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe {
                _mm256_storeu_ps(p, self.0);
                _mm256_storeu_ps(p.add(8), self.1);
            }
        }
    }

    /// `Lanes` for a type holding one register, from its intrinsics.
    macro_rules! one_register {
        ($t:ident, $n:literal, $zero:ident, $load:ident, $set1:ident, $fmadd:ident, $store:ident) => {
            impl Lanes for $t {
                const N: usize = $n;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    unsafe { $t($zero()) }
                }
                #[inline(always)]
                unsafe fn load(p: *const f32) -> Self {
                    unsafe { $t($load(p)) }
                }
                #[inline(always)]
                unsafe fn splat(x: f32) -> Self {
                    unsafe { $t($set1(x)) }
                }
                #[inline(always)]
                unsafe fn fmadd(self, a: Self, b: Self) -> Self {
                    unsafe { $t($fmadd(a.0, b.0, self.0)) }
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut f32) {
                    unsafe { $store(p, self.0) }
                }
            }
        };
    }
    #[rustfmt::skip]
    one_register!(Z16, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
    #[rustfmt::skip]
    one_register!(Y8, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps);
    #[rustfmt::skip]
    one_register!(X4, 4, _mm_setzero_ps, _mm_loadu_ps, _mm_set1_ps, _mm_fmadd_ps, _mm_storeu_ps);
}

/// Checks the buffer lengths every kernel relies on (the kernels index by raw pointers).
fn check_forward(d: &Direct, wt: &[f32], xp: &[f32], ys: &[f32]) {
    assert!(wt.len() >= d.weights_len() && xp.len() >= d.padded_len() && ys.len() >= d.out_len());
    assert!(
        d.hr.is_multiple_of(d.rows_t)
            && d.wr.is_multiple_of(d.lanes)
            && d.co_r.is_multiple_of(CO_T)
    );
}

fn run_tiles(d: &Direct, wt: &[f32], xp: &[f32], ys: &mut [f32]) {
    check_forward(d, wt, xp, ys);
    #[cfg(target_arch = "x86_64")]
    {
        use lanes::*;
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn widest(d: &Direct, wt: &[f32], xp: &[f32], ys: &mut [f32]) {
            unsafe {
                match d.lanes {
                    16 => tiles::<Z16, 2, CO_T>(d, wt, xp, ys),
                    8 => tiles::<Y8, 2, CO_T>(d, wt, xp, ys),
                    _ => tiles::<X4, 2, CO_T>(d, wt, xp, ys),
                }
            }
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide(d: &Direct, wt: &[f32], xp: &[f32], ys: &mut [f32]) {
            unsafe {
                // 16 registers: 4 channels × 2 registers (two halves of 16 lanes, or two
                // rows of 8 or 4) + 2 inputs + 1 weight
                match d.lanes {
                    16 => tiles::<Y16, 1, 4>(d, wt, xp, ys),
                    8 => tiles::<Y8, 2, 4>(d, wt, xp, ys),
                    _ => tiles::<X4, 2, 4>(d, wt, xp, ys),
                }
            }
        }
        if d.avx512 {
            assert!(wide_512(), "AVX-512 layout on a CPU without AVX-512");
            // SAFETY: the CPU supports the features `widest` was compiled for; lengths checked.
            return unsafe { widest(d, wt, xp, ys) };
        }
        assert!(available(), "direct convolution without AVX2+FMA");
        // SAFETY: checked just above; lengths checked.
        unsafe { wide(d, wt, xp, ys) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution is only used where `available()`")
}

/// Output channels per weight-gradient tile (the lanes of its vectors).
const WG_LANES: usize = 16;

fn run_weight_grad(d: &Direct, dt: &[f32], xp: &[f32], alpha: f32, dw: &mut [f32]) {
    assert!(dt.len() >= d.positions() * d.co_16() && xp.len() >= d.padded_len());
    assert!(dw.len() == d.c_out * d.taps());
    #[cfg(target_arch = "x86_64")]
    {
        use lanes::*;
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn widest(d: &Direct, dt: &[f32], xp: &[f32], alpha: f32, dw: &mut [f32]) {
            unsafe {
                match d.k {
                    5 => weight_tiles_k::<Z16, 5, 5>(d, dt, xp, alpha, dw),
                    3 => weight_tiles_k::<Z16, 3, 3>(d, dt, xp, alpha, dw),
                    _ => weight_tiles::<Z16, 24>(d, dt, xp, alpha, dw),
                }
            }
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide(d: &Direct, dt: &[f32], xp: &[f32], alpha: f32, dw: &mut [f32]) {
            // 16 registers: one row of k taps × 2 halves of 16 lanes (+ 2 for δ, 1 input)
            unsafe {
                match d.k {
                    5 => weight_tiles_k::<Y16, 5, 1>(d, dt, xp, alpha, dw),
                    3 => weight_tiles_k::<Y16, 3, 1>(d, dt, xp, alpha, dw),
                    _ => weight_tiles::<Y16, 6>(d, dt, xp, alpha, dw),
                }
            }
        }
        if d.avx512 {
            assert!(wide_512(), "AVX-512 layout on a CPU without AVX-512");
            // SAFETY: the CPU supports the features `widest` was compiled for; lengths checked.
            return unsafe { widest(d, dt, xp, alpha, dw) };
        }
        assert!(available(), "direct convolution without AVX2+FMA");
        // SAFETY: checked just above; lengths checked.
        unsafe { wide(d, dt, xp, alpha, dw) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct convolution is only used where `available()`")
}

/// Every output tile of one example: `ys[o][oy][ox] = Σ_taps wt · xp`, `C` of a block's
/// [`CO_T`] channels at a time (so that `C × R` accumulators fit the registers).
///
/// # Safety
/// The CPU supports `L`'s instructions; the buffers have the lengths [`check_forward`] asserts.
#[inline(always)]
unsafe fn tiles<L: Lanes, const R: usize, const C: usize>(
    d: &Direct,
    wt: &[f32],
    xp: &[f32],
    ys: &mut [f32],
) {
    debug_assert!(CO_T.is_multiple_of(C));
    let (k, taps, wp) = (d.k, d.taps(), d.wp);
    let plane = d.hp * wp;
    let (xp, ys) = (xp.as_ptr(), ys.as_mut_ptr());
    for blk in 0..d.co_r / CO_T {
        let wb = wt[blk * taps * CO_T..].as_ptr();
        for oy0 in (0..d.hr).step_by(R) {
            for (ox0, c0) in (0..d.wr)
                .step_by(L::N)
                .flat_map(|ox0| (0..CO_T).step_by(C).map(move |c0| (ox0, c0)))
            {
                // SAFETY (whole block): every index stays inside the padded map, the weights and
                // the tile-rounded output, by the layout's construction (see `Direct::of`).
                unsafe {
                    let mut acc = [[L::zero(); R]; C];
                    for c in 0..d.c_in {
                        for ky in 0..k {
                            let x0 = xp.add(c * plane + (oy0 + ky) * wp + ox0);
                            let w0 = wb.add((c * k + ky) * k * CO_T);
                            for kx in 0..k {
                                let mut v = [L::zero(); R];
                                for (r, v) in v.iter_mut().enumerate() {
                                    *v = L::load(x0.add(r * wp + kx));
                                }
                                let w = w0.add(kx * CO_T + c0);
                                for (i, a) in acc.iter_mut().enumerate() {
                                    let wi = L::splat(*w.add(i));
                                    for (a, v) in a.iter_mut().zip(&v) {
                                        *a = a.fmadd(wi, *v);
                                    }
                                }
                            }
                        }
                    }
                    for (i, a) in acc.iter().enumerate() {
                        for (r, a) in a.iter().enumerate() {
                            let o = blk * CO_T + c0 + i;
                            a.store(ys.add((o * d.hr + oy0 + r) * d.wr + ox0));
                        }
                    }
                }
            }
        }
    }
}

/// [`weight_tiles`] for a k × k kernel known at compile time: a tile is 16 output channels ×
/// `ROWS` rows of k taps of one input channel (all k² with AVX-512's 32 registers, one row of k
/// with AVX2's 16), whose inputs sit at fixed offsets from `ROWS` row pointers (no offset table
/// to load beside each broadcast).
///
/// # Safety
/// As [`weight_tiles`], `d.k == K` and `ROWS` divides `K`.
#[inline(always)]
unsafe fn weight_tiles_k<L: Lanes, const K: usize, const ROWS: usize>(
    d: &Direct,
    dt: &[f32],
    xp: &[f32],
    alpha: f32,
    dw: &mut [f32],
) {
    debug_assert!(L::N == WG_LANES && d.k == K && K.is_multiple_of(ROWS));
    let (taps, wp, co16) = (d.taps(), d.wp, d.co_16());
    let plane = d.hp * wp;
    let (xp, dt) = (xp.as_ptr(), dt.as_ptr());
    let mut lanes = [0.0f32; WG_LANES];
    for c in 0..d.c_in {
        for (o0, ky0) in (0..co16)
            .step_by(WG_LANES)
            .flat_map(|o0| (0..K).step_by(ROWS).map(move |ky0| (o0, ky0)))
        {
            // SAFETY (whole block): as in `weight_tiles`; taps (c, ky, kx) with ky, kx < K = k.
            unsafe {
                let mut acc = [[L::zero(); K]; ROWS];
                for oy in 0..d.h_out {
                    let x0 = xp.add(c * plane + (oy + ky0) * wp);
                    let d0 = dt.add(oy * d.w_out * co16 + o0);
                    for ox in 0..d.w_out {
                        let dv = L::load(d0.add(ox * co16));
                        for (ky, a) in acc.iter_mut().enumerate() {
                            let r = x0.add(ky * wp + ox);
                            for (kx, a) in a.iter_mut().enumerate() {
                                *a = a.fmadd(dv, L::splat(*r.add(kx)));
                            }
                        }
                    }
                }
                let n_o = WG_LANES.min(d.c_out - o0);
                for (t, a) in acc.iter().flatten().enumerate() {
                    a.store(lanes.as_mut_ptr());
                    for (i, v) in lanes.iter().enumerate().take(n_o) {
                        dw[(o0 + i) * taps + c * K * K + ky0 * K + t] += alpha * v;
                    }
                }
            }
        }
    }
}

/// `dw[o][tap] += alpha · Σ_{oy,ox} dt[oy,ox][o] · xp[tap offset + oy·wp + ox]`, in tiles of 16
/// output channels (the lanes) × `T` taps, summed over every position in registers.
///
/// # Safety
/// The CPU supports `L`'s instructions (16 lanes); the buffers have the lengths
/// `run_weight_grad` asserts.
#[inline(always)]
unsafe fn weight_tiles<L: Lanes, const T: usize>(
    d: &Direct,
    dt: &[f32],
    xp: &[f32],
    alpha: f32,
    dw: &mut [f32],
) {
    debug_assert_eq!(L::N, WG_LANES);
    let (k, taps, wp, co16) = (d.k, d.taps(), d.wp, d.co_16());
    let plane = d.hp * wp;
    let tap_offset = |t: usize| {
        let (c, ky, kx) = (t / (k * k), t / k % k, t % k);
        c * plane + ky * wp + kx
    };
    let (xp, dt) = (xp.as_ptr(), dt.as_ptr());
    let mut lanes = [0.0f32; WG_LANES];
    for t0 in (0..taps).step_by(T) {
        let n_t = T.min(taps - t0);
        // taps past the end repeat the last one; their sums are dropped
        let off: [usize; T] = std::array::from_fn(|j| tap_offset(t0 + j.min(n_t - 1)));
        for o0 in (0..co16).step_by(WG_LANES) {
            // SAFETY (whole block): positions and tap offsets stay inside the padded map, and
            // `o0 + 16 ≤ co16` inside each transposed δ row.
            unsafe {
                let mut acc = [L::zero(); T];
                for oy in 0..d.h_out {
                    for ox in 0..d.w_out {
                        let x0 = xp.add(oy * wp + ox);
                        let dv = L::load(dt.add((oy * d.w_out + ox) * co16 + o0));
                        for (a, off) in acc.iter_mut().zip(&off) {
                            *a = a.fmadd(dv, L::splat(*x0.add(*off)));
                        }
                    }
                }
                let n_o = WG_LANES.min(d.c_out - o0);
                for (j, a) in acc.iter().enumerate().take(n_t) {
                    a.store(lanes.as_mut_ptr());
                    for (i, v) in lanes.iter().enumerate().take(n_o) {
                        dw[(o0 + i) * taps + t0 + j] += alpha * v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((((i + seed) * 2_654_435_761usize) >> 9) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Shapes (c_in, h, w, c_out, k, pad) that exercise every lane width, tile rounding of rows,
    /// columns and channels, and tap tails.
    const SHAPES: [(usize, usize, usize, usize, usize, usize); 8] = [
        (3, 32, 32, 8, 5, 2),
        (8, 16, 16, 32, 5, 2),
        (32, 8, 8, 64, 5, 2),
        (2, 7, 9, 3, 3, 1),
        (1, 5, 5, 17, 3, 0),
        (5, 11, 19, 9, 1, 0),
        (3, 4, 4, 2, 5, 2),
        (2, 6, 13, 20, 4, 1),
    ];

    /// The direct kernels against im2col + GEMM.
    #[test]
    fn direct_kernels_match_im2col() {
        if !available() {
            return;
        }
        for (c_in, h, w, c_out, k, pad) in SHAPES {
            let g = ConvGeom::new(c_in, h, w, c_out, k, 1, pad).unwrap();
            let mut outputs = Vec::new();
            for d in [Direct::new(&g).unwrap(), Direct::new_avx2(&g).unwrap()] {
                outputs.push(check_against_im2col(&g, &d));
            }
            // AVX-512 and AVX2 kernels: the same multiply-adds in the same order per lane
            assert_eq!(outputs[0], outputs[1], "{g:?}: AVX-512 and AVX2 differ");
        }
    }

    /// Equal values (a zero's sign aside): the order of every sum is the specification's.
    fn exact(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x == y, "{what}[{i}]: {x} vs {y} (not the same bits)");
        }
    }

    /// A stride-1 convolution summed one value at a time in the kernels' order — taps
    /// `(c, ky, kx)` in order, padding zeros included, one fused multiply-add each — then the
    /// bias added (`w` is `c_out × c_in·k·k`, row-major).
    #[allow(clippy::too_many_arguments)]
    fn ordered_forward(
        (c_in, h, w_in): (usize, usize, usize),
        c_out: usize,
        k: usize,
        pad: usize,
        w: &[f32],
        bias: &[f32],
        x: &[f32],
    ) -> Vec<f32> {
        let (ho, wo) = (h + 2 * pad + 1 - k, w_in + 2 * pad + 1 - k);
        let at = |c: usize, y: usize, xx: usize| {
            let (y, xx) = (y as isize - pad as isize, xx as isize - pad as isize);
            if y < 0 || xx < 0 || y >= h as isize || xx >= w_in as isize {
                0.0
            } else {
                x[(c * h + y as usize) * w_in + xx as usize]
            }
        };
        let mut out = vec![0.0; c_out * ho * wo];
        for o in 0..c_out {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = 0.0f32;
                    for c in 0..c_in {
                        for ky in 0..k {
                            for kx in 0..k {
                                let wv = w[((o * c_in + c) * k + ky) * k + kx];
                                s = wv.mul_add(at(c, oy + ky, ox + kx), s);
                            }
                        }
                    }
                    out[(o * ho + oy) * wo + ox] = s + bias.get(o).copied().unwrap_or(0.0);
                }
            }
        }
        out
    }

    #[test]
    fn transposes_put_every_value_in_place_and_zero_the_padding() {
        for (rows, cols, stride) in [
            (32, 1024, 32),
            (6, 49, 16),
            (9, 17, 16),
            (8, 8, 8),
            (1, 3, 5),
        ] {
            let m: Vec<f32> = (0..rows * cols).map(|i| i as f32 + 0.5).collect();
            let mut dt = vec![f32::NAN; cols * stride];
            transpose(&m, rows, cols, stride, &mut dt);
            for q in 0..cols {
                for o in 0..stride {
                    let want = if o < rows { m[o * cols + q] } else { 0.0 };
                    assert_eq!(dt[q * stride + o], want, "{rows}×{cols} [{q},{o}]");
                }
            }
        }
    }

    /// The direct kernels sum in the order their documentation gives, whatever the vector width
    /// and tile shape of this CPU: the same bits as a scalar loop in that order.
    #[test]
    fn direct_kernels_sum_in_the_documented_order() {
        if !available() {
            return;
        }
        for (c_in, h, w, c_out, k, pad) in SHAPES {
            let g = ConvGeom::new(c_in, h, w, c_out, k, 1, pad).unwrap();
            let d = Direct::new(&g).unwrap();
            let got = check_against_im2col(&g, &d);
            let name = format!("{g:?}");
            let (wts, b) = (values(c_out * g.kdim(), 1), values(c_out, 2));
            let (x, delta) = (values(g.in_len(), 3), values(g.out_len(), 4));
            let fwd = ordered_forward((c_in, h, w), c_out, k, pad, &wts, &b, &x);
            exact(&got[0], &fwd, &format!("{name} forward"));
            // input gradient: the forward map of δ through the flipped kernel, channels swapped
            let mut flipped = vec![0.0; wts.len()];
            for o in 0..c_out {
                for c in 0..c_in {
                    for ky in 0..k {
                        for kx in 0..k {
                            flipped[((c * c_out + o) * k + k - 1 - ky) * k + k - 1 - kx] =
                                wts[((o * c_in + c) * k + ky) * k + kx];
                        }
                    }
                }
            }
            let (ho, wo) = (g.h_out, g.w_out);
            let igrad =
                ordered_forward((c_out, ho, wo), c_in, k, k - 1 - pad, &flipped, &[], &delta);
            exact(&got[1], &igrad, &format!("{name} input grad"));
            // weight gradient: positions (oy, ox) in order, then 0.5 · sum added on
            let mut dw = values(wts.len(), 5);
            for o in 0..c_out {
                for c in 0..c_in {
                    for ky in 0..k {
                        for kx in 0..k {
                            let mut s = 0.0f32;
                            for oy in 0..ho {
                                for ox in 0..wo {
                                    let (y, xx) = (
                                        (oy + ky) as isize - pad as isize,
                                        (ox + kx) as isize - pad as isize,
                                    );
                                    let xv =
                                        if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                            0.0
                                        } else {
                                            x[(c * h + y as usize) * w + xx as usize]
                                        };
                                    s = delta[(o * ho + oy) * wo + ox].mul_add(xv, s);
                                }
                            }
                            dw[((o * c_in + c) * k + ky) * k + kx] += 0.5 * s;
                        }
                    }
                }
            }
            exact(&got[2], &dw, &format!("{name} weight grad"));
        }
    }

    /// Forward, input gradient and weight gradient of `d` against im2col + GEMM; returns them.
    fn check_against_im2col(g: &ConvGeom, d: &Direct) -> Vec<Vec<f32>> {
        let (c_out, name) = (g.c_out, format!("{g:?} avx512={}", d.avx512));
        let (wts, b) = (values(c_out * g.kdim(), 1), values(c_out, 2));
        let (x, delta) = (values(g.in_len(), 3), values(g.out_len(), 4));
        let mut cols = vec![0.0; g.kdim() * g.positions()];
        // forward
        let mut want = vec![0.0; g.out_len()];
        g.forward(&wts, &b, &x, &mut want, &mut cols);
        let (mut wt, mut xp, mut ys) = (
            Vec::new(),
            vec![0.0; d.padded_len()],
            vec![0.0; d.out_len()],
        );
        d.tile_weights(&wts, &mut wt);
        d.pad_input(&x, &mut xp);
        let mut got = vec![0.0; g.out_len()];
        d.forward(&wt, &b, &xp, &mut ys, &mut got);
        close(&got, &want, &format!("{name} forward"));
        let fwd = got;
        // input gradient
        let mut want = vec![0.0; g.in_len()];
        g.backward_data(&wts, &delta, &mut want, &mut cols);
        let t = d.transposed();
        d.flipped_weights(&wts, &mut wt);
        let (mut dp, mut ys) = (vec![0.0; t.padded_len()], vec![0.0; t.out_len()]);
        t.pad_input(&delta, &mut dp);
        let mut got = vec![0.0; g.in_len()];
        t.forward(&wt, &[], &dp, &mut ys, &mut got);
        close(&got, &want, &format!("{name} input grad"));
        let igrad = got;
        // weight gradient, accumulated onto existing values
        let start = values(wts.len(), 5);
        let (mut want, mut db) = (start.clone(), vec![0.0; c_out]);
        g.im2col(&x, &mut cols);
        g.weight_grad(&delta, &cols, 0.5, 1.0, &mut want, &mut db);
        let mut got = start;
        let mut dt = vec![0.0; d.delta_t_len()];
        d.transpose_delta(&delta, &mut dt);
        d.weight_grad(&dt, &xp, 0.5, &mut got);
        close(&got, &want, &format!("{name} weight grad"));
        // the bias gradient from the transposed δ: the same bits
        let (mut want_b, mut got_b) = (values(c_out, 6), values(c_out, 6));
        g.bias_grad(&delta, 0.5, &mut want_b);
        d.bias_grad(&dt, 0.5, &mut got_b);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got_b), bits(&want_b), "{name} bias grad");
        vec![fwd, igrad, got]
    }
}
