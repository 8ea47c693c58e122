//! What each [`Carrier`] does, in one place: the signal it sends down, how it learns, whether it
//! fits a pair of layers, what it costs, its words in the run log and the tensor it owns.
//! Adding a kind of carrier means adding a variant and one arm in each method here.

use super::{Carrier, Feedback, SignScale};
use crate::backend::{Backend, Mat};
use crate::model::{Activations, Kind, Net};
use crate::rng::{self, Rng};
use std::borrow::Cow;

/// What a term's carrier works with while it sends a signal to hidden layer `i`.
pub struct Send<'a, B: Backend> {
    pub net: &'a Net<B>,
    pub acts: &'a Activations<B>,
    /// The receiving hidden layer.
    pub i: usize,
    /// The sending layer.
    pub from: usize,
    pub batch: usize,
    /// The channel-noise stream (redrawn magnitudes).
    pub noise: &'a mut Rng,
    /// Scratch for a signal at layer i+1's input when layer i pools (grown as needed).
    pub routed: &'a mut Option<B::Buf>,
}

impl<B: Backend> Carrier<B> {
    /// `g ← beta·g + src · carrierᵀ`: the term's contribution to hidden layer `i`'s signal `g`
    /// (`batch × N_i`), from `src` (`batch × N_k`).
    pub fn send(&self, cx: Send<'_, B>, src: &B::Buf, g: &mut B::Buf, beta: f32) {
        let Send {
            net,
            acts,
            i,
            from,
            batch,
            noise,
            routed,
        } = cx;
        let sizes_i = net.layers[i].n_out;
        let sizes_k = net.layers[from].n_out;
        // the weights sent through layer i+1's transposed operation, if any
        let through: Cow<B::Buf> = match self {
            // g += x · Cᵀ             (C: N_i × N_k), straight onto layer i's output
            Carrier::Feedback(f) => {
                B::gemm(
                    1.0,
                    Mat::new(src, batch, sizes_k),
                    Mat::t(&f.c, sizes_i, sizes_k),
                    beta,
                    g,
                );
                return;
            }
            Carrier::ForwardTranspose => Cow::Borrowed(&net.layers[from].w),
            Carrier::Kernel(f) => Cow::Borrowed(&f.c),
            Carrier::SignOfForward(scale) => {
                let w = &net.layers[from].w;
                let mut out = B::zeros(B::len(w));
                match scale {
                    SignScale::Uniform => B::sign_carrier(w, None, &mut out),
                    SignScale::Fixed(m) => B::sign_carrier(w, Some(m), &mut out),
                    SignScale::Redrawn => {
                        let layer = &net.layers[from];
                        let sd = (1.0 / layer.fan_in() as f64).sqrt();
                        let m = B::upload(&rng::normal_vec(B::len(w), sd, noise));
                        B::sign_carrier(w, Some(&m), &mut out)
                    }
                }
                Cow::Owned(out)
            }
        };
        // g += weightsᵀ ⊛ x, at layer i+1's input, then back through layer i's pooling
        let next = &net.layers[from];
        if net.layers[i].pool.is_some() {
            let need = batch * next.n_in;
            if routed.as_ref().is_none_or(|r| B::len(r) < need) {
                *routed = Some(B::zeros(need));
            }
            let r = routed.as_mut().expect("set above");
            next.backward_data(&through, src, r, batch, 0.0);
            net.unpool(i, acts, r, g, batch, beta);
        } else {
            next.backward_data(&through, src, g, batch, beta);
        }
    }

    /// The operands `(x, M)` of this carrier's signal when it is one dense product `g = x · M`
    /// from `src` (the sending layer's error, `batch` rows) onto layer `i` without pooling: a
    /// feedback matrix (`x · Cᵀ`), or `W_{i+1}` or random weights in its place when layer `i+1`
    /// is dense (`x · W`); `None` where the signal takes more (pooling, a convolution, a sign
    /// carrier). The operands are those [`Carrier::send`] multiplies, so a fused product
    /// ([`Backend::signal_and_delta`]) gives the same signal.
    pub fn dense_product<'a>(
        &'a self,
        net: &'a Net<B>,
        i: usize,
        from: usize,
        src: &'a B::Buf,
        batch: usize,
    ) -> Option<(Mat<'a, B>, Mat<'a, B>)> {
        let (n_i, n_k) = (net.layers[i].n_out, net.layers[from].n_out);
        if net.layers[i].pool.is_some() {
            return None;
        }
        let through = match self {
            Carrier::Feedback(f) => {
                return Some((Mat::new(src, batch, n_k), Mat::t(&f.c, n_i, n_k)));
            }
            Carrier::ForwardTranspose => &net.layers[from].w,
            Carrier::Kernel(f) => &f.c,
            Carrier::SignOfForward(_) => return None,
        };
        let next = &net.layers[from];
        (next.kind == Kind::Dense).then(|| {
            (
                Mat::new(src, batch, next.n_out),
                Mat::new(through, next.n_out, next.n_in),
            )
        })
    }

    /// After the step's backward pass, an adaptive carrier learns at rate `rate`:
    /// `C ← C − rate·factor/B · O_iᵀ δ_k − rate·decay·C`, where `O_i` is the output of the
    /// receiving layer (before pooling) and `δ_k` the error of the sending layer; random weights
    /// in W_{i+1}'s place get W_{i+1}'s own gradient form, `δ_{i+1} ⊛ input_{i+1}`.
    #[allow(clippy::too_many_arguments)] // the step's state: net, signals, layers, rate
    pub fn adapt(
        &mut self,
        net: &Net<B>,
        acts: &Activations<B>,
        deltas: &[B::Buf],
        i: usize,
        from: usize,
        batch: usize,
        rate: f64,
    ) {
        let (n_i, n_k) = (net.layers[i].n_out, net.layers[from].n_out);
        match self {
            Carrier::Feedback(Feedback { c, adapt: Some(a) }) => {
                let keep = (1.0 - rate * a.decay) as f32;
                // C ← keep·C − rate·factor/B · O_iᵀ δ_k
                B::gemm(
                    (-rate * a.factor / batch as f64) as f32,
                    Mat::t(&acts.out[i + 1], batch, n_i),
                    Mat::new(&deltas[from], batch, n_k),
                    keep,
                    c,
                );
            }
            Carrier::Kernel(Feedback { c, adapt: Some(a) }) => {
                let keep = (1.0 - rate * a.decay) as f32;
                let next = &net.layers[from];
                let mut unused_bias = B::zeros(B::len(&next.b));
                next.weight_grad(
                    &deltas[from],
                    acts.input_of(net, from),
                    batch,
                    (-rate * a.factor / batch as f64) as f32,
                    keep,
                    c,
                    &mut unused_bias,
                );
            }
            _ => {}
        }
    }

    /// Whether the carrier can take a signal from layer `from` to hidden layer `i` of `net`.
    pub fn fits(&self, net: &Net<B>, i: usize, from: usize) -> bool {
        match self {
            Carrier::ForwardTranspose
            | Carrier::SignOfForward(SignScale::Uniform | SignScale::Redrawn) => from == i + 1,
            Carrier::SignOfForward(SignScale::Fixed(m))
            | Carrier::Kernel(Feedback { c: m, .. }) => {
                from == i + 1 && B::len(m) == net.layers[i + 1].weights_len()
            }
            Carrier::Feedback(f) => B::len(&f.c) == net.layers[i].n_out * net.layers[from].n_out,
        }
    }

    /// Multiplications per example: of the signal (a dense matrix N_i·N_k, paper §4; through
    /// layer i+1's transposed operation, that operation's), and of the carrier's own learning.
    pub fn multiplications(&self, net: &Net<B>, i: usize, from: usize) -> (usize, usize) {
        let n = match self {
            Carrier::Feedback(_) => net.layers[i].n_out * net.layers[from].n_out,
            _ => net.layers[from].macs(),
        };
        let learns = matches!(
            self,
            Carrier::Feedback(Feedback { adapt: Some(_), .. })
                | Carrier::Kernel(Feedback { adapt: Some(_), .. })
        );
        (n, if learns { n } else { 0 })
    }

    /// The carrier in the run log's words, applied to the signal `x` from layer `from` (named
    /// `layer`), for hidden layer `i` of `net`.
    pub fn describe(&self, net: &Net<B>, i: usize, from: usize, layer: &str, x: &str) -> String {
        match self {
            Carrier::ForwardTranspose => format!("W[{layer}]ᵀ·{x}"),
            Carrier::SignOfForward(SignScale::Uniform) => format!("σ(W)·sign(W[{layer}])ᵀ·{x}"),
            Carrier::SignOfForward(SignScale::Fixed(_)) => {
                format!("(|B0|⊙sign(W[{layer}]))ᵀ·{x}")
            }
            Carrier::SignOfForward(SignScale::Redrawn) => {
                format!("(|R_t|⊙sign(W[{layer}]))ᵀ·{x}, R_t redrawn every step")
            }
            Carrier::Feedback(f) => format!(
                "{}({}×{})·{x}",
                if f.adapt.is_some() { "adaptive C" } else { "C" },
                net.layers[i].n_out,
                net.layers[from].n_out
            ),
            Carrier::Kernel(f) => format!(
                "{} in W[{layer}]'s place, transposed·{x}",
                if f.adapt.is_some() {
                    "adaptive random weights"
                } else {
                    "random weights"
                }
            ),
        }
    }

    /// The tensor the carrier owns (for checkpoints), with the suffix of its name: a feedback
    /// matrix or random weights (``), fixed sign magnitudes (`.magnitude`).
    pub fn tensor_mut(&mut self) -> Option<(&'static str, &mut B::Buf)> {
        match self {
            Carrier::Feedback(f) | Carrier::Kernel(f) => Some(("", &mut f.c)),
            Carrier::SignOfForward(SignScale::Fixed(m)) => Some((".magnitude", m)),
            Carrier::ForwardTranspose
            | Carrier::SignOfForward(SignScale::Uniform | SignScale::Redrawn) => None,
        }
    }

    /// The same carrier on backend `C`.
    pub fn to_backend<C: Backend>(&self) -> Carrier<C> {
        let move_fb = |f: &Feedback<B>| Feedback {
            c: C::upload(&B::download(&f.c)),
            adapt: f.adapt,
        };
        match self {
            Carrier::ForwardTranspose => Carrier::ForwardTranspose,
            Carrier::Feedback(f) => Carrier::Feedback(move_fb(f)),
            Carrier::Kernel(f) => Carrier::Kernel(move_fb(f)),
            Carrier::SignOfForward(SignScale::Uniform) => {
                Carrier::SignOfForward(SignScale::Uniform)
            }
            Carrier::SignOfForward(SignScale::Redrawn) => {
                Carrier::SignOfForward(SignScale::Redrawn)
            }
            Carrier::SignOfForward(SignScale::Fixed(m)) => {
                Carrier::SignOfForward(SignScale::Fixed(C::upload(&B::download(m))))
            }
        }
    }
}
