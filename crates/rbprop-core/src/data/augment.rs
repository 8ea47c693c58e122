//! Training-set augmentation for image nets (paper §2): a random translation of up to `t` pixels
//! in each direction (uncovered pixels are 0, the mean after normalisation) and a horizontal
//! flip with probability 1/2, drawn per example from the seeded stream of the epoch.

use crate::rng::Rng;
use rand::Rng as _;

/// Augmentation settings (by default none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment {
    /// Largest shift in pixels (0: none).
    pub translate: usize,
    /// Flip horizontally with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// Whether it changes anything.
    pub fn active(&self) -> bool {
        self.translate > 0 || self.flip
    }

    /// Writes an augmented copy of `src` (`c × h × w`) into `dst`.
    pub fn apply(&self, src: &[f32], dst: &mut [f32], shape: (usize, usize, usize), rng: &mut Rng) {
        let (c, h, w) = shape;
        let t = self.translate as i64;
        let (dy, dx) = if t > 0 {
            (
                rng.random_range(-t..=t) as isize,
                rng.random_range(-t..=t) as isize,
            )
        } else {
            (0, 0)
        };
        let flip = self.flip && rng.random_bool(0.5);
        for ch in 0..c {
            for y in 0..h {
                let sy = y as isize - dy;
                let row = &mut dst[(ch * h + y) * w..(ch * h + y + 1) * w];
                if sy < 0 || sy >= h as isize {
                    row.fill(0.0);
                    continue;
                }
                let srow = &src[(ch * h + sy as usize) * w..(ch * h + sy as usize + 1) * w];
                for (x, v) in row.iter_mut().enumerate() {
                    let xx = if flip { w - 1 - x } else { x } as isize - dx;
                    *v = if xx < 0 || xx >= w as isize {
                        0.0
                    } else {
                        srow[xx as usize]
                    };
                }
            }
        }
    }
}
