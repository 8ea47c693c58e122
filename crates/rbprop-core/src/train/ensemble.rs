//! Several trainers — the members of an ensemble — stepping on the same minibatches, on the CPU.
//!
//! Every member keeps its own net, channel and optimizer and takes exactly the step it would take
//! alone, to the bit. What they share is the work on the input they all see: layer 0's forward
//! product `O_0 · [W_0¹ | W_0² | …]ᵀ` is one wide product (the minibatch packed once), and so is
//! its weight gradient `[δ_0¹ | δ_0² | …]ᵀ · O_0`; everything above layer 0 runs member by member,
//! the members in parallel.
//!
//! Why the shared products keep a solo run's bits: a forward product (`α = 1`, `β = 0`) computes
//! each element by the same micro-kernel sum over the same `k`, wherever its tile falls, so the
//! wide product's columns are the solo products. A weight update `W ← α·δᵀO + β·W` is not: the
//! GEMM rounds it once in a whole micro-kernel tile (`fma(α, Σ, β·W)`) and twice in a partial one
//! at the matrix's edge (`β·W + round(α·Σ)`), and a member's rows sit elsewhere in the wide
//! product. So the wide product computes the plain sums `Σ` (`α = 1`, `β = 0`, exact), and each
//! member applies `α` and `β` itself with the rounding its solo product would have used for that
//! element ([`Epilogue`]). Which rounding that is depends on the GEMM's kernel for this CPU; it is
//! found once per shape by a probe that runs both ways on random data and compares every bit
//! ([`Ensemble`] keeps the answers). Where no candidate matches (another kernel, or a minibatch
//! longer than the GEMM's inner block), the members compute their own weight products.

use super::{EpochStats, Trainer};
use crate::backend::{Backend, Cpu};
use crate::data::Dataset;
use crate::data::augment::Augment;
use crate::kernels::loss::BatchLoss;
use crate::kernels::matmul::{self, Mat};
use crate::model::{Activations, Kind, Net};
use rayon::prelude::*;
use std::ops::ControlFlow;

/// How a member turns its rows `Σ` of the shared weight product into its update
/// `W ← α·Σ + β·W`, element by element as its solo GEMM rounds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// Elements in whole `mr × nr` tiles (counted from the matrix's first row and column) get one
    /// fused rounding `fma(α, Σ, β·W)`; the others `β·W + round(α·Σ)`.
    Tiles { mr: usize, nr: usize },
    /// Every element `β·W + round(α·Σ)` (kernels without fused multiply-add).
    Unfused,
}

/// The shape of one shared product: the members' output widths, the input width, the examples,
/// the worker threads (the product splits its rows by them).
type Key = (Vec<usize>, usize, usize, usize);

/// The members' shared work and what the probes found. Results do not depend on it: a member's
/// step is its solo step whether or not a product is shared.
#[derive(Default)]
pub struct Ensemble {
    /// Layer 0's weights side by side (`Σ n_out × n_in`), laid out as `layout` says; members
    /// marked in `lent` have their current weights here (see [`Ensemble::step_inner`]).
    wide_w: Vec<f32>,
    layout: Vec<usize>,
    lent: Vec<bool>,
    eval_w: Vec<f32>,
    wide_out: Vec<f32>,
    wide_delta: Vec<f32>,
    wide_grad: Vec<f32>,
    forward_checked: Vec<(Key, bool)>,
    update_checked: Vec<(Key, Option<Epilogue>)>,
    /// Steps and evaluation chunks whose layer-0 forward product was shared.
    pub shared_forwards: u64,
    /// Steps whose layer-0 weight product was shared.
    pub shared_updates: u64,
}

impl Ensemble {
    pub fn new() -> Self {
        Self::default()
    }

    /// One SGD step of every member on the same minibatch (`x` is `batch × N0`); returns each
    /// member's loss totals, measured before its update. Each member ends exactly as
    /// [`Trainer::step`] would leave it.
    pub fn step(
        &mut self,
        members: &mut [&mut Trainer],
        x: &[f32],
        labels: &[u8],
    ) -> Vec<BatchLoss> {
        self.step_inner(members, x, labels, false)
    }

    /// [`Ensemble::step`]. With `lend`, the layer-0 weights of members whose update is shared
    /// stay in the wide operand after the step (their `net` holds stale ones) so that the next
    /// step with the same members need not gather them again; [`Ensemble::give_back`] returns
    /// them. Without it, every member's own weights are current when the step returns.
    fn step_inner(
        &mut self,
        members: &mut [&mut Trainer],
        x: &[f32],
        labels: &[u8],
        lend: bool,
    ) -> Vec<BatchLoss> {
        let batch = labels.len();
        if members.len() < 2 || !members.iter().all(|t| t.net.layers[0].kind == Kind::Dense) {
            self.give_back(members);
            return members.par_iter_mut().map(|t| t.step(x, labels)).collect();
        }
        let n_in = members[0].net.layers[0].n_in;
        assert!(
            members.iter().all(|t| t.net.layers[0].n_in == n_in),
            "the members of an ensemble read the same input"
        );
        assert_eq!(x.len(), batch * n_in, "input batch shape");
        let outs: Vec<usize> = members.iter().map(|t| t.net.layers[0].n_out).collect();
        let total: usize = outs.iter().sum();
        let starts_all = offsets(&outs);
        // which members leave layer 0's weight product to the wide one
        let deferring: Vec<usize> = (0..members.len())
            .filter(|&m| members[m].first_update_is_product())
            .collect();
        let defer_outs: Vec<usize> = deferring.iter().map(|&m| outs[m]).collect();
        let epilogue = if deferring.len() >= 2 {
            self.update_exact(&defer_outs, n_in, batch)
        } else {
            None
        };
        let shared = self.forward_exact(&outs, n_in, batch);
        // members whose weights the wide operand holds after this step
        let keep: Vec<bool> = (0..members.len())
            .map(|m| lend && shared && epilogue.is_some() && deferring.contains(&m))
            .collect();
        if shared {
            self.gather(members, &outs, &keep);
            self.wide_out.resize(batch * total, 0.0);
            matmul::gemm(
                1.0,
                Mat::new(x, batch, n_in),
                Mat::t(&self.wide_w, total, n_in),
                0.0,
                &mut self.wide_out,
            );
        } else {
            self.give_back(members);
        }
        let wide_out = &self.wide_out;
        let results: Vec<(BatchLoss, Option<(f64, f32)>)> = members
            .par_iter_mut()
            .zip(&starts_all)
            .enumerate()
            .map(|(m, (t, &off))| {
                let defer = epilogue.is_some() && deferring.contains(&m);
                let loss = if shared {
                    t.reserve(batch);
                    if !defer {
                        // layer 0's own update reads its input
                        Cpu::write(&mut t.acts.out[0], x);
                    }
                    copy_columns(wide_out, total, off, &mut t.acts.out[1], outs[m], batch);
                    t.net.forward_after_first_product(&mut t.acts, batch);
                    t.loss_kept(labels)
                } else {
                    t.forward_loss_kept(x, labels)
                };
                t.channel_backward(labels);
                let deferred = t.update(batch, defer);
                (Cpu::read_loss(&loss), deferred)
            })
            .collect();
        if let Some(epilogue) = epilogue {
            let rows: usize = defer_outs.iter().sum();
            self.wide_delta.resize(batch * rows, 0.0);
            for (&m, off) in deferring.iter().zip(offsets(&defer_outs)) {
                let h = outs[m];
                put_columns(
                    &members[m].deltas[0],
                    h,
                    &mut self.wide_delta,
                    rows,
                    off,
                    batch,
                );
            }
            self.wide_grad.resize(rows * n_in, 0.0);
            // Σ = [δ¹ | δ² | …]ᵀ · O_0, plain sums
            matmul::gemm(
                1.0,
                Mat::t(&self.wide_delta, batch, rows),
                Mat::new(x, batch, n_in),
                0.0,
                &mut self.wide_grad,
            );
            let grad = &self.wide_grad;
            let starts = offsets(&defer_outs);
            // each deferring member's weights: its slice of the wide operand where it is kept
            // there, its own otherwise
            let mut slices = split_rows(&mut self.wide_w, &outs, n_in);
            let mut chosen: Vec<(&mut &mut Trainer, &mut [f32], usize)> = members
                .iter_mut()
                .zip(slices.iter_mut())
                .enumerate()
                .filter(|(m, _)| deferring.contains(m))
                .map(|(m, (t, w))| (t, std::mem::take(w), m))
                .collect();
            chosen
                .par_iter_mut()
                .zip(starts)
                .for_each(|((t, w, m), off)| {
                    let (rate, scale) = results[*m].1.expect("a deferring member defers");
                    let g = &grad[off * n_in..(off + outs[*m]) * n_in];
                    let target = if keep[*m] { Some(&mut **w) } else { None };
                    t.finish_first(g, batch, rate, scale, epilogue, target);
                });
            self.shared_updates += 1;
        }
        if shared {
            self.shared_forwards += 1;
        }
        self.lent = keep;
        results.into_iter().map(|(loss, _)| loss).collect()
    }

    /// Lays the members' layer-0 weights side by side in the wide operand: members whose
    /// weights it already holds (lent by the last step, which had these same members) are left
    /// in place unless `keep` says they leave it, the others are copied in.
    fn gather(&mut self, members: &mut [&mut Trainer], outs: &[usize], keep: &[bool]) {
        let n_in = members[0].net.layers[0].n_in;
        let same = self.layout == outs && self.lent.len() == members.len();
        if !same {
            self.give_back(members);
            self.layout = outs.to_vec();
            self.lent = vec![false; members.len()];
        }
        self.wide_w.resize(outs.iter().sum::<usize>() * n_in, 0.0);
        let slices = split_rows(&mut self.wide_w, outs, n_in);
        for (m, (t, w)) in members.iter_mut().zip(slices).enumerate() {
            let own = &mut t.net.layers[0].w[..w.len()];
            match (self.lent[m], keep[m]) {
                (true, true) => {}
                // the member's own weights are current again
                (true, false) => own.copy_from_slice(w),
                (false, _) => w.copy_from_slice(own),
            }
        }
    }

    /// Returns the layer-0 weights the last step lent to the wide operand to their members
    /// (the same members, in the same order, as that step's).
    fn give_back(&mut self, members: &mut [&mut Trainer]) {
        if !self.lent.iter().any(|&l| l) {
            return;
        }
        assert_eq!(self.lent.len(), members.len(), "lent to other members");
        let n_in = members[0].net.layers[0].n_in;
        let slices = split_rows(&mut self.wide_w, &self.layout, n_in);
        for ((t, w), lent) in members.iter_mut().zip(slices).zip(&self.lent) {
            if *lent {
                t.net.layers[0].w[..w.len()].copy_from_slice(w);
            }
        }
        self.lent.clear();
        self.layout.clear();
    }

    /// One pass of every member over `data`, as [`Trainer::epoch_until`] makes it for each alone:
    /// the same order (stream `shuffle/epoch{epoch}` of `seed`, so members share it only when they
    /// share the seed), the same augmentation, the same totals. A member whose loss is not finite
    /// stops there (its totals so far, with that loss, are its epoch's); the others go on. After
    /// each batch `progress` gets the examples done and which members still train; a
    /// [`ControlFlow::Break`] ends the pass at once, and every member still training gets `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn epoch(
        &mut self,
        members: &mut [&mut Trainer],
        data: &Dataset,
        batch: usize,
        seed: u64,
        epoch: usize,
        augment: Augment,
        mut progress: impl FnMut(usize, &[bool]) -> ControlFlow<()>,
    ) -> Vec<Option<EpochStats>> {
        let mut batches = super::Minibatches::new(data, batch, seed, epoch, augment);
        let k = members.len();
        let mut totals = vec![BatchLoss::default(); k];
        let mut counted = vec![0usize; k];
        let mut live = vec![true; k];
        let mut interrupted = false;
        let mut done = 0;
        while let Some((x, y)) = batches.next_batch() {
            let n = y.len();
            let stepping: Vec<usize> = (0..k).filter(|&m| live[m]).collect();
            let mut trainers: Vec<&mut Trainer> = members
                .iter_mut()
                .zip(&live)
                .filter(|(_, l)| **l)
                .map(|(t, _)| &mut **t)
                .collect();
            let losses = self.step_inner(&mut trainers, x, y, true);
            for (&m, loss) in stepping.iter().zip(losses) {
                totals[m].add(loss);
                counted[m] += n;
                if !loss.loss_sum.is_finite() {
                    live[m] = false;
                }
            }
            if stepping.iter().any(|&m| !live[m]) {
                // the next step has other members
                self.give_back(&mut trainers);
            }
            done += n;
            let flow = progress(done, &live);
            if live.iter().all(|l| !l) {
                break;
            }
            if flow.is_break() {
                interrupted = true;
                break;
            }
        }
        let mut last: Vec<&mut Trainer> = members
            .iter_mut()
            .zip(&live)
            .filter(|(_, l)| **l)
            .map(|(t, _)| &mut **t)
            .collect();
        self.give_back(&mut last);
        (0..k)
            .map(|m| {
                (!(interrupted && live[m])).then(|| EpochStats {
                    loss: totals[m].loss_sum / counted[m] as f64,
                    acc: totals[m].correct as f64 / counted[m] as f64,
                    examples: counted[m],
                })
            })
            .collect()
    }

    /// Mean loss and accuracy of every net on `data` (no learning): each member's numbers are
    /// [`super::evaluate`]'s, in the same chunks; layer 0's product is shared where the nets
    /// allow it.
    pub fn evaluate(&mut self, nets: &[&Net], data: &Dataset) -> Vec<EpochStats> {
        let dense_first = nets.iter().all(|n| n.layers[0].kind == Kind::Dense);
        let chunk = if nets[0].is_dense() { 1000 } else { 250 };
        let same_chunk = nets
            .iter()
            .all(|n| (if n.is_dense() { 1000 } else { 250 }) == chunk);
        if nets.len() < 2 || !dense_first || !same_chunk {
            return nets.par_iter().map(|n| super::evaluate(n, data)).collect();
        }
        let outs: Vec<usize> = nets.iter().map(|n| n.layers[0].n_out).collect();
        let total: usize = outs.iter().sum();
        let mut acts: Vec<Activations> = nets.iter().map(|n| Activations::new(n, chunk)).collect();
        let mut totals = vec![BatchLoss::default(); nets.len()];
        for start in (0..data.len()).step_by(chunk) {
            let n = chunk.min(data.len() - start);
            let x = &data.images[start * data.dim..(start + n) * data.dim];
            let labels = &data.labels[start..start + n];
            let shared = self.forward_exact(&outs, data.dim, n);
            if shared {
                self.wide_forward(nets, x, n);
                self.shared_forwards += 1;
            }
            let wide_out = &self.wide_out;
            acts.par_iter_mut()
                .zip(nets.par_iter())
                .zip(totals.par_iter_mut())
                .zip(offsets(&outs))
                .enumerate()
                .for_each(|(m, (((a, net), total_m), off))| {
                    Cpu::write(&mut a.out[0], x);
                    if shared {
                        copy_columns(wide_out, total, off, &mut a.out[1], outs[m], n);
                        net.forward_after_first_product(a, n);
                    } else {
                        net.forward(a, n);
                    }
                    let classes = net.layers[net.depth() - 1].n_out;
                    let loss =
                        Cpu::softmax_cross_entropy(&mut a.out[net.depth()], labels, classes, None);
                    total_m.add(Cpu::read_loss(&loss));
                });
        }
        totals
            .into_iter()
            .map(|total| EpochStats {
                loss: total.loss_sum / data.len() as f64,
                acc: total.correct as f64 / data.len() as f64,
                examples: data.len(),
            })
            .collect()
    }

    /// `O_0 · [W_0¹ | W_0² | …]ᵀ` of the nets' own weights into `wide_out` (`rows × Σ n_out`),
    /// the weights gathered in a buffer of their own (nothing is lent).
    fn wide_forward(&mut self, nets: &[&Net], x: &[f32], rows: usize) {
        let n_in = nets[0].layers[0].n_in;
        let total: usize = nets.iter().map(|n| n.layers[0].n_out).sum();
        self.eval_w.clear();
        for net in nets {
            let l = &net.layers[0];
            self.eval_w.extend_from_slice(&l.w[..l.n_out * l.n_in]);
        }
        self.wide_out.resize(rows * total, 0.0);
        matmul::gemm(
            1.0,
            Mat::new(&x[..rows * n_in], rows, n_in),
            Mat::t(&self.eval_w, total, n_in),
            0.0,
            &mut self.wide_out,
        );
    }

    /// Whether the wide forward product of these shapes equals the solo ones, bit for bit
    /// (probed once per shape).
    fn forward_exact(&mut self, outs: &[usize], n_in: usize, rows: usize) -> bool {
        let key = (outs.to_vec(), n_in, rows, rayon::current_num_threads());
        if let Some((_, ok)) = self.forward_checked.iter().find(|(k, _)| *k == key) {
            return *ok;
        }
        let ok = probe_forward(outs, n_in, rows);
        self.forward_checked.push((key, ok));
        ok
    }

    /// The epilogue that makes the shared weight product of these shapes equal the solo ones,
    /// bit for bit, if there is one (probed once per shape).
    fn update_exact(&mut self, outs: &[usize], n_in: usize, batch: usize) -> Option<Epilogue> {
        let key = (outs.to_vec(), n_in, batch, rayon::current_num_threads());
        if let Some((_, e)) = self.update_checked.iter().find(|(k, _)| *k == key) {
            return *e;
        }
        let e = probe_update(outs, n_in, batch);
        self.update_checked.push((key, e));
        e
    }
}

impl Trainer {
    /// Layer 0's weight update deferred by [`Trainer::update`], from the plain sums
    /// `g = δ_0ᵀ · O_0` (`n_out × n_in`) of the shared product: weight decay, then
    /// `W ← α·g + W` (or `V ← α·g + μV`, `W ← W + V`) rounded as `epilogue` says, and the bias.
    fn finish_first(
        &mut self,
        g: &[f32],
        batch: usize,
        rate: f64,
        scale: f32,
        epilogue: Epilogue,
        target: Option<&mut [f32]>,
    ) {
        let layer = &mut self.net.layers[0];
        let (h, n) = (layer.n_out, layer.n_in);
        // the weights: the member's own, or its slice of the ensemble's wide operand (the same
        // values; the same arithmetic as the backend's `scale` and `add_assign`)
        let w: &mut [f32] = match target {
            Some(w) => w,
            None => &mut layer.w[..h * n],
        };
        if self.sgd.weight_decay > 0.0 {
            let s = (1.0 - rate * self.sgd.weight_decay) as f32;
            w.iter_mut().for_each(|v| *v *= s);
        }
        let delta = &self.deltas[0];
        if self.velocity.is_empty() {
            apply_epilogue(epilogue, g, w, h, n, scale, 1.0);
            Cpu::bias_grad(delta, batch, scale, 1.0, &mut layer.b);
        } else {
            let momentum = self.sgd.momentum as f32;
            let (vw, vb) = &mut self.velocity[0];
            apply_epilogue(epilogue, g, &mut vw[..h * n], h, n, scale, momentum);
            Cpu::bias_grad(delta, batch, scale, momentum, vb);
            w.iter_mut().zip(vw.iter()).for_each(|(a, b)| *a += b);
            Cpu::add_assign(&mut layer.b, vb);
        }
    }
}

/// Where each member's block starts in a wide product of these widths.
fn offsets(outs: &[usize]) -> Vec<usize> {
    outs.iter()
        .scan(0, |acc, &h| {
            let off = *acc;
            *acc += h;
            Some(off)
        })
        .collect()
}

/// The row blocks of `outs[m]` rows each (`n_in` values a row) of `wide`, in order.
fn split_rows<'a>(wide: &'a mut [f32], outs: &[usize], n_in: usize) -> Vec<&'a mut [f32]> {
    let mut rest = wide;
    outs.iter()
        .map(|&h| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(h * n_in);
            rest = tail;
            head
        })
        .collect()
}

/// Columns `off .. off + h` of the `rows × total` matrix `wide` into `dst` (`rows × h`).
fn copy_columns(wide: &[f32], total: usize, off: usize, dst: &mut [f32], h: usize, rows: usize) {
    for r in 0..rows {
        dst[r * h..(r + 1) * h].copy_from_slice(&wide[r * total + off..r * total + off + h]);
    }
}

/// `src` (`rows × h`) into columns `off .. off + h` of the `rows × total` matrix `wide`.
fn put_columns(src: &[f32], h: usize, wide: &mut [f32], total: usize, off: usize, rows: usize) {
    for r in 0..rows {
        wide[r * total + off..r * total + off + h].copy_from_slice(&src[r * h..(r + 1) * h]);
    }
}

/// `c ← alpha·g + beta·c` (`rows × cols`), each element rounded as `epilogue` says.
pub fn apply_epilogue(
    epilogue: Epilogue,
    g: &[f32],
    c: &mut [f32],
    rows: usize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    assert_eq!(g.len(), rows * cols);
    assert_eq!(c.len(), rows * cols);
    let (full_rows, full_cols) = match epilogue {
        Epilogue::Tiles { mr, nr } => (rows / mr * mr, cols / nr * nr),
        Epilogue::Unfused => (0, 0),
    };
    for r in 0..rows {
        let (g, c) = (
            &g[r * cols..(r + 1) * cols],
            &mut c[r * cols..(r + 1) * cols],
        );
        let fused = if r < full_rows { full_cols } else { 0 };
        if fused > 0 {
            fused_row(&g[..fused], &mut c[..fused], alpha, beta);
        }
        // β·W + round(α·Σ): two roundings (no contraction into an FMA in Rust)
        for (c, &g) in c[fused..].iter_mut().zip(&g[fused..]) {
            *c = *c * beta + alpha * g;
        }
    }
}

/// `c ← fma(alpha, g, round(beta·c))`, one rounding of the sum.
fn fused_row(g: &[f32], c: &mut [f32], alpha: f32, beta: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "fma")]
        unsafe fn with_fma(g: &[f32], c: &mut [f32], alpha: f32, beta: f32) {
            for (c, &g) in c.iter_mut().zip(g) {
                *c = alpha.mul_add(g, *c * beta);
            }
        }
        if std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has FMA, the feature `with_fma` is compiled for.
            return unsafe { with_fma(g, c, alpha, beta) };
        }
    }
    // f32::mul_add rounds once on every target (a library call without the instruction)
    for (c, &g) in c.iter_mut().zip(g) {
        *c = alpha.mul_add(g, *c * beta);
    }
}

/// Deterministic test values in [−1, 1) (a counter hash; no random stream is consumed).
fn probe_values(n: usize, salt: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let mut h = i.wrapping_mul(0x9E37_79B9) ^ salt.wrapping_mul(0x85EB_CA6B);
            h ^= h >> 16;
            h = h.wrapping_mul(0x7FEB_352D);
            h ^= h >> 15;
            h = h.wrapping_mul(0x846C_A68B);
            h ^= h >> 16;
            (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Runs the forward products of these shapes solo and wide on test values and compares bits.
fn probe_forward(outs: &[usize], n_in: usize, rows: usize) -> bool {
    let x = probe_values(rows * n_in, 1);
    let total: usize = outs.iter().sum();
    let w = probe_values(total * n_in, 2);
    let mut wide = vec![0.0; rows * total];
    matmul::gemm(
        1.0,
        Mat::new(&x, rows, n_in),
        Mat::t(&w, total, n_in),
        0.0,
        &mut wide,
    );
    let mut solo_cols = vec![0.0; 0];
    offsets(outs).into_iter().zip(outs).all(|(off, &h)| {
        let mut solo = vec![0.0; rows * h];
        let wm = &w[off * n_in..(off + h) * n_in];
        matmul::gemm(
            1.0,
            Mat::new(&x, rows, n_in),
            Mat::t(wm, h, n_in),
            0.0,
            &mut solo,
        );
        solo_cols.resize(rows * h, 0.0);
        copy_columns(&wide, total, off, &mut solo_cols, h, rows);
        bits_equal(&solo, &solo_cols)
    })
}

/// Finds the epilogue with which the shared weight product of these shapes gives the solo
/// updates' bits, for plain SGD (`β = 1`) and momentum (`β = μ`), on test values.
fn probe_update(outs: &[usize], n_in: usize, batch: usize) -> Option<Epilogue> {
    let x = probe_values(batch * n_in, 3);
    let total: usize = outs.iter().sum();
    let wide_delta = probe_values(batch * total, 4);
    let mut grad = vec![0.0; total * n_in];
    matmul::gemm(
        1.0,
        Mat::t(&wide_delta, batch, total),
        Mat::new(&x, batch, n_in),
        0.0,
        &mut grad,
    );
    let candidates = [
        Epilogue::Tiles { mr: 16, nr: 16 },
        Epilogue::Tiles { mr: 8, nr: 8 },
        Epilogue::Unfused,
    ];
    let alpha = -0.0137_f32;
    // each member's solo update from the same values, for β = 1 and β = 0.9
    let mut cases = Vec::new();
    for (off, &h) in offsets(outs).into_iter().zip(outs) {
        let mut delta = vec![0.0; batch * h];
        copy_columns(&wide_delta, total, off, &mut delta, h, batch);
        for (salt, beta) in [(5, 1.0_f32), (6, 0.9)] {
            let before = probe_values(h * n_in, salt + off as u32);
            let mut solo = before.clone();
            matmul::gemm(
                alpha,
                Mat::t(&delta, batch, h),
                Mat::new(&x, batch, n_in),
                beta,
                &mut solo,
            );
            cases.push((off, h, beta, before, solo));
        }
    }
    candidates.into_iter().find(|&e| {
        cases.iter().all(|(off, h, beta, before, solo)| {
            let mut c = before.clone();
            let g = &grad[off * n_in..(off + h) * n_in];
            apply_epilogue(e, g, &mut c, *h, n_in, alpha, *beta);
            bits_equal(&c, solo)
        })
    })
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this CPU some epilogue reproduces the GEMM's weight updates for the paper's shapes
    /// (otherwise ensembles would silently lose their sharing).
    #[test]
    fn the_probe_finds_the_gemm_rounding_for_the_paper_net() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                assert!(probe_forward(&[100, 100, 37], 784, 100));
                assert!(probe_update(&[100, 100, 37], 784, 100).is_some());
                assert!(probe_update(&[100, 64], 784, 37).is_some());
            });
        }
    }

    /// The candidates really differ: a wrong epilogue is caught by the probe's comparison.
    #[test]
    fn a_wrong_epilogue_changes_bits() {
        let (h, n, batch) = (100, 784, 100);
        let found = probe_update(&[h], n, batch).expect("an epilogue matches");
        let other = match found {
            Epilogue::Unfused => Epilogue::Tiles { mr: 16, nr: 16 },
            _ => Epilogue::Unfused,
        };
        let g = probe_values(h * n, 9);
        let c0 = probe_values(h * n, 10);
        let (mut a, mut b) = (c0.clone(), c0);
        apply_epilogue(found, &g, &mut a, h, n, -0.0137, 1.0);
        apply_epilogue(other, &g, &mut b, h, n, -0.0137, 1.0);
        assert!(!bits_equal(&a, &b));
    }
}
