//! A second backend behind the seam: plain loops in f64, written here from the definitions, and
//! the same trainer driving it. Every registered channel, on a dense net and on a conv net with
//! pooling, must take the same step on it as on the CPU backend, to f32 rounding — so the
//! trainer, the model and the channels reach their arithmetic only through `Backend`.

use super::gradcheck::LR;
use super::reference;
use rbprop::backend::{Backend, Cpu, Mat, UpdateShape};
use rbprop::channel::quantize::{Levels, Quantizer};
use rbprop::channel::{CHANNELS, Channel, ChannelSpec};
use rbprop::kernels::Activation;
use rbprop::kernels::conv::ConvGeom;
use rbprop::kernels::loss::BatchLoss;
use rbprop::kernels::pool::PoolGeom;
use rbprop::model::{Net, parse_arch};
use rbprop::rng::{self, Rng};
use rbprop::train::{Sgd, Trainer};

/// The reference backend: f64 buffers, naive loops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct F64;

fn at(m: &Mat<'_, F64>, r: usize, c: usize) -> f64 {
    if m.trans {
        m.buf[c * m.cols + r]
    } else {
        m.buf[r * m.cols + c]
    }
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `(c, y, x)` of the input map read by output position `(oy, ox)` and kernel tap `(ky, kx)`,
/// or `None` in the zero padding.
fn tap(g: &ConvGeom, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let y = (oy * g.stride + ky).checked_sub(g.pad)?;
    let x = (ox * g.stride + kx).checked_sub(g.pad)?;
    (y < g.h && x < g.w).then_some((y, x))
}

impl Backend for F64 {
    type Device = ();

    fn current_device() -> Option<()> {
        Some(())
    }

    fn enter<T>(_: (), f: impl FnOnce() -> T) -> T {
        f()
    }

    type Buf = Vec<f64>;
    type Index = Vec<u32>;
    type Loss = BatchLoss;
    const NAME: &'static str = "f64-reference";

    fn zeros(n: usize) -> Vec<f64> {
        vec![0.0; n]
    }
    fn upload(host: &[f32]) -> Vec<f64> {
        host.iter().map(|v| *v as f64).collect()
    }
    fn download(buf: &Vec<f64>) -> Vec<f32> {
        buf.iter().map(|v| *v as f32).collect()
    }
    fn write(buf: &mut Vec<f64>, host: &[f32]) {
        buf.iter_mut().zip(host).for_each(|(b, h)| *b = *h as f64);
    }
    fn len(buf: &Vec<f64>) -> usize {
        buf.len()
    }
    fn index_zeros(n: usize) -> Vec<u32> {
        vec![0; n]
    }

    fn gemm(alpha: f32, a: Mat<'_, F64>, b: Mat<'_, F64>, beta: f32, c: &mut Vec<f64>) {
        let (m, k, n) = (a.op_rows(), a.op_cols(), b.op_cols());
        assert_eq!(k, b.op_rows(), "inner dimensions");
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| at(&a, i, p) * at(&b, p, j)).sum();
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * n + j]
                };
                c[i * n + j] = alpha as f64 * s + old;
            }
        }
    }
    fn add_bias_rows(x: &mut Vec<f64>, rows: usize, bias: &Vec<f64>) {
        for r in 0..rows {
            for (j, b) in bias.iter().enumerate() {
                x[r * bias.len() + j] += b;
            }
        }
    }
    fn bias_grad(delta: &Vec<f64>, rows: usize, alpha: f32, beta: f32, db: &mut Vec<f64>) {
        let n = db.len();
        for (j, d) in db.iter_mut().enumerate() {
            let s: f64 = (0..rows).map(|r| delta[r * n + j]).sum();
            *d = beta as f64 * *d + alpha as f64 * s;
        }
    }
    fn scale(x: &mut Vec<f64>, s: f32) {
        x.iter_mut().for_each(|v| *v *= s as f64);
    }
    fn add_assign(x: &mut Vec<f64>, y: &Vec<f64>) {
        x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
    }
    fn copy(src: &Vec<f64>, dst: &mut Vec<f64>, n: usize) {
        dst[..n].copy_from_slice(&src[..n]);
    }

    fn activate(f: Activation, x: &mut Vec<f64>, n: usize) {
        for v in &mut x[..n] {
            *v = match f {
                Activation::Tanh => v.tanh(),
                Activation::Logistic => 1.0 / (1.0 + (-*v).exp()),
                Activation::Relu => v.max(0.0),
                Activation::Linear => *v,
            };
        }
    }
    fn mul_derivative(f: Activation, o: &Vec<f64>, g: &mut Vec<f64>, n: usize) {
        for (g, o) in g[..n].iter_mut().zip(o) {
            *g *= match f {
                Activation::Tanh => 1.0 - o * o,
                Activation::Logistic => o * (1.0 - o),
                Activation::Relu => f64::from(u8::from(*o > 0.0)),
                Activation::Linear => 1.0,
            };
        }
    }
    fn softmax_cross_entropy(
        logits: &mut Vec<f64>,
        labels: &[u8],
        classes: usize,
        mut delta: Option<&mut Vec<f64>>,
    ) -> BatchLoss {
        let mut out = BatchLoss::default();
        for (e, &y) in labels.iter().enumerate() {
            let row = &mut logits[e * classes..(e + 1) * classes];
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            // no maximum when the logits are NaN: the loss is NaN then
            let argmax = row.iter().position(|v| *v == max).unwrap_or(0);
            out.correct += usize::from(argmax == y as usize);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            out.loss_sum += sum.ln() - (row[y as usize] - max);
            row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
            if let Some(d) = delta.as_deref_mut() {
                for j in 0..classes {
                    d[e * classes + j] = row[j] - f64::from(u8::from(j == y as usize));
                }
            }
        }
        out
    }
    fn read_loss(loss: &BatchLoss) -> BatchLoss {
        *loss
    }

    // reads back late, like a device's backend: an epoch must count the same totals
    const LOSS_READ_INTERVAL: usize = 7;

    fn conv_forward(
        g: &ConvGeom,
        w: &Vec<f64>,
        b: &Vec<f64>,
        x: &Vec<f64>,
        out: &mut Vec<f64>,
        batch: usize,
    ) {
        let (ni, no, k) = (g.in_len(), g.out_len(), g.k);
        for e in 0..batch {
            for co in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut s = b[co];
                        for ci in 0..g.c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    if let Some((y, xx)) = tap(g, oy, ox, ky, kx) {
                                        s += w[((co * g.c_in + ci) * k + ky) * k + kx]
                                            * x[e * ni + (ci * g.h + y) * g.w + xx];
                                    }
                                }
                            }
                        }
                        out[e * no + (co * g.h_out + oy) * g.w_out + ox] = s;
                    }
                }
            }
        }
    }
    fn conv_backward_data(
        g: &ConvGeom,
        weights: &Vec<f64>,
        delta: &Vec<f64>,
        dx: &mut Vec<f64>,
        batch: usize,
        beta: f32,
    ) {
        let (ni, no, k) = (g.in_len(), g.out_len(), g.k);
        for v in &mut dx[..batch * ni] {
            *v = if beta == 0.0 { 0.0 } else { beta as f64 * *v };
        }
        for e in 0..batch {
            for co in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let d = delta[e * no + (co * g.h_out + oy) * g.w_out + ox];
                        for ci in 0..g.c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    if let Some((y, xx)) = tap(g, oy, ox, ky, kx) {
                                        dx[e * ni + (ci * g.h + y) * g.w + xx] +=
                                            weights[((co * g.c_in + ci) * k + ky) * k + kx] * d;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    fn conv_weight_grad(
        g: &ConvGeom,
        delta: &Vec<f64>,
        input: &Vec<f64>,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut Vec<f64>,
        db: &mut Vec<f64>,
    ) {
        let (ni, no, k) = (g.in_len(), g.out_len(), g.k);
        let mut gw = vec![0.0; dw.len()];
        let mut gb = vec![0.0; db.len()];
        for e in 0..batch {
            for co in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let d = delta[e * no + (co * g.h_out + oy) * g.w_out + ox];
                        gb[co] += d;
                        for ci in 0..g.c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    if let Some((y, xx)) = tap(g, oy, ox, ky, kx) {
                                        gw[((co * g.c_in + ci) * k + ky) * k + kx] +=
                                            d * input[e * ni + (ci * g.h + y) * g.w + xx];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (a, b) = (alpha as f64, beta as f64);
        dw.iter_mut()
            .zip(&gw)
            .for_each(|(w, g)| *w = b * *w + a * g);
        db.iter_mut()
            .zip(&gb)
            .for_each(|(w, g)| *w = b * *w + a * g);
    }
    fn pool_forward(
        p: &PoolGeom,
        x: &Vec<f64>,
        y: &mut Vec<f64>,
        arg: &mut Vec<u32>,
        batch: usize,
    ) {
        let (ni, no) = (p.in_len(), p.out_len());
        for e in 0..batch {
            for c in 0..p.c {
                for oy in 0..p.h_out {
                    for ox in 0..p.w_out {
                        // the first maximum of a row-major scan of the window's real inputs
                        let mut best: Option<(f64, usize)> = None;
                        for ky in 0..p.k {
                            for kx in 0..p.k {
                                let (Some(yy), Some(xx)) = (
                                    (oy * p.stride + ky).checked_sub(p.pad),
                                    (ox * p.stride + kx).checked_sub(p.pad),
                                ) else {
                                    continue;
                                };
                                if yy >= p.h || xx >= p.w {
                                    continue;
                                }
                                let at = (c * p.h + yy) * p.w + xx;
                                let v = x[e * ni + at];
                                if best.is_none_or(|(m, _)| v > m) {
                                    best = Some((v, at));
                                }
                            }
                        }
                        let (v, at) = best.expect("every window holds an input");
                        let o = e * no + (c * p.h_out + oy) * p.w_out + ox;
                        y[o] = v;
                        arg[o] = at as u32;
                    }
                }
            }
        }
    }
    fn unpool(
        p: &PoolGeom,
        src: &Vec<f64>,
        arg: &Vec<u32>,
        dst: &mut Vec<f64>,
        batch: usize,
        beta: f32,
    ) {
        let (ni, no) = (p.in_len(), p.out_len());
        for v in &mut dst[..batch * ni] {
            *v = if beta == 0.0 { 0.0 } else { beta as f64 * *v };
        }
        for e in 0..batch {
            for o in 0..no {
                dst[e * ni + arg[e * no + o] as usize] += src[e * no + o];
            }
        }
    }

    fn neg_one_hot(labels: &[u8], classes: usize, out: &mut Vec<f64>) {
        for (e, &y) in labels.iter().enumerate() {
            for j in 0..classes {
                out[e * classes + j] = -f64::from(u8::from(j == y as usize));
            }
        }
    }
    fn sign(src: &Vec<f64>, out: &mut Vec<f64>, n: usize) {
        for i in 0..n {
            out[i] = sign(src[i]);
        }
    }
    fn sign_carrier(w: &Vec<f64>, magnitudes: Option<&Vec<f64>>, out: &mut Vec<f64>) {
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        for (i, o) in out.iter_mut().enumerate() {
            *o = magnitudes.map_or(sd, |m| m[i].abs()) * sign(w[i]);
        }
    }
    fn dropout(g: &mut Vec<f64>, n: usize, rate: f32, rng: &mut Rng) {
        // the same mask as every backend: n u32 draws, kept below (1 − r)·2³²
        let keep = 1.0 - rate as f64;
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let mut mask = vec![0u32; n];
        rand::Rng::fill(rng, &mut mask[..]);
        for (v, m) in g[..n].iter_mut().zip(mask) {
            *v = if m < threshold { *v / keep } else { 0.0 };
        }
    }
    fn max_abs(x: &Vec<f64>, n: usize) -> Option<f32> {
        let m = x[..n].iter().fold(0.0f64, |m, v| m.max(v.abs())) as f32;
        (m.is_finite() && m > 0.0).then_some(m)
    }
    fn quantize(
        g: &mut Vec<f64>,
        n: usize,
        levels: Levels,
        census: bool,
    ) -> Option<(usize, usize)> {
        let (mut zero, mut clipped) = (0, 0);
        for v in &mut g[..n] {
            let q = levels.apply(*v as f32) as f64;
            zero += usize::from(q == 0.0);
            clipped += usize::from(v.abs() > levels.alpha as f64);
            *v = q;
        }
        census.then_some((zero, clipped))
    }
    fn quantized_update(
        _: UpdateShape,
        _: &mut Vec<f64>,
        _: &mut Vec<f64>,
        _: &Vec<f64>,
        _: &Vec<f64>,
        _: usize,
        _: f64,
        _: Quantizer,
        _: &mut f32,
        _: Option<u64>,
    ) {
        unreachable!("the f64 reference backend is not used with quantized updates");
    }
}

/// One step of the host trainer (`Cpu`) and of its copy on `F64` from the same net, channel and
/// batch; the worst relative difference of any layer's weights after the step, and the losses.
fn step_both(net: Net, channel: Channel, x: &[f32], y: &[u8]) -> (f64, f64, f64) {
    let sgd = Sgd {
        lr: LR,
        decay: 0.0,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    let mut theirs: Trainer<F64> = Trainer::new(net.to_backend(), channel.to_backend(), sgd);
    let mut mine: Trainer<Cpu> = Trainer::new(net.clone(), channel, sgd);
    let a = mine.step(x, y).loss_sum;
    let b = theirs.step(x, y).loss_sum;
    let back: Net = theirs.net.to_backend();
    let mut worst: f64 = 0.0;
    for ((l0, l1), l2) in net.layers.iter().zip(&mine.net.layers).zip(&back.layers) {
        let d = |a: &[f32], b: &[f32]| -> Vec<f64> {
            a.iter().zip(b).map(|(x, y)| (*y - *x) as f64).collect()
        };
        let (mine_dw, ref_dw) = (d(&l0.w, &l1.w), d(&l0.w, &l2.w));
        worst = worst.max(reference::rel_err(&mine_dw, &ref_dw));
    }
    (worst, a, b)
}

fn build(net: &Net, name: &str, seed: u64) -> Option<Channel> {
    let spec = ChannelSpec::parse(name, false).unwrap();
    let options = spec.kind.example_options(net.depth() - 1);
    Channel::new(
        &spec,
        &options,
        net,
        &mut rng::stream(seed, "feedback"),
        rng::stream(seed, "noise"),
    )
    .ok()
}

#[test]
fn every_channel_takes_the_same_step_on_the_f64_backend() {
    let sizes = [12, 9, 7, 8, 3];
    let (xs, ys) = reference::batch(6, sizes[0], 3, 21);
    let x = reference::flat(&xs);
    for act in [Activation::Tanh, Activation::Relu] {
        let net = Net::new(&sizes, act, &mut rng::stream(2, "init"));
        for kind in CHANNELS {
            let channel = build(&net, kind.name, 2).expect("every channel builds on a dense net");
            let (e, a, b) = step_both(net.clone(), channel, &x, &ys);
            assert!(e < 1e-4, "{} {act:?}: relative difference {e:e}", kind.name);
            assert!(
                (a - b).abs() < 1e-4 * a.abs(),
                "{}: loss {a} vs {b}",
                kind.name
            );
        }
    }
}

#[test]
fn conv_nets_take_the_same_step_on_the_f64_backend() {
    // a conv layer with pooling, a strided conv, a dense layer: RBP sends through random
    // kernels, SRBP projects onto the maps, BP routes through the pooling
    let arch = parse_arch("conv4k3p1-pool2s2-conv3k3s2-fc6").unwrap();
    let net = Net::from_arch(
        (2, 8, 8),
        &arch,
        3,
        Activation::Tanh,
        &mut rng::stream(4, "init"),
    )
    .unwrap();
    let mut data = rng::stream(5, "data");
    let x: Vec<f32> = rng::normal_vec(5 * 2 * 8 * 8, 1.0, &mut data);
    let y = [0u8, 2, 1, 1, 0];
    for name in ["bp", "rbp", "srbp", "arbp", "usf", "brsf", "sbp", "drtp"] {
        let Some(channel) = build(&net, name, 3) else {
            continue;
        };
        let (e, _, _) = step_both(net.clone(), channel, &x, &y);
        assert!(e < 1e-4, "{name}: relative difference {e:e}");
    }
}

#[test]
fn channel_dropout_and_signal_quantization_agree_across_backends() {
    let sizes = [10, 8, 6, 3];
    let (xs, ys) = reference::batch(5, sizes[0], 3, 8);
    let x = reference::flat(&xs);
    let net = Net::new(&sizes, Activation::Tanh, &mut rng::stream(6, "init"));
    for (name, dropout, q) in [
        ("rbp", 0.3, None),
        ("srbp", 0.0, Some("4")),
        ("bp", 0.2, Some("3")),
    ] {
        let spec = ChannelSpec::parse(name, false).unwrap();
        let options = rbprop::channel::ChannelOptions {
            dropout,
            quantize_signal: q.map(|q| Quantizer::parse(q, "q").unwrap()),
            ..Default::default()
        };
        let channel = Channel::new(
            &spec,
            &options,
            &net,
            &mut rng::stream(6, "feedback"),
            rng::stream(6, "noise"),
        )
        .unwrap();
        let (e, _, _) = step_both(net.clone(), channel, &x, &ys);
        // a value on a quantizer's boundary may round to either side in f32 and f64
        assert!(e < 1e-3, "{name}: relative difference {e:e}");
    }
}

/// An epoch on `F64` (losses read every 7 steps) against the same steps, each read at once: the
/// same totals to the bit; a diverging epoch ends with the first non-finite batch either way.
#[test]
fn an_epoch_reads_its_losses_late_and_stops_at_the_first_non_finite_one() {
    use rand::seq::SliceRandom;
    use rbprop::data::augment::Augment;
    let mut data = rbprop::data::embedded().train;
    data.truncate(230); // 23 batches of 10: three reads of 7, then one of 2
    let net = Net::new(
        &[784, 16, 10],
        Activation::Linear,
        &mut rng::stream(1, "init"),
    );
    for lr in [0.05, 1e200] {
        let sgd = Sgd {
            lr,
            decay: 0.0,
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let channel = build(&net, "rbp", 1).unwrap();
        let trainer = |net: &Net, channel: &Channel| -> Trainer<F64> {
            Trainer::new(net.to_backend(), channel.to_backend(), sgd)
        };
        let mut late = trainer(&net, &channel);
        let stats = late.epoch(
            &data,
            10,
            3,
            0,
            Augment {
                translate: 0,
                flip: false,
            },
            |_| {},
        );
        // the same batches, in the order epoch 0 of seed 3 takes them, each loss read at once
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng::stream(3, "shuffle/epoch0"));
        let mut now = trainer(&net, &channel);
        let (mut total, mut examples) = (BatchLoss::default(), 0);
        for chunk in order.chunks(10) {
            let x: Vec<f32> = chunk.iter().flat_map(|&i| data.image(i).to_vec()).collect();
            let y: Vec<u8> = chunk.iter().map(|&i| data.labels[i]).collect();
            let loss = now.step(&x, &y);
            total.add(loss);
            examples += chunk.len();
            if !loss.loss_sum.is_finite() {
                break;
            }
        }
        assert_eq!(stats.examples, examples, "lr {lr}");
        if lr < 1.0 {
            assert_eq!(examples, 230);
            assert_eq!(stats.loss, total.loss_sum / 230.0);
            assert_eq!(stats.acc, total.correct as f64 / 230.0);
        } else {
            assert!(examples < 230, "lr {lr} was meant to diverge");
            assert!(!stats.loss.is_finite());
        }
    }
}
