//! # A GPU backend on wgpu
//!
//! [`Gpu`] implements [`rbprop_core::backend::Backend`] with WGSL compute kernels, on any adapter
//! wgpu opens through Vulkan, Metal or DX12 — NVIDIA, AMD, Intel and Apple GPUs, and Mesa's
//! lavapipe, a Vulkan device on the CPU. Buffers live on the device for the whole run: a step
//! uploads its minibatch and labels, records every operation into one command encoder, and
//! reads back only the batch's loss totals (two numbers).
//!
//! This first version covers dense nets (multilayer perceptrons): every operation of a dense
//! training step with any channel whose carriers are matrices, the transposed forward weights or
//! their signs, with channel dropout (its masks drawn on the host, from the same stream as on the
//! CPU). Convolutions, pooling and the quantizers are not on the device yet:
//! [`supports`] refuses such a net or channel before training, naming what is missing, and
//! those operations are never reached (they panic if called).
//!
//! Numbers: f32 throughout, like the CPU, but sums run in another order (tiles of 16 along the
//! inner dimension, fused multiply-adds) and exp/tanh are the device's, so results agree with the
//! CPU backend to f32 rounding, not to the bit — kernels within a relative 1e-5·√k (k the
//! length of a sum), training curves within a small tolerance after a few epochs. Every sum has a
//! fixed order (no atomics), so the same seed gives the same numbers on the same adapter.

mod device;
mod shaders;

pub use device::InitError;
pub use wgpu::AdapterInfo;

use device::{Bind, Params, context};
use rand::Rng as _;
use rbprop_core::backend::{Backend, Mat, UpdateShape};
use rbprop_core::channel::Channel;
use rbprop_core::kernels::Activation;
use rbprop_core::kernels::conv::ConvGeom;
use rbprop_core::kernels::loss::BatchLoss;
use rbprop_core::kernels::pool::PoolGeom;
use rbprop_core::model::Net;
use rbprop_core::quantize::{Levels, Quantizer};
use rbprop_core::rng::Rng;

/// The GPU backend: buffers and kernels on the device [`Gpu::init`] opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gpu;

impl Gpu {
    /// Opens the device of the best adapter, or of the first whose name contains `adapter`
    /// (case-insensitive), once per process; returns its description. Every other function of
    /// the backend needs it opened.
    pub fn init(adapter: Option<&str>) -> Result<AdapterInfo, InitError> {
        device::init(adapter).cloned()
    }

    /// The adapters present, as wgpu lists them.
    pub fn adapters() -> Vec<AdapterInfo> {
        device::adapters()
    }
}

/// An f32 buffer on the device. Cloning copies it on the device; equality compares contents
/// (reads both back).
pub struct GpuBuf {
    buf: wgpu::Buffer,
    len: usize,
}

impl GpuBuf {
    fn new(len: usize) -> Self {
        GpuBuf {
            buf: context().buffer(len as u64 * 4),
            len,
        }
    }
}

impl Clone for GpuBuf {
    fn clone(&self) -> Self {
        let out = GpuBuf::new(self.len);
        if self.len > 0 {
            context().record(|_, enc| {
                enc.copy_buffer_to_buffer(&self.buf, 0, &out.buf, 0, self.len as u64 * 4)
            });
        }
        out
    }
}

impl std::fmt::Debug for GpuBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuf({} values)", self.len)
    }
}

impl PartialEq for GpuBuf {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && Gpu::download(self) == Gpu::download(other)
    }
}

/// Positions of pooling maxima: pooling does not run on the device yet ([`supports`] refuses
/// it), so this holds only its length.
#[derive(Clone, Debug, Default)]
pub struct GpuIndex {
    pub len: usize,
}

/// A batch's loss totals, on the device until [`Backend::read_loss`]: the summed loss and the
/// number of correct examples.
#[derive(Debug)]
pub struct GpuLoss {
    totals: wgpu::Buffer,
}

fn b(buf: &GpuBuf) -> Bind<'_> {
    Bind::Buf(&buf.buf)
}

fn params(u: [u32; 4], f: [f32; 4]) -> Params {
    Params { u, f }
}

fn labels_buffer(labels: &[u8]) -> wgpu::Buffer {
    let l: Vec<u32> = labels.iter().map(|&v| v as u32).collect();
    context().buffer_with(bytemuck::cast_slice(&l))
}

fn act_code(f: Activation) -> u32 {
    match f {
        Activation::Tanh => 0,
        Activation::Logistic => 1,
        Activation::Relu => 2,
        Activation::Linear => 3,
    }
}

/// Why an operation never reached: [`supports`] refuses what needs it.
fn not_on_device(op: &str) -> ! {
    panic!(
        "{op} does not run on the GPU backend yet; rbprop_gpu::supports refuses the nets and channels that need it"
    )
}

/// Whether a net and its channel train on the GPU backend: `Err` names the first layer or
/// channel setting that does not, with what to do instead.
pub fn supports<B: Backend>(net: &Net<B>, channel: &Channel<B>) -> Result<(), String> {
    let later = "is not available on --device gpu yet; run it with --device cpu";
    if !net.is_dense() {
        return Err(format!(
            "a net with convolutions or pooling ({}) {later}",
            net.summary()
        ));
    }
    if channel.quantize_signal.is_some() {
        return Err(format!(
            "quantize-signal (channel {}) {later}",
            channel.name
        ));
    }
    if channel.quantize_update.is_some() {
        return Err(format!(
            "quantize-update (channel {}) {later}",
            channel.name
        ));
    }
    Ok(())
}

impl Backend for Gpu {
    type Buf = GpuBuf;
    type Index = GpuIndex;
    type Loss = GpuLoss;

    const NAME: &'static str = "gpu";

    fn zeros(n: usize) -> GpuBuf {
        GpuBuf::new(n)
    }

    fn upload(host: &[f32]) -> GpuBuf {
        GpuBuf {
            buf: context().buffer_with(bytemuck::cast_slice(host)),
            len: host.len(),
        }
    }

    fn download(buf: &GpuBuf) -> Vec<f32> {
        let bytes = context().read(&buf.buf, buf.len as u64 * 4);
        bytemuck::pod_collect_to_vec(&bytes)
    }

    fn write(buf: &mut GpuBuf, host: &[f32]) {
        assert!(host.len() <= buf.len, "write past the end of a buffer");
        if host.is_empty() {
            return;
        }
        // through a staging buffer in the encoder, so it lands after the operations recorded
        // before it
        let staging = context().buffer_with(bytemuck::cast_slice(host));
        context().record(|_, enc| {
            enc.copy_buffer_to_buffer(&staging, 0, &buf.buf, 0, host.len() as u64 * 4)
        });
    }

    fn len(buf: &GpuBuf) -> usize {
        buf.len
    }

    fn index_zeros(n: usize) -> GpuIndex {
        GpuIndex { len: n }
    }

    fn gemm(alpha: f32, a: Mat<'_, Gpu>, b_: Mat<'_, Gpu>, beta: f32, c: &mut GpuBuf) {
        let (m, k, n) = (a.op_rows(), a.op_cols(), b_.op_cols());
        assert_eq!(k, b_.op_rows(), "inner dimensions of a product");
        assert!(m * n <= c.len, "a product larger than its output buffer");
        let flags = u32::from(a.trans) | (u32::from(b_.trans) << 1);
        let groups = (n.div_ceil(64) as u32, m.div_ceil(64) as u32);
        context().dispatch(
            "gemm",
            params(
                [m as u32, n as u32, k as u32, flags],
                [alpha, beta, 0.0, 0.0],
            ),
            &[b(a.buf), b(b_.buf), b(c)],
            groups,
        );
    }

    fn add_bias_rows(x: &mut GpuBuf, rows: usize, bias: &GpuBuf) {
        let cols = bias.len;
        context().each(
            "add_bias_rows",
            params([0, cols as u32, 0, 0], [0.0; 4]),
            rows * cols,
            &[b(bias), b(x)],
        );
    }

    fn bias_grad(delta: &GpuBuf, rows: usize, alpha: f32, beta: f32, db: &mut GpuBuf) {
        context().each(
            "bias_grad",
            params([0, rows as u32, 0, 0], [alpha, beta, 0.0, 0.0]),
            db.len,
            &[b(delta), b(db)],
        );
    }

    fn scale(x: &mut GpuBuf, s: f32) {
        context().each("scale", params([0; 4], [s, 0.0, 0.0, 0.0]), x.len, &[b(x)]);
    }

    fn add_assign(x: &mut GpuBuf, y: &GpuBuf) {
        assert_eq!(x.len, y.len, "add_assign of buffers of different lengths");
        context().each("add_assign", Params::default(), x.len, &[b(y), b(x)]);
    }

    fn copy(src: &GpuBuf, dst: &mut GpuBuf, n: usize) {
        assert!(
            n <= src.len && n <= dst.len,
            "copy past the end of a buffer"
        );
        if n > 0 {
            context()
                .record(|_, enc| enc.copy_buffer_to_buffer(&src.buf, 0, &dst.buf, 0, n as u64 * 4));
        }
    }

    fn activate(f: Activation, x: &mut GpuBuf, n: usize) {
        if f == Activation::Linear {
            return;
        }
        context().each(
            "activate",
            params([0, act_code(f), 0, 0], [0.0; 4]),
            n,
            &[b(x)],
        );
    }

    fn mul_derivative(f: Activation, o: &GpuBuf, g: &mut GpuBuf, n: usize) {
        if f == Activation::Linear {
            return;
        }
        context().each(
            "mul_derivative",
            params([0, act_code(f), 0, 0], [0.0; 4]),
            n,
            &[b(o), b(g)],
        );
    }

    fn softmax_cross_entropy(
        logits: &mut GpuBuf,
        labels: &[u8],
        classes: usize,
        delta: Option<&mut GpuBuf>,
    ) -> GpuLoss {
        let ctx = context();
        let rows = labels.len();
        assert!(rows * classes <= logits.len, "labels beyond the logits");
        let lab = labels_buffer(labels);
        let stats = ctx.buffer(rows as u64 * 8);
        let has_delta = u32::from(delta.is_some());
        let d = match &delta {
            Some(d) => &d.buf,
            None => &ctx.dummy,
        };
        ctx.each(
            "softmax",
            params([0, classes as u32, has_delta, 0], [0.0; 4]),
            rows,
            &[Bind::Buf(&lab), b(logits), Bind::Buf(d), Bind::Buf(&stats)],
        );
        let totals = ctx.buffer(8);
        ctx.dispatch(
            "loss_total",
            params([rows as u32, 0, 0, 0], [0.0; 4]),
            &[Bind::Buf(&stats), Bind::Buf(&totals)],
            (1, 1),
        );
        GpuLoss { totals }
    }

    fn read_loss(loss: &GpuLoss) -> BatchLoss {
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&context().read(&loss.totals, 8));
        BatchLoss {
            loss_sum: v[0] as f64,
            correct: v[1] as usize,
        }
    }

    fn conv_forward(_: &ConvGeom, _: &GpuBuf, _: &GpuBuf, _: &GpuBuf, _: &mut GpuBuf, _: usize) {
        not_on_device("convolution")
    }

    fn conv_backward_data(_: &ConvGeom, _: &GpuBuf, _: &GpuBuf, _: &mut GpuBuf, _: usize, _: f32) {
        not_on_device("convolution")
    }

    fn conv_weight_grad(
        _: &ConvGeom,
        _: &GpuBuf,
        _: &GpuBuf,
        _: usize,
        _: f32,
        _: f32,
        _: &mut GpuBuf,
        _: &mut GpuBuf,
    ) {
        not_on_device("convolution")
    }

    fn pool_forward(_: &PoolGeom, _: &GpuBuf, _: &mut GpuBuf, _: &mut GpuIndex, _: usize) {
        not_on_device("pooling")
    }

    fn unpool(_: &PoolGeom, _: &GpuBuf, _: &GpuIndex, _: &mut GpuBuf, _: usize, _: f32) {
        not_on_device("pooling")
    }

    fn neg_one_hot(labels: &[u8], classes: usize, out: &mut GpuBuf) {
        let lab = labels_buffer(labels);
        context().each(
            "neg_one_hot",
            params([0, classes as u32, 0, 0], [0.0; 4]),
            labels.len() * classes,
            &[Bind::Buf(&lab), b(out)],
        );
    }

    fn sign(src: &GpuBuf, out: &mut GpuBuf, n: usize) {
        context().each("sign", Params::default(), n, &[b(src), b(out)]);
    }

    fn sign_carrier(w: &GpuBuf, magnitudes: Option<&GpuBuf>, out: &mut GpuBuf) {
        match magnitudes {
            None => context().dispatch(
                "sign_uniform",
                params([w.len as u32, 0, 0, 0], [0.0; 4]),
                &[b(w), b(out)],
                (1, 1),
            ),
            Some(m) => context().each(
                "sign_magnitude",
                Params::default(),
                w.len,
                &[b(w), b(m), b(out)],
            ),
        }
    }

    fn dropout(g: &mut GpuBuf, n: usize, rate: f32, rng: &mut Rng) {
        // the mask is drawn on the host, from the same stream and in the same way as the CPU's
        let keep = 1.0 - rate as f64;
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let inv = (1.0 / keep) as f32;
        let mut mask = vec![0u32; n];
        rng.fill(&mut mask[..]);
        let mask = context().buffer_with(bytemuck::cast_slice(&mask));
        context().each(
            "dropout",
            params([0, threshold, 0, 0], [inv, 0.0, 0.0, 0.0]),
            n,
            &[Bind::Buf(&mask), b(g)],
        );
    }

    fn max_abs(x: &GpuBuf, n: usize) -> Option<f32> {
        let ctx = context();
        let out = ctx.buffer(4);
        ctx.dispatch(
            "max_abs",
            params([n as u32, 0, 0, 0], [0.0; 4]),
            &[b(x), Bind::Buf(&out)],
            (1, 1),
        );
        let m: Vec<f32> = bytemuck::pod_collect_to_vec(&ctx.read(&out, 4));
        (m[0].is_finite() && m[0] > 0.0).then_some(m[0])
    }

    fn quantize(_: &mut GpuBuf, _: usize, _: Levels, _: bool) -> Option<(usize, usize)> {
        not_on_device("the signal quantizer")
    }

    fn quantized_update(
        _: UpdateShape,
        _: &mut GpuBuf,
        _: &mut GpuBuf,
        _: &GpuBuf,
        _: &GpuBuf,
        _: usize,
        _: f64,
        _: Quantizer,
        _: &mut f32,
        _: Option<u64>,
    ) {
        not_on_device("the quantized update")
    }
}
