//! Ensembles: several runs trained together, one step of every member at a time. It is a way of
//! executing runs, not a kind of result: every member starts, resumes and ends each epoch
//! through the solo run loop ([`super::training`]), into its own run directory under its own
//! lock, and its files hold the bits of its solo run on the same device (but for the `seconds`
//! of each epoch, the ensemble's wall time).
//!
//! - On the CPU, runs that read the same minibatches (same seed, batch, training subset and
//!   augmentation) share layer 0's products ([`crate::train::Ensemble`]; the rest member by
//!   member, in parallel).
//! - On the GPU, runs whose settings differ only in their seeds are stacked
//!   ([`crate::train::Stack`]): one dispatch per operation for all members, each on its own
//!   minibatches. A channel whose step draws or reads back on the host (dropout, a quantizer,
//!   redrawn magnitudes) does not stack: its members then train one after another.
//!
//! A member that diverges or fails ends with its own error, recorded as a solo run records it;
//! the others go on. Members resumed at different epochs start apart: the ones behind train
//! until they reach the others, then all train together.

use super::device::{Accept, OnBackend, on_device};
use super::dir::{EpochMetrics, RunLock};
use super::training::{Observer, Started, epoch_metrics, train_epoch as solo_epoch};
use crate::backend::{Backend, Cpu};
use crate::config::{Device, TrainConfig};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::train::{Ensemble, EpochStats, Stack, Trainer, stack_refuses};
use rayon::prelude::*;
use std::ops::ControlFlow;
use std::time::Instant;

/// One run of an ensemble: its settings, its run directory (locked by the caller) and who
/// follows its training.
pub struct Member<'a> {
    pub config: &'a TrainConfig,
    pub out: Option<&'a RunLock>,
    pub observer: &'a mut dyn Observer,
}

/// Why two runs cannot train as one ensemble, if they cannot. On the CPU they must read the
/// same minibatches (seed, batch, training subset, augmentation) and share the thread count; on
/// the GPU their settings may differ only in the seed and the epochs, on one adapter.
pub fn incompatible(a: &TrainConfig, b: &TrainConfig) -> Option<&'static str> {
    if a.device != b.device {
        Some("the devices differ")
    } else if a.device == Device::Gpu {
        let same = TrainConfig {
            seed: a.seed,
            epochs: a.epochs,
            ..b.clone()
        };
        (same != *a).then_some("on the GPU, members differ only in their seeds and epochs")
    } else if a.seed != b.seed {
        Some("the seeds differ (so do the minibatches)")
    } else if a.batch != b.batch {
        Some("the batch sizes differ")
    } else if a.train_limit != b.train_limit {
        Some("the training subsets differ")
    } else if a.translate != b.translate || a.flip != b.flip {
        Some("the augmentations differ")
    } else if a.threads != b.threads {
        Some("the thread counts differ")
    } else {
        None
    }
}

/// Trains `members` together on `split`; returns each member's outcome, in order, as [`super::run`]
/// returns a solo run's (the metrics of every epoch, or the error that stopped it after saving
/// what was finished). Members that cannot share minibatches with the first are refused by name.
pub fn run_together(members: Vec<Member<'_>>, split: &Split) -> Vec<Result<Vec<EpochMetrics>>> {
    let Some(first) = members.first().map(|m| m.config) else {
        return Vec::new();
    };
    let mut results: Vec<Option<Result<Vec<EpochMetrics>>>> = Vec::new();
    let mut slots = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
        let check = m
            .config
            .validate()
            .and_then(|_| match incompatible(first, m.config) {
                Some(why) => Err(Error::config(
                    "ensemble",
                    format!("this run cannot train with the ensemble's first run: {why}"),
                )),
                None => Ok(()),
            });
        results.push(check.err().map(Err));
        if results[i].is_none() {
            slots.push((i, m));
        }
    }
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(first.threads)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            let e = e.to_string();
            for (i, _) in slots {
                results[i] = Some(Err(Error::config("threads", e.clone())));
            }
            return results.into_iter().map(|r| r.expect("set")).collect();
        }
    };
    if first.device == Device::Gpu {
        let work = OnGpu {
            slots,
            split,
            results: &mut results,
        };
        if let Err(e) = on_device(first, work) {
            // the device did not open: every member that has no outcome yet fails with it
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(Error::config("device", e.to_string())));
            }
        }
    } else {
        let mut ensemble = Ensemble::new();
        pool.install(|| {
            train_members::<Cpu>(
                slots,
                split,
                &mut results,
                &|_| Ok(()),
                &mut |now, split, epoch| shared_epoch(&mut ensemble, now, split, epoch),
            )
        });
    }
    results
        .into_iter()
        .map(|r| r.expect("every member has an outcome"))
        .collect()
}

/// The members of a GPU ensemble, trained on the device their settings name.
struct OnGpu<'a, 's, 'r> {
    slots: Vec<(usize, Member<'a>)>,
    split: &'s Split,
    results: &'r mut [Option<Result<Vec<EpochMetrics>>>],
}

impl OnBackend for OnGpu<'_, '_, '_> {
    type Output = ();
    fn run<B: Backend>(self, accept: &Accept<'_>) -> Result<()> {
        train_members::<B>(
            self.slots,
            self.split,
            self.results,
            accept,
            &mut stacked_epoch,
        );
        Ok(())
    }
}

/// A member being trained.
struct Live<'a, 's, B: Backend> {
    index: usize,
    member: Member<'a>,
    run: Started<'s, B>,
}

/// How an ensemble trains one epoch of the members `now` (all at the same epoch): their
/// outcomes, in order.
type EpochFn<'f, B> =
    dyn for<'a, 's> FnMut(&mut [Live<'a, 's, B>], &'s Split, usize) -> Vec<Result<()>> + 'f;

fn train_members<'a, 's, B: Backend>(
    slots: Vec<(usize, Member<'a>)>,
    split: &'s Split,
    results: &mut [Option<Result<Vec<EpochMetrics>>>],
    accept: &Accept<'_>,
    train_epoch: &mut EpochFn<'_, B>,
) {
    let mut live: Vec<Live<'a, 's, B>> = Vec::new();
    for (index, member) in slots {
        let started = Started::<B>::start(
            member.config,
            split,
            member.out,
            &mut *member.observer,
            accept,
        );
        match started {
            Ok(run) => live.push(Live { index, member, run }),
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    // members whose epochs are all done (a resumed, extended or shortened run)
    let (finished, mut live): (Vec<Live<B>>, Vec<Live<B>>) = live
        .into_iter()
        .partition(|l| l.run.metrics.len() >= l.member.config.epochs);
    for l in finished {
        results[l.index] = Some(Ok(l.run.metrics));
    }
    while !live.is_empty() {
        // the members furthest behind train the next epoch; the others wait for them
        let epoch = live
            .iter()
            .map(|l| l.run.metrics.len())
            .min()
            .expect("some")
            + 1;
        let (mut now, waiting): (Vec<Live<B>>, Vec<Live<B>>) = live
            .into_iter()
            .partition(|l| l.run.metrics.len() + 1 == epoch);
        let outcomes = train_epoch(&mut now, split, epoch);
        live = waiting;
        for (l, outcome) in now.into_iter().zip(outcomes) {
            match outcome {
                Err(e) => results[l.index] = Some(Err(e)),
                Ok(()) if l.run.metrics.len() >= l.member.config.epochs => {
                    results[l.index] = Some(Ok(l.run.metrics));
                }
                Ok(()) => live.push(l),
            }
        }
        live.sort_by_key(|l| l.index);
    }
}

/// Epoch `epoch` of members on the CPU that have all finished the one before: trained
/// together, evaluated together, then each ended (metrics, checkpoint, summary) by the solo run
/// loop.
fn shared_epoch(
    ensemble: &mut Ensemble,
    now: &mut [Live<'_, '_, Cpu>],
    split: &Split,
    epoch: usize,
) -> Vec<Result<()>> {
    let (batch, seed) = (now[0].member.config.batch, now[0].member.config.seed);
    let train = now[0].run.train.clone();
    let augment = now[0].run.augment;
    let (mut trainers, mut observers) = start_epoch(now, epoch, train.len());
    let clock = Instant::now();
    let stats = ensemble.epoch(
        &mut trainers,
        &train,
        batch,
        seed,
        epoch,
        augment,
        |done, live| {
            let live = observers.iter_mut().zip(live).filter(|(_, l)| **l);
            progress(live.map(|(o, _)| o), done)
        },
    );
    drop(observers);
    let seconds = clock.elapsed().as_secs_f64();
    let nets: Vec<&crate::model::Net> = trainers.iter().map(|t| &t.net).collect();
    let tests = ensemble.evaluate(&nets, &split.test);
    drop(nets);
    drop(trainers);
    now.par_iter_mut()
        .zip(stats)
        .zip(tests)
        .map(|((l, stats), test)| l.end(epoch, stats, Some(test), seconds))
        .collect()
}

/// The trainers and observers of members `now`, each observer told that epoch `epoch` of
/// `examples` starts.
fn start_epoch<'m, B: Backend>(
    now: &'m mut [Live<'_, '_, B>],
    epoch: usize,
    examples: usize,
) -> (Vec<&'m mut Trainer<B>>, Vec<&'m mut dyn Observer>) {
    let mut trainers = Vec::new();
    let mut observers: Vec<&'m mut dyn Observer> = Vec::new();
    for Live { member, run, .. } in now.iter_mut() {
        member.observer.start_epoch(epoch, examples);
        trainers.push(&mut run.trainer);
        observers.push(&mut *member.observer);
    }
    (trainers, observers)
}

/// Tells `observers` the examples done so far; whether any of them asks to stop.
fn progress<'o, 'b: 'o>(
    observers: impl Iterator<Item = &'o mut &'b mut dyn Observer>,
    done: usize,
) -> ControlFlow<()> {
    let mut stop = false;
    for o in observers {
        o.batch(done);
        stop |= o.stop();
    }
    if stop {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

impl<B: Backend> Live<'_, '_, B> {
    /// Ends epoch `epoch` as the solo run loop does: trained to `stats` in `seconds` (`None`:
    /// stopped before its end), tested to `test`.
    fn end(
        &mut self,
        epoch: usize,
        stats: Option<EpochStats>,
        test: Option<EpochStats>,
        seconds: f64,
    ) -> Result<()> {
        let Some(stats) = stats else {
            return Err(Error::Interrupted {
                epoch,
                step: self.run.trainer.step,
            });
        };
        let Live { member, run, .. } = self;
        let done = epoch_metrics(
            &run.trainer,
            member.config,
            &run.train,
            epoch,
            stats,
            test,
            seconds,
        );
        run.end_epoch(member.config, member.out, &mut *member.observer, done)
            .map(|_| ())
    }
}

/// Epoch `epoch` of members on a backend that stacks (the GPU's) that have all finished the one
/// before: stacked and trained together when their trainers stack, else one after another; then
/// each evaluated on its own and ended (metrics, checkpoint, summary) by the solo run loop.
fn stacked_epoch<B: Backend>(
    now: &mut [Live<'_, '_, B>],
    split: &Split,
    epoch: usize,
) -> Vec<Result<()>> {
    let first = &now[0].run.trainer;
    let stacks = now.len() > 1
        && B::STACKS
        && now
            .iter()
            .all(|l| stack_refuses(first, &l.run.trainer).is_none());
    if !stacks {
        return now
            .iter_mut()
            .map(|l| {
                let Live { member, run, .. } = l;
                let done = solo_epoch(
                    &mut run.trainer,
                    member.config,
                    &run.train,
                    run.augment,
                    Some(&split.test),
                    epoch,
                    &mut *member.observer,
                );
                run.end_epoch(member.config, member.out, &mut *member.observer, done)
                    .map(|_| ())
            })
            .collect();
    }
    let batch = now[0].member.config.batch;
    let train = now[0].run.train.clone();
    let augment = now[0].run.augment;
    let seeds: Vec<u64> = now.iter().map(|l| l.member.config.seed).collect();
    let (mut trainers, mut observers) = start_epoch(now, epoch, train.len());
    let clock = Instant::now();
    let mut stack = Stack::new(&mut trainers);
    let stats = stack.epoch_until(&train, batch, &seeds, epoch, augment, |done| {
        progress(observers.iter_mut(), done)
    });
    stack.unstack_into(&mut trainers);
    drop(stack);
    drop(observers);
    drop(trainers);
    let seconds = clock.elapsed().as_secs_f64();
    now.iter_mut()
        .zip(stats)
        .map(|(l, stats)| {
            // a member that diverged ends with the divergence, its test aside (as when alone)
            let finite = stats.is_some_and(|s| s.loss.is_finite());
            let test = finite.then(|| l.run.trainer.evaluate(&split.test));
            l.end(epoch, stats, test, seconds)
        })
        .collect()
}
