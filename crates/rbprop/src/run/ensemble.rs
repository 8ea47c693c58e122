//! Ensembles: several runs that read the same minibatches (same seed, batch, training subset and
//! augmentation) trained together on the CPU, one step of every member per minibatch
//! ([`crate::train::Ensemble`]: layer 0's products shared, the rest member by member in
//! parallel). It is a way of executing runs, not a kind of result: every member starts, resumes
//! and ends each epoch through the solo run loop ([`super::training`]), into its own run
//! directory under its own lock, and its files hold the bits of its solo run (but for the
//! `seconds` of each epoch, the ensemble's wall time).
//!
//! A member that diverges or fails ends with its own error, recorded as a solo run records it;
//! the others go on. Members resumed at different epochs start apart: the ones behind train
//! until they reach the others, then all train together.

use super::dir::{EpochMetrics, RunLock};
use super::training::{Observer, Started, epoch_metrics};
use crate::backend::Cpu;
use crate::config::{Device, TrainConfig};
use crate::data::Split;
use crate::error::{Error, Result};
use crate::train::{Ensemble, Trainer};
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

/// Why two runs cannot train as one ensemble, if they cannot: they must read the same
/// minibatches (seed, batch, training subset, augmentation), run on the CPU, and share the
/// thread count.
pub fn incompatible(a: &TrainConfig, b: &TrainConfig) -> Option<&'static str> {
    if a.device != Device::Cpu || b.device != Device::Cpu {
        Some("ensembles train on the CPU")
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
    pool.install(|| train_members(slots, split, &mut results));
    results
        .into_iter()
        .map(|r| r.expect("every member has an outcome"))
        .collect()
}

/// A member being trained.
struct Live<'a, 's> {
    index: usize,
    member: Member<'a>,
    run: Started<'s, Cpu>,
}

fn train_members<'a, 's>(
    slots: Vec<(usize, Member<'a>)>,
    split: &'s Split,
    results: &mut [Option<Result<Vec<EpochMetrics>>>],
) {
    let mut live: Vec<Live<'a, 's>> = Vec::new();
    for (index, member) in slots {
        let started = Started::<Cpu>::start(
            member.config,
            split,
            member.out,
            &mut *member.observer,
            &|_| Ok(()),
        );
        match started {
            Ok(run) => live.push(Live { index, member, run }),
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    // members whose epochs are all done (a resumed, extended or shortened run)
    let (finished, mut live): (Vec<Live>, Vec<Live>) = live
        .into_iter()
        .partition(|l| l.run.metrics.len() >= l.member.config.epochs);
    for l in finished {
        results[l.index] = Some(Ok(l.run.metrics));
    }
    let mut ensemble = Ensemble::new();
    while !live.is_empty() {
        // the members furthest behind train the next epoch; the others wait for them
        let epoch = live
            .iter()
            .map(|l| l.run.metrics.len())
            .min()
            .expect("some")
            + 1;
        let (mut now, waiting): (Vec<Live>, Vec<Live>) = live
            .into_iter()
            .partition(|l| l.run.metrics.len() + 1 == epoch);
        let outcomes = train_epoch(&mut ensemble, &mut now, split, epoch);
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

/// Epoch `epoch` of members that have all finished the one before: trained together,
/// evaluated together, then each ended (metrics, checkpoint, summary) by the solo run loop.
fn train_epoch(
    ensemble: &mut Ensemble,
    now: &mut [Live<'_, '_>],
    split: &Split,
    epoch: usize,
) -> Vec<Result<()>> {
    let (batch, seed) = (now[0].member.config.batch, now[0].member.config.seed);
    let train = now[0].run.train.clone();
    let augment = now[0].run.augment;
    let mut trainers: Vec<&mut Trainer> = Vec::new();
    let mut observers: Vec<&mut dyn Observer> = Vec::new();
    for Live { member, run, .. } in now.iter_mut() {
        member.observer.start_epoch(epoch, train.len());
        trainers.push(&mut run.trainer);
        observers.push(&mut *member.observer);
    }
    let clock = Instant::now();
    let stats = ensemble.epoch(
        &mut trainers,
        &train,
        batch,
        seed,
        epoch,
        augment,
        |done, live| {
            let mut stop = false;
            for (o, _) in observers.iter_mut().zip(live).filter(|(_, l)| **l) {
                o.batch(done);
                stop |= o.stop();
            }
            if stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
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
        .map(|((l, stats), test)| {
            let Some(stats) = stats else {
                return Err(Error::Interrupted {
                    epoch,
                    step: l.run.trainer.step,
                });
            };
            let Live { member, run, .. } = l;
            let done = epoch_metrics(
                &run.trainer,
                member.config,
                &run.train,
                epoch,
                stats,
                Some(test),
                seconds,
            );
            run.end_epoch(member.config, member.out, &mut *member.observer, done)
                .map(|_| ())
        })
        .collect()
}
