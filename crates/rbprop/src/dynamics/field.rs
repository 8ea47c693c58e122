//! The figure of paper §3: the vector field of the A[1,1,1] RBP dynamics over the (a_1, a_2)
//! plane, arrows coloured by dP/dt, the hyperbola of fixed points a_1 a_2 = α/β (both branches),
//! the region a_1² + c a_2 < 0 where those fixed points repel (shaded), and trajectories from a
//! few starts ending at their predicted limits.

use super::integrate::{Limits, Outcome, solve};
use super::predict::predict_chain;
use super::systems::{Algo, Chain};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// What to draw.
#[derive(Clone, Debug)]
pub struct FieldSpec {
    pub alpha: f64,
    pub beta: f64,
    pub c: f64,
    /// Half-width of the square plotted.
    pub range: f64,
    /// Arrows per axis.
    pub grid: usize,
    /// Starting points of the trajectories drawn.
    pub starts: Vec<(f64, f64)>,
}

impl FieldSpec {
    fn chain(&self) -> Chain {
        Chain {
            alpha: self.alpha,
            beta: self.beta,
            algo: Algo::Rbp,
            c: vec![0.0, self.c],
            adaptive: false,
            mu: 1.0,
            signed: false,
            len: 2,
        }
    }
}

/// Draws the figure into `path` (.svg or .png).
pub fn draw(spec: &FieldSpec, path: &Path) -> Result<()> {
    crate::render!(path, (900, 820), |area: &DrawingArea<_, Shift>| draw_on(
        spec, area
    ))
}

fn draw_on<DB: DrawingBackend>(
    spec: &FieldSpec,
    area: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    use super::integrate::System;
    let r = spec.range;
    let chain = spec.chain();
    area.fill(&WHITE)?;
    let caption = format!(
        "A[1,1,1] under RBP: α = {}, β = {}, c = {}   (arrows: direction of (da₁/dt, da₂/dt), colour: sign of dP/dt)",
        spec.alpha, spec.beta, spec.c
    );
    let mut ch = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-r..r, -r..r)?;
    ch.configure_mesh()
        .x_desc("a₁ (lower weight)")
        .y_desc("a₂ (upper weight)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    // unstable region a1² + c a2 < 0: below (c > 0) or above (c < 0) the parabola a2 = −a1²/c
    let n = 200;
    let para: Vec<(f64, f64)> = (0..=n)
        .map(|i| -r + 2.0 * r * i as f64 / n as f64)
        .map(|x| (x, (-x * x / spec.c).clamp(-r, r)))
        .collect();
    let edge = if spec.c > 0.0 { -r } else { r };
    let mut poly = para.clone();
    poly.push((r, edge));
    poly.push((-r, edge));
    ch.draw_series(std::iter::once(Polygon::new(
        poly,
        RGBColor(255, 200, 120).mix(0.35),
    )))?
    .label("unstable fixed points (a₁² + c·a₂ < 0)")
    .legend(|(x, y)| {
        Rectangle::new(
            [(x, y - 5), (x + 16, y + 5)],
            RGBColor(255, 200, 120).mix(0.6).filled(),
        )
    });
    ch.draw_series(LineSeries::new(
        para,
        RGBColor(230, 140, 40).stroke_width(1),
    ))?;

    // the hyperbola of fixed points, both branches
    let k = spec.alpha / spec.beta;
    for sign in [1.0, -1.0] {
        let pts: Vec<(f64, f64)> = (1..=n)
            .map(|i| sign * r * i as f64 / n as f64)
            .map(|x| (x, k / x))
            .filter(|(_, y)| y.abs() <= r)
            .collect();
        let s = ch.draw_series(LineSeries::new(pts, BLACK.stroke_width(2)))?;
        if sign > 0.0 {
            s.label("fixed points a₁a₂ = α/β")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        }
    }

    // arrows
    let g = spec.grid.max(2);
    let step = 2.0 * r / g as f64;
    let mut d = [0.0; 2];
    for i in 0..g {
        for j in 0..g {
            let (a1, a2) = (-r + (i as f64 + 0.5) * step, -r + (j as f64 + 0.5) * step);
            chain.deriv(&[a1, a2], &mut d);
            let norm = (d[0] * d[0] + d[1] * d[1]).sqrt();
            if norm == 0.0 || !norm.is_finite() {
                continue;
            }
            let len = 0.42 * step;
            let (ux, uy) = (d[0] / norm * len, d[1] / norm * len);
            let dp = (spec.alpha - spec.beta * a1 * a2) * (a1 * a1 + spec.c * a2);
            let color = if dp > 0.0 {
                RGBColor(200, 40, 40)
            } else {
                RGBColor(40, 80, 200)
            };
            let (x0, y0, x1, y1) = (a1 - ux / 2.0, a2 - uy / 2.0, a1 + ux / 2.0, a2 + uy / 2.0);
            ch.draw_series(std::iter::once(PathElement::new(
                vec![(x0, y0), (x1, y1)],
                color.stroke_width(1),
            )))?;
            // arrow head
            let (hx, hy) = (-ux * 0.35, -uy * 0.35);
            for rot in [0.5f64, -0.5] {
                let (s, c) = rot.sin_cos();
                let tip = (x1 + hx * c - hy * s, y1 + hx * s + hy * c);
                ch.draw_series(std::iter::once(PathElement::new(
                    vec![(x1, y1), tip],
                    color.stroke_width(1),
                )))?;
            }
        }
    }
    ch.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.0), (0.0, 0.0)],
        RGBColor(200, 40, 40),
    )))?
    .label("dP/dt > 0")
    .legend(|(x, y)| {
        PathElement::new([(x, y), (x + 16, y)], RGBColor(200, 40, 40).stroke_width(2))
    });
    ch.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.0), (0.0, 0.0)],
        RGBColor(40, 80, 200),
    )))?
    .label("dP/dt < 0")
    .legend(|(x, y)| {
        PathElement::new([(x, y), (x + 16, y)], RGBColor(40, 80, 200).stroke_width(2))
    });

    // trajectories and their predicted limits
    let limits = Limits {
        t_end: 200.0,
        max_steps: 1_000_000,
        ..Limits::default()
    };
    for (s, &(x, y)) in spec.starts.iter().enumerate() {
        let traj = solve(&chain, &[x, y], 1e-8, 1e-10, &limits);
        let pts: Vec<(f64, f64)> = traj
            .states
            .iter()
            .map(|v| (v[0], v[1]))
            .take_while(|(a, b)| a.abs() <= 3.0 * r && b.abs() <= 3.0 * r)
            .collect();
        let series = ch.draw_series(LineSeries::new(pts, RGBColor(20, 140, 60).stroke_width(2)))?;
        if s == 0 {
            series
                .label("trajectories (start ○, predicted limit ●)")
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], RGBColor(20, 140, 60).stroke_width(2))
                });
        }
        ch.draw_series(std::iter::once(Circle::new(
            (x, y),
            4,
            RGBColor(20, 140, 60).stroke_width(2),
        )))?;
        if matches!(traj.outcome, Outcome::Converged | Outcome::Reached)
            && let Ok(p) = predict_chain(&chain, &[x, y])
            && p.limit[0].abs() <= r
            && p.limit[1].abs() <= r
        {
            ch.draw_series(std::iter::once(Circle::new(
                (p.limit[0], p.limit[1]),
                5,
                RGBColor(20, 140, 60).filled(),
            )))?;
        }
    }
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
