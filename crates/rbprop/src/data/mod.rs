//! Datasets: the MNIST-family IDX reader, the CIFAR-10 binary reader, augmentation, and the
//! small real dataset embedded in the binary.

pub mod cifar;
pub mod fetch;
pub mod idx;

pub use rbprop_core::data::{Dataset, Split, augment};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The four file names of the MNIST family, each optionally with `.gz`.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Number of classes of every dataset of the MNIST family.
pub const MNIST_CLASSES: usize = 10;

/// Loads the data a run's `data` setting names: the embedded subset ([`EMBEDDED_NAME`]) or a
/// directory ([`load_dir`]).
pub fn load(source: &str) -> Result<Split> {
    if source == EMBEDDED_NAME {
        Ok(embedded())
    } else {
        load_dir(Path::new(source))
    }
}

/// Loads the dataset in `dir`: CIFAR-10 if it holds any CIFAR-10 batch file (`data_batch_1.bin` …,
/// `test_batch.bin`; directly or in `cifar-10-batches-bin/`), else the MNIST-format files. A
/// directory holding both is refused as ambiguous, naming one file of each.
pub fn load_dir(dir: &Path) -> Result<Split> {
    match cifar::find(dir) {
        Some(d) => {
            let mnist = MNIST_FILES.iter().find_map(|name| {
                [dir.join(name), dir.join(format!("{name}.gz"))]
                    .into_iter()
                    .find(|p| p.is_file())
            });
            if let Some(m) = mnist {
                return Err(Error::Data {
                    path: dir.to_path_buf(),
                    problem: format!(
                        "holds both CIFAR-10 batches (in {}) and MNIST-format files ({}): which dataset is meant is ambiguous",
                        d.display(),
                        m.display()
                    ),
                    hint: "give --data a directory that holds one dataset (move the other's files elsewhere)".into(),
                });
            }
            cifar::load_cifar_dir(&d)
        }
        None => load_mnist_dir(dir),
    }
}

/// Loads MNIST, Fashion-MNIST or any dataset in the same IDX layout from `dir`.
pub fn load_mnist_dir(dir: &Path) -> Result<Split> {
    if !dir.is_dir() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            problem: "not a directory".into(),
            hint: "--data must name a directory holding train-images-idx3-ubyte[.gz] and the three other MNIST files".into(),
        });
    }
    let mut arrays = Vec::new();
    for (i, name) in MNIST_FILES.iter().enumerate() {
        let path = idx::locate(dir, name)?;
        let ndim = if i % 2 == 0 { 3 } else { 1 };
        arrays.push((path.clone(), idx::read_file(&path, ndim)?));
    }
    let mut it = arrays.into_iter();
    let mut next = || it.next().expect("four files");
    let (ti, tl, vi, vl) = (next(), next(), next(), next());
    let (train_path, test_path) = (ti.0.clone(), vi.0.clone());
    let split = Split {
        train: assemble(ti, tl)?,
        test: assemble(vi, vl)?,
        source: dir.display().to_string(),
    };
    same_shape(&split, &train_path, &test_path)?;
    Ok(split)
}

/// Refuses a test set whose images differ in shape from the training images: a net built for one
/// cannot read the other.
fn same_shape(split: &Split, train: &Path, test: &Path) -> Result<()> {
    let shape = |s: (usize, usize, usize)| format!("{}×{}", s.1, s.2);
    if split.train.shape != split.test.shape {
        return Err(Error::Data {
            path: test.to_path_buf(),
            problem: format!(
                "test images are {} but the training images in {} are {}",
                shape(split.test.shape),
                train.display(),
                shape(split.train.shape)
            ),
            hint: "the training and test files must come from the same dataset, with images of one size".into(),
        });
    }
    Ok(())
}

/// Parses an images/labels pair given as bytes (gzip or raw); `names` appear in errors.
pub fn from_idx_bytes(images: (&Path, &[u8]), labels: (&Path, &[u8])) -> Result<Dataset> {
    let ia = idx::parse(images.0, images.1, 3)?;
    let la = idx::parse(labels.0, labels.1, 1)?;
    assemble((images.0.to_path_buf(), ia), (labels.0.to_path_buf(), la))
}

fn assemble(images: (PathBuf, idx::IdxArray), labels: (PathBuf, idx::IdxArray)) -> Result<Dataset> {
    let (ipath, ia) = images;
    let (lpath, la) = labels;
    let (n, rows, cols) = (ia.dims[0], ia.dims[1], ia.dims[2]);
    if n != la.dims[0] {
        return Err(Error::Data {
            path: lpath,
            problem: format!(
                "holds {} labels but {} holds {n} images",
                la.dims[0],
                ipath.display()
            ),
            hint: "images and labels must come from the same split (train-* with train-*, t10k-* with t10k-*)".into(),
        });
    }
    if n == 0 {
        return Err(Error::Data {
            path: ipath,
            problem: "holds no images".into(),
            hint: "the file is empty; re-download it".into(),
        });
    }
    if let Some((i, &l)) = la
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= MNIST_CLASSES)
    {
        return Err(Error::Data {
            path: lpath,
            problem: format!("label {l} of example {i} is out of range 0..{MNIST_CLASSES}"),
            hint: "the labels file is corrupt or not from the MNIST family".into(),
        });
    }
    let images = ia.data.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(Dataset {
        images,
        labels: la.data,
        dim: rows * cols,
        shape: (1, rows, cols),
        classes: MNIST_CLASSES,
    })
}

/// The embedded dataset: the first 10,000 training and 2,000 test images of Fashion-MNIST
/// (Zalando Research, MIT licence), in IDX format, gzip-compressed, compiled into the binary.
pub fn embedded() -> Split {
    macro_rules! file {
        ($name:literal) => {
            (
                Path::new(concat!("<embedded>/", $name)),
                &include_bytes!(concat!("../../data/fashion-mnist-subset/", $name))[..],
            )
        };
    }
    let train = from_idx_bytes(
        file!("train-images-idx3-ubyte.gz"),
        file!("train-labels-idx1-ubyte.gz"),
    );
    let test = from_idx_bytes(
        file!("t10k-images-idx3-ubyte.gz"),
        file!("t10k-labels-idx1-ubyte.gz"),
    );
    Split {
        train: train.expect("embedded training set is valid"),
        test: test.expect("embedded test set is valid"),
        source: EMBEDDED_NAME.into(),
    }
}

/// How the embedded dataset is named in configs and logs.
pub const EMBEDDED_NAME: &str = "embedded:fashion-mnist-subset";

/// Whether a data source names a dataset built into the program (`embedded:…`) rather than a
/// directory: it means the same from any working directory.
pub fn is_embedded(source: &str) -> bool {
    source.starts_with("embedded:")
}
