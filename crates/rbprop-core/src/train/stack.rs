//! Several trainers — the members of an ensemble — stacked into one, on a backend that stacks
//! ([`Backend::STACKS`], the GPU's): every buffer of the stacked trainer holds all members'
//! values one after another, and each operation of a step runs on all members at once (on the
//! GPU, one dispatch for all of them), so a step costs what one member's step costs in
//! launches, whatever the number of members.
//!
//! Members need not read the same minibatches: each reads its own (its seed's order and
//! augmentation), and each takes exactly the step its solo run on this backend takes — the
//! same kernels on its own segment of every buffer. What they must share is the shape of the
//! step: the net, the channel (one whose step keeps to the backend, [`Channel::stacks`]), the
//! optimizer, the batch size and the step count.

use super::{EpochStats, Minibatches, Trainer};
use crate::backend::Backend;
use crate::data::Dataset;
use crate::data::augment::Augment;
use crate::kernels::loss::BatchLoss;
use std::ops::ControlFlow;

/// A stacked trainer: its members' nets, channels and optimizer states side by side.
pub struct Stack<B: Backend> {
    trainer: Trainer<B>,
    members: usize,
    /// Per member, the steps of the last epoch after which its solo run would have stopped
    /// (it diverged): see [`Stack::epoch_until`].
    stops: Vec<Option<u64>>,
    /// Steps the stack took in the last epoch.
    epoch_steps: u64,
}

/// Why trainer `b` cannot be stacked with trainer `a`, if it cannot.
pub fn refuses<B: Backend>(a: &Trainer<B>, b: &Trainer<B>) -> Option<&'static str> {
    if !B::STACKS {
        Some("this backend does not stack members")
    } else if !a.channel.stacks() || !b.channel.stacks() {
        Some(
            "the channel draws or reads back on the host every step (dropout, a quantizer, redrawn magnitudes)",
        )
    } else if a.net.summary() != b.net.summary() || a.net.activation != b.net.activation {
        Some("the nets differ")
    } else if a.channel.name != b.channel.name
        || a.channel.derivative != b.channel.derivative
        || a.channel.describe(&a.net) != b.channel.describe(&b.net)
    {
        Some("the channels differ")
    } else if a.sgd != b.sgd {
        Some("the optimizers differ")
    } else if a.step != b.step {
        Some("the step counts differ")
    } else {
        None
    }
}

impl<B: Backend> Stack<B> {
    /// Stacks `members` (at least one; each must pass [`refuses`] against the first). The
    /// members keep their own state; [`Stack::unstack_into`] writes the stack's back.
    pub fn new(members: &mut [&mut Trainer<B>]) -> Self {
        assert!(!members.is_empty(), "a stack of at least one member");
        if let Some(why) = members.iter().find_map(|m| refuses(members[0], m)) {
            panic!("these trainers do not stack: {why}");
        }
        let mut lists: Vec<Vec<B::Buf>> = Vec::new();
        for m in members.iter_mut() {
            let mut list = Vec::new();
            m.for_each_buffer(&mut |b| list.push(b.clone()));
            lists.push(list);
        }
        let mut trainer = members[0].to_backend::<B>();
        let mut i = 0;
        trainer.for_each_buffer(&mut |b| {
            let parts: Vec<&B::Buf> = lists.iter().map(|l| &l[i]).collect();
            *b = B::stack(&parts);
            i += 1;
        });
        Stack {
            trainer,
            members: members.len(),
            stops: vec![None; members.len()],
            epoch_steps: 0,
        }
    }

    /// Members stacked.
    pub fn members(&self) -> usize {
        self.members
    }

    /// One step of every member: `x` and `labels` are the members' minibatches one after
    /// another (all of one size). Returns the loss totals of every member, left in the backend.
    pub fn step_kept(&mut self, x: &[f32], labels: &[u8]) -> B::Loss {
        let k = self.members;
        B::stacked(k, || self.trainer.step_stacked(x, labels, k))
    }

    /// One pass of every member over `data`, member `m` in the order and augmentation of
    /// `seeds[m]` — its solo [`Trainer::epoch_until`]: the totals of each member's batches up
    /// to its first non-finite loss (which ends its solo run's epoch when its losses are read,
    /// every [`Backend::LOSS_READ_INTERVAL`] batches; the stack goes on for the others). After
    /// each batch `progress` gets the examples done and may stop the pass: members that did not
    /// diverge then get `None`.
    pub fn epoch_until(
        &mut self,
        data: &Dataset,
        batch: usize,
        seeds: &[u64],
        epoch: usize,
        augment: Augment,
        mut progress: impl FnMut(usize) -> ControlFlow<()>,
    ) -> Vec<Option<EpochStats>> {
        let k = self.members;
        assert_eq!(seeds.len(), k, "a seed per member");
        let mut batches: Vec<Minibatches<'_>> = seeds
            .iter()
            .map(|&s| Minibatches::new(data, batch, s, epoch, augment))
            .collect();
        let mut totals = vec![BatchLoss::default(); k];
        let mut counted = vec![0usize; k];
        self.stops = vec![None; k];
        let mut kept: Vec<(B::Loss, usize)> = Vec::new();
        let (mut steps, mut done) = (0u64, 0usize);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        // reads the losses kept; a member's first non-finite one stops it after `steps`
        let read = |kept: &mut Vec<(B::Loss, usize)>,
                    totals: &mut [BatchLoss],
                    counted: &mut [usize],
                    stops: &mut [Option<u64>],
                    steps: u64| {
            let (losses, sizes): (Vec<B::Loss>, Vec<usize>) = kept.drain(..).unzip();
            for (per_member, n) in B::read_member_losses(&losses).into_iter().zip(sizes) {
                for (m, loss) in per_member.into_iter().enumerate() {
                    if stops[m].is_some() {
                        continue;
                    }
                    totals[m].add(loss);
                    counted[m] += n;
                    if !loss.loss_sum.is_finite() {
                        stops[m] = Some(steps);
                    }
                }
            }
        };
        let mut stopped = false;
        loop {
            x.clear();
            y.clear();
            let mut n = None;
            for b in &mut batches {
                let Some((bx, by)) = b.next_batch() else {
                    break;
                };
                assert!(
                    n.is_none_or(|n| n == by.len()),
                    "the members' minibatches have one size"
                );
                n = Some(by.len());
                x.extend_from_slice(bx);
                y.extend_from_slice(by);
            }
            let Some(n) = n else {
                break;
            };
            kept.push((self.step_kept(&x, &y), n));
            steps += 1;
            if kept.len() >= B::LOSS_READ_INTERVAL {
                read(&mut kept, &mut totals, &mut counted, &mut self.stops, steps);
            }
            done += n;
            if self.stops.iter().all(Option::is_some) {
                break;
            }
            if progress(done).is_break() {
                stopped = true;
                break;
            }
        }
        read(&mut kept, &mut totals, &mut counted, &mut self.stops, steps);
        self.epoch_steps = steps;
        (0..k)
            .map(|m| {
                if stopped && self.stops[m].is_none() {
                    return None;
                }
                Some(EpochStats {
                    loss: totals[m].loss_sum / counted[m] as f64,
                    acc: totals[m].correct as f64 / counted[m] as f64,
                    examples: counted[m],
                })
            })
            .collect()
    }

    /// Writes the stack's state back into `members` (those of [`Stack::new`], in order): each
    /// member's buffers and its step count (a member that diverged in the last epoch stops
    /// where its solo run would have).
    pub fn unstack_into(&mut self, members: &mut [&mut Trainer<B>]) {
        assert_eq!(members.len(), self.members, "the stack's members");
        let mut stacked = Vec::new();
        self.trainer
            .for_each_buffer(&mut |b| stacked.push(b.clone()));
        let steps_now = self.trainer.step;
        for (m, t) in members.iter_mut().enumerate() {
            let mut i = 0;
            t.for_each_buffer(&mut |b| {
                *b = B::member(&stacked[i], m);
                i += 1;
            });
            t.step = match self.stops[m] {
                Some(s) => steps_now - self.epoch_steps + s,
                None => steps_now,
            };
        }
    }
}
