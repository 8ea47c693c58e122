//! Layered nets: dense and convolutional layers with bias, each optionally followed by
//! max-pooling; hidden activations; a softmax output.
//!
//! Indexing is 0-based: layer `i` maps its input (the network input for `i = 0`, else the pooled
//! output of layer `i − 1`) to `S_{i+1} = W_i ⊛ input + b_i` and `O_{i+1} = f(S_{i+1})` (the
//! paper's layer h is our `h − 1`); a pooling, if any, follows the activation. The top layer
//! `L − 1` is linear and feeds the softmax. Maps are row-major `C × H × W` per example, so
//! flattening into a dense layer is free.

pub mod arch;

use crate::kernels::conv::ConvGeom;
use crate::kernels::direct::{self, Direct};
use crate::kernels::pool::PoolGeom;
use crate::kernels::{Activation, Mat, gemm, matmul};
use crate::rng::{self, Rng};
use rayon::prelude::*;

pub use arch::{LayerSpec, parse_arch};

/// The linear operation of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `S = W x + b`, W: `n_out × n_in`.
    Dense,
    /// `S = W ⊛ x + b`, W: `c_out × (c_in·k·k)`, b: `c_out`.
    Conv(ConvGeom),
}

/// One weight layer, with the pooling that follows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub kind: Kind,
    /// Input values per example.
    pub n_in: usize,
    /// Output values per example, before pooling.
    pub n_out: usize,
    /// Weights (`n_out × n_in` dense; `c_out × c_in·k·k` conv).
    pub w: Vec<f32>,
    /// Biases (`n_out` dense; `c_out` conv).
    pub b: Vec<f32>,
    /// Max-pooling after the activation.
    pub pool: Option<PoolGeom>,
}

/// Examples per task when a convolution is split across threads. Fixed, so that the order of
/// every sum (weight gradients are summed per chunk, then over chunks) does not depend on the
/// number of threads.
const CONV_CHUNK: usize = 8;

thread_local! {
    /// Per-thread scratch of the conv kernels, reused across calls (every kernel writes the part
    /// it reads, so it is never cleared).
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
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

impl Layer {
    /// A dense layer, `W ~ N(0, 1/n_in)`, `b = 0`.
    pub fn dense(n_in: usize, n_out: usize, rng: &mut Rng) -> Self {
        let w = rng::normal_vec(n_in * n_out, (1.0 / n_in as f64).sqrt(), rng);
        Layer {
            kind: Kind::Dense,
            n_in,
            n_out,
            w,
            b: vec![0.0; n_out],
            pool: None,
        }
    }

    /// A convolution, `W ~ N(0, 1/(c_in·k·k))`, `b = 0`.
    pub fn conv(g: ConvGeom, rng: &mut Rng) -> Self {
        let w = rng::normal_vec(g.c_out * g.kdim(), (1.0 / g.kdim() as f64).sqrt(), rng);
        Layer {
            kind: Kind::Conv(g),
            n_in: g.in_len(),
            n_out: g.out_len(),
            w,
            b: vec![0.0; g.c_out],
            pool: None,
        }
    }

    /// The layer's shape without its parameters (for calling its kernels while its weights are
    /// borrowed mutably).
    pub fn clone_shape(&self) -> Layer {
        Layer {
            kind: self.kind,
            n_in: self.n_in,
            n_out: self.n_out,
            w: Vec::new(),
            b: Vec::new(),
            pool: self.pool,
        }
    }

    /// Inputs of one output unit (the scale of the initial weights is 1/√fan_in).
    pub fn fan_in(&self) -> usize {
        match self.kind {
            Kind::Dense => self.n_in,
            Kind::Conv(g) => g.kdim(),
        }
    }

    /// Multiply-adds per example of the layer's operation (forward, input gradient or weight
    /// gradient alike).
    pub fn macs(&self) -> usize {
        match self.kind {
            Kind::Dense => self.n_in * self.n_out,
            Kind::Conv(g) => g.c_out * g.kdim() * g.positions(),
        }
    }

    /// Output values per example after pooling (what the next layer receives).
    pub fn units_after_pool(&self) -> usize {
        self.pool.map_or(self.n_out, |p| p.out_len())
    }

    /// `out (batch × n_out) = W ⊛ input + b`.
    pub fn forward(&self, input: &[f32], out: &mut [f32], batch: usize) {
        match self.kind {
            Kind::Dense => {
                gemm(
                    1.0,
                    Mat::new(input, batch, self.n_in),
                    Mat::t(&self.w, self.n_out, self.n_in),
                    0.0,
                    out,
                );
                matmul::add_bias_rows(out, &self.b);
            }
            Kind::Conv(g) => {
                let (ni, no) = (self.n_in, self.n_out);
                let chunks = out
                    .par_chunks_mut(CONV_CHUNK * no)
                    .zip(input.par_chunks(CONV_CHUNK * ni));
                if let Some(d) = direct(&g) {
                    let mut wt = Vec::new();
                    d.tile_weights(&self.w, &mut wt);
                    chunks.for_each(|(o, x)| {
                        with_scratch([d.padded_len(), d.out_len(), 0], |xp, ys, _| {
                            for (o, x) in o.chunks_exact_mut(no).zip(x.chunks_exact(ni)) {
                                d.pad_input(x, xp);
                                d.forward(&wt, &self.b, xp, ys, o);
                            }
                        });
                    });
                } else {
                    chunks.for_each(|(o, x)| {
                        with_scratch([g.kdim() * g.positions(), 0, 0], |cols, _, _| {
                            for (o, x) in o.chunks_exact_mut(no).zip(x.chunks_exact(ni)) {
                                g.forward(&self.w, &self.b, x, o, cols);
                            }
                        });
                    });
                }
            }
        }
    }

    /// `dx (batch × n_in) = weightsᵀ ⊛ delta` — the signal sent down through `weights`, which are
    /// this layer's W or a matrix/kernel of the same shape in its place.
    pub fn backward_data(
        &self,
        weights: &[f32],
        delta: &[f32],
        dx: &mut [f32],
        batch: usize,
        beta: f32,
    ) {
        match self.kind {
            Kind::Dense => gemm(
                1.0,
                Mat::new(delta, batch, self.n_out),
                Mat::new(weights, self.n_out, self.n_in),
                beta,
                dx,
            ),
            Kind::Conv(g) => {
                let (ni, no) = (self.n_in, self.n_out);
                let chunks = dx
                    .par_chunks_mut(CONV_CHUNK * ni)
                    .zip(delta.par_chunks(CONV_CHUNK * no));
                // dx = beta·dx + (the example's signal, computed into `tmp` unless beta = 0)
                let blend =
                    |dx: &mut [f32], tmp: &mut [f32], compute: &mut dyn FnMut(&mut [f32])| {
                        if beta == 0.0 {
                            compute(dx);
                        } else {
                            compute(tmp);
                            dx.iter_mut()
                                .zip(tmp.iter())
                                .for_each(|(a, t)| *a = beta * *a + t);
                        }
                    };
                if let Some(d) = direct(&g) {
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
        }
    }

    /// `dw ← alpha · Σ_e δ_e ⊛ input_e + beta · dw`, `db ← alpha · Σ_e δ_e + beta · db`: the
    /// batch-summed weight gradient, scaled and accumulated.
    #[allow(clippy::too_many_arguments)] // a kernel: outputs, inputs, sizes, scales
    pub fn weight_grad(
        &self,
        delta: &[f32],
        input: &[f32],
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        match self.kind {
            Kind::Dense => {
                gemm(
                    alpha,
                    Mat::t(delta, batch, self.n_out),
                    Mat::new(input, batch, self.n_in),
                    beta,
                    dw,
                );
                let mut sums = vec![0.0; self.n_out];
                matmul::column_sums(delta, &mut sums);
                db.iter_mut()
                    .zip(&sums)
                    .for_each(|(b, s)| *b = beta * *b + alpha * s);
            }
            Kind::Conv(g) => {
                let (ni, no) = (self.n_in, self.n_out);
                // partial sums per fixed chunk of examples, then summed in chunk order
                let parts: Vec<(Vec<f32>, Vec<f32>)> = delta
                    .par_chunks(CONV_CHUNK * no)
                    .zip(input.par_chunks(CONV_CHUNK * ni))
                    .map(|(d, x)| {
                        let (mut pw, mut pb) = (vec![0.0; dw.len()], vec![0.0; db.len()]);
                        if let Some(dir) = direct(&g) {
                            let lens = [dir.padded_len(), dir.delta_t_len(), 0];
                            with_scratch(lens, |xp, dt, _| {
                                for (d, x) in d.chunks_exact(no).zip(x.chunks_exact(ni)) {
                                    dir.pad_input(x, xp);
                                    dir.transpose_delta(d, dt);
                                    dir.weight_grad(dt, xp, 1.0, &mut pw);
                                    g.bias_grad(d, 1.0, &mut pb);
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
        }
    }
}

/// A layered net: hidden layers use `activation`, the top layer is linear and feeds a softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    pub layers: Vec<Layer>,
    pub activation: Activation,
}

/// What a forward pass keeps: every layer's output before pooling, the pooled maps and the
/// positions of the maxima.
#[derive(Clone, Debug, Default)]
pub struct Activations {
    /// `out[0]`: the input (`batch × N0`); `out[i + 1]`: layer i's output `O_{i+1}` before pooling
    /// (the logits for the top layer).
    pub out: Vec<Vec<f32>>,
    /// `pooled[i]`: layer i's pooled output (empty without pooling).
    pub pooled: Vec<Vec<f32>>,
    /// `argmax[i]`: index (within the example's map) of each pooled value's maximum.
    pub argmax: Vec<Vec<u32>>,
    /// Examples the buffers hold.
    pub capacity: usize,
}

impl Activations {
    /// Buffers for `batch` examples of `net`.
    pub fn new(net: &Net, batch: usize) -> Self {
        let mut out = vec![vec![0.0; batch * net.layers[0].n_in]];
        out.extend(net.layers.iter().map(|l| vec![0.0; batch * l.n_out]));
        let pooled = net
            .layers
            .iter()
            .map(|l| {
                l.pool
                    .map_or(Vec::new(), |p| vec![0.0; batch * p.out_len()])
            })
            .collect();
        let argmax = net
            .layers
            .iter()
            .map(|l| {
                l.pool
                    .map_or(Vec::new(), |p| vec![0u32; batch * p.out_len()])
            })
            .collect();
        Activations {
            out,
            pooled,
            argmax,
            capacity: batch,
        }
    }

    /// The input of layer `i` for `batch` examples.
    pub fn input_of(&self, net: &Net, i: usize, batch: usize) -> &[f32] {
        let n = net.layers[i].n_in * batch;
        if i > 0 && net.layers[i - 1].pool.is_some() {
            &self.pooled[i - 1][..n]
        } else {
            &self.out[i][..n]
        }
    }
}

impl Net {
    /// A dense net with layer sizes `[N0, N1, …, NL]`, weights from `rng`.
    pub fn new(sizes: &[usize], activation: Activation, rng: &mut Rng) -> Self {
        assert!(sizes.len() >= 2, "a net needs an input and an output size");
        let layers = sizes
            .windows(2)
            .map(|s| Layer::dense(s[0], s[1], rng))
            .collect();
        Net { layers, activation }
    }

    /// Units of every layer's output before pooling, with the input first: `[N0, …, NL]`. For a
    /// conv layer, `N = channels·height·width`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.layers[0].n_in)
            .chain(self.layers.iter().map(|l| l.n_out))
            .collect()
    }

    /// Number of weight layers L.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The architecture in words: `784-100-10` for a dense net, else each layer with its map
    /// shapes, e.g. `1×28×28 → conv32k5s1p2 → 32×28×28 → pool3s2p1 → 32×14×14 → fc64 → 10`.
    pub fn summary(&self) -> String {
        if self.is_dense() {
            return self
                .sizes()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("-");
        }
        let mut parts = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            match l.kind {
                Kind::Conv(g) => {
                    if i == 0 {
                        parts.push(format!("{}×{}×{}", g.c_in, g.h, g.w));
                    }
                    parts.push(format!("conv{}k{}s{}p{}", g.c_out, g.k, g.stride, g.pad));
                    parts.push(format!("{}×{}×{}", g.c_out, g.h_out, g.w_out));
                }
                Kind::Dense => {
                    if i == 0 {
                        parts.push(l.n_in.to_string());
                    }
                    parts.push(if i + 1 == self.layers.len() {
                        l.n_out.to_string()
                    } else {
                        format!("fc{}", l.n_out)
                    });
                }
            }
            if let Some(p) = l.pool {
                parts.push(format!("pool{}s{}p{}", p.k, p.stride, p.pad));
                parts.push(format!("{}×{}×{}", p.c, p.h_out, p.w_out));
            }
        }
        parts.join(" → ")
    }

    /// Whether every layer is dense without pooling (a multilayer perceptron).
    pub fn is_dense(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.kind == Kind::Dense && l.pool.is_none())
    }

    /// Forward pass of `batch` examples: `acts.out[0]` must hold the input; fills every layer's
    /// output (activated, pooled where the layer pools). The last output holds the logits.
    pub fn forward(&self, acts: &mut Activations, batch: usize) {
        for (i, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = acts.out.split_at_mut(i + 1);
            let input: &[f32] = if i > 0 && self.layers[i - 1].pool.is_some() {
                &acts.pooled[i - 1][..batch * layer.n_in]
            } else {
                &lo[i][..batch * layer.n_in]
            };
            let out = &mut hi[0][..batch * layer.n_out];
            layer.forward(input, out, batch);
            if i + 1 < self.layers.len() {
                self.activation.forward(out);
            }
            if let Some(p) = layer.pool {
                let (no, po) = (layer.n_out, p.out_len());
                let pooled = &mut acts.pooled[i][..batch * po];
                let arg = &mut acts.argmax[i][..batch * po];
                pooled
                    .par_chunks_mut(po)
                    .zip(arg.par_chunks_mut(po))
                    .zip(out.par_chunks(no))
                    .for_each(|((y, a), x)| p.forward(x, y, a));
            }
        }
    }

    /// Routes a signal at layer `i`'s pooled output (`batch × units_after_pool`) back to its
    /// output before pooling (`batch × n_out`), to the positions of the maxima; adds `beta·dst`.
    pub fn unpool(
        &self,
        i: usize,
        acts: &Activations,
        src: &[f32],
        dst: &mut [f32],
        batch: usize,
        beta: f32,
    ) {
        let layer = &self.layers[i];
        let p = layer.pool.expect("unpool of a layer that pools");
        let (no, po) = (layer.n_out, p.out_len());
        dst[..batch * no]
            .par_chunks_mut(no)
            .zip(src[..batch * po].par_chunks(po))
            .zip(acts.argmax[i][..batch * po].par_chunks(po))
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
}
