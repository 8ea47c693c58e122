//! Real polynomials and a robust real-root solver: the roots of p' split the line into intervals
//! on which p is monotone, so each holds at most one root, found by bisection and polished by
//! Newton steps. Recursion down to degree 1; exact for simple roots, and double roots (where p
//! touches 0 at a critical point, to within the rounding error of evaluating p) are caught at
//! the critical points.

/// Coefficients, lowest degree first.
#[derive(Clone, Debug, PartialEq)]
pub struct Poly(pub Vec<f64>);

impl Poly {
    /// The constant `c`.
    pub fn constant(c: f64) -> Self {
        Poly(vec![c])
    }
    /// The polynomial x.
    pub fn x() -> Self {
        Poly(vec![0.0, 1.0])
    }
    /// Degree (trailing zero coefficients ignored; the zero polynomial has degree 0).
    pub fn degree(&self) -> usize {
        self.0.iter().rposition(|c| *c != 0.0).unwrap_or(0)
    }
    /// p(x) by Horner's rule.
    pub fn eval(&self, x: f64) -> f64 {
        self.0.iter().rev().fold(0.0, |acc, c| acc * x + c)
    }
    /// p'.
    pub fn derivative(&self) -> Poly {
        Poly(
            self.0
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, c)| i as f64 * c)
                .collect(),
        )
    }
    /// p · q.
    pub fn mul(&self, q: &Poly) -> Poly {
        let mut out = vec![0.0; self.0.len() + q.0.len() - 1];
        for (i, a) in self.0.iter().enumerate() {
            for (j, b) in q.0.iter().enumerate() {
                out[i + j] += a * b;
            }
        }
        Poly(out)
    }
    /// p · s + c.
    pub fn scale_add(&self, s: f64, c: f64) -> Poly {
        let mut out: Vec<f64> = self.0.iter().map(|v| v * s).collect();
        out[0] += c;
        Poly(out)
    }

    /// Cauchy's bound: every root has |x| ≤ 1 + max |a_i / a_n|.
    fn root_bound(&self) -> f64 {
        let n = self.degree();
        let lead = self.0[n];
        1.0 + self.0[..n]
            .iter()
            .map(|c| (c / lead).abs())
            .fold(0.0, f64::max)
    }

    /// A bound on the rounding error of [`Poly::eval`] at `x` (Horner: 2n·ε·Σ|a_i||x|^i).
    fn eval_noise(&self, x: f64) -> f64 {
        let n = self.0.len().max(1) as f64;
        let size = self
            .0
            .iter()
            .rev()
            .fold(0.0, |acc: f64, c| acc * x.abs() + c.abs());
        2.0 * n * f64::EPSILON * size
    }

    /// All real roots, ascending (multiple roots once).
    ///
    /// p is monotone between consecutive critical points, so each such interval holds at most one
    /// root. A critical point where |p| is within the rounding error of evaluating p counts as
    /// a root of even multiplicity (p touches 0 there) and as the value 0 for its two
    /// neighbouring intervals: any sign change in them is rounding noise around that root. A
    /// critical point where |p| exceeds that noise is not a root, however small |p| is: two
    /// simple roots 1e-6 apart stay two roots.
    pub fn real_roots(&self) -> Vec<f64> {
        let n = self.degree();
        if n == 0 {
            return Vec::new();
        }
        if n == 1 {
            return vec![-self.0[0] / self.0[1]];
        }
        let bound = self.root_bound();
        let crit = self.derivative().real_roots();
        // (position, value) of the interval ends; touching critical points have the value 0
        let mut edges = vec![(-bound, self.eval(-bound))];
        for c in crit.into_iter().filter(|c| c.abs() < bound) {
            let v = self.eval(c);
            edges.push((
                c,
                if v.abs() <= self.eval_noise(c) {
                    0.0
                } else {
                    v
                },
            ));
        }
        edges.push((bound, self.eval(bound)));
        let mut roots: Vec<f64> = Vec::new();
        for w in edges.windows(2) {
            let ((lo, flo), (hi, fhi)) = (w[0], w[1]);
            if flo == 0.0 {
                roots.push(lo);
            } else if fhi != 0.0 && flo.signum() != fhi.signum() {
                roots.push(self.bisect(lo, hi));
            }
        }
        if edges.last().is_some_and(|e| e.1 == 0.0) {
            roots.push(bound);
        }
        roots.sort_by(f64::total_cmp);
        roots.dedup();
        roots
    }

    /// The root in [lo, hi] where p changes sign, to full precision.
    fn bisect(&self, mut lo: f64, mut hi: f64) -> f64 {
        let flo = self.eval(lo);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid == lo || mid == hi {
                break;
            }
            let fm = self.eval(mid);
            if fm == 0.0 {
                return mid;
            }
            if fm.signum() == flo.signum() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut x = 0.5 * (lo + hi);
        let d = self.derivative();
        for _ in 0..3 {
            let (f, df) = (self.eval(x), d.eval(x));
            if df == 0.0 {
                break;
            }
            let next = x - f / df;
            if next.is_finite()
                && next >= lo.min(hi) - (hi - lo).abs()
                && next <= hi.max(lo) + (hi - lo).abs()
            {
                x = next;
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_known_polynomials() {
        // (x − 1)(x + 2)(x − 3.5) = x³ − 2.5x² − 5.5x + 7
        let p = Poly(vec![7.0, -5.5, -2.5, 1.0]);
        let r = p.real_roots();
        assert_eq!(r.len(), 3);
        for (a, b) in r.iter().zip([-2.0, 1.0, 3.5]) {
            assert!((a - b).abs() < 1e-12, "{r:?}");
        }
        // x² + 1: none; (x − 2)²: a double root
        assert!(Poly(vec![1.0, 0.0, 1.0]).real_roots().is_empty());
        let d = Poly(vec![4.0, -4.0, 1.0]).real_roots();
        assert_eq!(d.len(), 1);
        assert!((d[0] - 2.0).abs() < 1e-9);
        // degree 7 with roots ±1, ±2, ±3, 0.5
        let mut p = Poly::constant(1.0);
        for r in [1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5] {
            p = p.mul(&Poly(vec![-r, 1.0]));
        }
        let r = p.real_roots();
        assert_eq!(r.len(), 7, "{r:?}");
        for (a, b) in r.iter().zip([-3.0, -2.0, -1.0, 0.5, 1.0, 2.0, 3.0]) {
            assert!((a - b).abs() < 1e-10, "{r:?}");
        }
    }
}
