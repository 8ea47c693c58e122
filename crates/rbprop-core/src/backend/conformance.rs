//! # Backend conformance
//!
//! The operations of [`Backend`] checked against plain loops in f64 written here, apart from
//! every backend's kernels: the same checks run against the CPU backend (`cargo test -p
//! rbprop-core`) and the GPU backend (`cargo test -p rbprop-gpu`), and a new backend runs them
//! too. Each check draws its inputs from a named random stream, runs the operation on odd
//! shapes (sizes that are not multiples of any tile, prefixes of longer buffers, both `beta`s),
//! and returns the first disagreement beyond f32 rounding: `|got − want| ≤ 1e-5 · √k ·
//! (1 + |want|)` for a sum of `k` terms (the bound of the GPU backend's documentation), exact
//! where the operation only moves or compares values.
//!
//! Covered: the products (`gemm` in its four transpose forms, the fused dense forward, weight
//! gradient and δ), bias, scale, add and copy, the activations and their derivative,
//! softmax-cross-entropy, convolution (forward, input and weight gradients, with stride and
//! padding), max-pooling and its adjoint, −T, sign and the calibration maximum. The channel's
//! random operations (dropout, the quantizers, the quantized update) are checked against the CPU
//! backend by the GPU's own tests, since their definition is the CPU's random streams.

use super::{Backend, DenseGrad, Mat};
use crate::kernels::Activation;
use crate::kernels::conv::ConvGeom;
use crate::kernels::pool::PoolGeom;
use crate::rng;

/// A check's verdict: `Err` names the operation, the case and the first value out of bounds.
pub type Verdict = Result<(), String>;

/// Every check, by name, on backend `B`.
pub fn all<B: Backend>() -> Vec<(&'static str, Verdict)> {
    vec![
        ("gemm", gemm::<B>()),
        ("dense_forward", dense_forward::<B>()),
        ("dense_weight_grad", dense_weight_grad::<B>()),
        ("dense_weight_grads", dense_weight_grads::<B>()),
        ("delta_from_signal", delta_from_signal::<B>()),
        ("signal_and_delta", signal_and_delta::<B>()),
        ("elementwise", elementwise::<B>()),
        ("activations", activations::<B>()),
        ("softmax_cross_entropy", softmax_cross_entropy::<B>()),
        ("convolution", convolution::<B>()),
        ("pooling", pooling::<B>()),
        ("signals", signals::<B>()),
    ]
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    rng::normal_vec(n, 1.0, &mut rng::stream(seed, "conformance"))
}

/// Compares `got` with `want` (f64) within the rounding of sums of `k` terms: the bound every
/// check uses.
pub fn compare(what: &str, got: &[f32], want: &[f64], k: usize) -> Verdict {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    let tol = 1e-5 * (k.max(1) as f64).sqrt();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g = *g as f64;
        if !(g - w).abs().le(&(tol * (1.0 + w.abs()))) {
            return Err(format!(
                "{what}[{i}]: {g}, expected {w} (±{:.1e})",
                tol * (1.0 + w.abs())
            ));
        }
    }
    Ok(())
}

/// Compares exactly (values moved or compared, not computed); a zero's sign is not a value.
fn same(what: &str, got: &[f32], want: &[f32]) -> Verdict {
    let differs = |g: &f32, w: &f32| g != w && !(g.is_nan() && w.is_nan());
    match got.iter().zip(want).position(|(g, w)| differs(g, w)) {
        Some(i) => Err(format!("{what}[{i}]: {}, expected {}", got[i], want[i])),
        None if got.len() != want.len() => Err(format!("{what}: lengths")),
        None => Ok(()),
    }
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| *x as f64).collect()
}

/// `op(a)[i][kk]` of a stored `rows × cols` matrix.
fn at(a: &[f32], cols: usize, trans: bool, i: usize, kk: usize) -> f64 {
    if trans {
        a[kk * cols + i] as f64
    } else {
        a[i * cols + kk] as f64
    }
}

fn gemm<B: Backend>() -> Verdict {
    let (m, n, k) = (13, 7, 29);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        for beta in [0.0f32, 0.5] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            // c longer than m × n: the rest stays as it was
            let c0 = values(m * n + 5, 3);
            let (a_rows, a_cols) = if ta { (k, m) } else { (m, k) };
            let (b_rows, b_cols) = if tb { (n, k) } else { (k, n) };
            let (ga, gb) = (B::upload(&a), B::upload(&b));
            let mut gc = B::upload(&c0);
            let op = |buf, rows, cols, t| Mat {
                buf,
                rows,
                cols,
                trans: t,
            };
            B::gemm(
                0.75,
                op(&ga, a_rows, a_cols, ta),
                op(&gb, b_rows, b_cols, tb),
                beta,
                &mut gc,
            );
            let mut want = wide(&c0);
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|kk| at(&a, a_cols, ta, i, kk) * at(&b, b_cols, tb, kk, j))
                        .sum();
                    want[i * n + j] = 0.75 * s + beta as f64 * c0[i * n + j] as f64;
                }
            }
            compare(
                &format!("gemm ta={ta} tb={tb} beta={beta}"),
                &B::download(&gc),
                &want,
                k,
            )?;
        }
    }
    Ok(())
}

fn act(f: Activation, s: f64) -> f64 {
    match f {
        Activation::Tanh => s.tanh(),
        Activation::Logistic => 1.0 / (1.0 + (-s).exp()),
        Activation::Relu => s.max(0.0),
        Activation::Linear => s,
    }
}

fn dact(f: Activation, o: f64) -> f64 {
    match f {
        Activation::Tanh => 1.0 - o * o,
        Activation::Logistic => o * (1.0 - o),
        Activation::Relu => f64::from(u8::from(o > 0.0)),
        Activation::Linear => 1.0,
    }
}

const ACTIVATIONS: [Activation; 4] = [
    Activation::Tanh,
    Activation::Logistic,
    Activation::Relu,
    Activation::Linear,
];

fn dense_forward<B: Backend>() -> Verdict {
    let (rows, n_in, n_out) = (11, 23, 9);
    let (x, w, b) = (
        values(rows * n_in + 4, 4),
        values(n_out * n_in, 5),
        values(n_out, 6),
    );
    for f in ACTIVATIONS.map(Some).into_iter().chain([None]) {
        let mut out = B::upload(&vec![9.0; rows * n_out]);
        B::dense_forward(
            &B::upload(&x),
            &B::upload(&w),
            &B::upload(&b),
            rows,
            n_in,
            n_out,
            f,
            &mut out,
        );
        let mut want = vec![0.0; rows * n_out];
        for r in 0..rows {
            for o in 0..n_out {
                let s: f64 = (0..n_in)
                    .map(|i| x[r * n_in + i] as f64 * w[o * n_in + i] as f64)
                    .sum::<f64>()
                    + b[o] as f64;
                want[r * n_out + o] = f.map_or(s, |f| act(f, s));
            }
        }
        compare(
            &format!("dense_forward {f:?}"),
            &B::download(&out),
            &want,
            n_in,
        )?;
    }
    Ok(())
}

fn dense_weight_grad<B: Backend>() -> Verdict {
    let (rows, n_in, n_out) = (17, 10, 6);
    let (d, x) = (values(rows * n_out, 7), values(rows * n_in, 8));
    for (alpha, beta) in [(-0.1f32, 0.0f32), (-0.1, 1.0), (0.5, 0.9)] {
        let (w0, b0) = (values(n_out * n_in, 9), values(n_out, 10));
        let (mut w, mut b) = (B::upload(&w0), B::upload(&b0));
        B::dense_weight_grad(
            &B::upload(&d),
            &B::upload(&x),
            rows,
            n_in,
            n_out,
            alpha,
            beta,
            &mut w,
            &mut b,
        );
        let (want_w, want_b) = weight_grad_reference(&d, &x, &w0, &b0, rows, alpha, beta);
        let case = format!("alpha={alpha} beta={beta}");
        compare(
            &format!("dense_weight_grad w {case}"),
            &B::download(&w),
            &want_w,
            rows,
        )?;
        compare(
            &format!("dense_weight_grad b {case}"),
            &B::download(&b),
            &want_b,
            rows,
        )?;
    }
    Ok(())
}

/// A dense layer's gradient in f64: `alpha · δᵀ · x + beta · w0` and `alpha · Σ_rows δ + beta ·
/// b0` (sizes from the buffers: `δ` is `rows × n_out`, `x` `rows × n_in`).
fn weight_grad_reference(
    d: &[f32],
    x: &[f32],
    w0: &[f32],
    b0: &[f32],
    rows: usize,
    alpha: f32,
    beta: f32,
) -> (Vec<f64>, Vec<f64>) {
    let (n_out, n_in) = (d.len() / rows, x.len() / rows);
    let (alpha, beta) = (alpha as f64, beta as f64);
    let mut want_w = vec![0.0; n_out * n_in];
    let mut want_b = vec![0.0; n_out];
    for o in 0..n_out {
        for i in 0..n_in {
            let s: f64 = (0..rows)
                .map(|r| d[r * n_out + o] as f64 * x[r * n_in + i] as f64)
                .sum();
            want_w[o * n_in + i] = alpha * s + beta * w0[o * n_in + i] as f64;
        }
        let s: f64 = (0..rows).map(|r| d[r * n_out + o] as f64).sum();
        want_b[o] = alpha * s + beta * b0[o] as f64;
    }
    (want_w, want_b)
}

/// Five layers of different sizes at once (more than one group of the GPU's four).
fn dense_weight_grads<B: Backend>() -> Verdict {
    let rows = 13;
    let sizes = [(10, 6), (6, 9), (9, 3), (3, 12), (12, 5)];
    let (alpha, beta) = (-0.2f32, 1.0f32);
    let data: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(z, &(n_in, n_out))| {
            let s = 30 + 4 * z as u64;
            (
                values(rows * n_out, s),
                values(rows * n_in, s + 1),
                values(n_out * n_in, s + 2),
                values(n_out, s + 3),
            )
        })
        .collect();
    let inputs: Vec<_> = data
        .iter()
        .map(|(d, x, _, _)| (B::upload(d), B::upload(x)))
        .collect();
    let mut params: Vec<_> = data
        .iter()
        .map(|(_, _, w, b)| (B::upload(w), B::upload(b)))
        .collect();
    let mut layers: Vec<DenseGrad<'_, B>> = inputs
        .iter()
        .zip(params.iter_mut())
        .zip(sizes)
        .map(|(((d, x), (w, b)), (n_in, n_out))| DenseGrad {
            delta: d,
            x,
            rows,
            n_in,
            n_out,
            dw: w,
            db: b,
        })
        .collect();
    B::dense_weight_grads(&mut layers, alpha, beta);
    for (z, ((d, x, w0, b0), (w, b))) in data.iter().zip(&params).enumerate() {
        let (want_w, want_b) = weight_grad_reference(d, x, w0, b0, rows, alpha, beta);
        compare(
            &format!("dense_weight_grads w, layer {z}"),
            &B::download(w),
            &want_w,
            rows,
        )?;
        compare(
            &format!("dense_weight_grads b, layer {z}"),
            &B::download(b),
            &want_b,
            rows,
        )?;
    }
    Ok(())
}

fn delta_from_signal<B: Backend>() -> Verdict {
    let len = 40;
    let n = len - 3;
    let g = values(len, 11);
    for f in ACTIVATIONS.map(Some).into_iter().chain([None]) {
        // outputs in each activation's range
        let o: Vec<f32> = values(len, 12)
            .iter()
            .map(|s| f.map_or(*s, |f| act(f, *s as f64) as f32))
            .collect();
        let d0 = values(len, 13);
        let mut d = B::upload(&d0);
        B::delta_from_signal(f, &B::upload(&o), &B::upload(&g), &mut d, n);
        let mut want = wide(&d0);
        for i in 0..n {
            want[i] = g[i] as f64 * f.map_or(1.0, |f| dact(f, o[i] as f64));
        }
        compare(
            &format!("delta_from_signal {f:?}"),
            &B::download(&d),
            &want,
            1,
        )?;
    }
    Ok(())
}

fn signal_and_delta<B: Backend>() -> Verdict {
    let (m, n, k) = (11, 6, 17);
    for (ta, tb) in [(false, false), (false, true), (true, false)] {
        for f in ACTIVATIONS.map(Some).into_iter().chain([None]) {
            let (a, b) = (values(m * k, 21), values(k * n, 22));
            let o: Vec<f32> = values(m * n + 4, 23)
                .iter()
                .map(|s| f.map_or(*s, |f| act(f, *s as f64) as f32))
                .collect();
            let (g0, d0) = (values(m * n + 4, 24), values(m * n + 4, 25));
            let (a_rows, a_cols) = if ta { (k, m) } else { (m, k) };
            let (b_rows, b_cols) = if tb { (n, k) } else { (k, n) };
            let (ga, gb) = (B::upload(&a), B::upload(&b));
            let (mut g, mut d) = (B::upload(&g0), B::upload(&d0));
            let op = |buf, rows, cols, trans| Mat {
                buf,
                rows,
                cols,
                trans,
            };
            B::signal_and_delta(
                op(&ga, a_rows, a_cols, ta),
                op(&gb, b_rows, b_cols, tb),
                f,
                &B::upload(&o),
                &mut g,
                &mut d,
            );
            let (mut want_g, mut want_d) = (wide(&g0), wide(&d0));
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|kk| at(&a, a_cols, ta, i, kk) * at(&b, b_cols, tb, kk, j))
                        .sum();
                    want_g[i * n + j] = s;
                    want_d[i * n + j] = s * f.map_or(1.0, |f| dact(f, o[i * n + j] as f64));
                }
            }
            let what = format!("signal_and_delta ta={ta} tb={tb} {f:?}");
            compare(&format!("{what}: g"), &B::download(&g), &want_g, k)?;
            compare(&format!("{what}: d"), &B::download(&d), &want_d, k)?;
        }
    }
    Ok(())
}

fn elementwise<B: Backend>() -> Verdict {
    let (rows, cols) = (9, 5);
    let x = values(rows * cols + 3, 14);
    let bias = values(cols, 15);
    // add_bias_rows on the first rows − 2 rows
    let mut g = B::upload(&x);
    B::add_bias_rows(&mut g, rows - 2, &B::upload(&bias));
    let mut want = wide(&x);
    for r in 0..rows - 2 {
        for c in 0..cols {
            want[r * cols + c] += bias[c] as f64;
        }
    }
    compare("add_bias_rows", &B::download(&g), &want, 1)?;
    // bias_grad
    let db0 = values(cols, 16);
    let mut db = B::upload(&db0);
    B::bias_grad(&B::upload(&x), rows, -0.3, 0.9, &mut db);
    let want: Vec<f64> = (0..cols)
        .map(|c| {
            -0.3 * (0..rows).map(|r| x[r * cols + c] as f64).sum::<f64>() + 0.9 * db0[c] as f64
        })
        .collect();
    compare("bias_grad", &B::download(&db), &want, rows)?;
    // scale, add_assign, copy
    let y = values(x.len(), 17);
    let mut g = B::upload(&x);
    B::scale(&mut g, 0.37);
    compare(
        "scale",
        &B::download(&g),
        &wide(&x).iter().map(|v| 0.37 * v).collect::<Vec<_>>(),
        1,
    )?;
    let mut g = B::upload(&x);
    B::add_assign(&mut g, &B::upload(&y));
    let want: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| *a as f64 + *b as f64)
        .collect();
    compare("add_assign", &B::download(&g), &want, 1)?;
    let mut g = B::upload(&x);
    B::copy(&B::upload(&y), &mut g, 20);
    let mut want = x.clone();
    want[..20].copy_from_slice(&y[..20]);
    same("copy", &B::download(&g), &want)?;
    let z = B::zeros(7);
    same("zeros", &B::download(&z), &[0.0; 7])?;
    if B::len(&z) != 7 {
        return Err(format!("len: {} for 7 zeros", B::len(&z)));
    }
    Ok(())
}

fn activations<B: Backend>() -> Verdict {
    let len = 50;
    let n = len - 4;
    // values across each function's regions, beyond ±1 and ±20 included
    let s: Vec<f32> = values(len, 18).iter().map(|v| v * 6.0).collect();
    for f in ACTIVATIONS {
        let mut g = B::upload(&s);
        B::activate(f, &mut g, n);
        let mut want = wide(&s);
        for i in 0..n {
            want[i] = act(f, s[i] as f64);
        }
        let o = B::download(&g);
        compare(&format!("activate {f:?}"), &o, &want, 4)?;
        let g0 = values(len, 19);
        let mut g = B::upload(&g0);
        B::mul_derivative(f, &B::upload(&o), &mut g, n);
        let mut want = wide(&g0);
        for i in 0..n {
            want[i] = g0[i] as f64 * dact(f, o[i] as f64);
        }
        compare(&format!("mul_derivative {f:?}"), &B::download(&g), &want, 4)?;
    }
    Ok(())
}

fn softmax_cross_entropy<B: Backend>() -> Verdict {
    let (rows, classes) = (7, 5);
    let logits: Vec<f32> = values(rows * classes, 20).iter().map(|v| v * 4.0).collect();
    let labels: Vec<u8> = (0..rows).map(|r| (r * 3 % classes) as u8).collect();
    let mut g = B::upload(&logits);
    let mut delta = B::zeros(rows * classes);
    let loss = B::read_loss(&B::softmax_cross_entropy(
        &mut g,
        &labels,
        classes,
        Some(&mut delta),
    ));
    let (mut probs, mut want_delta) = (vec![0.0; rows * classes], vec![0.0; rows * classes]);
    let (mut loss_sum, mut correct) = (0.0, 0);
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) as f64;
        let z: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
        for c in 0..classes {
            let p = (row[c] as f64 - max).exp() / z;
            probs[r * classes + c] = p;
            want_delta[r * classes + c] = p - f64::from(u8::from(c == labels[r] as usize));
        }
        loss_sum += z.ln() - (row[labels[r] as usize] as f64 - max);
        let first_max = row
            .iter()
            .position(|v| *v as f64 == max)
            .expect("a maximum");
        correct += usize::from(first_max == labels[r] as usize);
    }
    compare("softmax", &B::download(&g), &probs, classes)?;
    compare("softmax delta", &B::download(&delta), &want_delta, classes)?;
    compare(
        "loss_sum",
        &[loss.loss_sum as f32],
        &[loss_sum],
        rows * classes,
    )?;
    if loss.correct != correct {
        return Err(format!("correct: {}, expected {correct}", loss.correct));
    }
    Ok(())
}

fn convolution<B: Backend>() -> Verdict {
    let batch = 2;
    for (c_in, h, w, c_out, k, stride, pad) in [
        (2, 7, 6, 3, 3, 1, 1),
        (3, 9, 8, 2, 3, 2, 0),
        (1, 8, 8, 4, 5, 1, 2),
    ] {
        let g = ConvGeom::new(c_in, h, w, c_out, k, stride, pad)
            .ok_or_else(|| "a test geometry does not fit".to_string())?;
        let (hw_out, in_len) = (g.h_out * g.w_out, c_in * h * w);
        let out_len = c_out * hw_out;
        let case = format!("{c_in}×{h}×{w} → {c_out}, k{k} s{stride} p{pad}");
        let x = values(batch * in_len, 21);
        let wt = values(c_out * c_in * k * k, 22);
        let bias = values(c_out, 23);
        // input position of output (oy, ox) through tap (ky, kx), if inside the map
        let tap = |oy: usize, ox: usize, ky: usize, kx: usize| -> Option<(usize, usize)> {
            let y = (oy * stride + ky).checked_sub(pad)?;
            let xx = (ox * stride + kx).checked_sub(pad)?;
            (y < h && xx < w).then_some((y, xx))
        };
        // forward
        let mut out = B::zeros(batch * out_len);
        B::conv_forward(
            &g,
            &B::upload(&wt),
            &B::upload(&bias),
            &B::upload(&x),
            &mut out,
            batch,
        );
        let mut want = vec![0.0; batch * out_len];
        for e in 0..batch {
            for o in 0..c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut s = bias[o] as f64;
                        for c in 0..c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    if let Some((y, xx)) = tap(oy, ox, ky, kx) {
                                        s += wt[((o * c_in + c) * k + ky) * k + kx] as f64
                                            * x[e * in_len + (c * h + y) * w + xx] as f64;
                                    }
                                }
                            }
                        }
                        want[e * out_len + o * hw_out + oy * g.w_out + ox] = s;
                    }
                }
            }
        }
        compare(
            &format!("conv_forward {case}"),
            &B::download(&out),
            &want,
            c_in * k * k,
        )?;
        // input gradient, accumulated
        let delta = values(batch * out_len, 24);
        let dx0 = values(batch * in_len, 25);
        let mut dx = B::upload(&dx0);
        B::conv_backward_data(&g, &B::upload(&wt), &B::upload(&delta), &mut dx, batch, 1.0);
        let mut want = wide(&dx0);
        let mut dw_want = vec![0.0; c_out * c_in * k * k];
        let mut db_want = vec![0.0; c_out];
        for e in 0..batch {
            for o in 0..c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let d = delta[e * out_len + o * hw_out + oy * g.w_out + ox] as f64;
                        db_want[o] += d;
                        for c in 0..c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    if let Some((y, xx)) = tap(oy, ox, ky, kx) {
                                        let wi = ((o * c_in + c) * k + ky) * k + kx;
                                        let xi = e * in_len + (c * h + y) * w + xx;
                                        want[xi] += wt[wi] as f64 * d;
                                        dw_want[wi] += x[xi] as f64 * d;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        compare(
            &format!("conv_backward_data {case}"),
            &B::download(&dx),
            &want,
            c_out * k * k,
        )?;
        // weight gradient: alpha · sums + beta · before
        let (dw0, db0) = (values(dw_want.len(), 26), values(c_out, 27));
        let (mut dw, mut db) = (B::upload(&dw0), B::upload(&db0));
        B::conv_weight_grad(
            &g,
            &B::upload(&delta),
            &B::upload(&x),
            batch,
            -0.2,
            0.5,
            &mut dw,
            &mut db,
        );
        let dw_want: Vec<f64> = dw_want
            .iter()
            .zip(&dw0)
            .map(|(s, b)| -0.2 * s + 0.5 * *b as f64)
            .collect();
        let db_want: Vec<f64> = db_want
            .iter()
            .zip(&db0)
            .map(|(s, b)| -0.2 * s + 0.5 * *b as f64)
            .collect();
        let terms = batch * hw_out;
        compare(
            &format!("conv_weight_grad w {case}"),
            &B::download(&dw),
            &dw_want,
            terms,
        )?;
        compare(
            &format!("conv_weight_grad b {case}"),
            &B::download(&db),
            &db_want,
            terms,
        )?;
    }
    Ok(())
}

fn pooling<B: Backend>() -> Verdict {
    let batch = 2;
    for (c, h, w, k, stride, pad) in [(2, 7, 6, 3, 2, 1), (1, 8, 8, 2, 2, 0)] {
        let p = PoolGeom::new(c, h, w, k, stride, pad)
            .ok_or_else(|| "a test geometry does not fit".to_string())?;
        let case = format!("{c}×{h}×{w} k{k} s{stride} p{pad}");
        let (in_len, out_len) = (p.in_len(), p.out_len());
        // ties: values rounded to halves
        let x: Vec<f32> = values(batch * in_len, 28)
            .iter()
            .map(|v| (v * 2.0).round() / 2.0)
            .collect();
        let mut y = B::zeros(batch * out_len);
        let mut arg = B::index_zeros(batch * out_len);
        B::pool_forward(&p, &B::upload(&x), &mut y, &mut arg, batch);
        let mut want = vec![0.0f32; batch * out_len];
        let mut where_ = vec![0usize; batch * out_len];
        for e in 0..batch {
            for ch in 0..c {
                for oy in 0..p.h_out {
                    for ox in 0..p.w_out {
                        let mut best: Option<(f32, usize)> = None;
                        for ky in 0..k {
                            for kx in 0..k {
                                let (Some(yy), Some(xx)) = (
                                    (oy * stride + ky).checked_sub(pad),
                                    (ox * stride + kx).checked_sub(pad),
                                ) else {
                                    continue;
                                };
                                if yy >= h || xx >= w {
                                    continue;
                                }
                                let at = (ch * h + yy) * w + xx;
                                let v = x[e * in_len + at];
                                // the first maximum of a row-major scan
                                if best.is_none_or(|(b, _)| v > b) {
                                    best = Some((v, at));
                                }
                            }
                        }
                        let (v, at) = best.ok_or("a window without inputs")?;
                        let o = e * out_len + (ch * p.h_out + oy) * p.w_out + ox;
                        want[o] = v;
                        where_[o] = at;
                    }
                }
            }
        }
        same(&format!("pool_forward {case}"), &B::download(&y), &want)?;
        // the adjoint routes to the maxima, adding beta · dst
        let src = values(batch * out_len, 29);
        let dst0 = values(batch * in_len, 30);
        let mut dst = B::upload(&dst0);
        B::unpool(&p, &B::upload(&src), &arg, &mut dst, batch, 0.5);
        let mut want: Vec<f64> = dst0.iter().map(|v| 0.5 * *v as f64).collect();
        for e in 0..batch {
            for o in 0..out_len {
                want[e * in_len + where_[e * out_len + o]] += src[e * out_len + o] as f64;
            }
        }
        compare(&format!("unpool {case}"), &B::download(&dst), &want, k * k)?;
    }
    Ok(())
}

fn signals<B: Backend>() -> Verdict {
    let (labels, classes) = ([2u8, 0, 4, 4], 5);
    let mut t = B::upload(&[7.0; 25]);
    B::neg_one_hot(&labels, classes, &mut t);
    let mut want = vec![0.0; 20];
    for (e, l) in labels.iter().enumerate() {
        want[e * classes + *l as usize] = -1.0;
    }
    want.extend([7.0; 5]);
    same("neg_one_hot", &B::download(&t), &want)?;
    let src = [0.5f32, -2.0, 0.0, -0.0, 3.0, 1e-30, -7.0];
    let mut out = B::upload(&[9.0; 7]);
    B::sign(&B::upload(&src), &mut out, 6);
    same(
        "sign",
        &B::download(&out),
        &[1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 9.0],
    )?;
    let x = [0.5f32, -3.0, 2.0, 9.0];
    match B::max_abs(&B::upload(&x), 3) {
        Some(3.0) => {}
        other => return Err(format!("max_abs: {other:?}, expected Some(3.0)")),
    }
    if let Some(m) = B::max_abs(&B::upload(&[0.0f32; 4]), 4) {
        return Err(format!("max_abs of zeros: Some({m}), expected None"));
    }
    Ok(())
}
