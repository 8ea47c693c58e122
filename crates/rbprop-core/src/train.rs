//! The training loop: forward, loss, learning channel, update — for one minibatch, one epoch,
//! and evaluation.
//!
//! Update rule (paper §1), for every layer that learns, with `B` examples in the batch:
//! `W_i ← W_i − η_t/B · δ_iᵀ O_i`, `b_i ← b_i − η_t/B · Σ δ_i`, where `η_t = η_0 / (1 + decay·t)`
//! and `t` counts updates so far. With momentum μ: `V ← μV − η_t/B · δᵀO`, `W ← W + V`.
//! Weight decay λ adds `−η_t·λ·W`. With quantized updates each example's update is quantized
//! before the average: `W ← W + 1/B · Σ_e Q(−η_t · δ_e O_eᵀ)`.

use crate::channel::Channel;
use crate::channel::quantize::{self, Form, Quantizer, Rounding};
use crate::data::Dataset;
use crate::data::augment::Augment;
use crate::kernels::loss::{BatchLoss, softmax_cross_entropy};
use crate::model::{Activations, Kind, Layer, Net};
use crate::rng;
use rand::seq::SliceRandom;

/// Stochastic gradient descent with per-update decay and optional momentum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub decay: f64,
    pub momentum: f64,
    /// Weight decay λ: `W ← W − η_t·λ·W` on every update (biases excluded).
    pub weight_decay: f64,
}

impl Sgd {
    /// `η_t = η_0 / (1 + decay · t)`.
    pub fn rate(&self, t: u64) -> f64 {
        self.lr / (1.0 + self.decay * t as f64)
    }
}

/// A net, its learning channel, the optimizer state and the scratch buffers of a step.
pub struct Trainer {
    pub net: Net,
    pub channel: Channel,
    pub sgd: Sgd,
    /// Updates done so far (t).
    pub step: u64,
    /// Momentum buffers (V_W, V_b) per layer; empty without momentum.
    pub velocity: Vec<(Vec<f32>, Vec<f32>)>,
    // Scratch, sized for `acts.capacity` examples: the forward pass, δ_i and g_i of every layer.
    acts: Activations,
    deltas: Vec<Vec<f32>>,
    signals: Vec<Vec<f32>>,
}

/// Per-epoch training totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochStats {
    pub loss: f64,
    pub acc: f64,
    pub examples: usize,
}

impl Trainer {
    /// The signal `g_i` that reached hidden layer `i` in the last step (before f', after the
    /// channel's dropout and quantizer), for every example of that step, row-major (the buffer
    /// may be longer than the step's examples).
    pub fn signal(&self, i: usize) -> &[f32] {
        &self.signals[i]
    }

    pub fn new(net: Net, channel: Channel, sgd: Sgd) -> Self {
        let velocity = if sgd.momentum > 0.0 {
            net.layers
                .iter()
                .map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()]))
                .collect()
        } else {
            Vec::new()
        };
        Trainer {
            net,
            channel,
            sgd,
            step: 0,
            velocity,
            acts: Activations::default(),
            deltas: Vec::new(),
            signals: Vec::new(),
        }
    }

    fn reserve(&mut self, batch: usize) {
        if batch > self.acts.capacity {
            self.acts = Activations::new(&self.net, batch);
            self.deltas = self
                .net
                .layers
                .iter()
                .map(|l| vec![0.0; batch * l.n_out])
                .collect();
            self.signals = self.deltas.clone();
        }
    }

    /// One SGD update on a minibatch: `x` is `batch × N0`, `labels` has `batch` entries.
    /// Returns the batch's loss totals, measured before the update.
    pub fn step(&mut self, x: &[f32], labels: &[u8]) -> BatchLoss {
        let loss = self.forward_loss(x, labels);
        // the learning channel: δ_i of every hidden layer that learns
        self.channel_backward(labels);
        self.update(labels.len());
        loss
    }

    /// Forward pass, loss and δ_L = O_L − T of a batch, kept in the trainer's buffers.
    pub fn forward_loss(&mut self, x: &[f32], labels: &[u8]) -> BatchLoss {
        let batch = labels.len();
        let sizes = self.net.sizes();
        let (top, classes) = (self.net.depth() - 1, sizes[sizes.len() - 1]);
        assert_eq!(x.len(), batch * sizes[0], "input batch shape");
        self.reserve(batch);
        self.acts.out[0][..x.len()].copy_from_slice(x);
        self.net.forward(&mut self.acts, batch);
        let logits = &mut self.acts.out[top + 1][..batch * classes];
        softmax_cross_entropy(
            logits,
            labels,
            classes,
            Some(&mut self.deltas[top][..batch * classes]),
        )
    }

    /// Runs the learning channel on the batch of the last [`Trainer::forward_loss`], without
    /// any update (to time the channel's backward pass alone).
    pub fn channel_backward(&mut self, labels: &[u8]) {
        self.channel.backward(
            &self.net,
            &self.acts,
            labels,
            &mut self.deltas,
            &mut self.signals,
        );
    }

    /// Applies the update of the δ's in the buffers (feedback matrices that learn, then the
    /// forward weights) and counts the step.
    fn update(&mut self, batch: usize) {
        let top = self.net.depth() - 1;
        let rate = self.sgd.rate(self.step);
        self.channel
            .adapt(&self.net, &self.acts, &self.deltas, batch, rate);
        let scale = (-rate / batch as f64) as f32;
        let momentum = self.sgd.momentum as f32;
        for i in 0..=top {
            if !self.channel.learns(i) {
                continue;
            }
            let n_out = self.net.layers[i].n_out;
            let input = self.acts.input_of(&self.net, i, batch);
            let delta = &self.deltas[i][..batch * n_out];
            let layer = &mut self.net.layers[i];
            if self.sgd.weight_decay > 0.0 {
                let keep = (1.0 - rate * self.sgd.weight_decay) as f32;
                layer.w.iter_mut().for_each(|w| *w *= keep);
            }
            if let Some(q) = self.channel.quantize_update {
                let key = match q.rounding {
                    Rounding::Stochastic => Some(self.channel.noise_key()),
                    Rounding::Nearest => None,
                };
                let alpha = &mut self.channel.update_alpha[i];
                quantized_update(layer, delta, input, rate, q, alpha, key);
                continue;
            }
            let snapshot = layer.clone_shape();
            if self.velocity.is_empty() {
                // W += −η/B · Σ δ ⊛ input
                snapshot.weight_grad(delta, input, batch, scale, 1.0, &mut layer.w, &mut layer.b);
            } else {
                let (vw, vb) = &mut self.velocity[i];
                // V = μV − η/B · Σ δ ⊛ input ;  W += V
                snapshot.weight_grad(delta, input, batch, scale, momentum, vw, vb);
                layer.w.iter_mut().zip(vw.iter()).for_each(|(w, v)| *w += v);
                layer.b.iter_mut().zip(vb.iter()).for_each(|(b, v)| *b += v);
            }
        }
        self.step += 1;
    }

    /// The learning rate of the next update.
    pub fn rate(&self) -> f64 {
        self.sgd.rate(self.step)
    }

    /// One pass over `data` in the order given by stream `shuffle/epoch{epoch}` of `seed`, each
    /// example augmented from stream `augment/epoch{epoch}` if `augment` is active.
    /// Calls `progress(examples_done)` after each batch. Stops early (returning the totals so far
    /// with a non-finite loss) if a batch's loss is not finite.
    pub fn epoch(
        &mut self,
        data: &Dataset,
        batch: usize,
        seed: u64,
        epoch: usize,
        augment: Augment,
        mut progress: impl FnMut(usize),
    ) -> EpochStats {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng::stream(seed, &format!("shuffle/epoch{epoch}")));
        let mut aug_rng = rng::stream(seed, &format!("augment/epoch{epoch}"));
        let mut scratch = vec![0.0; data.dim];
        let mut x = Vec::with_capacity(batch * data.dim);
        let mut y = Vec::with_capacity(batch);
        let mut total = BatchLoss::default();
        let mut done = 0;
        for chunk in order.chunks(batch) {
            x.clear();
            y.clear();
            for &i in chunk {
                if augment.active() {
                    augment.apply(data.image(i), &mut scratch, data.shape, &mut aug_rng);
                    x.extend_from_slice(&scratch);
                } else {
                    x.extend_from_slice(data.image(i));
                }
                y.push(data.labels[i]);
            }
            let loss = self.step(&x, &y);
            total.add(loss);
            done += chunk.len();
            progress(done);
            if !loss.loss_sum.is_finite() {
                break;
            }
        }
        EpochStats {
            loss: total.loss_sum / done as f64,
            acc: total.correct as f64 / done as f64,
            examples: done,
        }
    }

    /// Mean loss and accuracy of the current net on `data` (no learning).
    pub fn evaluate(&self, data: &Dataset) -> EpochStats {
        evaluate(&self.net, data)
    }
}

/// `W += 1/B · Σ_e Q(−rate · δ_e ⊛ input_e)`, `b += 1/B · Σ_e Q(−rate · δ_e)`: each example's
/// update is quantized (mid-tread) before the minibatch average (paper §1, quantized weight
/// updates). `alpha` is the layer's scale: calibrated here at the first update when 0 (the
/// largest magnitude of any example's update), then kept. With `key`, rounding is stochastic.
fn quantized_update(
    layer: &mut Layer,
    delta: &[f32],
    input: &[f32],
    rate: f64,
    q: Quantizer,
    alpha: &mut f32,
    key: Option<u64>,
) {
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    let batch = delta.len() / n_out;
    let shape = layer.clone_shape();
    // one example's gradient (conv), or nothing to precompute (dense)
    let example_grad = |e: usize, gw: &mut Vec<f32>, gb: &mut Vec<f32>| {
        shape.weight_grad(
            &delta[e * n_out..(e + 1) * n_out],
            &input[e * n_in..(e + 1) * n_in],
            1,
            (-rate) as f32,
            0.0,
            gw,
            gb,
        );
    };
    if *alpha == 0.0 {
        let max = match layer.kind {
            Kind::Dense => (0..batch)
                .map(|e| {
                    let d = quantize::calibrate(&delta[e * n_out..(e + 1) * n_out]).unwrap_or(0.0);
                    let o = quantize::calibrate(&input[e * n_in..(e + 1) * n_in]).unwrap_or(0.0);
                    rate as f32 * d * o.max(1.0)
                })
                .fold(0.0f32, f32::max),
            Kind::Conv(_) => {
                let (mut gw, mut gb) = (vec![0.0f32; layer.w.len()], vec![0.0f32; layer.b.len()]);
                let mut m = 0.0f32;
                for e in 0..batch {
                    example_grad(e, &mut gw, &mut gb);
                    m = m
                        .max(quantize::calibrate(&gw).unwrap_or(0.0))
                        .max(quantize::calibrate(&gb).unwrap_or(0.0));
                }
                m
            }
        };
        if !(max.is_finite() && max > 0.0) {
            return; // nothing to learn from yet: the scale waits for a non-zero update
        }
        *alpha = max;
    }
    let levels = q.levels(*alpha, Form::MidTread);
    let s = levels.steps();
    let a = *alpha;
    let mut acc = vec![0.0f32; layer.w.len()];
    let mut acc_b = vec![0.0f32; layer.b.len()];
    // one value in steps of α/s: nearest, or stochastic with the uniform number of its index
    // (the same counter scheme as the tiled weight sums; biases count after every weight entry)
    let steps = |x: f32, index: u64| -> f32 {
        match key {
            None => quantize::steps_of(x, s),
            Some(k) => quantize::steps_stochastic(x, s, quantize::uniform(k.wrapping_add(index))),
        }
    };
    match layer.kind {
        Kind::Dense => {
            // Q(x) = (α/s) · clamp(round(x · s/α), −s, s), summed in steps
            let k = (-rate) as f32 * (s / a);
            let coefs: Vec<f32> = delta.iter().map(|d| k * d).collect();
            match key {
                None => quantize::add_quantized_outer(&mut acc, &coefs, input, n_out, n_in, s),
                Some(key) => quantize::add_quantized_outer_stochastic(
                    &mut acc, &coefs, input, n_out, n_in, s, key,
                ),
            }
            let weights = (batch * n_out * n_in) as u64;
            for (e, c) in coefs.chunks_exact(n_out).enumerate() {
                for (r, (acc, c)) in acc_b.iter_mut().zip(c).enumerate() {
                    *acc += steps(*c, weights + (e * n_out + r) as u64);
                }
            }
        }
        Kind::Conv(_) => {
            // one example at a time: its own gradient, quantized, then accumulated
            let (mut gw, mut gb) = (vec![0.0f32; layer.w.len()], vec![0.0f32; layer.b.len()]);
            let per = (gw.len() + gb.len()) as u64;
            for e in 0..batch {
                example_grad(e, &mut gw, &mut gb);
                let base = e as u64 * per;
                for (j, (acc, g)) in acc.iter_mut().zip(&gw).enumerate() {
                    *acc += steps(g * (s / a), base + j as u64);
                }
                let off = base + gw.len() as u64;
                for (j, (acc, g)) in acc_b.iter_mut().zip(&gb).enumerate() {
                    *acc += steps(g * (s / a), off + j as u64);
                }
            }
        }
    }
    let unit = a / s;
    let inv = unit / batch as f32;
    layer
        .w
        .iter_mut()
        .zip(&acc)
        .for_each(|(w, a)| *w += a * inv);
    layer
        .b
        .iter_mut()
        .zip(&acc_b)
        .for_each(|(b, a)| *b += a * inv);
}

/// Mean cross-entropy and accuracy of `net` on `data`, in chunks of examples.
pub fn evaluate(net: &Net, data: &Dataset) -> EpochStats {
    let chunk = if net.is_dense() { 1000 } else { 250 };
    let classes = net.layers[net.depth() - 1].n_out;
    let mut acts = Activations::new(net, chunk);
    let mut total = BatchLoss::default();
    for start in (0..data.len()).step_by(chunk) {
        let n = chunk.min(data.len() - start);
        acts.out[0][..n * data.dim]
            .copy_from_slice(&data.images[start * data.dim..(start + n) * data.dim]);
        net.forward(&mut acts, n);
        let logits = &mut acts.out[net.depth()][..n * classes];
        total.add(softmax_cross_entropy(
            logits,
            &data.labels[start..start + n],
            classes,
            None,
        ));
    }
    EpochStats {
        loss: total.loss_sum / data.len() as f64,
        acc: total.correct as f64 / data.len() as f64,
        examples: data.len(),
    }
}
