//! Whole runs through the library: determinism, divergence handling, the saved files.

use rbp::config::TrainConfig;
use rbp::data;
use rbp::run::{self, Silent};

fn small(channel: &str) -> TrainConfig {
    TrainConfig {
        channel: channel.into(),
        epochs: 2,
        train_limit: Some(2000),
        ..TrainConfig::default()
    }
}

fn without_seconds(ms: &[run::EpochMetrics]) -> Vec<run::EpochMetrics> {
    ms.iter()
        .cloned()
        .map(|mut m| {
            m.seconds = 0.0;
            m
        })
        .collect()
}

#[test]
fn reruns_with_one_seed_are_identical_and_seeds_and_channels_differ() {
    let split = data::embedded();
    let mut by_channel = Vec::new();
    for channel in ["bp", "rbp", "srbp"] {
        let a = run::run(&small(channel), &split, None, &mut Silent).unwrap();
        let b = run::run(&small(channel), &split, None, &mut Silent).unwrap();
        assert_eq!(
            without_seconds(&a),
            without_seconds(&b),
            "{channel} is not deterministic"
        );
        let other_seed = TrainConfig {
            seed: 2,
            ..small(channel)
        };
        let c = run::run(&other_seed, &split, None, &mut Silent).unwrap();
        assert_ne!(
            without_seconds(&a),
            without_seconds(&c),
            "{channel}: seed has no effect"
        );
        by_channel.push(without_seconds(&a));
    }
    assert_ne!(by_channel[0], by_channel[1]);
    assert_ne!(by_channel[1], by_channel[2]);
}

#[test]
fn two_threads_give_the_same_numbers_as_one() {
    let split = data::embedded();
    let cfg = TrainConfig {
        hidden: vec![512, 512],
        batch: 256,
        epochs: 1,
        train_limit: Some(1024),
        ..TrainConfig::default()
    };
    let one = run::run(&cfg, &split, None, &mut Silent).unwrap();
    let two = run::run(
        &TrainConfig { threads: 2, ..cfg },
        &split,
        None,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(without_seconds(&one), without_seconds(&two));
}

#[test]
fn momentum_and_decay_are_applied() {
    let split = data::embedded();
    let base = small("bp");
    let plain = run::run(&base, &split, None, &mut Silent).unwrap();
    let mom = run::run(
        &TrainConfig {
            momentum: 0.9,
            ..base.clone()
        },
        &split,
        None,
        &mut Silent,
    )
    .unwrap();
    assert_ne!(without_seconds(&plain), without_seconds(&mom));
    let decayed = run::run(
        &TrainConfig {
            decay: 1e-2,
            ..base
        },
        &split,
        None,
        &mut Silent,
    )
    .unwrap();
    let steps = decayed[1].steps as f64;
    assert_eq!(steps, 40.0);
    assert!((decayed[1].lr - 0.1 / (1.0 + 1e-2 * steps)).abs() < 1e-12);
}

#[test]
fn divergence_stops_with_a_clear_error_and_keeps_finished_epochs() {
    let split = data::embedded();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        activation: rbp::kernels::Activation::Linear,
        lr: 0.5,
        epochs: 50,
        train_limit: Some(500),
        ..TrainConfig::default()
    };
    let err = run::run(&cfg, &split, Some(dir.path()), &mut Silent).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("diverged") && msg.contains("--lr"), "{msg}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["status"], "diverged");
    let done = summary["epochs_completed"].as_u64().unwrap() as usize;
    if done > 0 {
        let ms = run::read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(ms.len(), done);
        assert!(ms.iter().all(|m| m.train_loss.is_finite()));
    }
}

#[test]
fn invalid_configs_name_the_key_and_value() {
    let bad = [
        (
            TrainConfig {
                lr: -0.1,
                ..TrainConfig::default()
            },
            "`lr`",
            "-0.1",
        ),
        (
            TrainConfig {
                batch: 0,
                ..TrainConfig::default()
            },
            "`batch`",
            "0",
        ),
        (
            TrainConfig {
                momentum: 1.5,
                ..TrainConfig::default()
            },
            "`momentum`",
            "1.5",
        ),
        (
            TrainConfig {
                hidden: vec![100, 0],
                ..TrainConfig::default()
            },
            "`hidden`",
            "[100, 0]",
        ),
        (
            TrainConfig {
                channel: "magic".into(),
                ..TrainConfig::default()
            },
            "`channel`",
            "magic",
        ),
        (
            TrainConfig {
                channel: "top-nof".into(),
                ..TrainConfig::default()
            },
            "`channel`",
            "no-derivative",
        ),
    ];
    for (cfg, key, value) in bad {
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.contains(key) && msg.contains(value), "{msg}");
    }
    assert!(
        TrainConfig::parse_hidden("100,x")
            .unwrap_err()
            .to_string()
            .contains("`x`")
    );
}
