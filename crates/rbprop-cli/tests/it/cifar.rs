//! The CIFAR-10 reader on generated files in the official binary format, bad files, augmentation,
//! and conv nets learning from CIFAR-format data with every basic channel.

use rand::{Rng, SeedableRng};
use rbprop::config::TrainConfig;
use rbprop::data::augment::Augment;
use rbprop::data::cifar::{self, TEST_FILE, TRAIN_FILES, write_batch};
use rbprop::run::{self, Silent};
use std::path::Path;

/// Writes a learnable CIFAR-format dataset: class k is a bright 8×8 patch in colour channel k % 3
/// at a position set by k, on a noisy background.
pub fn generate(dir: &Path, per_batch: usize, test: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut make = |n: usize| -> (Vec<u8>, Vec<u8>) {
        let mut images = Vec::with_capacity(n * 3072);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let k = rng.random_range(0..10u8);
            let mut img: Vec<u8> = (0..3072).map(|_| rng.random_range(0..90)).collect();
            let (py, px) = (4 + 8 * (k as usize / 4 % 3), 2 + 7 * (k as usize % 4));
            for y in py..py + 8 {
                for x in px..px + 8 {
                    img[(k as usize % 3) * 1024 + y * 32 + x] = rng.random_range(200..=255);
                }
            }
            images.extend(img);
            labels.push(k);
        }
        (images, labels)
    };
    for name in TRAIN_FILES {
        let (i, l) = make(per_batch);
        write_batch(&dir.join(name), &i, &l).unwrap();
    }
    let (i, l) = make(test);
    write_batch(&dir.join(TEST_FILE), &i, &l).unwrap();
}

#[test]
fn generated_cifar_files_load_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join(cifar::ARCHIVE_DIR);
    std::fs::create_dir(&sub).unwrap();
    generate(&sub, 20, 30, 1);
    // found inside the directory the official archive unpacks to
    let split = rbprop::data::load_dir(dir.path()).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (100, 30));
    assert_eq!(split.train.shape, (3, 32, 32));
    assert_eq!(split.train.dim, 3072);
    // per-channel normalisation: mean 0, sd 1 on the training set
    for c in 0..3 {
        let vals: Vec<f64> = (0..100)
            .flat_map(|e| {
                split.train.image(e)[c * 1024..(c + 1) * 1024]
                    .iter()
                    .map(|v| *v as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!(
            m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3,
            "channel {c}: mean {m}, variance {v}"
        );
    }
}

#[test]
fn bad_cifar_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 4, 4, 2);
    let p = dir.path().join(TRAIN_FILES[2]);
    let good = std::fs::read(&p).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            good[..good.len() - 100].to_vec(),
            "not a multiple of the 3073-byte record",
        ),
        (Vec::new(), "empty"),
        (
            {
                let mut b = good.clone();
                b[3073] = 12;
                b
            },
            "record 1 has label 12",
        ),
    ];
    for (bytes, needle) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let e = rbprop::data::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains(needle) && e.contains("HINT"),
            "{e}"
        );
    }
    std::fs::write(&p, &good).unwrap();
    std::fs::remove_file(dir.path().join(TEST_FILE)).unwrap();
    let e = rbprop::data::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn a_cifar_directory_without_its_first_batch_names_that_file() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2, 2, 5);
    std::fs::remove_file(dir.path().join(TRAIN_FILES[0])).unwrap();
    let e = rbprop::data::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("data_batch_1.bin") && e.contains("not found") && !e.contains("idx"),
        "{e}"
    );
    // only the test batch, inside the directory the archive unpacks to
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join(cifar::ARCHIVE_DIR);
    std::fs::create_dir(&sub).unwrap();
    generate(&sub, 2, 2, 5);
    for name in TRAIN_FILES {
        std::fs::remove_file(sub.join(name)).unwrap();
    }
    let e = rbprop::data::load_dir(dir.path()).unwrap_err().to_string();
    let want = sub.join(TRAIN_FILES[0]).display().to_string();
    assert!(e.contains(&want) && e.contains("not found"), "{e}");
}

#[test]
fn augmentation_translates_and_flips_deterministically() {
    // one bright pixel per channel at (row 5, col 3): unflipped it lands in cols 0..=6, flipped
    // (col 15 − 3 = 12) in cols 9..=15
    let shape = (2, 12, 16);
    let mut img = vec![0.0f32; 2 * 12 * 16];
    img[5 * 16 + 3] = 1.0;
    img[12 * 16 + 5 * 16 + 3] = 2.0;
    let none = Augment {
        translate: 0,
        flip: false,
    };
    let mut out = vec![0.0; img.len()];
    none.apply(&img, &mut out, shape, &mut rbprop::rng::stream(1, "a"));
    assert_eq!(out, img);
    let aug = Augment {
        translate: 3,
        flip: true,
    };
    let (mut flips, mut moved) = (0, 0);
    let mut rng = rbprop::rng::stream(1, "augment");
    for _ in 0..400 {
        aug.apply(&img, &mut out, shape, &mut rng);
        let hits: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hits.len(), 2, "the pixel stays inside for shifts ≤ 3");
        let (y, x) = (hits[0] / 16, hits[0] % 16);
        assert_eq!(out[hits[1]], 2.0);
        assert_eq!(hits[1], 12 * 16 + hits[0], "both channels move together");
        assert!((2..=8).contains(&y), "row {y}");
        assert!(x <= 6 || x >= 9, "col {x}");
        flips += usize::from(x >= 9);
        moved += usize::from(y != 5 || (x != 3 && x != 12));
    }
    assert!((120..280).contains(&flips), "flips {flips} of 400");
    assert!(moved > 300);
    // the same stream gives the same images
    let (mut a, mut b) = (vec![0.0; img.len()], vec![0.0; img.len()]);
    aug.apply(&img, &mut a, shape, &mut rbprop::rng::stream(7, "x"));
    aug.apply(&img, &mut b, shape, &mut rbprop::rng::stream(7, "x"));
    assert_eq!(a, b);
}

#[test]
fn conv_nets_learn_cifar_format_data_with_bp_rbp_and_srbp() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 120, 300, 3);
    let split = rbprop::data::load_dir(dir.path()).unwrap();
    for channel in ["bp", "rbp", "srbp"] {
        let cfg = TrainConfig {
            channel: channel.parse().unwrap(),
            arch: Some("conv8k5-pool3s2-conv8k5-pool3s2-fc32".into()),
            epochs: 10,
            batch: 32,
            lr: 0.02,
            momentum: 0.9,
            decay: 1e-5,
            translate: 1,
            flip: false,
            threads: 2,
            ..TrainConfig::default()
        };
        let ms = run::run(&cfg, &split, None, &mut Silent).unwrap();
        let acc = ms.last().unwrap().test_acc;
        assert!(
            acc > 0.5,
            "{channel}: test accuracy {acc} on learnable CIFAR-format data (chance 0.1)"
        );
    }
}

/// The paper's conv grids as users run them: `configs/paper/cifar10.toml` on files in CIFAR-10's
/// binary format and `configs/paper/conv-basic.toml` on files in Fashion-MNIST's IDX format
/// (both small and generated here), one epoch each (`--quick 1`), every run finished and in the
/// table with its cells.
#[test]
fn the_papers_conv_grids_run_from_the_cli_on_files_in_their_formats() {
    use super::cli::rbp;
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let tmp = tempfile::tempdir().unwrap();
    let cifar = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&cifar).unwrap();
    generate(&cifar, 16, 16, 5);
    let mnist = tmp.path().join("fashion-mnist");
    std::fs::create_dir(&mnist).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let (n, t) = (64u32, 32u32);
    let mut images =
        |k: u32| -> Vec<u8> { (0..k * 784).map(|_| rng.random_range(0..=255)).collect() };
    let (train_x, test_x) = (images(n), images(t));
    let labels = |k: u32| -> Vec<u8> { (0..k).map(|i| (i % 10) as u8).collect() };
    for (name, bytes) in rbprop::data::MNIST_FILES.iter().zip([
        super::data::idx(3, &[n, 28, 28], &train_x),
        super::data::idx(1, &[n], &labels(n)),
        super::data::idx(3, &[t, 28, 28], &test_x),
        super::data::idx(1, &[t], &labels(t)),
    ]) {
        std::fs::write(mnist.join(name), bytes).unwrap();
    }
    for (config, data, cells) in [("cifar10.toml", &cifar, 8), ("conv-basic.toml", &mnist, 8)] {
        let results = tmp.path().join(config);
        let file = root.join("configs/paper").join(config);
        let o = rbp(&[
            "reproduce",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--quick",
            "1",
            "--jobs",
            "2",
        ]);
        let log =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{config}: {log}");
        let records = rbprop::experiment::results::load(&results).unwrap();
        let exp = rbprop::experiment::Experiment::load(&file).unwrap();
        assert_eq!(records.len(), exp.runs().unwrap().len(), "{config}: {log}");
        assert!(
            records
                .iter()
                .all(|r| r.metrics.len() == 1 && r.metrics[0].test_acc.is_finite()),
            "{config}"
        );
        let cells_seen: std::collections::HashSet<(String, String)> = records
            .iter()
            .map(|r| (r.run.row.clone(), r.run.column.clone()))
            .collect();
        assert_eq!(cells_seen.len(), cells, "{config}: {cells_seen:?}");
        let o = rbp(&["table", results.to_str().unwrap()]);
        assert!(o.status.success(), "{config}");
        let table = String::from_utf8_lossy(&o.stdout);
        for (row, _) in &cells_seen {
            assert!(
                table.contains(row.as_str()),
                "{config}: {row} not in\n{table}"
            );
        }
    }
}
