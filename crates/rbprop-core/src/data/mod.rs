//! What the trainer reads: a labelled set of images in memory, a train/test split, and the
//! augmentation of paper §5 (translations and flips). Readers of dataset files live in the
//! `rbprop` crate.

pub mod augment;

/// A labelled set of images, pixels scaled to [0, 1].
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `len × dim` row-major pixels in [0, 1].
    pub images: Vec<f32>,
    /// `len` labels in `0..classes`.
    pub labels: Vec<u8>,
    /// Values per example (784 for 28×28).
    pub dim: usize,
    /// Image shape (channels, rows, cols); pixels are stored channel-major, `C × H × W`.
    pub shape: (usize, usize, usize),
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The pixels of example `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.dim..(i + 1) * self.dim]
    }
    /// Keeps the first `n` examples (all if `n ≥ len`).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.dim);
        }
    }
}

/// Training and test sets, with a human-readable description of where they came from.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    pub source: String,
}
