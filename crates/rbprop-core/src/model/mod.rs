//! Layered nets: dense and convolutional layers with bias, each optionally followed by
//! max-pooling; hidden activations; a softmax output.
//!
//! Indexing is 0-based: layer `i` maps its input (the network input for `i = 0`, else the pooled
//! output of layer `i − 1`) to `S_{i+1} = W_i ⊛ input + b_i` and `O_{i+1} = f(S_{i+1})` (the
//! paper's layer h is our `h − 1`); a pooling, if any, follows the activation. The top layer
//! `L − 1` is linear and feeds the softmax. Maps are row-major `C × H × W` per example, so
//! flattening into a dense layer is free.

pub mod arch;

use crate::backend::{Backend, Cpu, Mat, UpdateShape};
use crate::kernels::Activation;
use crate::kernels::conv::ConvGeom;
use crate::kernels::pool::PoolGeom;
use crate::rng::{self, Rng};

pub use arch::{LayerSpec, parse_arch};

/// The linear operation of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `S = W x + b`, W: `n_out × n_in`.
    Dense,
    /// `S = W ⊛ x + b`, W: `c_out × (c_in·k·k)`, b: `c_out`.
    Conv(ConvGeom),
}

/// One weight layer, with the pooling that follows it; its parameters live on backend `B`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<B: Backend = Cpu> {
    pub kind: Kind,
    /// Input values per example.
    pub n_in: usize,
    /// Output values per example, before pooling.
    pub n_out: usize,
    /// Weights (`n_out × n_in` dense; `c_out × c_in·k·k` conv).
    pub w: B::Buf,
    /// Biases (`n_out` dense; `c_out` conv).
    pub b: B::Buf,
    /// Max-pooling after the activation.
    pub pool: Option<PoolGeom>,
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
}

impl<B: Backend> Layer<B> {
    /// The same layer on backend `C`.
    pub fn to_backend<C: Backend>(&self) -> Layer<C> {
        Layer {
            kind: self.kind,
            n_in: self.n_in,
            n_out: self.n_out,
            w: C::upload(&B::download(&self.w)),
            b: C::upload(&B::download(&self.b)),
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

    /// Weights of the layer (`n_out·n_in` dense, `c_out·c_in·k·k` conv).
    pub fn weights_len(&self) -> usize {
        match self.kind {
            Kind::Dense => self.n_out * self.n_in,
            Kind::Conv(g) => g.c_out * g.kdim(),
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
    pub fn forward(&self, input: &B::Buf, out: &mut B::Buf, batch: usize) {
        match self.kind {
            Kind::Dense => {
                B::gemm(
                    1.0,
                    Mat::new(input, batch, self.n_in),
                    Mat::t(&self.w, self.n_out, self.n_in),
                    0.0,
                    out,
                );
                B::add_bias_rows(out, batch, &self.b);
            }
            Kind::Conv(g) => B::conv_forward(&g, &self.w, &self.b, input, out, batch),
        }
    }

    /// What the layer's kernels need besides its parameters.
    pub fn shape(&self) -> Shape {
        Shape {
            kind: self.kind,
            n_in: self.n_in,
            n_out: self.n_out,
        }
    }

    /// `dx (batch × n_in) ← beta · dx + weightsᵀ ⊛ delta` (see [`Shape::backward_data`]).
    pub fn backward_data(
        &self,
        weights: &B::Buf,
        delta: &B::Buf,
        dx: &mut B::Buf,
        batch: usize,
        beta: f32,
    ) {
        self.shape()
            .backward_data::<B>(weights, delta, dx, batch, beta)
    }

    /// The batch-summed weight gradient, scaled and accumulated (see [`Shape::weight_grad`]).
    #[allow(clippy::too_many_arguments)] // a kernel: outputs, inputs, sizes, scales
    pub fn weight_grad(
        &self,
        delta: &B::Buf,
        input: &B::Buf,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut B::Buf,
        db: &mut B::Buf,
    ) {
        self.shape()
            .weight_grad::<B>(delta, input, batch, alpha, beta, dw, db)
    }
}

/// A layer's operation and sizes without its parameters: what its backward kernels need (so
/// they can run while the parameters are borrowed for their update).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub kind: Kind,
    pub n_in: usize,
    pub n_out: usize,
}

impl Shape {
    /// `dx (batch × n_in) ← beta · dx + weightsᵀ ⊛ delta` — the signal sent down through
    /// `weights`, which are the layer's W or a matrix/kernel of the same shape in its place.
    pub fn backward_data<B: Backend>(
        self,
        weights: &B::Buf,
        delta: &B::Buf,
        dx: &mut B::Buf,
        batch: usize,
        beta: f32,
    ) {
        match self.kind {
            Kind::Dense => B::gemm(
                1.0,
                Mat::new(delta, batch, self.n_out),
                Mat::new(weights, self.n_out, self.n_in),
                beta,
                dx,
            ),
            Kind::Conv(g) => B::conv_backward_data(&g, weights, delta, dx, batch, beta),
        }
    }

    /// `dw ← alpha · Σ_e δ_e ⊛ input_e + beta · dw`, `db ← alpha · Σ_e δ_e + beta · db`: the
    /// batch-summed weight gradient, scaled and accumulated.
    #[allow(clippy::too_many_arguments)] // a kernel: outputs, inputs, sizes, scales
    pub fn weight_grad<B: Backend>(
        self,
        delta: &B::Buf,
        input: &B::Buf,
        batch: usize,
        alpha: f32,
        beta: f32,
        dw: &mut B::Buf,
        db: &mut B::Buf,
    ) {
        match self.kind {
            Kind::Dense => B::dense_weight_grad(
                delta, input, batch, self.n_in, self.n_out, alpha, beta, dw, db,
            ),
            Kind::Conv(g) => B::conv_weight_grad(&g, delta, input, batch, alpha, beta, dw, db),
        }
    }

    /// The layer as a quantized update sees it.
    pub fn update_shape(self) -> UpdateShape {
        UpdateShape {
            conv: match self.kind {
                Kind::Dense => None,
                Kind::Conv(g) => Some(g),
            },
            n_in: self.n_in,
            n_out: self.n_out,
        }
    }
}

/// A layered net: hidden layers use `activation`, the top layer is linear and feeds a softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct Net<B: Backend = Cpu> {
    pub layers: Vec<Layer<B>>,
    pub activation: Activation,
}

/// What a forward pass keeps: every layer's output before pooling, the pooled maps and the
/// positions of the maxima.
#[derive(Clone, Debug)]
pub struct Activations<B: Backend = Cpu> {
    /// `out[0]`: the input (`batch × N0`); `out[i + 1]`: layer i's output `O_{i+1}` before pooling
    /// (the logits for the top layer).
    pub out: Vec<B::Buf>,
    /// `pooled[i]`: layer i's pooled output (empty without pooling).
    pub pooled: Vec<B::Buf>,
    /// `argmax[i]`: index (within the example's map) of each pooled value's maximum.
    pub argmax: Vec<B::Index>,
    /// Examples the buffers hold.
    pub capacity: usize,
}

impl<B: Backend> Default for Activations<B> {
    fn default() -> Self {
        Activations {
            out: Vec::new(),
            pooled: Vec::new(),
            argmax: Vec::new(),
            capacity: 0,
        }
    }
}

impl<B: Backend> Activations<B> {
    /// Buffers for `batch` examples of `net`.
    pub fn new(net: &Net<B>, batch: usize) -> Self {
        let mut out = vec![B::zeros(batch * net.layers[0].n_in)];
        out.extend(net.layers.iter().map(|l| B::zeros(batch * l.n_out)));
        let pooled = net
            .layers
            .iter()
            .map(|l| B::zeros(l.pool.map_or(0, |p| batch * p.out_len())))
            .collect();
        let argmax = net
            .layers
            .iter()
            .map(|l| B::index_zeros(l.pool.map_or(0, |p| batch * p.out_len())))
            .collect();
        Activations {
            out,
            pooled,
            argmax,
            capacity: batch,
        }
    }

    /// The buffer whose first `batch × n_in` values are the input of layer `i`.
    pub fn input_of(&self, net: &Net<B>, i: usize) -> &B::Buf {
        if i > 0 && net.layers[i - 1].pool.is_some() {
            &self.pooled[i - 1]
        } else {
            &self.out[i]
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
}

impl<B: Backend> Net<B> {
    /// The same net on backend `C`.
    pub fn to_backend<C: Backend>(&self) -> Net<C> {
        Net {
            layers: self.layers.iter().map(|l| l.to_backend()).collect(),
            activation: self.activation,
        }
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
    pub fn forward(&self, acts: &mut Activations<B>, batch: usize) {
        self.forward_rest(acts, batch, false);
    }

    /// [`Net::forward`] with layer 0's product `O_0 · W_0ᵀ` (dense, before its bias) already in
    /// `acts.out[1]`: the bias, the activation and every layer above, as `forward` does them.
    pub fn forward_after_first_product(&self, acts: &mut Activations<B>, batch: usize) {
        self.forward_rest(acts, batch, true);
    }

    fn forward_rest(&self, acts: &mut Activations<B>, batch: usize, first_product_done: bool) {
        for (i, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = acts.out.split_at_mut(i + 1);
            let input = if i > 0 && self.layers[i - 1].pool.is_some() {
                &acts.pooled[i - 1]
            } else {
                &lo[i]
            };
            let out = &mut hi[0];
            let hidden = i + 1 < self.layers.len();
            if i == 0 && first_product_done {
                assert_eq!(layer.kind, Kind::Dense, "a shared first product is dense");
                B::add_bias_rows(out, batch, &layer.b);
                if hidden {
                    B::activate(self.activation, out, batch * layer.n_out);
                }
            } else if layer.kind == Kind::Dense {
                // product, bias and activation: one operation a backend may fuse
                let f = hidden.then_some(self.activation);
                B::dense_forward(
                    input,
                    &layer.w,
                    &layer.b,
                    batch,
                    layer.n_in,
                    layer.n_out,
                    f,
                    out,
                );
            } else {
                layer.forward(input, out, batch);
                if hidden {
                    B::activate(self.activation, out, batch * layer.n_out);
                }
            }
            if let Some(p) = layer.pool {
                B::pool_forward(&p, out, &mut acts.pooled[i], &mut acts.argmax[i], batch);
            }
        }
    }

    /// Routes a signal at layer `i`'s pooled output (`batch × units_after_pool`) back to its
    /// output before pooling (`batch × n_out`), to the positions of the maxima; adds `beta·dst`.
    pub fn unpool(
        &self,
        i: usize,
        acts: &Activations<B>,
        src: &B::Buf,
        dst: &mut B::Buf,
        batch: usize,
        beta: f32,
    ) {
        let p = self.layers[i].pool.expect("unpool of a layer that pools");
        B::unpool(&p, src, &acts.argmax[i], dst, batch, beta);
    }
}
