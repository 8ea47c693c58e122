//! Convolution and max-pooling against a naive f64 reference and central finite differences.

use rand::{Rng, SeedableRng};
use rbprop::kernels::conv::ConvGeom;
use rbprop::kernels::pool::PoolGeom;

fn rand_vec(n: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Direct convolution in f64: y[o][oy][ox] = b[o] + Σ w[o][c][ky][kx] x[c][oy·s+ky−p][ox·s+kx−p].
fn naive_conv(g: &ConvGeom, w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; g.out_len()];
    for o in 0..g.c_out {
        for oy in 0..g.h_out {
            for ox in 0..g.w_out {
                let mut s = b[o];
                for c in 0..g.c_in {
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                s += w[((o * g.c_in + c) * g.k + ky) * g.k + kx]
                                    * x[(c * g.h + iy as usize) * g.w + ix as usize];
                            }
                        }
                    }
                }
                y[(o * g.h_out + oy) * g.w_out + ox] = s;
            }
        }
    }
    y
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 8] = [
    // c_in, h, w, c_out, k, stride, pad
    (1, 5, 5, 2, 3, 1, 1),  // same
    (2, 7, 6, 3, 3, 1, 0),  // valid, non-square
    (3, 8, 8, 2, 5, 1, 2),  // 5×5 same
    (2, 9, 7, 4, 3, 2, 1),  // stride 2, odd sizes
    (1, 6, 6, 1, 1, 1, 0),  // 1×1
    (2, 10, 9, 3, 4, 3, 2), // stride 3, even kernel
    (3, 4, 4, 2, 5, 1, 2),  // kernel larger than the map without padding
    (2, 5, 8, 2, 2, 2, 0),
];

#[test]
fn conv_forward_matches_direct_convolution() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for &(c_in, h, w, c_out, k, s, p) in &SHAPES {
        let g = ConvGeom::new(c_in, h, w, c_out, k, s, p).unwrap();
        let (wt, b, x) = (
            rand_vec(c_out * g.kdim(), &mut rng),
            rand_vec(c_out, &mut rng),
            rand_vec(g.in_len(), &mut rng),
        );
        let mut y = vec![0.0; g.out_len()];
        let mut cols = vec![0.0; g.kdim() * g.positions()];
        g.forward(&wt, &b, &x, &mut y, &mut cols);
        let want = naive_conv(&g, &f64s(&wt), &f64s(&b), &f64s(&x));
        for (a, b) in y.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{g:?}: {a} vs {b}");
        }
    }
}

#[test]
fn conv_backward_matches_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let eps = 1e-6;
    for &(c_in, h, w, c_out, k, s, p) in &SHAPES {
        let g = ConvGeom::new(c_in, h, w, c_out, k, s, p).unwrap();
        let (wt, b, x) = (
            rand_vec(c_out * g.kdim(), &mut rng),
            rand_vec(c_out, &mut rng),
            rand_vec(g.in_len(), &mut rng),
        );
        let r = rand_vec(g.out_len(), &mut rng); // L = Σ r ⊙ y
        let loss = |w: &[f64], b: &[f64], x: &[f64]| -> f64 {
            naive_conv(&g, w, b, x)
                .iter()
                .zip(&r)
                .map(|(y, r)| y * *r as f64)
                .sum()
        };
        let (w64, b64, x64) = (f64s(&wt), f64s(&b), f64s(&x));
        let mut cols = vec![0.0; g.kdim() * g.positions()];
        let mut dx = vec![0.0; g.in_len()];
        g.backward_data(&wt, &r, &mut dx, &mut cols);
        check_fd(&format!("{g:?} dx"), &dx, &x64, eps, |x| {
            loss(&w64, &b64, x)
        });
        g.im2col(&x, &mut cols);
        let mut dw = vec![0.0; wt.len()];
        let mut db = vec![0.0; c_out];
        g.weight_grad(&r, &cols, 1.0, 0.0, &mut dw, &mut db);
        check_fd(&format!("{g:?} dw"), &dw, &w64, eps, |w| {
            loss(w, &b64, &x64)
        });
        check_fd(&format!("{g:?} db"), &db, &b64, eps, |b| {
            loss(&w64, b, &x64)
        });
    }
}

/// Each `got[i]` against the central difference of `loss` in coordinate i around `at`.
fn check_fd(what: &str, got: &[f32], at: &[f64], eps: f64, loss: impl Fn(&[f64]) -> f64) {
    for i in 0..at.len() {
        let (mut p, mut m) = (at.to_vec(), at.to_vec());
        p[i] += eps;
        m[i] -= eps;
        let fd = (loss(&p) - loss(&m)) / (2.0 * eps);
        assert!(
            (got[i] as f64 - fd).abs() < 1e-4 * (1.0 + fd.abs()),
            "{what}[{i}]: {} vs {fd}",
            got[i]
        );
    }
}

/// The inputs (indices within the example) of every output of `g`, each window in row-major
/// order.
fn windows(g: &PoolGeom) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for ch in 0..g.c {
        for oy in 0..g.h_out {
            for ox in 0..g.w_out {
                let mut window = Vec::new();
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                            window.push((ch * g.h + iy as usize) * g.w + ix as usize);
                        }
                    }
                }
                out.push(window);
            }
        }
    }
    out
}

/// c, h, w, window, stride, padding
const POOL_SHAPES: [(usize, usize, usize, usize, usize, usize); 8] = [
    (2, 32, 32, 3, 2, 1),
    (1, 7, 7, 3, 2, 1),
    (1, 7, 9, 3, 2, 1),
    (3, 8, 6, 2, 2, 0),
    (2, 9, 5, 3, 3, 0),
    (1, 5, 5, 3, 1, 1),
    (2, 4, 4, 4, 1, 0),
    (1, 11, 10, 5, 3, 2),
];

#[test]
fn max_pool_forward_and_backward() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for (c, h, w, k, s, p) in POOL_SHAPES {
        let g = PoolGeom::new(c, h, w, k, s, p).unwrap();
        // distinct values: no ties, so the max is differentiable
        let mut x: Vec<f32> = (0..g.in_len()).map(|i| i as f32 * 0.001).collect();
        for i in (1..x.len()).rev() {
            let j = rng.random_range(0..=i);
            x.swap(i, j);
        }
        let mut y = vec![0.0; g.out_len()];
        let mut arg = vec![0u32; g.out_len()];
        g.forward(&x, &mut y, &mut arg);
        // naive max over the window
        for (o, window) in windows(&g).iter().enumerate() {
            let m = window.iter().fold(f32::NEG_INFINITY, |m, &i| m.max(x[i]));
            assert_eq!(y[o], m, "{g:?}");
        }
        // finite differences of L = Σ r ⊙ y
        let r = rand_vec(g.out_len(), &mut rng);
        let mut dx = vec![0.0; g.in_len()];
        g.backward(&r, &arg, &mut dx);
        let loss = |x: &[f32]| -> f64 {
            let mut y = vec![0.0; g.out_len()];
            let mut a = vec![0u32; g.out_len()];
            g.forward(x, &mut y, &mut a);
            y.iter()
                .zip(&r)
                .map(|(y, r)| (*y as f64) * (*r as f64))
                .sum()
        };
        let eps = 1e-4f32;
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += eps;
            xm[i] -= eps;
            // divide by the step actually taken in f32: max is piecewise linear, so this is exact
            let fd = (loss(&xp) - loss(&xm)) / ((xp[i] - xm[i]) as f64);
            assert!(
                (dx[i] as f64 - fd).abs() < 1e-5,
                "{g:?} dx[{i}]: {} vs {fd}",
                dx[i]
            );
        }
    }
    assert!(
        PoolGeom::new(1, 4, 4, 3, 2, 3).is_none(),
        "padding ≥ window is refused"
    );
    assert_eq!(PoolGeom::new(32, 32, 32, 3, 2, 1).unwrap().h_out, 16);
    assert_eq!(PoolGeom::new(32, 16, 16, 3, 2, 1).unwrap().h_out, 8);
    assert_eq!(PoolGeom::new(64, 8, 8, 3, 2, 1).unwrap().h_out, 4);
}

#[test]
fn max_pool_picks_the_first_maximum_of_a_row_major_scan_and_propagates_nan() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for (c, h, w, k, s, p) in POOL_SHAPES {
        let g = PoolGeom::new(c, h, w, k, s, p).unwrap();
        for nan_rate in [0.0, 0.05] {
            // few distinct values: many ties
            let x: Vec<f32> = (0..g.in_len())
                .map(|_| {
                    if rng.random_bool(nan_rate) {
                        f32::NAN
                    } else {
                        rng.random_range(0..3) as f32
                    }
                })
                .collect();
            let mut y = vec![0.0; g.out_len()];
            let mut arg = vec![0u32; g.out_len()];
            g.forward(&x, &mut y, &mut arg);
            for (o, window) in windows(&g).iter().enumerate() {
                let mut best = (x[window[0]], window[0]);
                for &i in &window[1..] {
                    let (v, b) = (x[i], best.0);
                    if v > b || (v.is_nan() && !b.is_nan()) {
                        best = (v, i);
                    }
                }
                assert_eq!(arg[o] as usize, best.1, "{g:?} output {o}");
                assert_eq!(y[o].to_bits(), best.0.to_bits(), "{g:?} output {o}");
            }
        }
    }
}
