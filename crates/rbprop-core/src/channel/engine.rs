//! The learning channel at work in a step: the backward pass that fills every hidden layer's
//! signal `g_i` and error `δ_i` from the top down (with the channel's dropout and quantizer),
//! and the adaptation of learning carriers after it.

use super::carrier::Send;
use super::quantize::Form;
use super::{Channel, Input};
use crate::backend::Backend;
use crate::model::{Activations, Net};

impl<B: Backend> Channel<B> {
    /// Runs the channel over a batch: given the forward outputs `acts` (`acts[i]` = `O_i`),
    /// `deltas[L−1] = δ_L` and the batch's `labels`, fills `signals[i]` and `deltas[i]` for every
    /// hidden layer that learns, from the top down. Reads the forward weights of `net` (not yet
    /// updated).
    pub fn backward(
        &mut self,
        net: &Net<B>,
        acts: &Activations<B>,
        labels: &[u8],
        deltas: &mut [B::Buf],
        signals: &mut [B::Buf],
    ) {
        self.backward_rows(net, acts, labels, labels.len(), deltas, signals);
    }

    /// [`Channel::backward`] over `batch` examples per net: `labels` holds the labels of every
    /// net whose buffers hold several (the members stacked in a backend's buffers, one after
    /// another), `batch` those of one.
    pub fn backward_rows(
        &mut self,
        net: &Net<B>,
        acts: &Activations<B>,
        labels: &[u8],
        batch: usize,
        deltas: &mut [B::Buf],
        signals: &mut [B::Buf],
    ) {
        let top = net.depth() - 1;
        let classes = net.layers[top].n_out;
        let Channel {
            routes,
            noise,
            dropout,
            quantize_signal,
            signal_alpha,
            census,
            derivative,
            ..
        } = self;
        let mut scratch: Option<B::Buf> = None;
        let mut routed: Option<B::Buf> = None;
        for i in (0..top).rev() {
            let Some(route) = &routes[i] else {
                continue;
            };
            let n = batch * net.layers[i].n_out;
            let (sig_lo, sig_hi) = signals.split_at_mut(i + 1);
            let (del_lo, del_hi) = deltas.split_at_mut(i + 1);
            let g = &mut sig_lo[i];
            let f = derivative.then_some(net.activation);
            // one dense product and nothing between it and f': signal and δ in one operation
            if let [t] = route.terms.as_slice()
                && *dropout == 0.0
                && quantize_signal.is_none()
                && matches!(t.input, Input::Delta | Input::Signal)
            {
                let src = match t.input {
                    Input::Signal if t.from != top => &sig_hi[t.from - i - 1],
                    _ => &del_hi[t.from - i - 1],
                };
                if let Some((x, m)) = t.carrier.dense_product(net, i, t.from, src, batch) {
                    B::signal_and_delta(x, m, f, &acts.out[i + 1], g, &mut del_lo[i]);
                    continue;
                }
            }
            for (t_idx, t) in route.terms.iter().enumerate() {
                let src: &B::Buf = match t.input {
                    Input::Delta => &del_hi[t.from - i - 1],
                    Input::Signal if t.from == top => &del_hi[t.from - i - 1],
                    Input::Signal => &sig_hi[t.from - i - 1],
                    Input::Target => {
                        let s = scratch.get_or_insert_with(|| B::zeros(batch * classes));
                        B::neg_one_hot(labels, classes, s);
                        s
                    }
                    Input::ErrorSign => {
                        let s = scratch.get_or_insert_with(|| B::zeros(batch * classes));
                        B::sign(&del_hi[top - i - 1], s, batch * classes);
                        s
                    }
                };
                let beta = if t_idx == 0 { 0.0 } else { 1.0 };
                let cx = Send {
                    net,
                    acts,
                    i,
                    from: t.from,
                    batch,
                    noise,
                    routed: &mut routed,
                };
                t.carrier.send(cx, src, g, beta);
            }
            if *dropout > 0.0 {
                B::dropout(g, n, *dropout, noise);
            }
            if let Some(q) = quantize_signal {
                if signal_alpha[i] == 0.0
                    && let Some(a) = B::max_abs(g, n)
                {
                    signal_alpha[i] = a;
                }
                let alpha = signal_alpha[i];
                if alpha > 0.0 {
                    let levels = q.levels(alpha, Form::MidRise);
                    let counts = B::quantize(g, n, levels, census.is_some());
                    if let (Some(c), Some((zero, clipped))) = (census.as_mut(), counts) {
                        c[i] = (zero, clipped, n);
                    }
                }
            }
            B::delta_from_signal(f, &acts.out[i + 1], g, &mut del_lo[i], n);
        }
    }

    /// Updates the learning carriers (adaptive feedback matrices, Kolen-Pollack) after
    /// [`Channel::backward`], at learning rate `rate` (see [`super::Carrier::adapt`]).
    pub fn adapt(
        &mut self,
        net: &Net<B>,
        acts: &Activations<B>,
        deltas: &[B::Buf],
        batch: usize,
        rate: f64,
    ) {
        for (i, r) in self.routes.iter_mut().enumerate() {
            for t in r.iter_mut().flat_map(|r| r.terms.iter_mut()) {
                t.carrier.adapt(net, acts, deltas, i, t.from, batch, rate);
            }
        }
    }
}
