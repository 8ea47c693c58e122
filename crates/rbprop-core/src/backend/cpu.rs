//! The CPU backend: host memory (`Vec<f32>`), the kernels of [`crate::kernels`], rayon threads.
//!
//! Results do not depend on the thread count, to the bit: dense products split by rows in
//! tile-aligned blocks ([`matmul::row_blocks`]); convolutions split a batch in fixed chunks of
//! [`CONV_CHUNK`] examples and sum weight gradients per chunk, then over chunks in order.

use super::{Backend, Mat, UpdateShape};
use crate::kernels::conv::ConvGeom;
use crate::kernels::direct::{self, Direct};
use crate::kernels::loss::{self, BatchLoss};
use crate::kernels::pool::PoolGeom;
use crate::kernels::simd::dispatch;
use crate::kernels::{Activation, matmul};
use crate::quantize::{self, Form, Levels, Quantizer};
use crate::rng::Rng;
use rand::Rng as _;
use rayon::prelude::*;

/// Host memory and the CPU kernels (AVX-512 / AVX2 / baseline, chosen at run time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu;

/// Examples per task when a convolution is split across threads. Fixed, so that the order of
/// every sum (weight gradients are summed per chunk, then over chunks) does not depend on the
/// number of threads.
const CONV_CHUNK: usize = 8;

thread_local! {
    /// Per-thread scratch of the conv kernels, reused across calls (every kernel writes the part
    /// it reads, so it is never cleared).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    /// The dropout mask, reused across calls.
    static MASK: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's three scratch buffers of the given lengths (one example's worth:
/// a column matrix or padded maps). One example per kernel call: measured faster here than
/// putting a task's examples side by side in one larger GEMM, whose operands no longer fit the
/// caches.
fn with_scratch<R>(lens: [usize; 3], f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        for (v, &n) in s.iter_mut().zip(&lens) {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        }
        let [a, b, c] = &mut *s;
        f(&mut a[..lens[0]], &mut b[..lens[1]], &mut c[..lens[2]])
    })
}

/// The direct (stride-1) layout of a conv layer, where this CPU runs the direct kernels.
fn direct(g: &ConvGeom) -> Option<Direct> {
    Direct::new(g).filter(|_| direct::available())
}

/// The kernels' view of an operand.
fn mat<'a>(m: &Mat<'a, Cpu>) -> matmul::Mat<'a> {
    let data = &m.buf[..m.rows * m.cols];
    if m.trans {
        matmul::Mat::t(data, m.rows, m.cols)
    } else {
        matmul::Mat::new(data, m.rows, m.cols)
    }
}

impl Backend for Cpu {
    type Device = ();

    fn current_device() -> Option<()> {
        Some(())
    }

    fn enter<T>(_: (), f: impl FnOnce() -> T) -> T {
        f()
    }

    type Buf = Vec<f32>;
    type Index = Vec<u32>;
    type Loss = BatchLoss;

    const NAME: &'static str = "cpu";

    fn zeros(n: usize) -> Vec<f32> {
        vec![0.0; n]
    }

    fn upload(host: &[f32]) -> Vec<f32> {
        host.to_vec()
    }

    fn download(buf: &Vec<f32>) -> Vec<f32> {
        buf.clone()
    }

    fn write(buf: &mut Vec<f32>, host: &[f32]) {
        buf[..host.len()].copy_from_slice(host);
    }

    fn len(buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn index_zeros(n: usize) -> Vec<u32> {
        vec![0; n]
    }

    fn gemm(alpha: f32, a: Mat<'_, Cpu>, b: Mat<'_, Cpu>, beta: f32, c: &mut Vec<f32>) {
        let n = a.op_rows() * b.op_cols();
        matmul::gemm(alpha, mat(&a), mat(&b), beta, &mut c[..n]);
    }

    fn add_bias_rows(x: &mut Vec<f32>, rows: usize, bias: &Vec<f32>) {
        matmul::add_bias_rows(&mut x[..rows * bias.len()], bias);
    }

    fn bias_grad(delta: &Vec<f32>, rows: usize, alpha: f32, beta: f32, db: &mut Vec<f32>) {
        let mut sums = vec![0.0; db.len()];
        matmul::column_sums(&delta[..rows * db.len()], &mut sums);
        db.iter_mut()
            .zip(&sums)
            .for_each(|(b, s)| *b = beta * *b + alpha * s);
    }

    fn scale(x: &mut Vec<f32>, s: f32) {
        x.iter_mut().for_each(|v| *v *= s);
    }

    fn add_assign(x: &mut Vec<f32>, y: &Vec<f32>) {
        x.iter_mut().zip(y.iter()).for_each(|(a, b)| *a += b);
    }

    fn copy(src: &Vec<f32>, dst: &mut Vec<f32>, n: usize) {
        dst[..n].copy_from_slice(&src[..n]);
    }

    fn activate(f: Activation, x: &mut Vec<f32>, n: usize) {
        f.forward(&mut x[..n]);
    }

    fn mul_derivative(f: Activation, o: &Vec<f32>, g: &mut Vec<f32>, n: usize) {
        f.mul_derivative(&o[..n], &mut g[..n]);
    }

    fn softmax_cross_entropy(
        logits: &mut Vec<f32>,
        labels: &[u8],
        classes: usize,
        delta: Option<&mut Vec<f32>>,
    ) -> BatchLoss {
        let n = labels.len() * classes;
        loss::softmax_cross_entropy(
            &mut logits[..n],
            labels,
            classes,
            delta.map(|d| &mut d[..n]),
        )
    }

    fn read_loss(loss: &BatchLoss) -> BatchLoss {
        *loss
    }

    fn conv_forward(
        g: &ConvGeom,
        w: &Vec<f32>,
        b: &Vec<f32>,
        x: &Vec<f32>,
        out: &mut Vec<f32>,
        batch: usize,
    ) {
        let (ni, no) = (g.in_len(), g.out_len());
        let chunks = out[..batch * no]
            .par_chunks_mut(CONV_CHUNK * no)
            .zip(x[..batch * ni].par_chunks(CONV_CHUNK * ni));
        if let Some(d) = direct(g) {
            let mut wt = Vec::new();
            d.tile_weights(w, &mut wt);
            chunks.for_each(|(o, x)| {
                with_scratch([d.padded_len(), d.out_len(), 0], |xp, ys, _| {
                    for (o, x) in o.chunks_exact_mut(no).zip(x.chunks_exact(ni)) {
                        d.pad_input(x, xp);
                        d.forward(&wt, b, xp, ys, o);
                    }
                });
            });
        } else {
            chunks.for_each(|(o, x)| {
                with_scratch([g.kdim() * g.positions(), 0, 0], |cols, _, _| {
                    for (o, x) in o.chunks_exact_mut(no).zip(x.chunks_exact(ni)) {
                        g.forward(w, b, x, o, cols);
                    }
                });
            });
        }
    }

    fn conv_backward_data(
        g: &ConvGeom,
        weights: &Vec<f32>,
        delta: &Vec<f32>,
        dx: &mut Vec<f32>,
        batch: usize,
        beta: f32,
    ) {
        let (ni, no) = (g.in_len(), g.out_len());
        let chunks = dx[..batch * ni]
            .par_chunks_mut(CONV_CHUNK * ni)
            .zip(delta[..batch * no].par_chunks(CONV_CHUNK * no));
        // dx = beta·dx + (the example's signal, computed into `tmp` unless beta = 0)
        let blend = |dx: &mut [f32], tmp: &mut [f32], compute: &mut dyn FnMut(&mut [f32])| {
            if beta == 0.0 {
                compute(dx);
            } else {
                compute(tmp);
                dx.iter_mut()
                    .zip(tmp.iter())
                    .for_each(|(a, t)| *a = beta * *a + t);
            }
        };
        if let Some(d) = direct(g) {
            // the forward map of δ through the flipped kernel
            let t = d.transposed();
            let mut wt = Vec::new();
            d.flipped_weights(weights, &mut wt);
            chunks.for_each(|(dx, dl)| {
                with_scratch([t.padded_len(), t.out_len(), ni], |dp, ys, tmp| {
                    for (dx, dl) in dx.chunks_exact_mut(ni).zip(dl.chunks_exact(no)) {
                        t.pad_input(dl, dp);
                        blend(dx, tmp, &mut |out| t.forward(&wt, &[], dp, ys, out));
                    }
                });
            });
        } else {
            chunks.for_each(|(dx, dl)| {
                with_scratch([g.kdim() * g.positions(), ni, 0], |cols, tmp, _| {
                    for (dx, dl) in dx.chunks_exact_mut(ni).zip(dl.chunks_exact(no)) {
                        blend(dx, tmp, &mut |out| g.backward_data(weights, dl, out, cols));
                    }
                });
            });
        }
    }

    fn conv_weight_grad(
        g: &ConvGeom,
        delta: &Vec<f32>,
        input: &Vec<f32>,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut Vec<f32>,
        db: &mut Vec<f32>,
    ) {
        conv_weight_grad(
            g,
            &delta[..batch * g.out_len()],
            &input[..batch * g.in_len()],
            alpha,
            beta,
            dw,
            db,
        );
    }

    fn pool_forward(
        p: &PoolGeom,
        x: &Vec<f32>,
        y: &mut Vec<f32>,
        arg: &mut Vec<u32>,
        batch: usize,
    ) {
        let (no, po) = (p.in_len(), p.out_len());
        y[..batch * po]
            .par_chunks_mut(po)
            .zip(arg[..batch * po].par_chunks_mut(po))
            .zip(x[..batch * no].par_chunks(no))
            .for_each(|((y, a), x)| p.forward(x, y, a));
    }

    fn unpool(
        p: &PoolGeom,
        src: &Vec<f32>,
        arg: &Vec<u32>,
        dst: &mut Vec<f32>,
        batch: usize,
        beta: f32,
    ) {
        let (no, po) = (p.in_len(), p.out_len());
        dst[..batch * no]
            .par_chunks_mut(no)
            .zip(src[..batch * po].par_chunks(po))
            .zip(arg[..batch * po].par_chunks(po))
            .for_each(|((d, s), a)| {
                if beta == 0.0 {
                    p.backward(s, a, d);
                } else {
                    d.iter_mut().for_each(|v| *v *= beta);
                    for (g, &at) in s.iter().zip(a) {
                        d[at as usize] += g;
                    }
                }
            });
    }

    fn neg_one_hot(labels: &[u8], classes: usize, out: &mut Vec<f32>) {
        let out = &mut out[..labels.len() * classes];
        out.fill(0.0);
        for (e, &l) in labels.iter().enumerate() {
            out[e * classes + l as usize] = -1.0;
        }
    }

    fn sign(src: &Vec<f32>, out: &mut Vec<f32>, n: usize) {
        out[..n]
            .iter_mut()
            .zip(&src[..n])
            .for_each(|(o, v)| *o = sign(*v));
    }

    fn sign_carrier(w: &Vec<f32>, magnitudes: Option<&Vec<f32>>, out: &mut Vec<f32>) {
        match magnitudes {
            None => {
                let n = w.len() as f64;
                let mean = w.iter().map(|v| *v as f64).sum::<f64>() / n;
                let sd =
                    (w.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32;
                out.iter_mut().zip(w).for_each(|(o, v)| *o = sd * sign(*v));
            }
            Some(m) => out
                .iter_mut()
                .zip(w.iter().zip(m))
                .for_each(|(o, (v, m))| *o = m.abs() * sign(*v)),
        }
    }

    fn dropout(g: &mut Vec<f32>, n: usize, rate: f32, rng: &mut Rng) {
        // keep with probability 1 − r: a uniform u32 below (1 − r)·2³²
        let keep = 1.0 - rate as f64;
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let inv = (1.0 / keep) as f32;
        MASK.with(|m| {
            let mut mask = m.borrow_mut();
            mask.resize(n, 0);
            rng.fill(&mut mask[..]);
            apply_dropout(&mut g[..n], &mask, threshold, inv);
        });
    }

    fn max_abs(x: &Vec<f32>, n: usize) -> Option<f32> {
        quantize::calibrate(&x[..n])
    }

    fn quantize(
        g: &mut Vec<f32>,
        n: usize,
        levels: Levels,
        census: bool,
    ) -> Option<(usize, usize)> {
        let g = &mut g[..n];
        let counts = census.then(|| levels.census(g));
        levels.apply_slice(g);
        counts
    }

    fn quantized_update(
        shape: UpdateShape,
        w: &mut Vec<f32>,
        b: &mut Vec<f32>,
        delta: &Vec<f32>,
        input: &Vec<f32>,
        batch: usize,
        rate: f64,
        q: Quantizer,
        alpha: &mut f32,
        key: Option<u64>,
    ) {
        quantized_update(
            shape,
            w,
            b,
            &delta[..batch * shape.n_out],
            &input[..batch * shape.n_in],
            rate,
            q,
            alpha,
            key,
        );
    }
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

dispatch! {
    /// `g ← g · inv` where `mask < threshold`, else 0.
    pub fn apply_dropout(g: &mut [f32], mask: &[u32], threshold: u32, inv: f32) {
        g.iter_mut().zip(mask).for_each(|(v, m)| *v = if *m < threshold { *v * inv } else { 0.0 });
    }
}

/// The batch-summed gradient of a convolution (`delta`: `batch × out_len`, `input`:
/// `batch × in_len`), partial sums per fixed chunk of examples, then summed in chunk order.
fn conv_weight_grad(
    g: &ConvGeom,
    delta: &[f32],
    input: &[f32],
    alpha: f32,
    beta: f32,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let (ni, no) = (g.in_len(), g.out_len());
    let parts: Vec<(Vec<f32>, Vec<f32>)> = delta
        .par_chunks(CONV_CHUNK * no)
        .zip(input.par_chunks(CONV_CHUNK * ni))
        .map(|(d, x)| {
            let (mut pw, mut pb) = (vec![0.0; dw.len()], vec![0.0; db.len()]);
            if let Some(dir) = direct(g) {
                let lens = [dir.padded_len(), dir.delta_t_len(), 0];
                with_scratch(lens, |xp, dt, _| {
                    for (d, x) in d.chunks_exact(no).zip(x.chunks_exact(ni)) {
                        dir.pad_input(x, xp);
                        dir.transpose_delta(d, dt);
                        dir.weight_grad(dt, xp, 1.0, &mut pw);
                        dir.bias_grad(dt, 1.0, &mut pb);
                    }
                });
            } else {
                with_scratch([g.kdim() * g.positions(), 0, 0], |cols, _, _| {
                    for (d, x) in d.chunks_exact(no).zip(x.chunks_exact(ni)) {
                        g.im2col(x, cols);
                        g.weight_grad(d, cols, 1.0, 1.0, &mut pw, &mut pb);
                    }
                });
            }
            (pw, pb)
        })
        .collect();
    dw.iter_mut().for_each(|w| *w *= beta);
    db.iter_mut().for_each(|b| *b *= beta);
    for (pw, pb) in parts {
        dw.iter_mut().zip(&pw).for_each(|(w, p)| *w += alpha * p);
        db.iter_mut().zip(&pb).for_each(|(b, p)| *b += alpha * p);
    }
}

/// The quantized update of one layer (see [`Backend::quantized_update`]); `delta` and `input`
/// hold exactly the batch.
#[allow(clippy::too_many_arguments)] // the update: layer, signals, rule, state
fn quantized_update(
    shape: UpdateShape,
    w: &mut [f32],
    b: &mut [f32],
    delta: &[f32],
    input: &[f32],
    rate: f64,
    q: Quantizer,
    alpha: &mut f32,
    key: Option<u64>,
) {
    let (n_in, n_out) = (shape.n_in, shape.n_out);
    let batch = delta.len() / n_out;
    // one example's gradient (conv), or nothing to precompute (dense)
    let example_grad = |g: &ConvGeom, e: usize, gw: &mut Vec<f32>, gb: &mut Vec<f32>| {
        conv_weight_grad(
            g,
            &delta[e * n_out..(e + 1) * n_out],
            &input[e * n_in..(e + 1) * n_in],
            (-rate) as f32,
            0.0,
            gw,
            gb,
        );
    };
    if *alpha == 0.0 {
        let max = match &shape.conv {
            None => (0..batch)
                .map(|e| {
                    let d = quantize::calibrate(&delta[e * n_out..(e + 1) * n_out]).unwrap_or(0.0);
                    let o = quantize::calibrate(&input[e * n_in..(e + 1) * n_in]).unwrap_or(0.0);
                    rate as f32 * d * o.max(1.0)
                })
                .fold(0.0f32, f32::max),
            Some(g) => {
                let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
                let mut m = 0.0f32;
                for e in 0..batch {
                    example_grad(g, e, &mut gw, &mut gb);
                    m = m
                        .max(quantize::calibrate(&gw).unwrap_or(0.0))
                        .max(quantize::calibrate(&gb).unwrap_or(0.0));
                }
                m
            }
        };
        if !(max.is_finite() && max > 0.0) {
            return; // nothing to learn from yet: the scale waits for a non-zero update
        }
        *alpha = max;
    }
    let levels = q.levels(*alpha, Form::MidTread);
    let s = levels.steps();
    let a = *alpha;
    let mut acc = vec![0.0f32; w.len()];
    let mut acc_b = vec![0.0f32; b.len()];
    // one value in steps of α/s: nearest, or stochastic with the uniform number of its index
    // (the same counter scheme as the tiled weight sums; biases count after every weight entry)
    let steps = |x: f32, index: u64| -> f32 {
        match key {
            None => quantize::steps_of(x, s),
            Some(k) => quantize::steps_stochastic(x, s, quantize::uniform(k, index)),
        }
    };
    match &shape.conv {
        None => {
            // Q(x) = (α/s) · clamp(round(x · s/α), −s, s), summed in steps
            let k = (-rate) as f32 * (s / a);
            let coefs: Vec<f32> = delta.iter().map(|d| k * d).collect();
            match key {
                None => quantize::add_quantized_outer(&mut acc, &coefs, input, n_out, n_in, s),
                Some(key) => quantize::add_quantized_outer_stochastic(
                    &mut acc, &coefs, input, n_out, n_in, s, key,
                ),
            }
            let weights = (batch * n_out * n_in) as u64;
            for (e, c) in coefs.chunks_exact(n_out).enumerate() {
                for (r, (acc, c)) in acc_b.iter_mut().zip(c).enumerate() {
                    *acc += steps(*c, weights + (e * n_out + r) as u64);
                }
            }
        }
        Some(g) => {
            // one example at a time: its own gradient, quantized, then accumulated
            let (mut gw, mut gb) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
            let per = (gw.len() + gb.len()) as u64;
            for e in 0..batch {
                example_grad(g, e, &mut gw, &mut gb);
                let base = e as u64 * per;
                for (j, (acc, g)) in acc.iter_mut().zip(&gw).enumerate() {
                    *acc += steps(g * (s / a), base + j as u64);
                }
                let off = base + gw.len() as u64;
                for (j, (acc, g)) in acc_b.iter_mut().zip(&gb).enumerate() {
                    *acc += steps(g * (s / a), off + j as u64);
                }
            }
        }
    }
    let unit = a / s;
    let inv = unit / batch as f32;
    w.iter_mut().zip(&acc).for_each(|(w, a)| *w += a * inv);
    b.iter_mut().zip(&acc_b).for_each(|(b, a)| *b += a * inv);
}
