//! Layered nets A[N0, N1, …, NL]: dense layers with bias, hidden activations, softmax output.
//!
//! Indexing is 0-based: layer `i` maps `O_i` (`O_0` is the input) to `S_{i+1} = W_i O_i + b_i`,
//! `O_{i+1} = f(S_{i+1})`. The paper's layer h is our layer `h − 1`; the top layer is `L − 1`, whose
//! output is fed to the softmax.

use crate::kernels::{Activation, Mat, gemm, matmul};
use crate::rng::{self, Rng};

/// One dense layer. `w`: `[n_out][n_in]` row-major, `b`: `[n_out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub n_in: usize,
    pub n_out: usize,
    /// Weights `W` (`n_out × n_in`).
    pub w: Vec<f32>,
    /// Biases `b` (`n_out`).
    pub b: Vec<f32>,
}

impl Dense {
    /// `W ~ N(0, 1/n_in)`, `b = 0`.
    pub fn init(n_in: usize, n_out: usize, rng: &mut Rng) -> Self {
        let sd = (1.0 / n_in as f64).sqrt();
        let w = rng::normal_vec(n_in * n_out, sd, rng);
        Dense {
            n_in,
            n_out,
            w,
            b: vec![0.0; n_out],
        }
    }
}

/// A multilayer perceptron: `layers[i]` is `W_i`, `b_i`; hidden layers use `activation`, the top
/// layer is linear and feeds a softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    pub activation: Activation,
}

impl Mlp {
    /// A net with the given layer sizes `[N0, N1, …, NL]`, weights from `rng`.
    pub fn new(sizes: &[usize], activation: Activation, rng: &mut Rng) -> Self {
        assert!(sizes.len() >= 2, "a net needs an input and an output size");
        let layers = sizes
            .windows(2)
            .map(|s| Dense::init(s[0], s[1], rng))
            .collect();
        Mlp { layers, activation }
    }

    /// Layer sizes `[N0, …, NL]`.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.layers[0].n_in)
            .chain(self.layers.iter().map(|l| l.n_out))
            .collect()
    }

    /// Number of weight layers L.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Forward pass of `batch` examples: `acts[0]` must hold the input (`batch × N0`); fills
    /// `acts[i + 1]` (`batch × N_{i+1}`) with each layer's output. The last entry holds the logits.
    pub fn forward(&self, acts: &mut [Vec<f32>], batch: usize) {
        for (i, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = acts.split_at_mut(i + 1);
            let input = &lo[i][..batch * layer.n_in];
            let out = &mut hi[0][..batch * layer.n_out];
            // S = O Wᵀ + b
            gemm(
                1.0,
                Mat::new(input, batch, layer.n_in),
                Mat::t(&layer.w, layer.n_out, layer.n_in),
                0.0,
                out,
            );
            matmul::add_bias_rows(out, &layer.b);
            if i + 1 < self.layers.len() {
                self.activation.forward(out);
            }
        }
    }
}
