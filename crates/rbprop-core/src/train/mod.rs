//! The training loop: forward, loss, learning channel, update — for one minibatch, one epoch,
//! and evaluation.
//!
//! Update rule (paper §1), for every layer that learns, with `B` examples in the batch:
//! `W_i ← W_i − η_t/B · δ_iᵀ O_i`, `b_i ← b_i − η_t/B · Σ δ_i`, where `η_t = η_0 / (1 + decay·t)`
//! and `t` counts updates so far. With momentum μ: `V ← μV − η_t/B · δᵀO`, `W ← W + V`.
//! Weight decay λ adds `−η_t·λ·W`. With quantized updates each example's update is quantized
//! before the average: `W ← W + 1/B · Σ_e Q(−η_t · δ_e O_eᵀ)`.

use crate::backend::{Backend, Cpu, DenseGrad};
use crate::channel::Channel;
use crate::data::Dataset;
use crate::data::augment::Augment;
use crate::kernels::loss::BatchLoss;
use crate::model::{Activations, Net};
use crate::quantize::Rounding;
use crate::rng;
use rand::seq::SliceRandom;
use std::ops::ControlFlow;

mod ensemble;
mod stack;
pub use ensemble::{Ensemble, Epilogue};
pub use stack::{Stack, refuses as stack_refuses};

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

/// A net, its learning channel, the optimizer state and the scratch buffers of a step, all on
/// backend `B`.
pub struct Trainer<B: Backend = Cpu> {
    pub net: Net<B>,
    pub channel: Channel<B>,
    pub sgd: Sgd,
    /// Updates done so far (t).
    pub step: u64,
    /// Momentum buffers (V_W, V_b) per layer; empty without momentum.
    pub velocity: Vec<(B::Buf, B::Buf)>,
    // Scratch, sized for `acts.capacity` examples: the forward pass, δ_i and g_i of every layer.
    acts: Activations<B>,
    deltas: Vec<B::Buf>,
    signals: Vec<B::Buf>,
}

/// Per-epoch training totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochStats {
    pub loss: f64,
    pub acc: f64,
    pub examples: usize,
}

impl<B: Backend> Trainer<B> {
    /// The signal `g_i` that reached hidden layer `i` in the last step (before f', after the
    /// channel's dropout and quantizer), for every example of that step, row-major (the buffer
    /// may be longer than the step's examples).
    pub fn signal(&self, i: usize) -> &B::Buf {
        &self.signals[i]
    }

    pub fn new(net: Net<B>, channel: Channel<B>, sgd: Sgd) -> Self {
        let velocity = if sgd.momentum > 0.0 {
            net.layers
                .iter()
                .map(|l| (B::zeros(B::len(&l.w)), B::zeros(B::len(&l.b))))
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

    /// The same trainer on backend `C`: net, channel (its noise stream where it is), optimizer
    /// state and step count; the scratch of a step is allocated again at the next step.
    pub fn to_backend<C: Backend>(&self) -> Trainer<C> {
        Trainer {
            net: self.net.to_backend(),
            channel: self.channel.to_backend(),
            sgd: self.sgd,
            step: self.step,
            velocity: self
                .velocity
                .iter()
                .map(|(w, b)| (C::upload(&B::download(w)), C::upload(&B::download(b))))
                .collect(),
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
                .map(|l| B::zeros(batch * l.n_out))
                .collect();
            self.signals = self.deltas.clone();
        }
    }

    /// One SGD update on a minibatch: `x` is `batch × N0`, `labels` has `batch` entries.
    /// Returns the batch's loss totals, measured before the update.
    pub fn step(&mut self, x: &[f32], labels: &[u8]) -> BatchLoss {
        B::read_loss(&self.step_kept(x, labels))
    }

    /// [`Trainer::step`], the loss totals left in the backend (read them with
    /// [`Backend::read_loss`] or [`Backend::read_losses`]).
    pub fn step_kept(&mut self, x: &[f32], labels: &[u8]) -> B::Loss {
        self.step_stacked(x, labels, 1)
    }

    /// [`Trainer::step_kept`] of a trainer whose buffers hold `members` nets stacked (a backend
    /// that stacks them, e.g. the GPU's ensembles): `x` and `labels` are the members'
    /// minibatches one after another, all of one size. Each member takes the step it would take
    /// alone; the loss holds every member's totals.
    pub fn step_stacked(&mut self, x: &[f32], labels: &[u8], members: usize) -> B::Loss {
        assert!(
            members > 0 && labels.len().is_multiple_of(members),
            "every member's minibatch has the same size"
        );
        let batch = labels.len() / members;
        let loss = self.forward_loss_rows(x, labels, batch);
        // the learning channel: δ_i of every hidden layer that learns
        self.channel.backward_rows(
            &self.net,
            &self.acts,
            labels,
            batch,
            &mut self.deltas,
            &mut self.signals,
        );
        self.update(batch, false);
        loss
    }

    /// Every buffer that lasts from step to step, in a fixed order: each layer's weights and
    /// bias, the channel's tensors, the momentum buffers. (The scratch of a step is made again
    /// by the next step.)
    pub fn for_each_buffer(&mut self, f: &mut dyn FnMut(&mut B::Buf)) {
        for l in &mut self.net.layers {
            f(&mut l.w);
            f(&mut l.b);
        }
        for (_, t) in self.channel.tensors_mut() {
            f(t);
        }
        for (w, b) in &mut self.velocity {
            f(w);
            f(b);
        }
        // stacked or not, the scratch is sized anew
        self.acts = Activations::default();
        self.deltas = Vec::new();
        self.signals = Vec::new();
    }

    /// Forward pass, loss and δ_L = O_L − T of a batch, kept in the trainer's buffers.
    pub fn forward_loss(&mut self, x: &[f32], labels: &[u8]) -> BatchLoss {
        B::read_loss(&self.forward_loss_kept(x, labels))
    }

    fn forward_loss_kept(&mut self, x: &[f32], labels: &[u8]) -> B::Loss {
        self.forward_loss_rows(x, labels, labels.len())
    }

    /// [`Trainer::forward_loss_kept`] with `batch` examples per member (see
    /// [`Trainer::step_stacked`]).
    fn forward_loss_rows(&mut self, x: &[f32], labels: &[u8], batch: usize) -> B::Loss {
        let sizes = self.net.sizes();
        assert_eq!(x.len(), labels.len() * sizes[0], "input batch shape");
        self.reserve(batch);
        B::write(&mut self.acts.out[0], x);
        self.net.forward(&mut self.acts, batch);
        self.loss_kept(labels)
    }

    /// Loss and δ_L = O_L − T of the batch whose forward pass is in the buffers.
    fn loss_kept(&mut self, labels: &[u8]) -> B::Loss {
        let sizes = self.net.sizes();
        let (top, classes) = (self.net.depth() - 1, sizes[sizes.len() - 1]);
        B::softmax_cross_entropy(
            &mut self.acts.out[top + 1],
            labels,
            classes,
            Some(&mut self.deltas[top]),
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

    /// Whether the update of layer 0's weights is a plain product `W += α·δᵀ·O_0` (or its
    /// momentum form) that [`Ensemble`] may compute for several members at once: the layer
    /// learns, is dense, and its update is not quantized.
    fn first_update_is_product(&self) -> bool {
        self.channel.learns(0)
            && self.net.layers[0].kind == crate::model::Kind::Dense
            && self.channel.quantize_update.is_none()
    }

    /// Applies the update of the δ's in the buffers (feedback matrices that learn, then the
    /// forward weights) and counts the step. With `defer_first`, layer 0's weights (for which
    /// [`Trainer::first_update_is_product`] holds) are left for [`Trainer::finish_first`], with
    /// the returned `(rate, scale)` of this step.
    fn update(&mut self, batch: usize, defer_first: bool) -> Option<(f64, f32)> {
        let top = self.net.depth() - 1;
        let rate = self.sgd.rate(self.step);
        self.channel
            .adapt(&self.net, &self.acts, &self.deltas, batch, rate);
        let scale = (-rate / batch as f64) as f32;
        let momentum = self.sgd.momentum as f32;
        let deferred = (defer_first && self.first_update_is_product()).then_some((rate, scale));
        // plain SGD (no momentum, weight decay or quantizer): every dense layer's update in one
        // operation (W += −η/B · Σ δ ⊛ input), the other layers below
        let grouped = self.velocity.is_empty()
            && self.sgd.weight_decay == 0.0
            && self.channel.quantize_update.is_none();
        let learns: Vec<bool> = (0..=top)
            .map(|i| self.channel.learns(i) && !(i == 0 && deferred.is_some()))
            .collect();
        let in_group = |i: usize, layer: &crate::model::Layer<B>| {
            grouped && learns[i] && layer.kind == crate::model::Kind::Dense
        };
        if grouped {
            // each layer's input (borrowing the activations only), then the layers to update
            let inputs: Vec<&B::Buf> = (0..=top)
                .map(|i| self.acts.input_of(&self.net, i))
                .collect();
            let deltas = &self.deltas;
            let mut group: Vec<DenseGrad<'_, B>> = self
                .net
                .layers
                .iter_mut()
                .enumerate()
                .filter(|(i, layer)| in_group(*i, layer))
                .map(|(i, layer)| DenseGrad {
                    delta: &deltas[i],
                    x: inputs[i],
                    rows: batch,
                    n_in: layer.n_in,
                    n_out: layer.n_out,
                    dw: &mut layer.w,
                    db: &mut layer.b,
                })
                .collect();
            B::dense_weight_grads(&mut group, scale, 1.0);
        }
        for (i, &learns_i) in learns.iter().enumerate() {
            if !learns_i || in_group(i, &self.net.layers[i]) {
                continue;
            }
            let input = self.acts.input_of(&self.net, i);
            let delta = &self.deltas[i];
            let layer = &mut self.net.layers[i];
            if self.sgd.weight_decay > 0.0 {
                B::scale(&mut layer.w, (1.0 - rate * self.sgd.weight_decay) as f32);
            }
            if let Some(q) = self.channel.quantize_update {
                let key = match q.rounding {
                    Rounding::Stochastic => Some(self.channel.noise_key()),
                    Rounding::Nearest => None,
                };
                let alpha = &mut self.channel.update_alpha[i];
                B::quantized_update(
                    layer.shape().update_shape(),
                    &mut layer.w,
                    &mut layer.b,
                    delta,
                    input,
                    batch,
                    rate,
                    q,
                    alpha,
                    key,
                );
                continue;
            }
            let shape = layer.shape();
            if self.velocity.is_empty() {
                // W += −η/B · Σ δ ⊛ input
                shape.weight_grad::<B>(delta, input, batch, scale, 1.0, &mut layer.w, &mut layer.b);
            } else {
                let (vw, vb) = &mut self.velocity[i];
                // V = μV − η/B · Σ δ ⊛ input ;  W += V
                shape.weight_grad::<B>(delta, input, batch, scale, momentum, vw, vb);
                B::add_assign(&mut layer.w, vw);
                B::add_assign(&mut layer.b, vb);
            }
        }
        self.step += 1;
        deferred
    }

    /// The learning rate of the next update.
    pub fn rate(&self) -> f64 {
        self.sgd.rate(self.step)
    }

    /// One pass over `data` in the order given by stream `shuffle/epoch{epoch}` of `seed`, each
    /// example augmented from stream `augment/epoch{epoch}` if `augment` is active.
    /// Calls `progress(examples_done)` after each batch. Stops early (returning the totals so far
    /// with a non-finite loss) if a batch's loss is not finite — when it reads it back, at most
    /// [`Backend::LOSS_READ_INTERVAL`] batches later.
    pub fn epoch(
        &mut self,
        data: &Dataset,
        batch: usize,
        seed: u64,
        epoch: usize,
        augment: Augment,
        mut progress: impl FnMut(usize),
    ) -> EpochStats {
        self.epoch_until(data, batch, seed, epoch, augment, |done| {
            progress(done);
            ControlFlow::Continue(())
        })
        .expect("an epoch that is never stopped finishes")
    }

    /// [`Trainer::epoch`], stoppable between two updates: after each batch `progress` gets the
    /// examples done and may answer [`ControlFlow::Break`], which ends the pass at once (the
    /// net keeps the updates done so far) and returns `None`.
    pub fn epoch_until(
        &mut self,
        data: &Dataset,
        batch: usize,
        seed: u64,
        epoch: usize,
        augment: Augment,
        mut progress: impl FnMut(usize) -> ControlFlow<()>,
    ) -> Option<EpochStats> {
        let mut batches = Minibatches::new(data, batch, seed, epoch, augment);
        let mut total = BatchLoss::default();
        // losses not read yet, with their batch sizes
        let mut kept: Vec<(B::Loss, usize)> = Vec::new();
        // examples whose losses are in `total`; set at the first non-finite loss
        let (mut counted, mut diverged) = (0, false);
        let mut read = |kept: &mut Vec<(B::Loss, usize)>, total: &mut BatchLoss| {
            let (losses, sizes): (Vec<B::Loss>, Vec<usize>) = kept.drain(..).unzip();
            for (loss, n) in B::read_losses(&losses).into_iter().zip(sizes) {
                total.add(loss);
                counted += n;
                if !loss.loss_sum.is_finite() {
                    return true;
                }
            }
            false
        };
        let mut done = 0;
        while let Some((x, y)) = batches.next_batch() {
            let n = y.len();
            kept.push((self.step_kept(x, y), n));
            if kept.len() >= B::LOSS_READ_INTERVAL {
                diverged = read(&mut kept, &mut total);
            }
            done += n;
            let flow = progress(done);
            if diverged {
                break;
            }
            if flow.is_break() {
                // a loss not read yet may have diverged: that ends the epoch with it
                if !read(&mut kept, &mut total) {
                    return None;
                }
                diverged = true;
                break;
            }
        }
        if !diverged {
            read(&mut kept, &mut total);
        }
        Some(EpochStats {
            loss: total.loss_sum / counted as f64,
            acc: total.correct as f64 / counted as f64,
            examples: counted,
        })
    }

    /// Mean loss and accuracy of the current net on `data` (no learning).
    pub fn evaluate(&self, data: &Dataset) -> EpochStats {
        evaluate(&self.net, data)
    }
}

/// The minibatches of one epoch over a dataset: its examples in the order of stream
/// `shuffle/epoch{epoch}` of `seed`, `batch` at a time (the last one shorter), each augmented
/// from stream `augment/epoch{epoch}` when `augment` is active. A solo run and an ensemble's
/// members read the same ones for the same seed.
pub struct Minibatches<'d> {
    data: &'d Dataset,
    order: Vec<usize>,
    batch: usize,
    next: usize,
    augment: Augment,
    aug_rng: rng::Rng,
    scratch: Vec<f32>,
    x: Vec<f32>,
    y: Vec<u8>,
}

impl<'d> Minibatches<'d> {
    pub fn new(data: &'d Dataset, batch: usize, seed: u64, epoch: usize, augment: Augment) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng::stream(seed, &format!("shuffle/epoch{epoch}")));
        Minibatches {
            data,
            order,
            batch,
            next: 0,
            augment,
            aug_rng: rng::stream(seed, &format!("augment/epoch{epoch}")),
            scratch: vec![0.0; data.dim],
            x: Vec::with_capacity(batch * data.dim),
            y: Vec::with_capacity(batch),
        }
    }

    /// The next minibatch (`batch × dim` inputs, their labels), or none at the epoch's end.
    pub fn next_batch(&mut self) -> Option<(&[f32], &[u8])> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch).min(self.order.len());
        let data = self.data;
        self.x.clear();
        self.y.clear();
        for &i in &self.order[self.next..end] {
            if self.augment.active() {
                let (scratch, rng) = (&mut self.scratch, &mut self.aug_rng);
                self.augment.apply(data.image(i), scratch, data.shape, rng);
                self.x.extend_from_slice(scratch);
            } else {
                self.x.extend_from_slice(data.image(i));
            }
            self.y.push(data.labels[i]);
        }
        self.next = end;
        Some((&self.x, &self.y))
    }
}

/// Mean cross-entropy and accuracy of `net` on `data`, in chunks of examples.
pub fn evaluate<B: Backend>(net: &Net<B>, data: &Dataset) -> EpochStats {
    let chunk = if net.is_dense() { 1000 } else { 250 };
    let classes = net.layers[net.depth() - 1].n_out;
    let mut acts = Activations::new(net, chunk);
    let mut total = BatchLoss::default();
    for start in (0..data.len()).step_by(chunk) {
        let n = chunk.min(data.len() - start);
        B::write(
            &mut acts.out[0],
            &data.images[start * data.dim..(start + n) * data.dim],
        );
        net.forward(&mut acts, n);
        let loss = B::softmax_cross_entropy(
            &mut acts.out[net.depth()],
            &data.labels[start..start + n],
            classes,
            None,
        );
        total.add(B::read_loss(&loss));
    }
    EpochStats {
        loss: total.loss_sum / data.len() as f64,
        acc: total.correct as f64 / data.len() as f64,
        examples: data.len(),
    }
}
