//! # A GPU backend on wgpu
//!
//! [`Gpu`] implements [`rbprop_core::backend::Backend`] with WGSL compute kernels, on any adapter
//! wgpu opens through Vulkan, Metal or DX12 — NVIDIA, AMD, Intel and Apple GPUs, and Mesa's
//! lavapipe, a Vulkan device on the CPU. Buffers live on the device for the whole run: a step
//! uploads its minibatch and labels and records every operation into one command encoder; the
//! batch's loss totals (two numbers) stay on the device, and an epoch reads them back 64 steps at
//! a time ([`Backend::LOSS_READ_INTERVAL`]), so the host records the next steps while the device
//! runs the last ones.
//!
//! Every operation of the trait runs on the device: the dense layers' GEMMs, convolutions as
//! implicit GEMMs (no im2col buffer), max-pooling and its adjoint, every channel's carriers,
//! channel dropout (its masks drawn on the host, from the same stream as on the CPU), the signal
//! quantizer and the quantized update with nearest or stochastic rounding (the CPU's counter
//! hash). [`supports`] stays the one check a net and channel pass before training.
//!
//! Numbers: f32 throughout, like the CPU, but sums run in another order (tiles of 16 along the
//! inner dimension, fused multiply-adds) and exp/tanh are the device's, so results agree with the
//! CPU backend to f32 rounding, not to the bit — kernels within a relative 1e-5·√k (k the
//! length of a sum), training curves within a small tolerance after a few epochs. Every sum has a
//! fixed order (no atomics), so the same seed gives the same numbers on the same adapter.

mod device;
pub mod probe;
mod shaders;

pub use device::{Device, InitError, ProductForm};
pub use wgpu::{AdapterInfo, DeviceType};

use device::{Bind, Context, Params, Pooled, context};
use rand::Rng as _;
use rbprop_core::backend::{Backend, DenseGrad, Mat, UpdateShape};
use rbprop_core::channel::Channel;
use rbprop_core::kernels::Activation;
use rbprop_core::kernels::conv::ConvGeom;
use rbprop_core::kernels::loss::BatchLoss;
use rbprop_core::kernels::pool::PoolGeom;
use rbprop_core::model::Net;
use rbprop_core::quantize::{self, Form, Levels, Quantizer};
use rbprop_core::rng::Rng;

/// The GPU backend: buffers and kernels on a [`Device`] — the thread's (entered with
/// [`Device::enter`]) for buffers made from the host, the operands' for every operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gpu;

impl Gpu {
    /// The process's device on the best adapter, or on the first whose name contains `adapter`
    /// (case-insensitive), opened the first time ([`Device::shared`]) and made this thread's
    /// device; returns its description.
    pub fn init(adapter: Option<&str>) -> Result<AdapterInfo, InitError> {
        let device = Device::shared(adapter)?;
        device.make_current();
        Ok(device.info().clone())
    }

    /// The adapters present, as wgpu lists them.
    pub fn adapters() -> Vec<AdapterInfo> {
        device::adapters()
    }

    /// Runs `f` with buffers that [`Backend::zeros`] makes stacked `members` deep: the scratch
    /// of a trainer whose buffers are stacks ([`Gpu::stack`]) steps in it.
    pub fn stacked<T>(members: usize, f: impl FnOnce() -> T) -> T {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                MEMBERS.with(|m| m.set(self.0));
            }
        }
        let _restore = Restore(MEMBERS.with(|m| m.replace(members.max(1))));
        f()
    }

    /// One buffer holding `parts` (of equal lengths) as stacked members, copied on the device.
    pub fn stack(parts: &[&GpuBuf]) -> GpuBuf {
        let first = parts.first().expect("a stack of at least one buffer");
        let len = first.len;
        let ctx = first.ctx();
        let out = ctx.scratch((parts.len() * len) as u64 * 4);
        ctx.record(|_, enc| {
            for (m, p) in parts.iter().enumerate() {
                assert!(
                    p.len == len && p.members == 1,
                    "members of one shape, unstacked"
                );
                if len > 0 {
                    enc.copy_buffer_to_buffer(
                        &p.buf,
                        0,
                        &out,
                        (m * len) as u64 * 4,
                        len as u64 * 4,
                    );
                }
            }
        });
        GpuBuf {
            buf: out,
            len,
            members: parts.len(),
        }
    }

    /// Member `m` of a stacked buffer, copied into a buffer of its own on the device.
    pub fn member(buf: &GpuBuf, m: usize) -> GpuBuf {
        assert!(m < buf.members, "member {m} of a stack of {}", buf.members);
        let ctx = buf.ctx();
        let out = ctx.scratch(buf.len as u64 * 4);
        if buf.len > 0 {
            ctx.record(|_, enc| {
                enc.copy_buffer_to_buffer(
                    &buf.buf,
                    (m * buf.len) as u64 * 4,
                    &out,
                    0,
                    buf.len as u64 * 4,
                )
            });
        }
        GpuBuf {
            buf: out,
            len: buf.len,
            members: 1,
        }
    }

    /// The loss totals of every member of each stacked batch, in one trip to the host.
    pub fn read_member_losses(losses: &[GpuLoss]) -> Vec<Vec<BatchLoss>> {
        let Some(first) = losses.first() else {
            return Vec::new();
        };
        let parts: Vec<_> = losses
            .iter()
            .map(|l| (&*l.totals, 8 * l.members as u64))
            .collect();
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(&first.totals.ctx().read_many(&parts));
        let mut at = 0;
        losses
            .iter()
            .map(|l| {
                let t = &v[at..at + 2 * l.members];
                at += 2 * l.members;
                t.chunks(2)
                    .map(|t| BatchLoss {
                        loss_sum: t[0] as f64,
                        correct: t[1] as usize,
                    })
                    .collect()
            })
            .collect()
    }

    /// Compute dispatches this thread has recorded so far (every operation but buffer copies
    /// is one or more): what a step costs in launches, the GPU's fixed cost per operation.
    pub fn dispatches() -> u64 {
        device::DISPATCHES.with(std::cell::Cell::get)
    }

    /// Device time per kernel since the last call — (kernel, dispatches, total ms), longest
    /// first — when the process was started with `RBP_GPU_PROFILE` set and the adapter has
    /// timestamp queries (each dispatch is then timed in a pass of its own, and every submission
    /// waits for the device: slower, for finding where a step's time goes); `None` otherwise.
    pub fn profile() -> Option<Vec<(&'static str, usize, f64)>> {
        Device::current().and_then(|d| d.context().profile())
    }
}

/// For test suites that need an adapter (this crate's, and those of the crates above it).
pub mod testing {
    use super::Gpu;

    /// Whether a GPU adapter is open for the tests: without one the caller skips its test with
    /// the note printed here, unless `RBP_GPU=1` requires an adapter (CI sets it, with
    /// lavapipe), which makes its absence a panic.
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
}

/// An f32 buffer on the device: `len` values, or a stack of `members` segments of `len` values
/// each, one per member of an ensemble ([`Gpu::stack`]); every operation then runs on every
/// member in the same dispatch. Cloning copies it on the device; equality compares contents
/// (reads both back).
pub struct GpuBuf {
    buf: Pooled,
    len: usize,
    members: usize,
}

thread_local! {
    /// The members that [`Backend::zeros`] and [`Backend::index_zeros`] stack ([`Gpu::stacked`]).
    static MEMBERS: std::cell::Cell<usize> = const { std::cell::Cell::new(1) };
}

fn members_now() -> usize {
    MEMBERS.with(std::cell::Cell::get)
}

impl GpuBuf {
    fn new(len: usize) -> Self {
        let members = members_now();
        GpuBuf {
            buf: context().buffer((members * len) as u64 * 4),
            len,
            members,
        }
    }

    /// Members stacked in the buffer (1: a plain buffer).
    pub fn members(&self) -> usize {
        self.members
    }
}

impl GpuBuf {
    /// The device the buffer lives on.
    fn ctx(&self) -> &'static Context {
        self.buf.ctx()
    }
}

impl Clone for GpuBuf {
    fn clone(&self) -> Self {
        GpuBuf {
            buf: self
                .ctx()
                .copy_of(&self.buf, (self.members * self.len) as u64 * 4),
            len: self.len,
            members: self.members,
        }
    }
}

impl std::fmt::Debug for GpuBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuf({} values)", self.len)
    }
}

impl PartialEq for GpuBuf {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.members == other.members
            && Gpu::download(self) == Gpu::download(other)
    }
}

/// Positions of pooling maxima (u32), on the device. Cloning copies it on the device.
#[derive(Default)]
pub struct GpuIndex {
    buf: Option<Pooled>,
    len: usize,
    members: usize,
}

impl GpuIndex {
    /// Bound beside buffers of `ctx` (a placeholder there when it holds none).
    fn bind(&self, ctx: &'static Context) -> Bind<'_> {
        match &self.buf {
            Some(b) => stacked_bind(b, self.len, self.members),
            None => Bind::Buf(&ctx.dummy),
        }
    }

    /// The indices (every member's, one after another), on the host.
    pub fn download(&self) -> Vec<u32> {
        match &self.buf {
            Some(b) => {
                bytemuck::pod_collect_to_vec(&b.ctx().read(b, (self.members * self.len) as u64 * 4))
            }
            None => Vec::new(),
        }
    }
}

/// A buffer of `members` segments of `len` values, bound for a dispatch.
fn stacked_bind(buf: &wgpu::Buffer, len: usize, members: usize) -> Bind<'_> {
    if members > 1 {
        Bind::Stacked {
            buf,
            members: members as u32,
            stride: u32::try_from(len).expect("a member's buffer beyond 2³² values"),
        }
    } else {
        Bind::Buf(buf)
    }
}

impl Clone for GpuIndex {
    fn clone(&self) -> Self {
        let Some(src) = &self.buf else {
            return GpuIndex::default();
        };
        GpuIndex {
            buf: Some(src.ctx().copy_of(src, (self.members * self.len) as u64 * 4)),
            len: self.len,
            members: self.members,
        }
    }
}

impl std::fmt::Debug for GpuIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuIndex({} values)", self.len)
    }
}

/// A batch's loss totals, on the device until [`Backend::read_loss`]: the summed loss and the
/// number of correct examples (of each member, for a stacked trainer's batch:
/// [`Gpu::read_member_losses`]).
#[derive(Debug)]
pub struct GpuLoss {
    totals: Pooled,
    members: usize,
}

fn b(buf: &GpuBuf) -> Bind<'_> {
    stacked_bind(&buf.buf, buf.len, buf.members)
}

/// Refuses an operation that reads a stacked buffer back to the host or draws for it there.
fn solo(buf: &GpuBuf, what: &str) {
    assert!(
        buf.members == 1,
        "{what} does not run on stacked members (a channel that stacks has none)"
    );
}

fn params(u: [u32; 4], f: [f32; 4]) -> Params {
    Params {
        u,
        f,
        ..Params::default()
    }
}

/// Parameters with `geom` holding a layer's geometry.
fn geom_params(geom: &[usize], u: [u32; 4], f: [f32; 4]) -> Params {
    let mut p = params(u, f);
    for (g, v) in p.geom.iter_mut().zip(geom) {
        *g = *v as u32;
    }
    p
}

/// A convolution's geometry: `(C_in, H, W, C_out)`, `(k, stride, pad, H_out)`, `W_out`.
fn conv_params(g: &ConvGeom, u: [u32; 4], f: [f32; 4]) -> Params {
    let geom = [
        g.c_in, g.h, g.w, g.c_out, g.k, g.stride, g.pad, g.h_out, g.w_out,
    ];
    geom_params(&geom, u, f)
}

/// A pooling's geometry: `(C, H, W, k)`, `(stride, pad, H_out, W_out)`.
fn pool_params(g: &PoolGeom, u: [u32; 4], f: [f32; 4]) -> Params {
    let geom = [g.c, g.h, g.w, g.k, g.stride, g.pad, g.h_out, g.w_out];
    geom_params(&geom, u, f)
}

/// Inner-dimension values per part of a split product: parts of at least 1024 values, at most
/// 64 parts, a multiple of the tile depth.
fn split_len(k: usize) -> usize {
    k.div_ceil(64).max(1024).div_ceil(16) * 16
}

/// The draw keys of a stochastic quantized update of `entries` values per key: one per high
/// half of the entries' 64-bit indices (the CPU's [`quantize::draw_key`]).
fn draw_keys(ctx: &'static Context, key: Option<u64>, entries: u64) -> Pooled {
    let keys: Vec<u32> = match key {
        Some(k) => (0..=(entries.saturating_sub(1) >> 32) as u32)
            .map(|hi| quantize::draw_key(k, hi))
            .collect(),
        None => vec![0],
    };
    ctx.buffer_with(bytemuck::cast_slice(&keys))
}

fn labels_buffer(ctx: &'static Context, labels: &[u8]) -> Pooled {
    let l: Vec<u32> = labels.iter().map(|&v| v as u32).collect();
    ctx.buffer_with(bytemuck::cast_slice(&l))
}

fn act_code(f: Activation) -> u32 {
    match f {
        Activation::Tanh => 0,
        Activation::Logistic => 1,
        Activation::Relu => 2,
        Activation::Linear => 3,
    }
}

/// Whether a net and its channel train on the GPU backend: `Err` names the first layer or
/// channel setting that does not, with what to do instead. Every layer kind and every channel
/// setting of this version runs on the device; the check stays the one place a later layer or
/// setting that does not would be refused.
pub fn supports<B: Backend>(net: &Net<B>, channel: &Channel<B>) -> Result<(), String> {
    let _ = (net, channel);
    Ok(())
}

impl Backend for Gpu {
    type Device = Device;

    fn current_device() -> Option<Device> {
        Device::current()
    }

    fn enter<T>(device: Device, f: impl FnOnce() -> T) -> T {
        device.enter(f)
    }

    type Buf = GpuBuf;
    type Index = GpuIndex;
    type Loss = GpuLoss;

    const NAME: &'static str = "gpu";

    const STACKS: bool = true;

    fn stack(parts: &[&GpuBuf]) -> GpuBuf {
        Gpu::stack(parts)
    }

    fn member(buf: &GpuBuf, m: usize) -> GpuBuf {
        Gpu::member(buf, m)
    }

    fn stacked<T>(members: usize, f: impl FnOnce() -> T) -> T {
        Gpu::stacked(members, f)
    }

    fn read_member_losses(losses: &[GpuLoss]) -> Vec<Vec<BatchLoss>> {
        Gpu::read_member_losses(losses)
    }

    fn zeros(n: usize) -> GpuBuf {
        GpuBuf::new(n)
    }

    fn upload(host: &[f32]) -> GpuBuf {
        GpuBuf {
            buf: context().buffer_with(bytemuck::cast_slice(host)),
            len: host.len(),
            members: 1,
        }
    }

    /// Every member's values, one after another.
    fn download(buf: &GpuBuf) -> Vec<f32> {
        let bytes = buf.ctx().read(&buf.buf, (buf.members * buf.len) as u64 * 4);
        bytemuck::pod_collect_to_vec(&bytes)
    }

    /// Into a stack of members, `host` is their parts one after another (of equal lengths), each
    /// written at the start of its member's segment.
    fn write(buf: &mut GpuBuf, host: &[f32]) {
        assert!(
            host.len().is_multiple_of(buf.members) && host.len() / buf.members <= buf.len,
            "write past the end of a buffer"
        );
        if host.is_empty() {
            return;
        }
        let part = host.len() / buf.members;
        if part == buf.len {
            // the segments are contiguous: one write
            buf.ctx().write(&buf.buf, 0, bytemuck::cast_slice(host));
            return;
        }
        for (m, values) in host.chunks(part).enumerate() {
            let at = (m * buf.len) as u64 * 4;
            buf.ctx().write(&buf.buf, at, bytemuck::cast_slice(values));
        }
    }

    fn len(buf: &GpuBuf) -> usize {
        buf.len
    }

    fn index_zeros(n: usize) -> GpuIndex {
        let members = members_now();
        GpuIndex {
            buf: Some(context().buffer((members * n) as u64 * 4)),
            len: n,
            members,
        }
    }

    fn gemm(alpha: f32, a: Mat<'_, Gpu>, b_: Mat<'_, Gpu>, beta: f32, c: &mut GpuBuf) {
        let (m, k, n) = (a.op_rows(), a.op_cols(), b_.op_cols());
        assert_eq!(k, b_.op_rows(), "inner dimensions of a product");
        assert!(m * n <= c.len, "a product larger than its output buffer");
        let flags = u32::from(a.trans) | (u32::from(b_.trans) << 1);
        let ctx = c.ctx();
        let (kernel, groups) = ctx.product("gemm", m, n);
        ctx.dispatch(
            kernel,
            geom_params(
                &[flags as usize],
                [m as u32, n as u32, k as u32, 0],
                [alpha, beta, 0.0, 0.0],
            ),
            &[b(a.buf), b(b_.buf), b(c)],
            groups,
        );
    }

    fn dense_forward(
        x: &GpuBuf,
        w: &GpuBuf,
        bias: &GpuBuf,
        rows: usize,
        n_in: usize,
        n_out: usize,
        f: Option<Activation>,
        out: &mut GpuBuf,
    ) {
        assert!(
            rows * n_out <= out.len,
            "a product larger than its output buffer"
        );
        assert!(n_out <= bias.len, "a bias shorter than the layer");
        // x as it is, w transposed: the operands of `gemm`'s dense forward
        let flags = 2;
        let code = f.map_or(act_code(Activation::Linear), act_code);
        let ctx = x.ctx();
        let (kernel, groups) = ctx.product("gemm_bias_act", rows, n_out);
        ctx.dispatch(
            kernel,
            geom_params(
                &[flags, code as usize],
                [rows as u32, n_out as u32, n_in as u32, 0],
                [1.0, 0.0, 0.0, 0.0],
            ),
            &[b(x), b(w), b(bias), b(out)],
            groups,
        );
    }

    fn dense_weight_grad(
        delta: &GpuBuf,
        x: &GpuBuf,
        rows: usize,
        n_in: usize,
        n_out: usize,
        alpha: f32,
        beta: f32,
        dw: &mut GpuBuf,
        db: &mut GpuBuf,
    ) {
        assert!(
            n_out * n_in <= dw.len && n_out <= db.len,
            "a gradient past its buffers"
        );
        assert!(
            rows * n_out <= delta.len && rows * n_in <= x.len,
            "signals past their buffers"
        );
        let ctx = delta.ctx();
        let (kernel, groups) = ctx.product("gemm_weight_grad", n_out, n_in + 1);
        ctx.dispatch(
            kernel,
            geom_params(
                &[0, n_in],
                [n_out as u32, n_in as u32 + 1, rows as u32, 0],
                [alpha, beta, 0.0, 0.0],
            ),
            &[b(delta), b(x), b(dw), b(db)],
            groups,
        );
    }

    fn dense_weight_grads(layers: &mut [DenseGrad<'_, Gpu>], alpha: f32, beta: f32) {
        let Some(first) = layers.first() else {
            return;
        };
        let ctx = first.delta.ctx();
        // the most layers one dispatch takes on this adapter
        let most = (2..=shaders::MAX_GROUPED)
            .rev()
            .find(|&g| ctx.has_kernel(shaders::GROUPED_KERNELS[g][0]))
            .unwrap_or(1);
        let rows = first.rows;
        let mut rest: &mut [DenseGrad<'_, Gpu>] = layers;
        while !rest.is_empty() {
            let take = rest.len().min(most);
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            if let [l] = chunk {
                Self::dense_weight_grad(
                    l.delta, l.x, l.rows, l.n_in, l.n_out, alpha, beta, l.dw, l.db,
                );
                continue;
            }
            let mut geom = [0usize; 12];
            for (z, l) in chunk.iter().enumerate() {
                assert_eq!(l.rows, rows, "grouped layers share their rows");
                assert!(
                    l.n_out * l.n_in <= l.dw.len && l.n_out <= l.db.len,
                    "a gradient past its buffers"
                );
                assert!(
                    rows * l.n_out <= l.delta.len && rows * l.n_in <= l.x.len,
                    "signals past their buffers"
                );
                (geom[z], geom[4 + z]) = (l.n_out, l.n_in);
            }
            let (mut m, mut n) = (0, 0);
            for l in chunk.iter() {
                (m, n) = (m.max(l.n_out), n.max(l.n_in + 1));
            }
            let (kernel, (gx, gy)) = ctx.product(shaders::GROUPED_KERNELS[take][0], m, n);
            let binds: Vec<Bind<'_>> = chunk
                .iter()
                .flat_map(|l| [b(l.delta), b(l.x), b(&*l.dw), b(&*l.db)])
                .collect();
            ctx.dispatch3(
                kernel,
                geom_params(&geom, [0, 0, rows as u32, 0], [alpha, beta, 0.0, 0.0]),
                &binds,
                (gx, gy, take as u32),
            );
        }
    }

    fn signal_and_delta(
        a: Mat<'_, Gpu>,
        b_: Mat<'_, Gpu>,
        f: Option<Activation>,
        o: &GpuBuf,
        g: &mut GpuBuf,
        d: &mut GpuBuf,
    ) {
        let (m, k, n) = (a.op_rows(), a.op_cols(), b_.op_cols());
        assert_eq!(k, b_.op_rows(), "inner dimensions of a product");
        assert!(
            m * n <= g.len && m * n <= d.len && m * n <= o.len,
            "a signal past the end of a buffer"
        );
        let flags = usize::from(a.trans) | (usize::from(b_.trans) << 1);
        let code = f.map_or(act_code(Activation::Linear), act_code);
        let ctx = g.ctx();
        let (kernel, groups) = ctx.product("gemm_signal_delta", m, n);
        ctx.dispatch(
            kernel,
            geom_params(
                &[flags, code as usize],
                [m as u32, n as u32, k as u32, 0],
                [1.0, 0.0, 0.0, 0.0],
            ),
            &[b(a.buf), b(b_.buf), b(o), b(g), b(d)],
            groups,
        );
    }

    fn delta_from_signal(f: Option<Activation>, o: &GpuBuf, g: &GpuBuf, d: &mut GpuBuf, n: usize) {
        assert!(
            n <= o.len && n <= g.len && n <= d.len,
            "a signal past the end of a buffer"
        );
        let code = f.map_or(act_code(Activation::Linear), act_code);
        o.ctx().each(
            "delta_from_signal",
            params([0, code, 0, 0], [0.0; 4]),
            n,
            &[b(o), b(g), b(d)],
        );
    }

    fn add_bias_rows(x: &mut GpuBuf, rows: usize, bias: &GpuBuf) {
        let cols = bias.len;
        x.ctx().each(
            "add_bias_rows",
            params([0, cols as u32, 0, 0], [0.0; 4]),
            rows * cols,
            &[b(bias), b(x)],
        );
    }

    fn bias_grad(delta: &GpuBuf, rows: usize, alpha: f32, beta: f32, db: &mut GpuBuf) {
        delta.ctx().each(
            "bias_grad",
            params([0, rows as u32, 0, 0], [alpha, beta, 0.0, 0.0]),
            db.len,
            &[b(delta), b(db)],
        );
    }

    fn scale(x: &mut GpuBuf, s: f32) {
        x.ctx()
            .each("scale", params([0; 4], [s, 0.0, 0.0, 0.0]), x.len, &[b(x)]);
    }

    fn add_assign(x: &mut GpuBuf, y: &GpuBuf) {
        assert_eq!(x.len, y.len, "add_assign of buffers of different lengths");
        x.ctx()
            .each("add_assign", Params::default(), x.len, &[b(y), b(x)]);
    }

    fn copy(src: &GpuBuf, dst: &mut GpuBuf, n: usize) {
        assert!(
            n <= src.len && n <= dst.len,
            "copy past the end of a buffer"
        );
        assert_eq!(
            src.members, dst.members,
            "a copy between stacks of different depths"
        );
        if n > 0 {
            src.ctx().record(|_, enc| {
                for m in 0..src.members {
                    let (from, to) = ((m * src.len) as u64 * 4, (m * dst.len) as u64 * 4);
                    enc.copy_buffer_to_buffer(&src.buf, from, &dst.buf, to, n as u64 * 4);
                }
            });
        }
    }

    fn activate(f: Activation, x: &mut GpuBuf, n: usize) {
        if f == Activation::Linear {
            return;
        }
        x.ctx().each(
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
        o.ctx().each(
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
        let ctx = logits.ctx();
        // stacked members: each one's labels, one after another
        let members = logits.members;
        let rows = labels.len() / members;
        assert!(rows * classes <= logits.len, "labels beyond the logits");
        let lab = labels_buffer(ctx, labels);
        let has_delta = u32::from(delta.is_some());
        let d = match &delta {
            Some(d) => b(d),
            None => Bind::Buf(&ctx.dummy),
        };
        // softmax, δ and the batch's totals in one workgroup per member (one dispatch)
        let totals = ctx.buffer(8 * members as u64);
        ctx.dispatch(
            "softmax_loss",
            params([rows as u32, classes as u32, has_delta, 0], [0.0; 4]),
            &[
                stacked_bind(&lab, rows, members),
                b(logits),
                d,
                stacked_bind(&totals, 2, members),
            ],
            (1, 1),
        );
        GpuLoss { totals, members }
    }

    fn read_loss(loss: &GpuLoss) -> BatchLoss {
        Self::read_losses(std::slice::from_ref(loss))[0]
    }

    fn read_losses(losses: &[GpuLoss]) -> Vec<BatchLoss> {
        assert!(
            losses.iter().all(|l| l.members == 1),
            "the losses of stacked members are read by Gpu::read_member_losses"
        );
        Gpu::read_member_losses(losses)
            .into_iter()
            .map(|one| one[0])
            .collect()
    }

    // a read waits for the device: an epoch reads its losses every 64 steps
    const LOSS_READ_INTERVAL: usize = 64;

    fn conv_forward(
        g: &ConvGeom,
        w: &GpuBuf,
        bias: &GpuBuf,
        x: &GpuBuf,
        out: &mut GpuBuf,
        batch: usize,
    ) {
        assert!(batch * g.out_len() <= out.len && batch * g.in_len() <= x.len);
        let (m, n, k) = (g.c_out, batch * g.positions(), g.kdim());
        let ctx = w.ctx();
        let (kernel, groups) = ctx.product("conv_forward", m, n);
        ctx.dispatch(
            kernel,
            conv_params(g, [m as u32, n as u32, k as u32, 0], [0.0; 4]),
            &[b(w), b(bias), b(x), b(out)],
            groups,
        );
    }

    fn conv_backward_data(
        g: &ConvGeom,
        weights: &GpuBuf,
        delta: &GpuBuf,
        dx: &mut GpuBuf,
        batch: usize,
        beta: f32,
    ) {
        assert!(batch * g.in_len() <= dx.len && batch * g.out_len() <= delta.len);
        let (m, n, k) = (g.c_in, batch * g.h * g.w, g.c_out * g.k * g.k);
        let ctx = weights.ctx();
        let (kernel, groups) = ctx.product("conv_backward_data", m, n);
        ctx.dispatch(
            kernel,
            conv_params(g, [m as u32, n as u32, k as u32, 0], [beta, 0.0, 0.0, 0.0]),
            &[b(weights), b(delta), b(dx)],
            groups,
        );
    }

    fn conv_weight_grad(
        g: &ConvGeom,
        delta: &GpuBuf,
        input: &GpuBuf,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut GpuBuf,
        db: &mut GpuBuf,
    ) {
        let ctx = delta.ctx();
        let (m, n, k) = (g.c_out, g.kdim(), batch * g.positions());
        let chunk = split_len(k);
        let parts = k.div_ceil(chunk).max(1);
        // every entry is written by the product
        let members = dw.members;
        let part = ctx.scratch((members * parts * m * n) as u64 * 4);
        let (kernel, (gx, gy)) = ctx.product("conv_weight_grad", m, n);
        ctx.dispatch3(
            kernel,
            conv_params(g, [m as u32, n as u32, k as u32, chunk as u32], [0.0; 4]),
            &[
                b(delta),
                b(input),
                stacked_bind(&part, parts * m * n, members),
            ],
            (gx, gy, parts as u32),
        );
        ctx.each(
            "sum_parts",
            params([0, parts as u32, 0, 0], [alpha, beta, 0.0, 0.0]),
            m * n,
            &[stacked_bind(&part, parts * m * n, members), b(dw)],
        );
        ctx.dispatch(
            "conv_bias_grad",
            params(
                [batch as u32, g.positions() as u32, g.out_len() as u32, 0],
                [alpha, beta, 0.0, 0.0],
            ),
            &[b(delta), b(db)],
            (g.c_out as u32, 1),
        );
    }

    fn pool_forward(p: &PoolGeom, x: &GpuBuf, y: &mut GpuBuf, arg: &mut GpuIndex, batch: usize) {
        assert!(batch * p.out_len() <= y.len && batch * p.out_len() <= arg.len);
        x.ctx().each(
            "pool_forward",
            pool_params(p, [0; 4], [0.0; 4]),
            batch * p.out_len(),
            &[b(x), b(y), arg.bind(x.ctx())],
        );
    }

    fn unpool(
        p: &PoolGeom,
        src: &GpuBuf,
        arg: &GpuIndex,
        dst: &mut GpuBuf,
        batch: usize,
        beta: f32,
    ) {
        assert!(batch * p.in_len() <= dst.len);
        src.ctx().each(
            "unpool",
            pool_params(p, [0; 4], [beta, 0.0, 0.0, 0.0]),
            batch * p.in_len(),
            &[b(src), arg.bind(src.ctx()), b(dst)],
        );
    }

    fn neg_one_hot(labels: &[u8], classes: usize, out: &mut GpuBuf) {
        let lab = labels_buffer(out.ctx(), labels);
        let rows = labels.len() / out.members;
        out.ctx().each(
            "neg_one_hot",
            params([0, classes as u32, 0, 0], [0.0; 4]),
            rows * classes,
            &[stacked_bind(&lab, rows, out.members), b(out)],
        );
    }

    fn sign(src: &GpuBuf, out: &mut GpuBuf, n: usize) {
        src.ctx()
            .each("sign", Params::default(), n, &[b(src), b(out)]);
    }

    fn sign_carrier(w: &GpuBuf, magnitudes: Option<&GpuBuf>, out: &mut GpuBuf) {
        match magnitudes {
            None => w.ctx().dispatch(
                "sign_uniform",
                params([w.len as u32, 0, 0, 0], [0.0; 4]),
                &[b(w), b(out)],
                (1, 1),
            ),
            Some(m) => w.ctx().each(
                "sign_magnitude",
                Params::default(),
                w.len,
                &[b(w), b(m), b(out)],
            ),
        }
    }

    fn dropout(g: &mut GpuBuf, n: usize, rate: f32, rng: &mut Rng) {
        solo(g, "channel dropout");
        // the mask is drawn on the host, from the same stream and in the same way as the CPU's
        let keep = 1.0 - rate as f64;
        let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let inv = (1.0 / keep) as f32;
        let mut mask = vec![0u32; n];
        rng.fill(&mut mask[..]);
        let mask = g.ctx().buffer_with(bytemuck::cast_slice(&mask));
        g.ctx().each(
            "dropout",
            params([0, threshold, 0, 0], [inv, 0.0, 0.0, 0.0]),
            n,
            &[Bind::Buf(&mask), b(g)],
        );
    }

    fn max_abs(x: &GpuBuf, n: usize) -> Option<f32> {
        solo(x, "a quantizer's calibration");
        let ctx = x.ctx();
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

    fn quantize(g: &mut GpuBuf, n: usize, levels: Levels, census: bool) -> Option<(usize, usize)> {
        solo(g, "the signal quantizer");
        let ctx = g.ctx();
        let p = match levels.form {
            Form::MidRise => params([0, 0, 0, 0], [levels.alpha, levels.delta(), 0.0, 0.0]),
            Form::MidTread => {
                let s = levels.steps();
                params([0, 1, 0, 0], [levels.alpha, s, s / levels.alpha, 0.0])
            }
        };
        let counts = census.then(|| {
            let out = ctx.buffer(8);
            let mut cp = p;
            cp.u[0] = n as u32;
            ctx.dispatch("quantize_census", cp, &[b(g), Bind::Buf(&out)], (1, 1));
            out
        });
        ctx.each("quantize", p, n, &[b(g)]);
        counts.map(|out| {
            let c: Vec<u32> = bytemuck::pod_collect_to_vec(&ctx.read(&out, 8));
            (c[0] as usize, c[1] as usize)
        })
    }

    fn quantized_update(
        shape: UpdateShape,
        w: &mut GpuBuf,
        bias: &mut GpuBuf,
        delta: &GpuBuf,
        input: &GpuBuf,
        batch: usize,
        rate: f64,
        q: Quantizer,
        alpha: &mut f32,
        key: Option<u64>,
    ) {
        solo(w, "a quantized update");
        let ctx = w.ctx();
        let (n_in, n_out) = (shape.n_in, shape.n_out);
        let (nw, nb) = (w.len, bias.len);
        if *alpha == 0.0 {
            let out = ctx.buffer(4);
            match &shape.conv {
                None => ctx.dispatch(
                    "qu_calibrate_dense",
                    params(
                        [batch as u32, n_out as u32, n_in as u32, 0],
                        [rate as f32, 0.0, 0.0, 0.0],
                    ),
                    &[b(delta), b(input), Bind::Buf(&out)],
                    (1, 1),
                ),
                Some(g) => {
                    let most = ctx.buffer((nw + nb) as u64 * 4);
                    let keys = draw_keys(ctx, None, 0);
                    ctx.each(
                        "qu_conv",
                        conv_params(g, [0, 1, 0, batch as u32], [0.0, 0.0, 0.0, (-rate) as f32]),
                        nw + nb,
                        &[
                            b(delta),
                            b(input),
                            Bind::Buf(&keys),
                            b(w),
                            b(bias),
                            Bind::Buf(&most),
                        ],
                    );
                    ctx.dispatch(
                        "max_abs",
                        params([(nw + nb) as u32, 0, 0, 0], [0.0; 4]),
                        &[Bind::Buf(&most), Bind::Buf(&out)],
                        (1, 1),
                    );
                }
            }
            let m: Vec<f32> = bytemuck::pod_collect_to_vec(&ctx.read(&out, 4));
            if !(m[0].is_finite() && m[0] > 0.0) {
                return; // nothing to learn from yet: the scale waits for a non-zero update
            }
            *alpha = m[0];
        }
        let levels = q.levels(*alpha, Form::MidTread);
        let s = levels.steps();
        let a = *alpha;
        let inv = a / s / batch as f32;
        let stochastic = key.is_some();
        match &shape.conv {
            None => {
                let entries = (batch * (n_out * n_in + n_out)) as u64;
                let keys = draw_keys(ctx, key, entries);
                let k = (-rate) as f32 * (s / a);
                ctx.each(
                    "qu_dense",
                    params(
                        [0, n_out as u32, n_in as u32, batch as u32],
                        [inv, s, f32::from(u8::from(stochastic)), k],
                    ),
                    n_out * n_in + n_out,
                    &[b(delta), b(input), Bind::Buf(&keys), b(w), b(bias)],
                );
            }
            Some(g) => {
                let entries = (batch * (nw + nb)) as u64;
                let keys = draw_keys(ctx, key, entries);
                ctx.each(
                    "qu_conv",
                    conv_params(
                        g,
                        [0, 0, u32::from(stochastic), batch as u32],
                        [inv, s, s / a, (-rate) as f32],
                    ),
                    nw + nb,
                    &[
                        b(delta),
                        b(input),
                        Bind::Buf(&keys),
                        b(w),
                        b(bias),
                        Bind::Buf(&ctx.dummy),
                    ],
                );
            }
        }
    }
}
