//! Ensembles: members trained together write, bit for bit, what their solo runs write (every
//! registered channel, its -nof version, the composable options, momentum and weight decay,
//! dense and conv nets, one and two threads), share layer 0's products where they can, resume
//! apart and together, and drop a member that diverges or fails without stopping the others.

use super::determinism::{results, tensors};
use rbprop::channel::quantize::{Alpha, Rounding};
use rbprop::channel::{CHANNELS, ChannelSpec, FeedbackInit, Quantizer};
use rbprop::config::TrainConfig;
use rbprop::data::{self, Split};
use rbprop::experiment::Experiment;
use rbprop::experiment::runner::{self, Options, Outcome};
use rbprop::run::ensemble::{Member, run_together};
use rbprop::run::{self, RunDir, Silent, build_trainer};
use rbprop::train::{Ensemble, Trainer};
use std::path::Path;

/// A small, fast run of `channel` on the embedded subset: two epochs of 300 examples.
fn base(channel: &str) -> TrainConfig {
    let spec = ChannelSpec::parse(channel, false).expect("registered");
    let c = TrainConfig {
        channel: channel.parse().unwrap(),
        hidden: vec![20, 12],
        epochs: 2,
        train_limit: Some(300),
        batch: 50,
        seed: 7,
        threads: 1,
        ..TrainConfig::default()
    };
    let options = spec.kind.example_options(c.hidden.len());
    TrainConfig {
        weight_decay: options.weight_decay,
        channel_options: options,
        ..c
    }
}

/// Every registered channel and its -nof version, the composable channel options, momentum,
/// weight decay and quantized updates.
fn every_family() -> Vec<TrainConfig> {
    let mut out = Vec::new();
    for kind in CHANNELS {
        out.push(base(kind.name));
        if kind.has_nof {
            out.push(base(&format!("{}-nof", kind.name)));
        }
    }
    for ch in ["rbp", "srbp"] {
        let mut c = base(ch);
        c.channel_options.feedback = FeedbackInit::Sparse(2.0);
        out.push(c);
        let mut c = base(ch);
        c.channel_options.dropout = 0.25;
        out.push(c);
        let mut c = base(ch);
        c.channel_options.quantize_signal =
            Some(Quantizer::new(8, Alpha::Fixed(1.0), "q").unwrap());
        out.push(c);
        let mut c = base(ch);
        c.decay = 0.0;
        c.channel_options.quantize_update =
            Some(Quantizer::new(8, Alpha::Fixed(0.0625), "q").unwrap());
        let mut s = c.clone();
        out.push(c);
        s.channel_options.quantize_update.as_mut().unwrap().rounding = Rounding::Stochastic;
        out.push(s);
    }
    let mut c = base("bp");
    c.momentum = 0.9;
    out.push(c);
    let mut c = base("rbp");
    c.momentum = 0.5;
    c.weight_decay = 1e-3;
    out.push(c);
    out
}

/// Trains `configs` as one ensemble into `dirs` (each locked for the run), silently.
fn together(
    configs: &[&TrainConfig],
    dirs: &[std::path::PathBuf],
    split: &Split,
) -> Vec<rbprop::Result<Vec<rbprop::run::EpochMetrics>>> {
    let locks: Vec<_> = dirs
        .iter()
        .map(|d| RunDir::new(d).lock().unwrap())
        .collect();
    let mut observers: Vec<Silent> = configs.iter().map(|_| Silent).collect();
    let members = configs
        .iter()
        .zip(&locks)
        .zip(observers.iter_mut())
        .map(|((config, lock), observer)| Member {
            config,
            out: Some(lock),
            observer,
        })
        .collect();
    run_together(members, split)
}

/// Trains each config alone into `root/solo-k`, then all of them as one ensemble into
/// `root/ens-k`, and asserts that every member's files equal its solo run's.
fn solo_and_together(configs: &[TrainConfig], split: &Split, root: &Path) {
    for (k, c) in configs.iter().enumerate() {
        run::run(c, split, Some(&root.join(format!("solo-{k}"))), &mut Silent)
            .unwrap_or_else(|e| panic!("{}: {e}", c.channel));
    }
    let dirs: Vec<_> = (0..configs.len())
        .map(|k| root.join(format!("ens-{k}")))
        .collect();
    let all: Vec<&TrainConfig> = configs.iter().collect();
    for (c, r) in configs.iter().zip(together(&all, &dirs, split)) {
        r.unwrap_or_else(|e| panic!("{}: {e}", c.channel));
    }
    for (k, c) in configs.iter().enumerate() {
        let (solo, ens) = (
            root.join(format!("solo-{k}")),
            root.join(format!("ens-{k}")),
        );
        assert_eq!(results(&solo), results(&ens), "{} ({k})", c.channel);
        assert!(
            tensors(&solo) == tensors(&ens),
            "{} ({k}): checkpoint",
            c.channel
        );
    }
}

#[test]
fn every_channel_family_trains_in_an_ensemble_with_its_solo_bits() {
    let split = data::embedded();
    for threads in [1, 2] {
        let configs: Vec<TrainConfig> = every_family()
            .into_iter()
            .map(|c| TrainConfig { threads, ..c })
            .collect();
        assert!(configs.len() >= 30, "{}", configs.len());
        let tmp = tempfile::tempdir().unwrap();
        solo_and_together(&configs, &split, tmp.path());
    }
}

#[test]
fn conv_nets_train_in_an_ensemble_with_their_solo_bits() {
    let split = data::embedded();
    for threads in [1, 2] {
        let configs: Vec<TrainConfig> = ["bp", "rbp", "srbp", "top", "arbp"]
            .iter()
            .map(|ch| TrainConfig {
                arch: Some("conv4k5-pool2-fc16".into()),
                hidden: Vec::new(),
                threads,
                momentum: 0.9,
                ..base(ch)
            })
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        solo_and_together(&configs, &split, tmp.path());
    }
}

/// The paper's shapes share both of layer 0's products (a wrong rounding would fail the test
/// above; this one checks that the sharing is not silently off), and the step is the solo step.
#[test]
fn the_paper_net_shares_layer_0_and_keeps_every_bit() {
    let split = data::embedded();
    let configs: Vec<TrainConfig> = ["bp", "rbp", "srbp", "sbp-nof", "top"]
        .iter()
        .map(|ch| TrainConfig {
            channel: ch.parse().unwrap(),
            momentum: if *ch == "rbp" { 0.9 } else { 0.0 },
            ..TrainConfig::default()
        })
        .collect();
    let build = || -> Vec<Trainer> {
        configs
            .iter()
            .map(|c| build_trainer(c, (1, 28, 28), 10).unwrap())
            .collect()
    };
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (mut solo, mut together) = (build(), build());
            let mut ens = Ensemble::new();
            for b in 0..4 {
                let r = b * 100..(b + 1) * 100;
                let x = &split.train.images[r.start * 784..r.end * 784];
                let y = &split.train.labels[r];
                let alone: Vec<_> = solo.iter_mut().map(|t| t.step(x, y)).collect();
                let mut m: Vec<&mut Trainer> = together.iter_mut().collect();
                let with = ens.step(&mut m, x, y);
                for (a, w) in alone.iter().zip(&with) {
                    assert_eq!(a.loss_sum.to_bits(), w.loss_sum.to_bits());
                    assert_eq!(a.correct, w.correct);
                }
            }
            assert_eq!(ens.shared_forwards, 4, "{threads} threads");
            assert_eq!(ens.shared_updates, 4, "{threads} threads");
            for (a, b) in solo.iter().zip(&together) {
                assert!(a.net == b.net, "{threads} threads");
                assert_eq!(a.velocity.len(), b.velocity.len());
                for ((aw, ab), (bw, bb)) in a.velocity.iter().zip(&b.velocity) {
                    assert!(aw == bw && ab == bb);
                }
            }
            let nets: Vec<_> = together.iter().map(|t| &t.net).collect();
            let test = ens.evaluate(&nets, &split.test);
            for (t, e) in together.iter().zip(test) {
                let alone = t.evaluate(&split.test);
                assert_eq!(alone.loss.to_bits(), e.loss.to_bits());
                assert_eq!(alone.acc.to_bits(), e.acc.to_bits());
            }
        });
    }
}

/// Members resumed at different epochs (and with different lengths) catch up with each other;
/// a member that diverges is recorded and dropped, the others go on; a member that cannot share
/// the minibatches is refused by name.
#[test]
fn members_resume_apart_and_a_diverging_member_is_dropped() {
    let split = data::embedded();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let a = TrainConfig {
        epochs: 3,
        ..base("rbp")
    };
    let b = TrainConfig {
        epochs: 4,
        ..base("srbp")
    };
    // a linear net at this rate diverges in its first epochs
    let c = TrainConfig {
        activation: rbprop::kernels::Activation::Linear,
        lr: 0.5,
        epochs: 4,
        ..base("bp")
    };
    let other_seed = TrainConfig {
        seed: 8,
        ..base("bp")
    };
    // solo references
    for (name, cfg) in [("solo-a", &a), ("solo-b", &b)] {
        run::run(cfg, &split, Some(&root.join(name)), &mut Silent).unwrap();
    }
    // member a already has one epoch
    run::run(
        &TrainConfig {
            epochs: 1,
            ..a.clone()
        },
        &split,
        Some(&root.join("ens-a")),
        &mut Silent,
    )
    .unwrap();
    let dirs: Vec<_> = ["ens-a", "ens-b", "ens-c", "ens-d"]
        .iter()
        .map(|n| root.join(n))
        .collect();
    let out = together(&[&a, &b, &c, &other_seed], &dirs, &split);
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    assert!(
        matches!(out[2], Err(rbprop::Error::Diverged { .. })),
        "{:?}",
        out[2]
    );
    let refused = out[3].as_ref().unwrap_err().to_string();
    assert!(
        refused.contains("ensemble") && refused.contains("seeds differ"),
        "{refused}"
    );
    assert_eq!(results(&root.join("solo-a")), results(&root.join("ens-a")));
    assert_eq!(results(&root.join("solo-b")), results(&root.join("ens-b")));
    assert!(tensors(&root.join("solo-b")) == tensors(&root.join("ens-b")));
    let summary = std::fs::read_to_string(root.join("ens-c/summary.json")).unwrap();
    assert!(summary.contains("diverged"), "{summary}");
}

/// `rbp reproduce --ensemble`: the smoke grids run as ensembles write what they write run by
/// run, and a second invocation skips every run.
#[test]
fn reproduce_with_ensembles_writes_the_solo_results() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke");
    for name in ["table1.toml", "sparse.toml", "conv-fashion-mnist.toml"] {
        let exp = Experiment::load(&dir.join(name)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let opts = |root: &str, ensemble: usize| Options {
            results: tmp.path().join(root),
            jobs: 1,
            quick: None,
            data: None,
            device: None,
            adapter: None,
            ensemble,
        };
        let solo = runner::reproduce(&exp, &opts("solo", 1), &runner::Quiet).unwrap();
        let together = runner::reproduce(&exp, &opts("ens", 4), &runner::Quiet).unwrap();
        assert_eq!(solo.len(), together.len());
        for ((id, o), (id2, o2)) in solo.iter().zip(&together) {
            assert_eq!(id, id2);
            assert_eq!(o, o2, "{name} {id}");
            let a = exp
                .runs()
                .unwrap()
                .into_iter()
                .find(|r| &r.id == id)
                .unwrap();
            let (ds, de) = (
                a.dir(&tmp.path().join("solo").join(&exp.name)),
                a.dir(&tmp.path().join("ens").join(&exp.name)),
            );
            assert_eq!(results(&ds), results(&de), "{name} {id}");
            assert!(tensors(&ds) == tensors(&de), "{name} {id}");
        }
        let again = runner::reproduce(&exp, &opts("ens", 4), &runner::Quiet).unwrap();
        assert!(
            again.iter().all(|(_, o)| *o == Outcome::Skipped),
            "{again:?}"
        );
    }
}

/// Runs group by what they share, in groups of balanced sizes, in grid order.
#[test]
fn grids_group_into_balanced_ensembles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper");
    let exp = Experiment::load(&dir.join("basic.toml")).unwrap();
    let runs = exp.runs().unwrap();
    assert_eq!(runs.len(), 45);
    let solo = runner::units(&runs, 1);
    assert_eq!(solo.len(), 45);
    assert!(solo.iter().enumerate().all(|(k, u)| u == &vec![k]));
    for (k, sizes) in [
        (9, vec![9; 5]),
        (8, vec![5, 4, 5, 4, 5, 4, 5, 4, 5, 4]),
        (100, vec![9; 5]),
    ] {
        let units = runner::units(&runs, k);
        let mut got: Vec<usize> = units.iter().map(|u| u.len()).collect();
        got.sort();
        let mut sizes = sizes;
        sizes.sort();
        assert_eq!(got, sizes, "ensemble {k}");
        assert!(units.windows(2).all(|w| w[0][0] < w[1][0]), "grid order");
        for u in &units {
            let seed = runs[u[0]].config.seed;
            assert!(u.iter().all(|&r| runs[r].config.seed == seed), "{u:?}");
            assert!(u.windows(2).all(|w| w[0] < w[1]));
        }
        let mut all: Vec<usize> = units.concat();
        all.sort();
        assert_eq!(all, (0..45).collect::<Vec<_>>());
    }
}
