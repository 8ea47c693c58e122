//! The GPU backend's kernels against the CPU backend's: every operation on odd shapes, the fused
//! operations against their sequences, both product forms, the dispatches a step costs, and one
//! step of every registered channel on a dense net. (Whole runs, the command line and the
//! device's entry points are tested end to end in `crates/rbprop-cli/tests/it/gpu.rs`; the
//! operations against plain f64 loops in `tests/conformance.rs`.)
//!
//! Tolerances (f32 both sides, sums in another order, the device's exp and tanh):
//! - a sum of k products: |gpu − cpu| ≤ 1e-5·√k · Σ|terms| (+ the same for β·c);
//! - elementwise values: |gpu − cpu| ≤ 1e-6 + 1e-5·|cpu|.
//!
//! The tests need an adapter (lavapipe will do: `apt-get install mesa-vulkan-drivers`); they are
//! skipped with a note when there is none, and fail instead when `RBP_GPU=1` (CI sets it).

use rbprop::backend::UpdateShape;
use rbprop::backend::{Backend, Cpu, DenseGrad, Mat};
use rbprop::channel::{CHANNELS, Channel, ChannelOptions, ChannelSpec, Quantizer};
use rbprop::config::TrainConfig;
use rbprop::kernels::Activation;
use rbprop::kernels::conv::ConvGeom;
use rbprop::kernels::pool::PoolGeom;
use rbprop::model::Net;
use rbprop::quantize::{Alpha, Form, Levels};
use rbprop::rng::{self, Rng};
use rbprop::run::{self};
use rbprop::train::{Sgd, Trainer};
use rbprop_gpu::{Gpu, GpuBuf, ProductForm, supports};

/// Whether a GPU adapter is open for the tests ([`rbprop_gpu::testing::available`]).
pub fn available() -> bool {
    rbprop_gpu::testing::available()
}

fn normal(n: usize, seed: u64) -> Vec<f32> {
    rng::normal_vec(n, 1.0, &mut rng::stream(seed, "gpu-test"))
}

/// Elementwise agreement: |a − b| ≤ 1e-6 + 1e-5·|b|, NaN where NaN.
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (a, b)) in gpu.iter().zip(cpu).enumerate() {
        if b.is_nan() {
            assert!(a.is_nan(), "{what}[{i}]: {a} where the CPU has NaN");
            continue;
        }
        assert!(
            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
            "{what}[{i}]: gpu {a} cpu {b}"
        );
    }
}

fn on_gpu(v: &[f32]) -> rbprop_gpu::GpuBuf {
    Gpu::upload(v)
}

/// The stored `rows × cols` matrix in `buf`, transposed if `t`.
fn op<B: Backend>(buf: &B::Buf, rows: usize, cols: usize, t: bool) -> Mat<'_, B> {
    if t {
        Mat::t(buf, rows, cols)
    } else {
        Mat::new(buf, rows, cols)
    }
}

#[test]
fn gemm_agrees_in_every_transpose_form_on_odd_shapes() {
    if !available() {
        return;
    }
    for (m, k, n) in [(37, 53, 29), (1, 7, 1), (65, 17, 130), (100, 784, 100)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for beta in [0.0f32, 0.5] {
                let a = normal(m * k, 1);
                let b = normal(k * n, 2);
                let c0 = if beta == 0.0 {
                    vec![f32::NAN; m * n + 5] // never read when β = 0
                } else {
                    normal(m * n + 5, 3)
                };
                // stored shapes: op(a) is m × k, op(b) is k × n
                let (ar, ac) = if ta { (k, m) } else { (m, k) };
                let (br, bc) = if tb { (n, k) } else { (k, n) };
                let mut want = c0.clone();
                Cpu::gemm(
                    0.7,
                    op::<Cpu>(&a, ar, ac, ta),
                    op::<Cpu>(&b, br, bc, tb),
                    beta,
                    &mut want,
                );
                // the scale of each entry: Σ|a||b| (and |β·c|)
                let (aa, ba): (Vec<f32>, Vec<f32>) = (
                    a.iter().map(|v| v.abs()).collect(),
                    b.iter().map(|v| v.abs()).collect(),
                );
                let mut scale = c0.iter().map(|v| (beta * v).abs()).collect::<Vec<_>>();
                if beta == 0.0 {
                    scale.fill(0.0);
                }
                Cpu::gemm(
                    0.7,
                    op::<Cpu>(&aa, ar, ac, ta),
                    op::<Cpu>(&ba, br, bc, tb),
                    1.0,
                    &mut scale,
                );
                let (ga, gb) = (on_gpu(&a), on_gpu(&b));
                let mut gc = on_gpu(&c0);
                Gpu::gemm(
                    0.7,
                    op::<Gpu>(&ga, ar, ac, ta),
                    op::<Gpu>(&gb, br, bc, tb),
                    beta,
                    &mut gc,
                );
                let got = Gpu::download(&gc);
                let tol = 1e-5 * (k as f32).sqrt();
                for i in 0..m * n {
                    assert!(
                        (got[i] - want[i]).abs() <= tol * scale[i] + 1e-30,
                        "{m}×{k}×{n} ta {ta} tb {tb} β {beta} [{i}]: gpu {} cpu {}",
                        got[i],
                        want[i]
                    );
                }
                // the values past the product are left alone
                assert_eq!(got[m * n..].len(), 5);
                for (g, c) in got[m * n..].iter().zip(&c0[m * n..]) {
                    assert!(g.to_bits() == c.to_bits(), "past the product: {g} vs {c}");
                }
            }
        }
    }
}

/// Values equal in both product forms (a zero's sign aside): the same multiply-adds in the same
/// order.
fn assert_same_values(what: &str, tiled: &[f32], direct: &[f32]) {
    assert_eq!(tiled.len(), direct.len(), "{what}: lengths");
    for (i, (t, d)) in tiled.iter().zip(direct).enumerate() {
        assert!(t == d, "{what}[{i}]: tiled {t} direct {d}");
    }
}

/// The products' two forms (`RBP_GPU_PRODUCT=tiled|direct`) give the same values: the dense
/// product in every transpose form, and the three products of a convolution, split or not.
#[test]
fn both_product_forms_give_the_same_values() {
    if !available() {
        return;
    }
    let forms = [ProductForm::Tiled, ProductForm::Direct];
    for (m, k, n) in [
        (37, 53, 29),
        (1, 7, 1),
        (65, 17, 130),
        (100, 784, 100),
        (33, 2, 70),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = (on_gpu(&normal(m * k, 1)), on_gpu(&normal(k * n, 2)));
            let c0 = normal(m * n, 3);
            let (ar, ac) = if ta { (k, m) } else { (m, k) };
            let (br, bc) = if tb { (n, k) } else { (k, n) };
            let [tiled, direct] = forms.map(|f| {
                f.scoped(|| {
                    let mut c = on_gpu(&c0);
                    let (oa, ob) = (op::<Gpu>(&a, ar, ac, ta), op::<Gpu>(&b, br, bc, tb));
                    Gpu::gemm(0.7, oa, ob, 0.5, &mut c);
                    Gpu::download(&c)
                })
            });
            assert_same_values(&format!("{m}×{k}×{n} ta {ta} tb {tb}"), &tiled, &direct);
        }
    }
    let mut shapes: Vec<(ConvGeom, usize)> = conv_shapes().into_iter().map(|g| (g, 3)).collect();
    // 32,000 positions: a weight gradient split in parts
    shapes.push((ConvGeom::new(1, 40, 40, 2, 3, 1, 1).unwrap(), 20));
    for (t, (g, batch)) in shapes.into_iter().enumerate() {
        let w = on_gpu(&normal(g.c_out * g.kdim(), 40 + t as u64));
        let bias = on_gpu(&normal(g.c_out, 41));
        let x = on_gpu(&normal(batch * g.in_len(), 42));
        let delta = on_gpu(&normal(batch * g.out_len(), 43));
        let dx0 = normal(batch * g.in_len(), 44);
        let (dw0, db0) = (normal(g.c_out * g.kdim(), 45), normal(g.c_out, 46));
        let [tiled, direct] = forms.map(|f| {
            f.scoped(|| {
                let mut out = Gpu::zeros(batch * g.out_len());
                Gpu::conv_forward(&g, &w, &bias, &x, &mut out, batch);
                let mut dx = on_gpu(&dx0);
                Gpu::conv_backward_data(&g, &w, &delta, &mut dx, batch, 0.5);
                let (mut dw, mut db) = (on_gpu(&dw0), on_gpu(&db0));
                Gpu::conv_weight_grad(&g, &delta, &x, batch, -0.3, 0.9, &mut dw, &mut db);
                [out, dx, dw].map(|v| Gpu::download(&v))
            })
        });
        for (i, op) in ["forward", "backward", "weight gradient"]
            .iter()
            .enumerate()
        {
            assert_same_values(&format!("{op} of {g:?}"), &tiled[i], &direct[i]);
        }
    }
}

#[test]
fn dense_layer_kernels_agree_on_odd_shapes() {
    if !available() {
        return;
    }
    let (rows, cols) = (37, 29);
    let x = normal(rows * cols + 3, 4);
    let bias = normal(cols, 5);
    // add_bias_rows: the first `rows` rows only
    let mut want = x.clone();
    Cpu::add_bias_rows(&mut want, rows - 2, &bias);
    let mut g = on_gpu(&x);
    Gpu::add_bias_rows(&mut g, rows - 2, &on_gpu(&bias));
    assert_close("add_bias_rows", &Gpu::download(&g), &want);
    // bias_grad
    let db0 = normal(cols, 6);
    let mut want = db0.clone();
    Cpu::bias_grad(&x, rows, -0.3, 0.9, &mut want);
    let mut gdb = on_gpu(&db0);
    Gpu::bias_grad(&on_gpu(&x), rows, -0.3, 0.9, &mut gdb);
    let tol_sum = 1e-5 * (rows as f32).sqrt() * rows as f32;
    for (a, b) in Gpu::download(&gdb).iter().zip(&want) {
        assert!((a - b).abs() <= tol_sum, "bias_grad: {a} vs {b}");
    }
    // scale, add_assign, copy
    let y = normal(x.len(), 7);
    let (mut want, mut g) = (x.clone(), on_gpu(&x));
    Cpu::scale(&mut want, 0.37);
    Gpu::scale(&mut g, 0.37);
    assert_close("scale", &Gpu::download(&g), &want);
    Cpu::add_assign(&mut want, &y);
    Gpu::add_assign(&mut g, &on_gpu(&y));
    assert_close("add_assign", &Gpu::download(&g), &want);
    Cpu::copy(&y, &mut want, 100);
    Gpu::copy(&on_gpu(&y), &mut g, 100);
    assert_close("copy", &Gpu::download(&g), &want);
}

/// The fused forward of a dense layer (one dispatch) gives what its unfused sequence gives on
/// the GPU, to the bit, and the CPU's values to f32 rounding; the same for the δ from a signal.
#[test]
fn fused_dense_forward_and_delta_agree_with_their_sequences() {
    if !available() {
        return;
    }
    let (rows, n_in, n_out) = (37, 29, 19);
    let x = normal(rows * n_in + 5, 11);
    let w = normal(n_out * n_in, 12);
    let bias = normal(n_out, 13);
    let acts = [
        Some(Activation::Tanh),
        Some(Activation::Logistic),
        Some(Activation::Relu),
        Some(Activation::Linear),
        None,
    ];
    for f in acts {
        let mut want = vec![0.0; rows * n_out];
        Cpu::dense_forward(&x, &w, &bias, rows, n_in, n_out, f, &mut want);
        let (gx, gw, gb) = (on_gpu(&x), on_gpu(&w), on_gpu(&bias));
        let mut fused = on_gpu(&vec![7.0; rows * n_out]);
        let before = Gpu::dispatches();
        Gpu::dense_forward(&gx, &gw, &gb, rows, n_in, n_out, f, &mut fused);
        assert_eq!(Gpu::dispatches() - before, 1, "{f:?}: one dispatch");
        let fused = Gpu::download(&fused);
        assert_close(&format!("dense_forward {f:?}"), &fused, &want);
        let mut seq = on_gpu(&vec![7.0; rows * n_out]);
        Gpu::gemm(
            1.0,
            Mat::new(&gx, rows, n_in),
            Mat::t(&gw, n_out, n_in),
            0.0,
            &mut seq,
        );
        Gpu::add_bias_rows(&mut seq, rows, &gb);
        if let Some(f) = f {
            Gpu::activate(f, &mut seq, rows * n_out);
        }
        let seq = Gpu::download(&seq);
        assert!(
            fused
                .iter()
                .zip(&seq)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{f:?}: fused and sequence differ"
        );
        // δ from a signal
        let n = rows * n_out - 3;
        let o = want.clone();
        let g = normal(rows * n_out, 14);
        let mut want_d = vec![5.0; rows * n_out];
        Cpu::delta_from_signal(f, &o, &g, &mut want_d, n);
        let mut d = on_gpu(&vec![5.0; rows * n_out]);
        let before = Gpu::dispatches();
        Gpu::delta_from_signal(f, &on_gpu(&o), &on_gpu(&g), &mut d, n);
        assert_eq!(Gpu::dispatches() - before, 1, "{f:?}: one dispatch");
        assert_close(
            &format!("delta_from_signal {f:?}"),
            &Gpu::download(&d),
            &want_d,
        );
    }
    // a signal and its δ in one product: the sequence's bits on the GPU, one dispatch
    let src = normal(rows * n_in, 18);
    for f in acts {
        let o: Vec<f32> = normal(rows * n_out, 19).iter().map(|v| v.tanh()).collect();
        let (gs, gw, go) = (on_gpu(&src), on_gpu(&w), on_gpu(&o));
        let (mut g, mut d) = (
            on_gpu(&vec![3.0; rows * n_out]),
            on_gpu(&vec![4.0; rows * n_out]),
        );
        let before = Gpu::dispatches();
        Gpu::signal_and_delta(
            Mat::new(&gs, rows, n_in),
            Mat::t(&gw, n_out, n_in),
            f,
            &go,
            &mut g,
            &mut d,
        );
        assert_eq!(
            Gpu::dispatches() - before,
            1,
            "{f:?}: signal and δ in one dispatch"
        );
        let (mut g2, mut d2) = (
            on_gpu(&vec![3.0; rows * n_out]),
            on_gpu(&vec![4.0; rows * n_out]),
        );
        Gpu::gemm(
            1.0,
            Mat::new(&gs, rows, n_in),
            Mat::t(&gw, n_out, n_in),
            0.0,
            &mut g2,
        );
        Gpu::delta_from_signal(f, &go, &g2, &mut d2, rows * n_out);
        for (what, fused, seq) in [("g", &g, &g2), ("d", &d, &d2)] {
            let (fused, seq) = (Gpu::download(fused), Gpu::download(seq));
            assert!(
                fused
                    .iter()
                    .zip(&seq)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{f:?} {what}: fused and sequence differ"
            );
        }
    }
    // several layers' gradients grouped (2 to 5 layers of different sizes, fresh and
    // accumulated): the bits of one dispatch per layer
    let sizes = [(29, 19), (19, 33), (33, 7), (7, 64), (64, 10)];
    for count in 2..=sizes.len() {
        for (alpha, beta) in [(-0.05f32, 1.0f32), (0.3, 0.0)] {
            let layers: Vec<_> = sizes[..count]
                .iter()
                .enumerate()
                .map(|(z, &(n_in, n_out))| {
                    let s = 40 + 10 * z as u64;
                    (
                        on_gpu(&normal(rows * n_out, s)),
                        on_gpu(&normal(rows * n_in, s + 1)),
                        normal(n_out * n_in, s + 2),
                        normal(n_out, s + 3),
                        n_in,
                        n_out,
                    )
                })
                .collect();
            let mut grouped: Vec<(GpuBuf, GpuBuf)> = layers
                .iter()
                .map(|l| (on_gpu(&l.2), on_gpu(&l.3)))
                .collect();
            let mut one_by_one = grouped.clone();
            let before = Gpu::dispatches();
            let mut group: Vec<DenseGrad<'_, Gpu>> = layers
                .iter()
                .zip(grouped.iter_mut())
                .map(|(l, (w, b))| DenseGrad {
                    delta: &l.0,
                    x: &l.1,
                    rows,
                    n_in: l.4,
                    n_out: l.5,
                    dw: w,
                    db: b,
                })
                .collect();
            Gpu::dense_weight_grads(&mut group, alpha, beta);
            assert_eq!(
                Gpu::dispatches() - before,
                count.div_ceil(4) as u64,
                "{count} layers: four to a dispatch"
            );
            for (l, (w, b)) in layers.iter().zip(one_by_one.iter_mut()) {
                Gpu::dense_weight_grad(&l.0, &l.1, rows, l.4, l.5, alpha, beta, w, b);
            }
            for (z, ((w, b), (w1, b1))) in grouped.iter().zip(&one_by_one).enumerate() {
                for (what, g, o) in [("dw", w, w1), ("db", b, b1)] {
                    let (g, o) = (Gpu::download(g), Gpu::download(o));
                    assert!(
                        g.iter().zip(&o).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{count} layers, layer {z} {what}, α {alpha} β {beta}: grouped and alone differ"
                    );
                }
            }
        }
    }
    // the weight and bias gradient in one product, fresh and accumulated
    let delta = normal(rows * n_out, 15);
    for (alpha, beta) in [(-0.05f32, 0.0f32), (-0.05, 1.0), (0.3, 0.9)] {
        let (w0, b0) = (normal(n_out * n_in, 16), normal(n_out, 17));
        let (mut want_w, mut want_b) = (w0.clone(), b0.clone());
        Cpu::dense_weight_grad(
            &delta,
            &x,
            rows,
            n_in,
            n_out,
            alpha,
            beta,
            &mut want_w,
            &mut want_b,
        );
        let (mut gw, mut gb) = (on_gpu(&w0), on_gpu(&b0));
        let before = Gpu::dispatches();
        Gpu::dense_weight_grad(
            &on_gpu(&delta),
            &on_gpu(&x),
            rows,
            n_in,
            n_out,
            alpha,
            beta,
            &mut gw,
            &mut gb,
        );
        assert_eq!(Gpu::dispatches() - before, 1, "weight grad: one dispatch");
        let tol = 1e-5 * (rows as f32).sqrt() * rows as f32;
        for (what, gpu, cpu) in [
            ("dw", Gpu::download(&gw), want_w),
            ("db", Gpu::download(&gb), want_b),
        ] {
            for (a, b) in gpu.iter().zip(&cpu) {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{what} α {alpha} β {beta}: {a} vs {b}"
                );
            }
        }
    }
}

/// Dispatches of one training step on the GPU: the paper's MNIST net (four hidden layers of
/// 100) for BP, RBP and SRBP, and a conv net; recorded in BENCHMARKS.md and held here so that
/// an unfused operation cannot slip back in.
#[test]
fn a_dense_step_costs_a_fixed_number_of_dispatches() {
    if !available() {
        return;
    }
    let x = normal(16 * 3 * 32 * 32, 21)
        .iter()
        .map(|v| v.abs().min(1.0))
        .collect::<Vec<f32>>();
    let labels: Vec<u8> = (0..16).map(|i| (i % 10) as u8).collect();
    let mut counts = Vec::new();
    // 34 before the layers' operations were fused (forward: product, bias and activation in
    // one kernel; δ: copy and f' in one; a dense layer's weight and bias gradient in one), 20
    // before a dense route's signal and δ came from one product, 16 before the softmax and the
    // batch's loss totals came from one kernel, 15 before the dense layers' updates were
    // grouped (four to a dispatch)
    for (channel, arch, shape, want) in [
        ("bp", "paper-mnist", (784, 1, 1), 12),
        ("rbp", "paper-mnist", (784, 1, 1), 12),
        ("srbp", "paper-mnist", (784, 1, 1), 12),
        ("srbp", "conv8k5-pool2-fc32", (1, 28, 28), 13),
        ("rbp", "paper-cifar10", (3, 32, 32), 32),
    ] {
        let config = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some(arch.into()),
            batch: 16,
            ..TrainConfig::default()
        };
        let host = run::build_trainer(&config, shape, 10).unwrap();
        let mut t: Trainer<Gpu> = host.to_backend();
        let x = &x[..16 * shape.0 * shape.1 * shape.2];
        t.step(x, &labels); // the first step allocates its scratch
        let before = Gpu::dispatches();
        t.step(x, &labels);
        let n = Gpu::dispatches() - before;
        counts.push((channel, arch, n));
        assert!(
            n <= want,
            "{channel} {arch}: {n} dispatches per step, at most {want} expected"
        );
    }
    eprintln!("dispatches per step: {counts:?}");
}

#[test]
fn buffers_round_trip_and_clones_are_independent() {
    if !available() {
        return;
    }
    let v = normal(1001, 8);
    let mut g = Gpu::upload(&v);
    assert_eq!(Gpu::len(&g), 1001);
    assert_eq!(Gpu::download(&g), v);
    let copy = g.clone();
    Gpu::write(&mut g, &[1.0, 2.0, 3.0]);
    let back = Gpu::download(&g);
    assert_eq!(&back[..3], &[1.0, 2.0, 3.0]);
    assert_eq!(&back[3..], &v[3..]);
    assert_eq!(Gpu::download(&copy), v, "a clone is a copy");
    assert!(copy != g && copy == Gpu::upload(&v));
    assert_eq!(Gpu::download(&Gpu::zeros(70_001)), vec![0.0; 70_001]);
    assert!(Gpu::download(&Gpu::zeros(0)).is_empty());
    // a write lands after the operations recorded before it
    let mut h = Gpu::upload(&[1.0; 4]);
    Gpu::scale(&mut h, 2.0);
    Gpu::write(&mut h, &[5.0]);
    Gpu::scale(&mut h, 10.0);
    assert_eq!(Gpu::download(&h), vec![50.0, 20.0, 20.0, 20.0]);
}

#[test]
fn activations_and_derivatives_agree_for_every_activation() {
    if !available() {
        return;
    }
    // odd length over several workgroups, with large, tiny and exact-zero values
    let mut s = normal(70_001, 9);
    s.iter_mut().step_by(7).for_each(|v| *v *= 30.0);
    s.iter_mut().step_by(11).for_each(|v| *v *= 1e-4);
    s[5] = 0.0;
    s[6] = -0.0;
    let g0 = normal(s.len(), 10);
    let n = s.len() - 3;
    for f in Activation::ALL {
        let (mut want, mut g) = (s.clone(), on_gpu(&s));
        Cpu::activate(f, &mut want, n);
        Gpu::activate(f, &mut g, n);
        let o = Gpu::download(&g);
        assert_close(&format!("{f:?}"), &o, &want);
        let (mut want_d, mut gd) = (g0.clone(), on_gpu(&g0));
        Cpu::mul_derivative(f, &want, &mut want_d, n);
        Gpu::mul_derivative(f, &on_gpu(&want), &mut gd, n);
        assert_close(&format!("{f:?}'"), &Gpu::download(&gd), &want_d);
    }
}

#[test]
fn softmax_cross_entropy_agrees_and_reduces_on_the_device() {
    if !available() {
        return;
    }
    for (batch, classes) in [(37usize, 10usize), (300, 13), (1, 2)] {
        let mut logits = normal(batch * classes + 4, 11);
        logits.iter_mut().for_each(|v| *v *= 4.0);
        let labels: Vec<u8> = (0..batch).map(|e| (e * 7 % classes) as u8).collect();
        let mut want = logits.clone();
        let mut want_d = vec![0.0; batch * classes];
        let l_cpu = Cpu::softmax_cross_entropy(&mut want, &labels, classes, Some(&mut want_d));
        let mut g = on_gpu(&logits);
        let mut gd = Gpu::zeros(batch * classes);
        let l = Gpu::softmax_cross_entropy(&mut g, &labels, classes, Some(&mut gd));
        let l_gpu = Gpu::read_loss(&l);
        assert_close("softmax", &Gpu::download(&g), &want);
        assert_close("δ_L", &Gpu::download(&gd), &want_d);
        assert_eq!(l_gpu.correct, l_cpu.correct);
        assert!(
            (l_gpu.loss_sum - l_cpu.loss_sum).abs() <= 1e-5 * l_cpu.loss_sum.abs().max(1.0),
            "loss {} vs {}",
            l_gpu.loss_sum,
            l_cpu.loss_sum
        );
        // without δ, evaluation's way
        let mut g = on_gpu(&logits);
        let l = Gpu::read_loss(&Gpu::softmax_cross_entropy(&mut g, &labels, classes, None));
        assert_eq!(l.correct, l_cpu.correct);
    }
    // a row that is not finite makes the loss NaN
    let mut x = normal(3 * 4, 12);
    x[5] = f32::INFINITY;
    let mut g = on_gpu(&x);
    let l = Gpu::read_loss(&Gpu::softmax_cross_entropy(&mut g, &[0, 1, 2], 4, None));
    assert!(l.loss_sum.is_nan());
}

#[test]
fn channel_signal_kernels_agree() {
    if !available() {
        return;
    }
    let labels: Vec<u8> = (0..37).map(|e| (e * 5 % 11) as u8).collect();
    let mut want = vec![7.0; 37 * 11 + 2];
    Cpu::neg_one_hot(&labels, 11, &mut want);
    let mut g = on_gpu(&[7.0; 37 * 11 + 2]);
    Gpu::neg_one_hot(&labels, 11, &mut g);
    assert_eq!(Gpu::download(&g), want);
    let mut x = normal(1001, 13);
    x.iter_mut().step_by(9).for_each(|v| *v = 0.0);
    let mut want = vec![3.0; 1001];
    Cpu::sign(&x, &mut want, 999);
    let mut g = on_gpu(&[3.0; 1001]);
    Gpu::sign(&on_gpu(&x), &mut g, 999);
    assert_eq!(Gpu::download(&g), want);
    // sign-symmetric carriers: σ(W)·sign(W), and |M|·sign(W)
    let w = normal(53 * 29, 14);
    let m = normal(53 * 29, 15);
    for mags in [None, Some(&m)] {
        let mut want = vec![0.0; w.len()];
        Cpu::sign_carrier(&w, mags, &mut want);
        let mut g = Gpu::zeros(w.len());
        let gm = mags.map(|m| on_gpu(m));
        Gpu::sign_carrier(&on_gpu(&w), gm.as_ref(), &mut g);
        assert_close("sign_carrier", &Gpu::download(&g), &want);
    }
    // dropout: the same mask from the same stream
    let x = normal(1001, 16);
    let (mut want, mut g) = (x.clone(), on_gpu(&x));
    let mut r1: Rng = rng::stream(3, "channel-noise");
    let mut r2 = r1.clone();
    Cpu::dropout(&mut want, 777, 0.3, &mut r1);
    Gpu::dropout(&mut g, 777, 0.3, &mut r2);
    assert_close("dropout", &Gpu::download(&g), &want);
    assert_eq!(r1, r2, "the streams advance alike");
    // max |x|
    let mut x = normal(70_001, 17);
    x[1234] = -55.0;
    assert_eq!(Gpu::max_abs(&on_gpu(&x), 70_001), Cpu::max_abs(&x, 70_001));
    assert_eq!(Gpu::max_abs(&on_gpu(&x), 1000), Cpu::max_abs(&x, 1000));
    assert_eq!(Gpu::max_abs(&Gpu::zeros(10), 10), None);
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Agreement of sums of `k` products: |gpu − cpu| ≤ 1e-5·√k·scale, `scale` the same sums of
/// the terms' magnitudes.
fn assert_sums_close(what: &str, gpu: &[f32], cpu: &[f32], scale: &[f32], k: usize) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let tol = 1e-5 * (k as f32).sqrt();
    for (i, ((a, b), s)) in gpu.iter().zip(cpu).zip(scale).enumerate() {
        assert!(
            (a - b).abs() <= tol * s + 1e-30,
            "{what}[{i}]: gpu {a} cpu {b} (scale {s})"
        );
    }
}

/// Odd convolutions: channels, maps, kernels, strides and paddings that fill no tile.
fn conv_shapes() -> Vec<ConvGeom> {
    [
        (3, 9, 7, 5, 3, 1, 1),
        (2, 11, 10, 4, 5, 2, 2),
        (1, 13, 13, 7, 5, 1, 0),
        (4, 6, 5, 3, 2, 3, 1),
        (8, 4, 4, 70, 3, 1, 1),
    ]
    .into_iter()
    .map(|(c, h, w, co, k, s, p)| ConvGeom::new(c, h, w, co, k, s, p).unwrap())
    .collect()
}

#[test]
fn convolution_kernels_agree_on_odd_shapes() {
    if !available() {
        return;
    }
    let batch = 3;
    for (t, g) in conv_shapes().into_iter().enumerate() {
        let what = |op: &str| format!("{op} of {g:?}");
        let (ni, no, kd) = (g.in_len(), g.out_len(), g.kdim());
        let w = normal(g.c_out * kd, 20 + t as u64);
        let bias = normal(g.c_out, 30);
        let x = normal(batch * ni + 2, 31);
        // forward
        let mut want = vec![0.0; batch * no + 2];
        Cpu::conv_forward(&g, &w, &bias, &x, &mut want, batch);
        let mut scale = vec![0.0; batch * no + 2];
        Cpu::conv_forward(&g, &abs(&w), &abs(&bias), &abs(&x), &mut scale, batch);
        let mut out = Gpu::upload(&vec![9.0; batch * no + 2]);
        Gpu::conv_forward(
            &g,
            &on_gpu(&w),
            &on_gpu(&bias),
            &on_gpu(&x),
            &mut out,
            batch,
        );
        let got = Gpu::download(&out);
        assert_sums_close(
            &what("forward"),
            &got[..batch * no],
            &want[..batch * no],
            &scale,
            kd,
        );
        assert_eq!(&got[batch * no..], &[9.0, 9.0], "past the batch");
        // the signal sent down, overwriting and blending
        let delta = normal(batch * no, 32);
        for beta in [0.0f32, 0.5] {
            let dx0 = normal(batch * ni, 33);
            let mut want = dx0.clone();
            Cpu::conv_backward_data(&g, &w, &delta, &mut want, batch, beta);
            let mut scale = abs(&dx0);
            scale.iter_mut().for_each(|v| *v *= beta);
            Cpu::conv_backward_data(&g, &abs(&w), &abs(&delta), &mut scale, batch, 1.0);
            let mut dx = on_gpu(&dx0);
            Gpu::conv_backward_data(&g, &on_gpu(&w), &on_gpu(&delta), &mut dx, batch, beta);
            let k = g.c_out * g.k * g.k;
            assert_sums_close(&what("backward"), &Gpu::download(&dx), &want, &scale, k);
        }
        // the gradients, accumulated with momentum's β
        let (dw0, db0) = (normal(w.len(), 34), normal(g.c_out, 35));
        let (mut want_w, mut want_b) = (dw0.clone(), db0.clone());
        Cpu::conv_weight_grad(&g, &delta, &x, batch, -0.3, 0.9, &mut want_w, &mut want_b);
        let (mut sw, mut sb) = (abs(&dw0), abs(&db0));
        sw.iter_mut().chain(sb.iter_mut()).for_each(|v| *v *= 0.9);
        Cpu::conv_weight_grad(
            &g,
            &abs(&delta),
            &abs(&x),
            batch,
            0.3,
            1.0,
            &mut sw,
            &mut sb,
        );
        let (mut dw, mut db) = (on_gpu(&dw0), on_gpu(&db0));
        Gpu::conv_weight_grad(
            &g,
            &on_gpu(&delta),
            &on_gpu(&x),
            batch,
            -0.3,
            0.9,
            &mut dw,
            &mut db,
        );
        let k = batch * g.positions();
        assert_sums_close(
            &what("weight gradient"),
            &Gpu::download(&dw),
            &want_w,
            &sw,
            k,
        );
        assert_sums_close(&what("bias gradient"), &Gpu::download(&db), &want_b, &sb, k);
    }
    // a gradient summed over many positions is split in parts, summed in a fixed order
    let g = ConvGeom::new(1, 40, 40, 2, 3, 1, 1).unwrap();
    let batch = 20; // 32,000 positions
    let (delta, x) = (
        normal(batch * g.out_len(), 36),
        normal(batch * g.in_len(), 37),
    );
    let (mut want_w, mut want_b) = (vec![0.0; 2 * 9], vec![0.0; 2]);
    Cpu::conv_weight_grad(&g, &delta, &x, batch, 1.0, 0.0, &mut want_w, &mut want_b);
    let (mut sw, mut sb) = (vec![0.0; 18], vec![0.0; 2]);
    Cpu::conv_weight_grad(
        &g,
        &abs(&delta),
        &abs(&x),
        batch,
        1.0,
        0.0,
        &mut sw,
        &mut sb,
    );
    let (gd, gx) = (on_gpu(&delta), on_gpu(&x));
    let (mut dw, mut db) = (Gpu::zeros(18), Gpu::zeros(2));
    Gpu::conv_weight_grad(&g, &gd, &gx, batch, 1.0, 0.0, &mut dw, &mut db);
    let k = batch * g.positions();
    let first = Gpu::download(&dw);
    assert_sums_close("split weight gradient", &first, &want_w, &sw, k);
    assert_sums_close("split bias gradient", &Gpu::download(&db), &want_b, &sb, k);
    Gpu::conv_weight_grad(&g, &gd, &gx, batch, 1.0, 0.0, &mut dw, &mut db);
    assert_eq!(Gpu::download(&dw), first, "the same sums, the same bits");
}

#[test]
fn pooling_agrees_bit_for_bit_with_ties_and_nan() {
    if !available() {
        return;
    }
    let batch = 3;
    for (c, h, w, k, s, pad) in [
        (3, 9, 7, 3, 2, 1),
        (2, 8, 8, 2, 2, 0),
        (1, 7, 7, 3, 1, 0),
        (5, 5, 6, 3, 3, 2),
    ] {
        let p = PoolGeom::new(c, h, w, k, s, pad).unwrap();
        let (ni, no) = (p.in_len(), p.out_len());
        // values on a coarse grid (ties) and a NaN
        let mut x: Vec<f32> = normal(batch * ni, 40)
            .iter()
            .map(|v| (v * 2.0).round())
            .collect();
        x[ni + 4] = f32::NAN;
        let (mut y, mut arg) = (vec![0.0; batch * no], vec![0u32; batch * no]);
        Cpu::pool_forward(&p, &x, &mut y, &mut arg, batch);
        let mut gy = Gpu::zeros(batch * no);
        let mut garg = Gpu::index_zeros(batch * no);
        Gpu::pool_forward(&p, &on_gpu(&x), &mut gy, &mut garg, batch);
        assert_eq!(garg.download(), arg, "{p:?}: positions of the maxima");
        let got = Gpu::download(&gy);
        for (a, b) in got.iter().zip(&y) {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{p:?}: {a} vs {b}"
            );
        }
        assert!(got.iter().any(|v| v.is_nan()), "the NaN wins its windows");
        for beta in [0.0f32, 0.5] {
            let src = normal(batch * no, 41);
            let dst0 = normal(batch * ni, 42);
            let mut want = dst0.clone();
            Cpu::unpool(&p, &src, &arg, &mut want, batch, beta);
            let mut dst = on_gpu(&dst0);
            Gpu::unpool(&p, &on_gpu(&src), &garg, &mut dst, batch, beta);
            let got = Gpu::download(&dst);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{p:?} β {beta}: unpooling differs"
            );
        }
        let copy = garg.clone();
        assert_eq!(copy.download(), arg, "a clone of the positions");
    }
}

/// Entries of `gpu` and `cpu` more than `tol` apart.
fn differing(gpu: &[f32], cpu: &[f32], tol: f32) -> usize {
    gpu.iter()
        .zip(cpu)
        .filter(|(a, b)| (*a - *b).abs() > tol)
        .count()
}

#[test]
fn the_signal_quantizer_agrees_in_both_forms_with_its_census() {
    if !available() {
        return;
    }
    // with exact zeros (no signal: they stay zero in both forms, and count as zeros)
    let mut x = normal(10_007, 43);
    for v in x.iter_mut().step_by(7) {
        *v = 0.0;
    }
    x[1] = -0.0;
    for form in [Form::MidRise, Form::MidTread] {
        for bits in [1u32, 2, 3, 4, 8, 16] {
            if form == Form::MidTread && bits == 1 {
                continue;
            }
            let levels = Levels {
                form,
                alpha: 1.37,
                bits,
            };
            let mut want = x.clone();
            let census = Cpu::quantize(&mut want, 10_000, levels, true);
            let mut g = on_gpu(&x);
            let got_census = Gpu::quantize(&mut g, 10_000, levels, true);
            let got = Gpu::download(&g);
            assert_eq!(got_census, census, "{form:?} {bits}: census");
            assert!(
                census.unwrap().0 >= 10_000 / 7,
                "{form:?} {bits}: zeros uncounted"
            );
            for (i, v) in x[..10_000].iter().enumerate() {
                if *v == 0.0 {
                    assert_eq!(
                        got[i].to_bits(),
                        v.to_bits(),
                        "{form:?} {bits}: zero at {i}"
                    );
                }
            }
            assert_eq!(&got[10_000..], &x[10_000..], "past n");
            // a value on a level's boundary may round either way under the device's division
            let n = differing(&got, &want, 1e-6);
            assert!(
                n <= 2,
                "{form:?} {bits} bits: {n} values quantize differently"
            );
            assert_eq!(Gpu::quantize(&mut g, 10, levels, false), None);
        }
    }
}

#[test]
fn quantized_updates_agree_dense_and_conv_nearest_and_stochastic() {
    if !available() {
        return;
    }
    let batch = 7;
    let conv = ConvGeom::new(2, 7, 6, 3, 3, 1, 1).unwrap();
    let shapes = [
        UpdateShape {
            conv: None,
            n_in: 29,
            n_out: 13,
        },
        UpdateShape {
            conv: Some(conv),
            n_in: conv.in_len(),
            n_out: conv.out_len(),
        },
    ];
    for shape in shapes {
        let (nw, nb) = match shape.conv {
            None => (shape.n_in * shape.n_out, shape.n_out),
            Some(g) => (g.c_out * g.kdim(), g.c_out),
        };
        let delta = normal(batch * shape.n_out, 44);
        let input = normal(batch * shape.n_in, 45);
        for text in ["4", "8:auto:stochastic", "6:0.05", "16:auto"] {
            let q = Quantizer::parse(text, "q").unwrap();
            let (w0, b0) = (normal(nw, 46), normal(nb, 47));
            let alpha0 = match q.alpha {
                Alpha::Auto => 0.0,
                Alpha::Fixed(a) => a,
            };
            let key = (q.rounding == rbprop::quantize::Rounding::Stochastic).then_some(0xfeed);
            let (mut w, mut b, mut a) = (w0.clone(), b0.clone(), alpha0);
            Cpu::quantized_update(
                shape, &mut w, &mut b, &delta, &input, batch, 0.1, q, &mut a, key,
            );
            let (mut gw, mut gb, mut ga) = (on_gpu(&w0), on_gpu(&b0), alpha0);
            Gpu::quantized_update(
                shape,
                &mut gw,
                &mut gb,
                &on_gpu(&delta),
                &on_gpu(&input),
                batch,
                0.1,
                q,
                &mut ga,
                key,
            );
            let what = format!(
                "{text} on {:?}",
                shape.conv.map(|_| "conv").unwrap_or("dense")
            );
            assert!((ga - a).abs() <= 1e-5 * a, "{what}: scale {ga} vs {a}");
            // sums of whole steps: equal but where a product lands on a rounding boundary
            let unit = a / q.levels(a, Form::MidTread).steps() / batch as f32;
            let (got_w, got_b) = (Gpu::download(&gw), Gpu::download(&gb));
            let tol = 1e-6 + 1e-6 * a;
            let n = differing(&got_w, &w, tol) + differing(&got_b, &b, tol);
            // (the dense products are the CPU's to the bit; a convolution's gradient is summed
            // in another order, so its values near a boundary go either way more often)
            let share = if shape.conv.is_some() { 10 } else { 100 };
            assert!(
                n * share <= nw + nb,
                "{what}: {n} of {} entries differ",
                nw + nb
            );
            for (g, c) in got_w.iter().zip(&w).chain(got_b.iter().zip(&b)) {
                assert!(
                    (g - c).abs() <= unit + tol,
                    "{what}: {g} vs {c} (a step is {unit})"
                );
            }
            // the update moved the weights by whole steps
            assert!(
                differing(&got_w, &w0, tol) > nw / 4,
                "{what}: the weights barely moved"
            );
        }
    }
}

fn channel(net: &Net, name: &str, options: &ChannelOptions) -> Channel {
    Channel::new(
        &ChannelSpec::parse(name, false).unwrap(),
        options,
        net,
        &mut rng::stream(2, "feedback"),
        rng::stream(2, "channel-noise"),
    )
    .unwrap()
}

#[test]
fn every_channel_takes_the_cpus_steps_on_a_dense_net() {
    if !available() {
        return;
    }
    let sizes = [53, 37, 29, 31, 10];
    let net = Net::new(&sizes, Activation::Tanh, &mut rng::stream(2, "init"));
    let x = normal(45 * 53, 18);
    let y: Vec<u8> = (0..45).map(|e| (e * 3 % 10) as u8).collect();
    let sgd = Sgd {
        lr: 0.05,
        decay: 1e-4,
        momentum: 0.5,
        weight_decay: 1e-3,
    };
    // every channel as its example sets it up, and a few with channel dropout (the mask drawn
    // on the host from the same stream)
    let with_dropout = |name: &'static str| {
        let options = ChannelOptions {
            dropout: 0.3,
            ..ChannelOptions::default()
        };
        (name, options)
    };
    let cases = CHANNELS
        .iter()
        .map(|kind| (kind.name, kind.example_options(sizes.len() - 2)))
        .chain(["bp", "rbp", "srbp"].map(with_dropout));
    for (name, options) in cases {
        let ch = channel(&net, name, &options);
        supports(&net, &ch).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut cpu = Trainer::new(net.clone(), ch.clone(), sgd);
        let mut gpu: Trainer<Gpu> = cpu.to_backend();
        for step in 0..3 {
            let a = cpu.step(&x, &y);
            let b = gpu.step(&x, &y);
            // an example whose two largest logits tie to f32 rounding may go either way
            assert!(a.correct.abs_diff(b.correct) <= 1, "{name} step {step}");
            assert!(
                (a.loss_sum - b.loss_sum).abs() <= 1e-4 * a.loss_sum,
                "{} step {step}: loss {} vs {}",
                name,
                a.loss_sum,
                b.loss_sum
            );
        }
        let back: Trainer = gpu.to_backend();
        for (l, (c, g)) in cpu.net.layers.iter().zip(&back.net.layers).enumerate() {
            let worst =
                c.w.iter()
                    .zip(&g.w)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{} layer {l}: weights differ by {worst}",
                name
            );
        }
    }
}
