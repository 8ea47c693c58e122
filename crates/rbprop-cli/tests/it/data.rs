//! The IDX reader: valid files load, every kind of bad file is refused with its name in the error,
//! and no truncation or corruption makes it panic.

use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rbprop::data::{self, MNIST_FILES};
use std::io::Write;
use std::path::Path;

pub fn idx(ndim: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, ndim];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid tiny dataset: `n` images of 2×3 and labels.
fn files(n: usize) -> [Vec<u8>; 4] {
    let img: Vec<u8> = (0..n * 6).map(|i| (i * 37 % 256) as u8).collect();
    let lab: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    [
        idx(3, &[n as u32, 2, 3], &img),
        idx(1, &[n as u32], &lab),
        idx(3, &[2, 2, 3], &img[..12]),
        idx(1, &[2], &lab[..2]),
    ]
}

fn write_dir(dir: &Path, files: &[Vec<u8>; 4], gzip: bool) {
    for (name, bytes) in MNIST_FILES.iter().zip(files) {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn valid_raw_and_gzip_files_load_and_agree() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_dir(a.path(), &files(5), false);
    write_dir(b.path(), &files(5), true);
    let ra = data::load_mnist_dir(a.path()).unwrap();
    let rb = data::load_mnist_dir(b.path()).unwrap();
    assert_eq!(ra.train.images, rb.train.images);
    assert_eq!(ra.train.len(), 5);
    assert_eq!(ra.test.len(), 2);
    assert_eq!(ra.train.dim, 6);
    assert_eq!(ra.train.shape, (1, 2, 3));
    assert_eq!(ra.train.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(ra.train.images[1], 37.0 / 255.0);
    assert!(ra.train.images.iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn embedded_subset_is_fashion_mnist_shaped() {
    let s = data::embedded();
    assert_eq!((s.train.len(), s.test.len()), (10_000, 2_000));
    assert_eq!(s.train.dim, 784);
    for c in 0..10u8 {
        let n = s.train.labels.iter().filter(|&&l| l == c).count();
        assert!((900..1100).contains(&n), "class {c} has {n} examples");
    }
}

/// Writes a dataset with file `which` replaced by `bytes`; returns the loader's error text.
fn error_with(which: usize, bytes: Vec<u8>, gzip: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut f = files(5);
    f[which] = bytes;
    write_dir(dir.path(), &f, gzip);
    match data::load_mnist_dir(dir.path()) {
        Ok(_) => panic!("file {which} should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_refused_naming_the_file_and_the_problem() {
    let good = files(5);
    let cases: Vec<(usize, Vec<u8>, bool, &str)> = vec![
        (0, b"GIF89a nope".to_vec(), false, "not an IDX file"),
        (0, idx(1, &[5], &[0; 5]), false, "dimension"),
        (1, idx(3, &[5, 2, 3], &[0; 30]), false, "swapped"),
        (0, good[0][..good[0].len() - 7].to_vec(), false, "truncated"),
        (
            0,
            [good[0].clone(), vec![1, 2, 3]].concat(),
            false,
            "more than",
        ),
        (1, idx(1, &[4], &[0; 4]), false, "holds 4 labels but"),
        (
            1,
            idx(1, &[5], &[0, 1, 2, 10, 4]),
            false,
            "label 10 of example 3",
        ),
        (0, vec![0, 0], false, "header"),
        (0, Vec::new(), false, "header"),
        (
            2,
            {
                let mut v = vec![0, 0, 9, 3];
                v.extend_from_slice(&[0; 12]);
                v
            },
            false,
            "element type",
        ),
        (0, idx(3, &[u32::MAX, u32::MAX, 3], &[]), false, "absurd"),
    ];
    for (which, bytes, gzip, needle) in cases {
        let msg = error_with(which, bytes, gzip);
        assert!(
            msg.contains(MNIST_FILES[which]),
            "error does not name the file: {msg}"
        );
        assert!(msg.contains(needle), "expected `{needle}` in: {msg}");
        assert!(msg.contains("HINT"), "no hint in: {msg}");
    }
    // corrupt gzip stream
    let mut z = gz(&good[0]);
    let mid = z.len() / 2;
    z[mid] ^= 0xff;
    z.truncate(z.len() - 8);
    let msg = error_with(0, z, false);
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("gzip"),
        "{msg}"
    );
    // missing file
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &files(5), false);
    std::fs::remove_file(dir.path().join(MNIST_FILES[3])).unwrap();
    let msg = data::load_mnist_dir(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let good = files(4);
    for (k, name) in MNIST_FILES.iter().enumerate() {
        let ndim = if k % 2 == 0 { 3 } else { 1 };
        let path = Path::new(name);
        for gzip in [false, true] {
            let full = if gzip { gz(&good[k]) } else { good[k].clone() };
            assert!(data::idx::parse(path, &full, ndim).is_ok());
            for cut in 0..full.len() {
                let r = data::idx::parse(path, &full[..cut], ndim);
                let e = r.expect_err("a truncated file must be refused").to_string();
                assert!(e.contains(name), "{e}");
            }
        }
    }
}

#[test]
fn random_corruptions_never_panic() {
    let good = files(4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for round in 0..4000 {
        let k = round % 4;
        let ndim = if k % 2 == 0 { 3 } else { 1 };
        let gzip = round % 3 == 0;
        let mut bytes = if gzip { gz(&good[k]) } else { good[k].clone() };
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = rng.random(),
                1 => bytes.truncate(at),
                _ => bytes.insert(at, rng.random()),
            }
            if bytes.is_empty() {
                break;
            }
        }
        if let Ok(a) = data::idx::parse(Path::new("x"), &bytes, ndim) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }
}

#[test]
fn test_images_of_another_shape_than_the_training_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = files(5);
    // the same 12 bytes per pair of images, as 1×6 instead of 2×3
    f[2] = idx(3, &[2, 1, 6], &f[2][16..]);
    write_dir(dir.path(), &f, false);
    let msg = data::load_mnist_dir(dir.path()).unwrap_err().to_string();
    for needle in [MNIST_FILES[0], MNIST_FILES[2], "1×6", "2×3", "HINT"] {
        assert!(msg.contains(needle), "expected `{needle}` in: {msg}");
    }
}

/// `bytes` gzip-compressed as separate members split at `cuts`, concatenated as `cat` would.
fn gz_members(bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&bytes.len()]) {
        out.extend(gz(&bytes[from..to]));
        from = to;
    }
    out
}

#[test]
fn concatenated_gzip_members_load_as_one_stream() {
    let good = files(5);
    let raw = tempfile::tempdir().unwrap();
    write_dir(raw.path(), &good, false);
    let want = data::load_mnist_dir(raw.path()).unwrap();
    // cuts inside the magic, inside the sizes, in the payload, and an empty member
    for cuts in [vec![2], vec![9], vec![20], vec![16, 16, 30]] {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &good, true);
        let p = dir.path().join(format!("{}.gz", MNIST_FILES[0]));
        std::fs::write(&p, gz_members(&good[0], &cuts)).unwrap();
        let got = data::load_mnist_dir(dir.path()).unwrap_or_else(|e| panic!("{cuts:?}: {e}"));
        assert_eq!(got.train.images, want.train.images, "{cuts:?}");
        assert_eq!(got.train.labels, want.train.labels, "{cuts:?}");
    }
    // the members together still have to hold exactly what the header declares
    let two = gz_members(&[good[0].clone(), vec![7]].concat(), &[good[0].len()]);
    let msg = error_with(0, two, false);
    assert!(msg.contains("more than"), "{msg}");
}

#[test]
fn trailing_garbage_after_the_gzip_stream_is_refused() {
    let good = files(5);
    for tail in [&b"garbage"[..], &[0u8; 512][..], &[0x1f][..]] {
        for members in [gz(&good[1]), gz_members(&good[1], &[10])] {
            let msg = error_with(1, [members, tail.to_vec()].concat(), false);
            assert!(
                msg.contains(MNIST_FILES[1])
                    && msg.contains(&format!("{} byte(s) of trailing data", tail.len()))
                    && msg.contains("HINT"),
                "{msg}"
            );
        }
    }
}

#[test]
fn a_raw_file_beside_its_gz_copy_is_refused_as_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let good = files(5);
    write_dir(dir.path(), &good, false);
    let gz_path = dir.path().join(format!("{}.gz", MNIST_FILES[1]));
    std::fs::write(&gz_path, gz(&good[1])).unwrap();
    let msg = data::load_mnist_dir(dir.path()).unwrap_err().to_string();
    let raw_path = dir.path().join(MNIST_FILES[1]);
    assert!(
        msg.contains(&raw_path.display().to_string())
            && msg.contains(&gz_path.display().to_string())
            && msg.contains("ambiguous"),
        "{msg}"
    );
    std::fs::remove_file(&raw_path).unwrap();
    assert_eq!(data::load_mnist_dir(dir.path()).unwrap().train.len(), 5);
}
