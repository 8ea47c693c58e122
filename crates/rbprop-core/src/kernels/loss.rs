//! Softmax output with cross-entropy loss, and the top layer's error `δ_L = O_L − T`.

use super::simd;

/// Totals over a batch: summed loss and number of correct arg-max predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// Σ over examples of −ln p(label); NaN/∞ if any logit was not finite.
    pub loss_sum: f64,
    /// Examples whose largest logit is at the label (first index wins ties).
    pub correct: usize,
}

impl BatchLoss {
    /// Adds another batch's totals.
    pub fn add(&mut self, other: BatchLoss) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
    }
}

/// Turns `logits` (`batch × classes`) into softmax probabilities in place and returns the batch's
/// cross-entropy totals. If `delta` is given it receives `O_L − T` (probabilities minus one-hot
/// targets), the gradient of the loss w.r.t. the logits for each example.
pub fn softmax_cross_entropy(
    logits: &mut [f32],
    labels: &[u8],
    classes: usize,
    mut delta: Option<&mut [f32]>,
) -> BatchLoss {
    assert_eq!(logits.len(), labels.len() * classes);
    let mut out = BatchLoss::default();
    for (i, (row, &label)) in logits.chunks_exact_mut(classes).zip(labels).enumerate() {
        let label = label as usize;
        if row.iter().any(|v| !v.is_finite()) {
            out.loss_sum = f64::NAN;
            row.fill(f32::NAN);
        } else {
            let (mut argmax, mut max) = (0, row[0]);
            for (j, &v) in row.iter().enumerate().skip(1) {
                if v > max {
                    (argmax, max) = (j, v);
                }
            }
            out.correct += usize::from(argmax == label);
            let zy = (row[label] - max) as f64;
            let mut sum = 0.0f32;
            for v in row.iter_mut() {
                *v = simd::exp(*v - max);
                sum += *v;
            }
            // −ln p_y = ln Σ_j e^{x_j − max} − (x_y − max), finite even when p_y underflows.
            out.loss_sum += (sum as f64).ln() - zy;
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        if let Some(d) = delta.as_deref_mut() {
            let d = &mut d[i * classes..(i + 1) * classes];
            d.copy_from_slice(row);
            d[label] -= 1.0;
        }
    }
    out
}
