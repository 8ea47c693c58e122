//! The GPU backend (`rbprop-gpu`) against the CPU backend: every kernel on odd shapes, one step
//! of every channel on a dense net, whole BP / RBP / SRBP runs, determinism on one adapter, and
//! what it refuses.
//!
//! Tolerances (f32 both sides, sums in another order, the device's exp and tanh):
//! - a sum of k products: |gpu − cpu| ≤ 1e-5·√k · Σ|terms| (+ the same for β·c);
//! - elementwise values: |gpu − cpu| ≤ 1e-6 + 1e-5·|cpu|;
//! - training: per-epoch losses within 1e-3 (relative), accuracies within 0.5 points, after 3
//!   epochs.
//!
//! The tests that need an adapter (lavapipe will do: `apt-get install mesa-vulkan-drivers`) are
//! skipped with a note when there is none, and fail instead when `RBP_GPU=1` (CI sets it).

use super::cli::rbp;
use rbprop::backend::{Backend, Cpu, Mat};
use rbprop::channel::{CHANNELS, Channel, ChannelOptions, ChannelSpec, Quantizer};
use rbprop::config::{Device, TrainConfig};
use rbprop::data;
use rbprop::kernels::Activation;
use rbprop::model::{Net, parse_arch};
use rbprop::rng::{self, Rng};
use rbprop::run::{self, EpochMetrics, Silent};
use rbprop::train::{Sgd, Trainer};
use rbprop_gpu::{Gpu, supports};

/// Whether a GPU adapter is open for the tests: those that need one are skipped with a note
/// without one, unless `RBP_GPU=1` requires it.
pub fn available() -> bool {
    match Gpu::init(None) {
        Ok(_) => true,
        Err(e) if std::env::var("RBP_GPU").as_deref() == Ok("1") => {
            panic!("RBP_GPU=1 requires a GPU adapter: {e}")
        }
        Err(e) => {
            eprintln!("skipped (no GPU adapter: {e}; RBP_GPU=1 makes this a failure)");
            false
        }
    }
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

fn small(channel: &str, seed: u64) -> TrainConfig {
    TrainConfig {
        channel: channel.into(),
        hidden: vec![64, 32],
        epochs: 3,
        train_limit: Some(2000),
        seed,
        ..TrainConfig::default()
    }
}

fn on_device(config: &TrainConfig, split: &data::Split) -> rbprop::Result<Vec<EpochMetrics>> {
    let config = TrainConfig {
        device: Device::Gpu,
        ..config.clone()
    };
    run::run_locked_on::<Gpu>(&config, split, None, &mut Silent, &|t| {
        supports(&t.net, &t.channel).map_err(|p| rbprop::Error::config("device", p))
    })
}

#[test]
fn bp_rbp_and_srbp_train_like_the_cpu_and_repeat_exactly() {
    if !available() {
        return;
    }
    let split = data::embedded();
    for name in ["bp", "rbp", "srbp"] {
        let config = small(name, 3);
        let cpu = run::run(&config, &split, None, &mut Silent).unwrap();
        let a = on_device(&config, &split).unwrap();
        assert_eq!(a.len(), 3);
        for (c, g) in cpu.iter().zip(&a) {
            for (what, x, y) in [
                ("train loss", c.train_loss, g.train_loss),
                ("test loss", c.test_loss, g.test_loss),
            ] {
                assert!(
                    (x - y).abs() <= 1e-3 * x,
                    "{name} epoch {}: {what} cpu {x} gpu {y}",
                    c.epoch
                );
            }
            for (what, x, y) in [
                ("train acc", c.train_acc, g.train_acc),
                ("test acc", c.test_acc, g.test_acc),
            ] {
                assert!(
                    (x - y).abs() <= 0.005,
                    "{name} epoch {}: {what} cpu {x} gpu {y}",
                    c.epoch
                );
            }
            assert_eq!((c.steps, c.lr), (g.steps, g.lr));
        }
        // the same seed on the same adapter: the same numbers, to the bit
        let b = on_device(&config, &split).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.train_loss, x.train_acc, x.test_loss, x.test_acc),
                (y.train_loss, y.train_acc, y.test_loss, y.test_acc),
                "{name}: a rerun differs"
            );
        }
    }
}

#[test]
fn what_the_gpu_lacks_is_refused_by_name() {
    // no adapter needed: the check reads the host net and channel
    let dense = Net::new(
        &[20, 8, 6, 3],
        Activation::Tanh,
        &mut rng::stream(1, "init"),
    );
    let q = |s: &str| Some(Quantizer::parse(s, "q").unwrap());
    for (options, name) in [
        (
            ChannelOptions {
                quantize_signal: q("4"),
                ..Default::default()
            },
            "quantize-signal",
        ),
        (
            ChannelOptions {
                quantize_update: q("4"),
                ..Default::default()
            },
            "quantize-update",
        ),
    ] {
        let e = supports(&dense, &channel(&dense, "rbp", &options)).unwrap_err();
        assert!(e.contains(name) && e.contains("--device cpu"), "{e}");
    }
    let conv = Net::from_arch(
        (1, 8, 8),
        &parse_arch("conv4k3p1-pool2s2-fc6").unwrap(),
        3,
        Activation::Tanh,
        &mut rng::stream(1, "init"),
    )
    .unwrap();
    for name in ["bp", "rbp", "srbp"] {
        let e = supports(&conv, &channel(&conv, name, &ChannelOptions::default())).unwrap_err();
        assert!(
            e.contains("convolutions or pooling") && e.contains("conv4k3"),
            "{e}"
        );
    }
    // everything else of a dense net is accepted: every channel, dropout
    for kind in CHANNELS {
        let options = ChannelOptions {
            dropout: if kind.hidden_signal { 0.2 } else { 0.0 },
            ..kind.example_options(2)
        };
        supports(&dense, &channel(&dense, kind.name, &options)).unwrap();
    }
}

#[test]
fn refused_runs_fail_before_training_and_devices_share_an_identity() {
    let config = small("rbp", 1);
    let gpu_config = TrainConfig {
        device: Device::Gpu,
        ..config.clone()
    };
    assert_eq!(config.identity_text(), gpu_config.identity_text());
    assert_eq!(config.identity(), gpu_config.identity());
    // the CPU entry points do not run a GPU configuration
    let split = data::embedded();
    let e = run::run(&gpu_config, &split, None, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("--device gpu"), "{e}");
    if !available() {
        return;
    }
    let quantized = TrainConfig {
        channel_options: ChannelOptions {
            quantize_signal: Some(Quantizer::parse("2", "q").unwrap()),
            ..Default::default()
        },
        ..config
    };
    let e = on_device(&quantized, &split).unwrap_err().to_string();
    assert!(
        e.contains("quantize-signal") && e.contains("--device cpu"),
        "{e}"
    );
}

#[test]
fn the_command_line_takes_device_and_adapter() {
    // --device is printed with the settings; --adapter needs --device gpu
    let o = rbp(&["train", "--device", "gpu", "--print-config"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("device = \"gpu\""));
    let o = rbp(&["train", "--print-config"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("device = \"cpu\""));
    let o = rbp(&["train", "--adapter", "x", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --device gpu"));
    let o = rbp(&["train", "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    if !available() {
        return;
    }
    let args = [
        "train",
        "--device",
        "gpu",
        "--channel",
        "srbp",
        "--hidden",
        "16",
        "--train-limit",
        "300",
        "--epochs",
        "1",
    ];
    let o = rbp(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("adapter") && out.contains("epoch   1/1"),
        "{out}"
    );
    let o = rbp(&[&args[..], &["--adapter", "no-such-adapter-anywhere"]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no GPU adapter named like"));
    let o = rbp(&[&args[..], &["--arch", "conv4k5-pool2s2-fc16"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not available on --device gpu"), "{err}");
}
