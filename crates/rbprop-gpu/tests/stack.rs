//! Ensembles on the GPU: members stacked into one trainer ([`rbprop::train::Stack`]) take, each
//! on its own minibatches, exactly the steps of their solo runs on the GPU — the same bits of
//! every weight, feedback matrix, momentum buffer and loss — and a stacked step costs the
//! dispatches of one member's step, whatever the number of members.
//!
//! The tests need an adapter (lavapipe will do); they are skipped with a note when there is
//! none, and fail instead when `RBP_GPU=1` (CI sets it).

use rbprop::backend::Backend;
use rbprop::channel::CHANNELS;
use rbprop::config::TrainConfig;
use rbprop::data::augment::Augment;
use rbprop::data::{self, Dataset};
use rbprop::run;
use rbprop::train::{Minibatches, Stack, Trainer, stack_refuses};
use rbprop_gpu::Gpu;
use std::ops::ControlFlow;

fn available() -> bool {
    rbprop_gpu::testing::available()
}

/// A subset of the embedded data: `n` training examples.
fn data(n: usize) -> Dataset {
    let mut d = data::embedded().train;
    d.truncate(n);
    d
}

/// Member trainers on the GPU: one per seed, of `config`'s net and channel.
fn members(config: &TrainConfig, seeds: &[u64], shape: (usize, usize, usize)) -> Vec<Trainer<Gpu>> {
    seeds
        .iter()
        .map(|&seed| {
            let c = TrainConfig {
                seed,
                ..config.clone()
            };
            run::build_trainer(&c, shape, 10).unwrap().to_backend()
        })
        .collect()
}

/// Every lasting buffer of a trainer, on the host.
fn state(t: &mut Trainer<Gpu>) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    t.for_each_buffer(&mut |b| out.push(Gpu::download(b)));
    out
}

/// `steps` steps of each member alone and of all of them stacked, each member on its own
/// minibatches: the same losses and the same state, bit for bit.
fn stacked_steps_are_solo_steps(config: &TrainConfig, shape: (usize, usize, usize), what: &str) {
    let seeds = [1, 2, 3];
    let train = data(300);
    let train = if shape.0 == 3 {
        // a colour image: three copies of the grey one
        let mut images = Vec::new();
        for e in 0..train.len() {
            let img = train.image(e);
            for _ in 0..3 {
                images.extend_from_slice(&img[..shape.1 * shape.2]);
            }
        }
        Dataset {
            images,
            dim: 3 * shape.1 * shape.2,
            shape,
            ..train
        }
    } else {
        train
    };
    let mut solo = members(config, &seeds, shape);
    let mut together = members(config, &seeds, shape);
    let steps = 3;
    let mut solo_losses = Vec::new();
    for (t, &seed) in solo.iter_mut().zip(&seeds) {
        let mut batches = Minibatches::new(&train, config.batch, seed, 1, Augment::default());
        let mut losses = Vec::new();
        for _ in 0..steps {
            let (x, y) = batches.next_batch().unwrap();
            losses.push(t.step(x, y));
        }
        solo_losses.push(losses);
    }
    let mut refs: Vec<&mut Trainer<Gpu>> = together.iter_mut().collect();
    let mut stack = Stack::new(&mut refs);
    let mut batches: Vec<Minibatches> = seeds
        .iter()
        .map(|&s| Minibatches::new(&train, config.batch, s, 1, Augment::default()))
        .collect();
    // by step, then member
    let solo_losses: Vec<Vec<_>> = (0..steps)
        .map(|step| solo_losses.iter().map(|l| l[step]).collect())
        .collect();
    for (step, want) in solo_losses.iter().enumerate() {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for b in &mut batches {
            let (bx, by) = b.next_batch().unwrap();
            x.extend_from_slice(bx);
            y.extend_from_slice(by);
        }
        let loss = stack.step_kept(&x, &y);
        let per_member = &Gpu::read_member_losses(std::slice::from_ref(&loss))[0];
        for (m, l) in per_member.iter().enumerate() {
            let s = want[m];
            assert_eq!(
                (l.loss_sum.to_bits(), l.correct),
                (s.loss_sum.to_bits(), s.correct),
                "{what}: member {m}'s loss at step {step}"
            );
        }
    }
    stack.unstack_into(&mut refs);
    let first = state(&mut solo[0]);
    for (m, (a, b)) in solo.iter_mut().zip(together.iter_mut()).enumerate() {
        assert_eq!(a.step, b.step, "{what}: member {m}'s steps");
        let (sa, sb) = (state(a), state(b));
        assert_eq!(sa.len(), sb.len());
        for (i, (x, y)) in sa.iter().zip(&sb).enumerate() {
            let same =
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(
                same,
                "{what}: member {m}'s buffer {i} differs from its solo run's"
            );
        }
        // and the members did differ (their seeds)
        if m > 0 {
            assert_ne!(first[0], sb[0], "{what}: members 0 and {m} alike");
        }
    }
}

#[test]
fn every_channel_that_stacks_takes_its_solo_steps_dense_and_conv() {
    if !available() {
        return;
    }
    let mut tried = 0;
    for kind in CHANNELS {
        let mut config = TrainConfig {
            channel: kind.name.parse().unwrap(),
            hidden: vec![37, 29, 31],
            batch: 20,
            lr: 0.05,
            momentum: if kind.name == "bp" { 0.5 } else { 0.0 },
            weight_decay: if kind.name == "kp" { 1e-4 } else { 0.0 },
            ..TrainConfig::default()
        };
        if kind.name == "mix" {
            config.set_flag("mix", "srbp,bp,srbp").unwrap();
        }
        let probe = run::build_trainer(&config, (1, 28, 28), 10).unwrap();
        if !probe.channel.stacks() {
            continue;
        }
        stacked_steps_are_solo_steps(&config, (1, 28, 28), kind.name);
        tried += 1;
    }
    assert!(tried >= 8, "only {tried} channels stacked");
    for channel in ["bp", "srbp", "rbp-nof"] {
        let config = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some("conv8k5-pool2-fc32".into()),
            batch: 16,
            lr: 0.05,
            ..TrainConfig::default()
        };
        stacked_steps_are_solo_steps(&config, (1, 28, 28), &format!("{channel} conv"));
    }
    let config = TrainConfig {
        channel: "rbp".parse().unwrap(),
        arch: Some("paper-cifar10".into()),
        batch: 8,
        lr: 0.01,
        momentum: 0.9,
        ..TrainConfig::default()
    };
    stacked_steps_are_solo_steps(&config, (3, 28, 28), "rbp paper-cifar10 with momentum");
}

/// Dispatches of one stacked step for 1, 4 and 16 members (the CIFAR-10 net: 1 and 4, on
/// small batches, which do not change the count): those of one member's step, recorded in
/// BENCHMARKS.md.
#[test]
fn a_stacked_step_costs_one_members_dispatches() {
    if !available() {
        return;
    }
    let train = data(64 * 16);
    for (channel, arch, shape, batch, sizes, want) in [
        ("bp", "paper-mnist", (1, 28, 28), 16, &[1, 4, 16][..], 12),
        ("srbp", "paper-mnist", (1, 28, 28), 16, &[1, 4, 16], 12),
        (
            "rbp",
            "conv8k5-pool2-fc32",
            (1, 28, 28),
            16,
            &[1, 4, 16],
            14,
        ),
        ("rbp", "paper-cifar10", (3, 32, 32), 2, &[1, 4], 32),
    ] {
        let config = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some(arch.into()),
            batch,
            ..TrainConfig::default()
        };
        let dim = shape.0 * shape.1 * shape.2;
        let one: Vec<f32> = train
            .images
            .iter()
            .cycle()
            .take(batch * dim)
            .copied()
            .collect();
        let mut counts = Vec::new();
        for &k in sizes {
            let seeds: Vec<u64> = (1..=k).collect();
            let mut ts = members(&config, &seeds, shape);
            let mut refs: Vec<&mut Trainer<Gpu>> = ts.iter_mut().collect();
            let mut stack = Stack::new(&mut refs);
            let x = one.repeat(k as usize);
            let y: Vec<u8> = (0..k as usize)
                .flat_map(|_| train.labels[..batch].to_vec())
                .collect();
            stack.step_kept(&x, &y); // the first step allocates its scratch
            let before = Gpu::dispatches();
            stack.step_kept(&x, &y);
            counts.push(Gpu::dispatches() - before);
        }
        eprintln!("{channel} {arch}: dispatches per stacked step of {sizes:?} members: {counts:?}");
        assert!(
            counts.iter().all(|&n| n == counts[0] && n <= want),
            "{channel} {arch}: {counts:?} dispatches for {sizes:?} members (at most {want}, alike)"
        );
    }
}

/// A stacked epoch gives every member its solo epoch: the same totals, the same state, and a
/// member that diverges stops where its solo run stops while the others go on.
#[test]
fn a_stacked_epoch_is_every_members_solo_epoch_even_when_one_diverges() {
    if !available() {
        return;
    }
    let train = data(2000);
    let config = TrainConfig {
        channel: "srbp".parse().unwrap(),
        hidden: vec![50, 50],
        batch: 10,
        ..TrainConfig::default()
    };
    let seeds = [4, 5, 6];
    let blow_up = |ts: &mut [Trainer<Gpu>]| {
        // member 1 starts with infinite weights: its first loss is NaN
        Gpu::scale(&mut ts[1].net.layers[0].w, f32::INFINITY);
    };
    let mut solo = members(&config, &seeds, (1, 28, 28));
    blow_up(&mut solo);
    let mut together = members(&config, &seeds, (1, 28, 28));
    blow_up(&mut together);
    let augment = Augment::default();
    let want: Vec<_> = solo
        .iter_mut()
        .zip(&seeds)
        .map(|(t, &s)| t.epoch_until(&train, 10, s, 1, augment, |_| ControlFlow::Continue(())))
        .collect();
    assert!(
        !want[1].unwrap().loss.is_finite(),
        "member 1 diverges alone"
    );
    assert!(want[0].unwrap().loss.is_finite() && want[2].unwrap().loss.is_finite());
    let mut refs: Vec<&mut Trainer<Gpu>> = together.iter_mut().collect();
    assert_eq!(stack_refuses(refs[0], refs[1]), None);
    let mut stack = Stack::new(&mut refs);
    let got = stack.epoch_until(
        &train,
        10,
        &seeds,
        1,
        augment,
        |_| ControlFlow::Continue(()),
    );
    stack.unstack_into(&mut refs);
    for m in 0..3 {
        let (a, b) = (want[m].unwrap(), got[m].unwrap());
        assert_eq!(
            (a.loss.to_bits(), a.acc.to_bits(), a.examples),
            (b.loss.to_bits(), b.acc.to_bits(), b.examples),
            "member {m}'s epoch"
        );
        assert_eq!(solo[m].step, together[m].step, "member {m}'s steps");
        if m != 1 {
            assert_eq!(
                state(&mut solo[m]),
                state(&mut together[m]),
                "member {m}'s state"
            );
        }
    }
    assert!(
        together[1].step < together[0].step,
        "the diverged member stopped early"
    );
}
