//! # The backend seam
//!
//! Layers, nets, learning channels and the trainer are written once, against the [`Backend`]
//! trait: the dozen operations one training step needs (the GEMM forms, activations and their
//! derivative, softmax-cross-entropy, convolution and pooling forward and backward, the channel's
//! dropout and quantizer, the quantized update) on buffers the backend owns. [`Cpu`] runs them on
//! host memory with the kernels of [`crate::kernels`]; another backend (a GPU, a reference in
//! f64) implements the same trait and the same trainer drives it.
//!
//! Conventions every backend keeps:
//! - a buffer holds f32 values; an operation reads and writes the *prefix* its sizes name
//!   (`rows × cols` of a matrix, `batch × units` of a layer's signal), so one buffer sized for the
//!   largest batch serves every smaller one;
//! - matrices are row-major; [`Mat`] marks an operand used transposed;
//! - random draws stay on the host, from the named streams of [`crate::rng`] (dropout masks, the
//!   keys of stochastic rounding), so every backend sees the same random numbers;
//! - the loss of a batch stays in the backend ([`Backend::Loss`]) until [`Backend::read_loss`]
//!   asks for it.
//!
//! Constructors and analyses (initial weights, feedback matrices, checkpoints, diagnostics) work
//! on host nets (`Net<Cpu>`); [`crate::model::Net::to_backend`] and the channel's counterpart
//! move them onto a backend and back.

pub mod conformance;
mod cpu;

pub use cpu::Cpu;

use crate::kernels::Activation;
use crate::kernels::conv::ConvGeom;
use crate::kernels::loss::BatchLoss;
use crate::kernels::pool::PoolGeom;
use crate::quantize::{Levels, Quantizer};
use crate::rng::Rng;
use std::fmt::Debug;

/// One dense layer's operands for [`Backend::dense_weight_grads`]: `dw ← alpha · δᵀ · x + beta ·
/// dw`, `db ← alpha · Σ_rows δ + beta · db` (`δ`: `rows × n_out`, `x`: `rows × n_in`).
pub struct DenseGrad<'a, B: Backend> {
    pub delta: &'a B::Buf,
    pub x: &'a B::Buf,
    pub rows: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub dw: &'a mut B::Buf,
    pub db: &'a mut B::Buf,
}

/// A read-only matrix operand of [`Backend::gemm`]: the first `rows × cols` values of `buf`,
/// row-major, used as-is or transposed (then it acts as `cols × rows`).
pub struct Mat<'a, B: Backend> {
    pub buf: &'a B::Buf,
    pub rows: usize,
    pub cols: usize,
    pub trans: bool,
}

impl<'a, B: Backend> Mat<'a, B> {
    /// The stored `rows × cols` matrix, as-is.
    pub fn new(buf: &'a B::Buf, rows: usize, cols: usize) -> Self {
        Mat {
            buf,
            rows,
            cols,
            trans: false,
        }
    }

    /// The stored `rows × cols` matrix, transposed.
    pub fn t(buf: &'a B::Buf, rows: usize, cols: usize) -> Self {
        Mat {
            buf,
            rows,
            cols,
            trans: true,
        }
    }

    /// Rows of the operand as used (`cols` when transposed).
    pub fn op_rows(&self) -> usize {
        if self.trans { self.cols } else { self.rows }
    }

    /// Columns of the operand as used.
    pub fn op_cols(&self) -> usize {
        if self.trans { self.rows } else { self.cols }
    }
}

/// How the weights of a layer change on a quantized update (paper §1): what the backend needs to
/// know about the layer besides its buffers.
#[derive(Clone, Copy, Debug)]
pub struct UpdateShape {
    /// `None`: dense `n_out × n_in`; `Some`: the convolution.
    pub conv: Option<ConvGeom>,
    pub n_in: usize,
    pub n_out: usize,
}

/// Where the operations of a training step run, and on what memory.
///
/// Every method is an associated function: a backend's device and queues are its own business
/// (the CPU has none). All sizes are in values, not bytes.
pub trait Backend: Clone + Copy + Debug + Default + PartialEq + Send + Sync + 'static {
    /// A buffer of f32 values.
    type Buf: Clone + Debug + PartialEq + Send + Sync;
    /// A buffer of u32 indices (the positions of pooling maxima).
    type Index: Clone + Debug + Default + Send + Sync;
    /// A batch's loss totals, kept by the backend until read.
    type Loss: Debug;

    /// A short name (`cpu`).
    const NAME: &'static str;

    // ---- device ----

    /// Where a thread makes buffers from the host: the CPU has one (`()`), the GPU backend's is
    /// an opened adapter, a value to hold. Work handed to other threads (a pool's workers)
    /// takes its thread's device along ([`Backend::current_device`], [`Backend::enter`]);
    /// operations on buffers run where their buffers are.
    type Device: Copy + Debug + Send + Sync;
    /// The device this thread works on, if it entered one.
    fn current_device() -> Option<Self::Device>;
    /// Runs `f` with `device` as this thread's device (the one before is back afterwards).
    fn enter<T>(device: Self::Device, f: impl FnOnce() -> T) -> T;
    /// Runs `f` on this thread with the device of the thread that made `carry` (from
    /// [`Backend::current_device`] there): how work moves to a pool's workers.
    fn carry<T>(carry: Option<Self::Device>, f: impl FnOnce() -> T) -> T {
        match carry {
            Some(d) => Self::enter(d, f),
            None => f(),
        }
    }

    // ---- stacked members (ensembles) ----

    /// Whether the backend stacks several nets' buffers and steps them as one
    /// ([`crate::train::Stack`]): every operation then runs on every member at once (the GPU's
    /// does, one dispatch per operation for all members). The CPU's ensembles share their
    /// products another way ([`crate::train::Ensemble`]).
    const STACKS: bool = false;
    /// One buffer holding `parts` (of equal lengths, unstacked) as stacked members. Only where
    /// [`Backend::STACKS`].
    fn stack(parts: &[&Self::Buf]) -> Self::Buf {
        let _ = parts;
        unimplemented!("the {} backend does not stack members", Self::NAME)
    }
    /// Member `m` of a stacked buffer, as a buffer of its own. Only where [`Backend::STACKS`].
    fn member(buf: &Self::Buf, m: usize) -> Self::Buf {
        let _ = (buf, m);
        unimplemented!("the {} backend does not stack members", Self::NAME)
    }
    /// Runs `f` with the buffers [`Backend::zeros`] and [`Backend::index_zeros`] make stacked
    /// `members` deep (the scratch of a stacked step).
    fn stacked<T>(members: usize, f: impl FnOnce() -> T) -> T {
        assert!(
            members <= 1 || Self::STACKS,
            "the {} backend does not stack members",
            Self::NAME
        );
        f()
    }
    /// The loss totals of every member of each stacked batch, in one trip to the host.
    fn read_member_losses(losses: &[Self::Loss]) -> Vec<Vec<BatchLoss>> {
        Self::read_losses(losses)
            .into_iter()
            .map(|l| vec![l])
            .collect()
    }

    // ---- buffers ----

    /// `n` zeros.
    fn zeros(n: usize) -> Self::Buf;
    /// A buffer holding `host`.
    fn upload(host: &[f32]) -> Self::Buf;
    /// The whole buffer, on the host.
    fn download(buf: &Self::Buf) -> Vec<f32>;
    /// Overwrites the first `host.len()` values of `buf`.
    fn write(buf: &mut Self::Buf, host: &[f32]);
    /// Values the buffer holds.
    fn len(buf: &Self::Buf) -> usize;
    /// `n` zero indices.
    fn index_zeros(n: usize) -> Self::Index;

    // ---- linear algebra ----

    /// `c ← alpha · op(a) · op(b) + beta · c` on the first `op_rows(a) × op_cols(b)` values of
    /// `c`. Results must not depend on how the backend splits the work (the CPU splits by rows in
    /// tile-aligned blocks).
    fn gemm(alpha: f32, a: Mat<'_, Self>, b: Mat<'_, Self>, beta: f32, c: &mut Self::Buf);
    /// Adds `bias` to each of the first `rows` rows of `x` (`rows × len(bias)`).
    fn add_bias_rows(x: &mut Self::Buf, rows: usize, bias: &Self::Buf);
    /// `db ← beta · db + alpha · Σ_rows delta[r]` over the first `rows` rows of
    /// `delta` (`rows × len(db)`): a dense layer's bias gradient.
    fn bias_grad(delta: &Self::Buf, rows: usize, alpha: f32, beta: f32, db: &mut Self::Buf);
    /// A dense layer's forward, `out = f(x · wᵀ + bias)` on the first `rows` rows (`x`:
    /// `rows × n_in`, `w`: `n_out × n_in`), with `f = None` for the output layer (no
    /// activation). By default the sequence [`Backend::gemm`], [`Backend::add_bias_rows`],
    /// [`Backend::activate`] (the CPU's, so its bits are those of the sequence); a backend may
    /// fuse them into one operation (the GPU does: one dispatch instead of three).
    #[allow(clippy::too_many_arguments)] // a layer: input, parameters, sizes, output
    fn dense_forward(
        x: &Self::Buf,
        w: &Self::Buf,
        bias: &Self::Buf,
        rows: usize,
        n_in: usize,
        n_out: usize,
        f: Option<Activation>,
        out: &mut Self::Buf,
    ) {
        Self::gemm(
            1.0,
            Mat::new(x, rows, n_in),
            Mat::t(w, n_out, n_in),
            0.0,
            out,
        );
        Self::add_bias_rows(out, rows, bias);
        if let Some(f) = f {
            Self::activate(f, out, rows * n_out);
        }
    }
    /// A dense layer's batch-summed gradient, scaled and accumulated: `dw ← alpha · δᵀ · x +
    /// beta · dw` (`δ`: `rows × n_out`, `x`: `rows × n_in`, `dw`: `n_out × n_in`) and `db ←
    /// alpha · Σ_rows δ + beta · db`. By default [`Backend::gemm`] then [`Backend::bias_grad`]
    /// (the CPU's); a backend may compute both in one operation (the GPU does: the bias is the
    /// product's column against a column of ones).
    #[allow(clippy::too_many_arguments)] // a layer's update: signals, sizes, scales, outputs
    fn dense_weight_grad(
        delta: &Self::Buf,
        x: &Self::Buf,
        rows: usize,
        n_in: usize,
        n_out: usize,
        alpha: f32,
        beta: f32,
        dw: &mut Self::Buf,
        db: &mut Self::Buf,
    ) {
        Self::gemm(
            alpha,
            Mat::t(delta, rows, n_out),
            Mat::new(x, rows, n_in),
            beta,
            dw,
        );
        Self::bias_grad(delta, rows, alpha, beta, db);
    }
    /// Several dense layers' gradients, scaled and accumulated with one `alpha` and `beta`: what
    /// [`Backend::dense_weight_grad`] does for each (the layers' buffers are distinct). By default
    /// one after another (the CPU's); a backend may do them in fewer operations (the GPU does:
    /// up to four layers per dispatch where the adapter binds their buffers).
    fn dense_weight_grads(layers: &mut [DenseGrad<'_, Self>], alpha: f32, beta: f32) {
        for l in layers {
            Self::dense_weight_grad(
                l.delta, l.x, l.rows, l.n_in, l.n_out, alpha, beta, l.dw, l.db,
            );
        }
    }
    /// A hidden layer's δ from the signal its channel delivered: `d[..n] = g[..n] ⊙ f'(S)`
    /// from the layer's output `o = f(S)`, or a copy of `g` with `f = None` (the channels
    /// without f'). By default [`Backend::copy`] then [`Backend::mul_derivative`]; a backend may
    /// fuse them (the GPU does).
    fn delta_from_signal(
        f: Option<Activation>,
        o: &Self::Buf,
        g: &Self::Buf,
        d: &mut Self::Buf,
        n: usize,
    ) {
        Self::copy(g, d, n);
        if let Some(f) = f {
            Self::mul_derivative(f, o, d, n);
        }
    }
    /// A hidden layer's signal and δ from one dense product: `g ← op(a) · op(b)` (`m × n`),
    /// then `d[..m·n] = g ⊙ f'(S)` from the layer's output `o = f(S)` (a copy of `g` with
    /// `f = None`). By default [`Backend::gemm`] then [`Backend::delta_from_signal`] (the CPU's,
    /// so its bits are those of the sequence); a backend may do both in one operation (the GPU
    /// does: the product's epilogue writes `g` and `d`).
    fn signal_and_delta(
        a: Mat<'_, Self>,
        b: Mat<'_, Self>,
        f: Option<Activation>,
        o: &Self::Buf,
        g: &mut Self::Buf,
        d: &mut Self::Buf,
    ) {
        let n = a.op_rows() * b.op_cols();
        Self::gemm(1.0, a, b, 0.0, g);
        Self::delta_from_signal(f, o, g, d, n);
    }
    /// `x ← s · x` (the whole buffer).
    fn scale(x: &mut Self::Buf, s: f32);
    /// `x ← x + y` (the whole buffers, of equal length).
    fn add_assign(x: &mut Self::Buf, y: &Self::Buf);
    /// `dst[..n] ← src[..n]`.
    fn copy(src: &Self::Buf, dst: &mut Self::Buf, n: usize);

    // ---- activations and loss ----

    /// `x[..n] ← f(x[..n])`.
    fn activate(f: Activation, x: &mut Self::Buf, n: usize);
    /// `g[..n] ← g[..n] ⊙ f'(S)`, from the layer's output `o = f(S)`.
    fn mul_derivative(f: Activation, o: &Self::Buf, g: &mut Self::Buf, n: usize);
    /// Softmax of the first `len(labels)` rows of `logits` (`batch × classes`) in place, and the
    /// batch's cross-entropy totals; `delta`, if given, receives `O_L − T`.
    fn softmax_cross_entropy(
        logits: &mut Self::Buf,
        labels: &[u8],
        classes: usize,
        delta: Option<&mut Self::Buf>,
    ) -> Self::Loss;
    /// The totals of a batch's loss, on the host.
    fn read_loss(loss: &Self::Loss) -> BatchLoss;
    /// The totals of several batches' losses, in order, in one trip to the host (by default
    /// each read on its own).
    fn read_losses(losses: &[Self::Loss]) -> Vec<BatchLoss> {
        losses.iter().map(Self::read_loss).collect()
    }
    /// Batches a trainer's epoch runs before it reads their losses back (at most; and at the
    /// epoch's end): a backend whose reads wait for the device keeps its queue busy between two
    /// reads. An epoch stops at the first non-finite loss it reads, so a run that diverges may
    /// take up to this many steps more before it stops (all with a non-finite loss, reported as
    /// such).
    const LOSS_READ_INTERVAL: usize = 1;

    // ---- convolution and pooling ----

    /// `out (batch × out_len) = w ⊛ x + b` of convolution `g`.
    fn conv_forward(
        g: &ConvGeom,
        w: &Self::Buf,
        b: &Self::Buf,
        x: &Self::Buf,
        out: &mut Self::Buf,
        batch: usize,
    );
    /// `dx (batch × in_len) ← beta · dx + weightsᵀ ⊛ delta`: a signal sent down through a
    /// convolution's transposed operation (its own kernel or one in its place).
    fn conv_backward_data(
        g: &ConvGeom,
        weights: &Self::Buf,
        delta: &Self::Buf,
        dx: &mut Self::Buf,
        batch: usize,
        beta: f32,
    );
    /// `dw ← beta · dw + alpha · Σ_e δ_e ⊛ x_e`, `db ← beta · db + alpha · Σ_e Σ_pos δ_e`, with a
    /// summation order that does not depend on the thread count.
    #[allow(clippy::too_many_arguments)] // a kernel: inputs, sizes, scales, outputs
    fn conv_weight_grad(
        g: &ConvGeom,
        delta: &Self::Buf,
        input: &Self::Buf,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut Self::Buf,
        db: &mut Self::Buf,
    );
    /// Max-pooling of `batch` maps: `y` the maxima, `arg` their positions in each map.
    fn pool_forward(
        p: &PoolGeom,
        x: &Self::Buf,
        y: &mut Self::Buf,
        arg: &mut Self::Index,
        batch: usize,
    );
    /// Routes `src` (`batch × pooled`) back to the maxima of `dst` (`batch × map`), adding
    /// `beta · dst`.
    fn unpool(
        p: &PoolGeom,
        src: &Self::Buf,
        arg: &Self::Index,
        dst: &mut Self::Buf,
        batch: usize,
        beta: f32,
    );

    // ---- the learning channel's signals, noise and precision ----

    /// `out (batch × classes) = −T`, the negated one-hot targets.
    fn neg_one_hot(labels: &[u8], classes: usize, out: &mut Self::Buf);
    /// `out[..n] = sign(src[..n])` (0 stays 0).
    fn sign(src: &Self::Buf, out: &mut Self::Buf, n: usize);
    /// `out = m ⊙ sign(w)` entry by entry, where `m` is `|magnitudes|` if given, else the standard
    /// deviation of `w` (sign-symmetric feedback, uSF / frSF / brSF).
    fn sign_carrier(w: &Self::Buf, magnitudes: Option<&Self::Buf>, out: &mut Self::Buf);
    /// Dropout of `g[..n]`: each entry kept with probability `1 − rate` and scaled by
    /// `1/(1 − rate)`, else zeroed; the mask is `n` u32 draws from `rng`, kept where below
    /// `(1 − rate)·2³²`.
    fn dropout(g: &mut Self::Buf, n: usize, rate: f32, rng: &mut Rng);
    /// `max |x[..n]|` if positive and finite (the calibration of a quantizer's scale).
    fn max_abs(x: &Self::Buf, n: usize) -> Option<f32>;
    /// Rounds `g[..n]` to `levels`; with `census`, returns how many entries went to zero and how
    /// many were clipped.
    fn quantize(
        g: &mut Self::Buf,
        n: usize,
        levels: Levels,
        census: bool,
    ) -> Option<(usize, usize)>;
    /// `W += 1/B · Σ_e Q(−rate · δ_e ⊛ input_e)`, `b += 1/B · Σ_e Q(−rate · δ_e)`: each example's
    /// update quantized (mid-tread) before the average. `alpha` is the layer's scale, calibrated
    /// at the first non-zero update when 0; with `key`, rounding is stochastic (a counter hash
    /// of `key` and the entry's index).
    #[allow(clippy::too_many_arguments)] // the update: layer, signals, rule, state
    fn quantized_update(
        shape: UpdateShape,
        w: &mut Self::Buf,
        b: &mut Self::Buf,
        delta: &Self::Buf,
        input: &Self::Buf,
        batch: usize,
        rate: f64,
        q: Quantizer,
        alpha: &mut f32,
        key: Option<u64>,
    );
}
