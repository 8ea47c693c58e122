//! CIFAR-10 in its official binary format: `data_batch_1.bin` … `data_batch_5.bin` (training)
//! and `test_batch.bin`, each a sequence of 3073-byte records — one label byte (0–9), then
//! 32×32 red, 32×32 green and 32×32 blue pixel bytes. Every file is validated (size, labels)
//! with errors that name it. Pixels are scaled to [0, 1], then normalised per colour channel
//! with the training set's mean and standard deviation (applied to both sets).

use super::{Dataset, Split};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Bytes per record: a label and 3 × 32 × 32 pixels.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// The training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The directory the official archive unpacks to.
pub const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// The directory holding the batches: `dir` itself or `dir/cifar-10-batches-bin`, whichever holds
/// any of the batch files (the loader then names any that are missing).
pub fn find(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(ARCHIVE_DIR)]
        .into_iter()
        .find(|d| {
            TRAIN_FILES
                .iter()
                .chain([&TEST_FILE])
                .any(|f| d.join(f).is_file())
        })
}

fn bad(path: &Path, problem: String, hint: &str) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: hint.into(),
    }
}

/// Parses one batch file's bytes into (pixels as bytes, labels).
pub fn parse_batch(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() {
        return Err(bad(
            path,
            "file is empty".into(),
            "re-download the CIFAR-10 binary version",
        ));
    }
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(bad(
            path,
            format!(
                "size {} is not a multiple of the {RECORD}-byte record (label + 3×32×32 pixels): {} whole records and {} bytes left over",
                bytes.len(),
                bytes.len() / RECORD,
                bytes.len() % RECORD
            ),
            "the file is truncated or not the binary version of CIFAR-10 (not the Python or MATLAB one)",
        ));
    }
    let n = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] >= 10 {
            return Err(bad(
                path,
                format!("record {i} has label {}, outside 0..10", rec[0]),
                "the file is corrupt, or CIFAR-100 (whose records have two label bytes)",
            ));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

fn read(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_batch(path, &bytes)
}

/// Loads the five training batches and the test batch from `dir`, normalised.
pub fn load_cifar_dir(dir: &Path) -> Result<Split> {
    let mut train_px = Vec::new();
    let mut train_lb = Vec::new();
    for name in TRAIN_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(bad(
                &path,
                "file not found".into(),
                "a CIFAR-10 directory holds data_batch_1.bin … data_batch_5.bin and test_batch.bin; `rbp data fetch cifar10 DIR` downloads them",
            ));
        }
        let (p, l) = read(&path)?;
        train_px.extend(p);
        train_lb.extend(l);
    }
    let test_path = dir.join(TEST_FILE);
    if !test_path.is_file() {
        return Err(bad(
            &test_path,
            "file not found".into(),
            "a CIFAR-10 directory holds test_batch.bin too",
        ));
    }
    let (test_px, test_lb) = read(&test_path)?;
    let (mean, sd) = channel_stats(&train_px);
    Ok(Split {
        train: dataset(&train_px, train_lb, mean, sd),
        test: dataset(&test_px, test_lb, mean, sd),
        source: dir.display().to_string(),
    })
}

/// Per-channel mean and standard deviation of pixels scaled to [0, 1].
fn channel_stats(px: &[u8]) -> ([f64; 3], [f64; 3]) {
    let plane = 32 * 32;
    let (mut sum, mut sq, mut n) = ([0f64; 3], [0f64; 3], 0f64);
    for img in px.chunks_exact(3 * plane) {
        for c in 0..3 {
            for &p in &img[c * plane..(c + 1) * plane] {
                let v = p as f64 / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        n += plane as f64;
    }
    let mean = sum.map(|s| s / n);
    let mut sd = [0f64; 3];
    for c in 0..3 {
        sd[c] = (sq[c] / n - mean[c] * mean[c]).max(1e-12).sqrt();
    }
    (mean, sd)
}

fn dataset(px: &[u8], labels: Vec<u8>, mean: [f64; 3], sd: [f64; 3]) -> Dataset {
    let plane = 32 * 32;
    let images = px
        .chunks_exact(plane)
        .enumerate()
        .flat_map(|(k, chunk)| {
            let c = k % 3;
            chunk
                .iter()
                .map(move |&p| ((p as f64 / 255.0 - mean[c]) / sd[c]) as f32)
        })
        .collect();
    Dataset {
        images,
        labels,
        dim: 3 * plane,
        shape: (3, 32, 32),
        classes: 10,
    }
}

/// Writes a CIFAR-10 binary batch (for tests and tools): `images` are `n × 3072` bytes.
pub fn write_batch(path: &Path, images: &[u8], labels: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(labels.len() * RECORD);
    for (img, &l) in images.chunks_exact(RECORD - 1).zip(labels) {
        out.push(l);
        out.extend_from_slice(img);
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}
