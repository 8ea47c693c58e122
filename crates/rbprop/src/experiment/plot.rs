//! `rbp plot`: figures from the results alone (SVG and PNG) — test accuracy against the epoch
//! for each family of rows (mean over seeds, with a ±1 sample-standard-deviation band), the final
//! test accuracy of every cell of each family with every seed as a point (Table 1 as a figure),
//! final test accuracy against the sparsity n of the sparse rows, and, where runs logged
//! diagnostics, the angle between each channel's hidden signal and backprop's over training (a
//! figure per family of rows, a panel per channel).
//!
//! Made to be printed: within a panel every curve has its own hue and line style (a palette
//! that stays apart for colour-blind readers), the panels of one figure share their y-axis, a
//! panel without data is left out, and every legend says over how many seeds the lines are means
//! and what the band is.

use super::results;
use super::table::{self, ROW_ORDER};
use crate::error::{Error, Result};
use crate::run::dir::{EpochMetrics, FIGURES};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One run's metrics with its place in the grid.
struct Series {
    dataset: String,
    row: String,
    column: String,
    metrics: Vec<EpochMetrics>,
}

/// The figure a row belongs to: the nine basic algorithms together (baseline, no-f', SBP,
/// top-only), the sparsity sweep apart from the sparse rows, quantized error signals
/// (`quantize-signal`) with a fixed α apart from the calibrated ones, the feedback distributions
/// together, else the Table 1 family.
fn family(row: &str) -> String {
    let lower = row.to_ascii_lowercase();
    if ["baseline", "no-f'", "skipped", "top-only"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return "basic algorithms".into();
    }
    if lower.starts_with("sparsity") || lower.starts_with("signed sparsity") {
        return "sparsity sweep".into();
    }
    // a fixed scale (the α ablation and its controls) beside the calibrated bit sweep, so that
    // neither figure crowds
    if lower.starts_with("quantize-signal") && lower.contains("α=") {
        return "quantize-signal, fixed scale".into();
    }
    // uniform and shifted feedback matrices, whatever their mean, in one figure
    if lower.starts_with("feedback ") {
        return "feedback distributions".into();
    }
    // the generated labels of other sparse distributions (`signed sparse n=8`)
    if lower.starts_with("signed sparse ") || lower.starts_with("gaussian sparse ") {
        return "sparse".into();
    }
    ROW_ORDER
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(row.to_string(), |p| p.to_string())
}

/// The sparsity n of a sparse row, and whether its entries have random signs (`sparse n=2`,
/// `sparsity n=16`, `signed sparsity n=8`).
fn sparsity(row: &str) -> Option<(bool, f64)> {
    let lower = row.to_ascii_lowercase();
    let signed = lower.starts_with("signed spars");
    if !(signed || lower.starts_with("spars")) {
        return None;
    }
    let n = row.rsplit(['=', ' ']).next().and_then(|n| n.parse().ok())?;
    Some((signed, n))
}

/// Every run with finished epochs; runs of one cell with other settings than its siblings (see
/// [`super::table::cells`]) carry those settings in their row name, so they are never averaged
/// together.
fn load(dir: &Path) -> Result<Vec<Series>> {
    let records = results::load(dir)?;
    let mut out = Vec::new();
    for cell in table::cells(&records) {
        for &m in &cell.members {
            out.push(Series {
                dataset: cell.dataset.clone(),
                row: cell.row_label(),
                column: cell.column.clone(),
                metrics: records[m].metrics.clone(),
            });
        }
    }
    if out.is_empty() {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            problem: "no finished epochs to plot: no run of its experiments has finished one"
                .into(),
            hint: "run `rbp reproduce CONFIG --results DIR` first, or wait for its first epochs"
                .into(),
        });
    }
    Ok(out)
}

/// Mean and sample standard deviation per epoch over the runs (up to the shortest run).
fn band(runs: &[&Series], value: impl Fn(&EpochMetrics) -> Option<f64>) -> Vec<(f64, f64, f64)> {
    let len = runs.iter().map(|s| s.metrics.len()).min().unwrap_or(0);
    (0..len)
        .filter_map(|e| {
            let vals: Vec<f64> = runs.iter().filter_map(|s| value(&s.metrics[e])).collect();
            if vals.is_empty() {
                return None;
            }
            let (m, sd) = mean_sd(&vals);
            Some(((e + 1) as f64, m, sd))
        })
        .collect()
}

/// One curve of a panel: mean and sample sd per x.
struct Curve {
    label: String,
    color: RGBColor,
    dash: Dash,
    /// The unmodified channel, drawn thin and grey behind its variants, without a band.
    reference: bool,
    /// Runs (seeds) the means are over.
    seeds: usize,
    pts: Vec<(f64, f64, f64)>,
}

/// How a curve's line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dash {
    Solid,
    /// Long dashes.
    Dashed,
    /// Dots.
    Dotted,
    /// Short dashes.
    Short,
}

/// Hues that stay apart for every reader (Okabe and Ito's palette; its yellow darkened to stand
/// out on white paper).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(150, 130, 0),
];

/// The hue and line style of the `k`-th curve of a panel: both change from one curve to the
/// next, and no two of the first 32 share both.
fn style(k: usize) -> (RGBColor, Dash) {
    const DASHES: [Dash; 4] = [Dash::Solid, Dash::Dashed, Dash::Dotted, Dash::Short];
    (
        PALETTE[k % PALETTE.len()],
        DASHES[(k + k / PALETTE.len()) % DASHES.len()],
    )
}

/// The grey of a panel's reference curve (the unmodified channel).
const REFERENCE: RGBColor = RGBColor(110, 110, 110);

/// The x axis of a panel.
enum XAxis {
    /// Epochs: integer ticks.
    Epochs,
    /// Sparsity n on a log₂(1 + n) scale, ticks at the measured n only.
    Sparsity(Vec<f64>),
}

struct Panel {
    title: String,
    y_desc: String,
    x: XAxis,
    curves: Vec<Curve>,
}

/// The colour of a channel (column), the same in every figure.
fn channel_color(column: &str) -> RGBColor {
    match column {
        "BP" => RGBColor(31, 119, 180),
        "RBP" => RGBColor(214, 95, 0),
        "SRBP" => RGBColor(44, 150, 44),
        other => {
            let h = other
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31) + b as u32);
            let RGBAColor(r, g, b, _) = Palette99::pick(h as usize).to_rgba();
            RGBColor(r, g, b)
        }
    }
}

/// The mark of a channel (column) in the final-accuracy figures, the same in every figure: BP a
/// disc, RBP a square, SRBP a triangle, others by name.
fn channel_mark(column: &str) -> usize {
    match column {
        "BP" => 0,
        "RBP" => 1,
        "SRBP" => 2,
        other => other.bytes().map(usize::from).sum::<usize>() + 3,
    }
}

/// A row label in words: `sparse n=8` → `sparse n = 8`.
fn words(row: &str) -> String {
    row.replace('=', " = ").replace("  ", " ")
}

/// A variant in its figure's legend: its row in words, less the variant's name that the title
/// carries (`quantize-signal b=2, α=0.1` → `b = 2, α = 0.1`, `channel-dropout r=0.25` →
/// `r = 0.25`), so that legends stay beside the data.
fn legend_words(row: &str) -> String {
    let short = [
        "quantize-signal ",
        "quantize-update ",
        "channel-dropout ",
        "feedback ",
    ]
    .iter()
    .find_map(|p| row.strip_prefix(p))
    .unwrap_or(row);
    words(short)
}

/// The number in a row label that orders variants (`channel-dropout r=0.25` → 0.25), if any.
fn parameter(row: &str) -> f64 {
    row.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse::<f64>().ok())
        .next()
        .unwrap_or(f64::INFINITY)
}

/// The range of x and of mean ± sd over a panel's curves, if it has a point.
fn extent(panel: &Panel) -> Option<((f64, f64), (f64, f64))> {
    let all = panel.curves.iter().flat_map(|c| c.pts.iter());
    let (x0, x1) = all
        .clone()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    (x0 <= x1 && y0 <= y1).then_some(((x0, x1), (y0, y1)))
}

/// The legend's note on what the lines and bands are: over how many seeds, ±1 sample sd.
fn seeds_note(curves: &[Curve]) -> String {
    let lo = curves.iter().map(|c| c.seeds).min().unwrap_or(0);
    let hi = curves.iter().map(|c| c.seeds).max().unwrap_or(0);
    let n = if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}–{hi}")
    };
    if hi == 1 {
        return "lines: one seed each; no band".into();
    }
    format!("lines: mean of {n} seeds; bands: ±1 sd (n − 1)")
}

/// Draws a line in `dash` style.
fn draw_line<DB: DrawingBackend, X: Ranged<ValueType = i32>, Y: Ranged<ValueType = f64>>(
    ch: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: impl Iterator<Item = (i32, f64)> + Clone,
    dash: Dash,
    style: ShapeStyle,
    px: impl Fn(f64) -> i32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match dash {
        Dash::Solid => {
            ch.draw_series(LineSeries::new(pts, style))?;
        }
        Dash::Dashed => {
            ch.draw_series(DashedLineSeries::new(pts, px(8.0), px(4.0), style))?;
        }
        Dash::Short => {
            ch.draw_series(DashedLineSeries::new(pts, px(3.0), px(3.0), style))?;
        }
        Dash::Dotted => {
            let (r, fill) = (px(1.2), style.filled());
            ch.draw_series(DottedLineSeries::new(pts, px(0.0), px(4.0), move |c| {
                Circle::new(c, r, fill)
            }))?;
        }
    }
    Ok(())
}

/// Draws a legend entry's line sample at height `y` from x = 4 to 26 (scaled).
fn legend_sample<DB: DrawingBackend>(
    legend: &DrawingArea<DB, Shift>,
    y: i32,
    dash: Dash,
    style: ShapeStyle,
    px: impl Fn(f64) -> i32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (a, b) = (px(4.0), px(26.0));
    let (on, off) = match dash {
        Dash::Solid => (b - a, 0),
        Dash::Dashed => (px(8.0), px(4.0)),
        Dash::Short => (px(3.0), px(3.0)),
        Dash::Dotted => {
            let mut x = a;
            while x <= b {
                legend.draw(&Circle::new((x, y), px(1.2), style.filled()))?;
                x += px(4.0);
            }
            return Ok(());
        }
    };
    let mut x = a;
    while x < b {
        legend.draw(&PathElement::new([(x, y), ((x + on).min(b), y)], style))?;
        x += on + off.max(1);
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    y_range: (f64, f64),
    scale: f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let px = |v: f64| (v * scale).round() as i32;
    let font = |size: f64| ("sans-serif", size * scale);
    // the legend stands beside the data, never on it
    let (w, _) = area.dim_in_pixel();
    // wide enough for the longest label (at most half the panel)
    let longest = panel
        .curves
        .iter()
        .filter_map(|c| {
            area.estimate_text_size(&c.label, &font(12.0).into_text_style(area))
                .ok()
        })
        .map(|(tw, _)| tw)
        .max()
        .unwrap_or(0);
    let legend_w = ((w as f64 * 0.3) as u32)
        .max(longest + px(36.0) as u32)
        .min(w / 2);
    let (plot, legend) = area.split_horizontally(w - legend_w);
    let Some(((_, x1), _)) = extent(panel) else {
        return Ok(());
    };
    let (y0, y1) = y_range;
    let pad = ((y1 - y0) * 0.05).max(0.5);
    // x positions are integers: epochs, or the index of a measured sparsity n (evenly spaced,
    // labelled with n, so that n = 0 … 8 is not crowded by n = 100)
    let (x_desc, hi, labels) = match &panel.x {
        XAxis::Epochs => (
            "epoch",
            x1.max(1.0) as i32,
            (x1.max(1.0) as usize + 1).min(11),
        ),
        XAxis::Sparsity(ns) => (
            "expected fan-out n of each sending neuron",
            ns.len() as i32 - 1,
            ns.len(),
        ),
    };
    let to_x = |x: f64| -> i32 {
        match &panel.x {
            XAxis::Epochs => x.round() as i32,
            XAxis::Sparsity(ns) => ns.iter().position(|n| *n == x).unwrap_or(0) as i32,
        }
    };
    let lo = if matches!(panel.x, XAxis::Epochs) {
        1
    } else {
        0
    };
    // a title wider than the plot is set smaller, never cut at the panel's edge
    let title_w = plot
        .estimate_text_size(&panel.title, &font(15.0).into_text_style(&plot))
        .map_or(0, |(tw, _)| tw);
    let room = (w - legend_w).saturating_sub(px(16.0) as u32);
    let title_size = if title_w > room {
        15.0 * room as f64 / title_w as f64
    } else {
        15.0
    };
    let mut ch = ChartBuilder::on(&plot)
        .caption(&panel.title, font(title_size))
        .margin(px(8.0))
        .x_label_area_size(px(40.0))
        .y_label_area_size(px(52.0))
        .build_cartesian_2d((lo - 1)..(hi + 1), (y0 - pad)..(y1 + pad))?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc(&panel.y_desc)
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .x_labels(labels + 2)
        .x_label_formatter(&|x| match &panel.x {
            _ if *x < lo || *x > hi => String::new(),
            XAxis::Epochs => format!("{x}"),
            XAxis::Sparsity(ns) => format!("{}", ns[*x as usize]),
        })
        .max_light_lines(0)
        .draw()?;
    let sparsity = matches!(panel.x, XAxis::Sparsity(_));
    // the bands first, so that no band covers another curve's line
    for c in panel.curves.iter().filter(|c| !c.reference) {
        let pts: Vec<(i32, f64, f64)> = c.pts.iter().map(|p| (to_x(p.0), p.1, p.2)).collect();
        let mut poly: Vec<(i32, f64)> = pts.iter().map(|p| (p.0, p.1 + p.2)).collect();
        poly.extend(pts.iter().rev().map(|p| (p.0, p.1 - p.2)));
        ch.draw_series(std::iter::once(Polygon::new(poly, c.color.mix(0.10))))?;
    }
    for c in &panel.curves {
        let pts: Vec<(i32, f64, f64)> = c.pts.iter().map(|p| (to_x(p.0), p.1, p.2)).collect();
        let width = if c.reference { 1.5 } else { 2.0 };
        let style = c.color.stroke_width(px(width).max(1) as u32);
        draw_line(&mut ch, pts.iter().map(|p| (p.0, p.1)), c.dash, style, px)?;
        if sparsity || pts.len() < 12 {
            ch.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), px(3.0), c.color.filled())),
            )?;
        }
    }
    // the legend: one line per curve, in the panel's order, then what the lines and bands are
    let row_h = px(17.0);
    for (k, c) in panel.curves.iter().enumerate() {
        let y = px(40.0) + row_h * k as i32;
        let width = if c.reference { 1.5 } else { 2.5 };
        let style = c.color.stroke_width(px(width).max(1) as u32);
        legend_sample(&legend, y, c.dash, style, px)?;
        legend.draw(&Text::new(
            c.label.clone(),
            (px(32.0), y - px(7.0)),
            font(12.0),
        ))?;
    }
    // the note in two lines, so that it fits the legend's width
    let y = px(40.0) + row_h * panel.curves.len() as i32 + px(6.0);
    let grey = font(10.5).into_font().color(&RGBColor(80, 80, 80));
    for (k, line) in seeds_note(&panel.curves).split_inclusive("; ").enumerate() {
        legend.draw(&Text::new(
            line.trim_end().to_string(),
            (px(4.0), y + px(14.0) * k as i32),
            grey.clone(),
        ))?;
    }
    Ok(())
}

/// Draws `panels` into `path`, two to a row, every panel on the y-axis of them all (panels of one
/// figure are compared); a panel without a point is left out. A PNG is drawn at twice the SVG's
/// size (print resolution).
fn figure(path: &Path, panels: &[Panel]) -> Result<()> {
    let scale = match crate::plot::Format::of(path)? {
        crate::plot::Format::Png => 2.0,
        crate::plot::Format::Svg => 1.0,
    };
    let panels: Vec<&Panel> = panels.iter().filter(|p| extent(p).is_some()).collect();
    let y_range = panels
        .iter()
        .filter_map(|p| extent(p))
        .fold((f64::MAX, f64::MIN), |(a, b), (_, (y0, y1))| {
            (a.min(y0), b.max(y1))
        });
    // an accuracy's band stops at 0 % and 100 %
    let y_range = if panels.iter().all(|p| p.y_desc.starts_with("test accuracy")) {
        (y_range.0.max(0.0), y_range.1.min(100.0))
    } else {
        y_range
    };
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (
        (600.0 * scale) as u32 * cols as u32,
        (400.0 * scale) as u32 * rows as u32,
    );
    crate::render!(path, (w, h), |root: &DrawingArea<_, Shift>| {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((rows, cols));
        for (a, p) in areas.iter().zip(&panels) {
            draw_panel(a, p, y_range, scale)?;
        }
        Ok::<(), DrawingAreaErrorKind<_>>(())
    })
}

/// One cell of a "Table 1 as a figure": a row of the family, a channel, every seed's final test
/// accuracy (%).
struct Finals {
    row: String,
    column: String,
    accs: Vec<f64>,
}

/// Mean and sample sd (n − 1; 0 for one value).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

/// Draws the final test accuracy of every cell of a family into `path`: a line per row of the
/// family (y), its channels one above the other in their colours and marks, every seed a hollow
/// point, the mean a filled mark with a ±1 sd bar.
fn finals_figure(
    path: &Path,
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Finals],
) -> Result<()> {
    let scale = match crate::plot::Format::of(path)? {
        crate::plot::Format::Png => 2.0,
        crate::plot::Format::Svg => 1.0,
    };
    let px = |v: f64| (v * scale).round() as i32;
    let font = |size: f64| ("sans-serif", size * scale);
    let per_row = columns.len() as i32 + 1;
    let slots = rows.len() as i32 * per_row;
    // every seed and every bar inside the axes
    let (x0, x1) = cells
        .iter()
        .flat_map(|c| {
            let (m, sd) = mean_sd(&c.accs);
            c.accs.iter().copied().chain([m - sd, m + sd])
        })
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (x0, x1) = (x0.max(0.0), x1.min(100.0));
    let pad = ((x1 - x0) * 0.05).max(0.25);
    let longest = rows
        .iter()
        .map(|r| legend_words(r).chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 6.8 + 16.0).clamp(60.0, 260.0);
    let (w, h) = (
        (760.0 * scale) as u32,
        ((110.0 + 11.0 * slots as f64).max(260.0) * scale) as u32,
    );
    // the filled mark of the `k`-th channel: a disc, a square, a triangle, a diamond, by turns
    macro_rules! mark {
        ($draw:expr, $k:expr, $at:expr, $s:expr, $color:expr) => {{
            let (s, style) = ($s, $color.filled());
            let at = EmptyElement::at($at);
            match $k % 4 {
                0 => $draw(at + Circle::new((0, 0), s, style)),
                1 => $draw(at + Rectangle::new([(1 - s, 1 - s), (s - 1, s - 1)], style)),
                2 => $draw(at + TriangleMarker::new((0, 0), s + 1, style)),
                _ => $draw(
                    at + Polygon::new(
                        vec![(0, -s - 1), (s + 1, 0), (0, s + 1), (-s - 1, 0)],
                        style,
                    ),
                ),
            }
        }};
    }
    crate::render!(path, (w, h), |root: &DrawingArea<_, Shift>| {
        root.fill(&WHITE)?;
        let legend_w = px(150.0) as u32;
        let (plot, legend) = root.split_horizontally(w - legend_w);
        let mut ch = ChartBuilder::on(&plot)
            .caption(title, font(15.0))
            .margin(px(8.0))
            .x_label_area_size(px(40.0))
            .y_label_area_size(px(label_w))
            .build_cartesian_2d((x0 - pad)..(x1 + pad), -1..slots)?;
        ch.configure_mesh()
            .x_desc("final test accuracy (%)")
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .y_labels(slots as usize + 2)
            .y_label_formatter(&|y| {
                // a row's name at the middle of its channels
                let (r, k) = (y.div_euclid(per_row), y.rem_euclid(per_row));
                match rows.len().checked_sub(1 + r.max(0) as usize) {
                    Some(i) if *y >= 0 && k == per_row / 2 => legend_words(&rows[i]),
                    _ => String::new(),
                }
            })
            .disable_y_mesh()
            .set_tick_mark_size(LabelAreaPosition::Left, 0)
            .max_light_lines(0)
            .draw()?;
        // the first row at the top
        let slot = |row: usize, col: usize| -> i32 {
            (rows.len() - 1 - row) as i32 * per_row + (per_row - 1 - col as i32)
        };
        for (ri, r) in rows.iter().enumerate() {
            // a faint line between rows
            if ri > 0 {
                let y = slot(ri, 0) + 1;
                ch.draw_series(std::iter::once(PathElement::new(
                    [(x0 - pad, y), (x1 + pad, y)],
                    RGBColor(220, 220, 220).stroke_width(1),
                )))?;
            }
            for (ci, c) in columns.iter().enumerate() {
                let Some(cell) = cells.iter().find(|f| &f.row == r && &f.column == c) else {
                    continue;
                };
                let y = slot(ri, ci);
                let color = channel_color(c);
                let (m, sd) = mean_sd(&cell.accs);
                ch.draw_series(std::iter::once(PathElement::new(
                    [(m - sd, y), (m + sd, y)],
                    color.stroke_width(px(2.0) as u32),
                )))?;
                ch.draw_series(cell.accs.iter().map(|a| {
                    Circle::new((*a, y), px(3.5), color.stroke_width(px(1.0).max(1) as u32))
                }))?;
                mark!(
                    |e| ch.draw_series(std::iter::once(e)).map(|_| ()),
                    channel_mark(c),
                    (m, y),
                    px(4.5),
                    color
                )?;
            }
        }
        // the legend: a channel per line, then what the marks are
        let row_h = px(18.0);
        for (ci, c) in columns.iter().enumerate() {
            let y = px(40.0) + row_h * ci as i32;
            mark!(
                |e| legend.draw(&e),
                channel_mark(c),
                (px(14.0), y),
                px(4.5),
                channel_color(c)
            )?;
            legend.draw(&Text::new(c.clone(), (px(28.0), y - px(7.0)), font(12.0)))?;
        }
        let seeds: Vec<usize> = cells.iter().map(|c| c.accs.len()).collect();
        let (lo, hi) = (
            seeds.iter().min().copied().unwrap_or(0),
            seeds.iter().max().copied().unwrap_or(0),
        );
        let n = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
        let grey = font(10.5).into_font().color(&RGBColor(80, 80, 80));
        let y = px(40.0) + row_h * columns.len() as i32 + px(6.0);
        for (k, line) in [
            format!("{n} seeds per cell;"),
            "points: each seed;".into(),
            "filled mark, bar:".into(),
            "mean ± 1 sd (n − 1)".into(),
        ]
        .iter()
        .enumerate()
        {
            legend.draw(&Text::new(
                line.clone(),
                (px(4.0), y + px(14.0) * k as i32),
                grey.clone(),
            ))?;
        }
        Ok::<(), DrawingAreaErrorKind<_>>(())
    })
}

/// The distinct values of `key` over `runs`, in the order they first appear.
fn distinct(runs: &[&Series], key: impl Fn(&Series) -> String) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in runs {
        let k = key(s);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Draws every figure into `dir/figures/` (SVG and PNG); returns the files written.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>> {
    let series = load(dir)?;
    let out = dir.join(FIGURES);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let mut written = Vec::new();
    let datasets = distinct(&series.iter().collect::<Vec<_>>(), |s| s.dataset.clone());
    let slug = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    for d in &datasets {
        let of = |f: &dyn Fn(&Series) -> bool| -> Vec<&Series> {
            series.iter().filter(|s| s.dataset == *d && f(s)).collect()
        };
        // the unmodified channel of a column, drawn as the reference of every variant figure
        let baseline = |col: &str| -> Option<Curve> {
            let runs = of(&|s| s.column == col && s.row == "baseline");
            (!runs.is_empty()).then(|| Curve {
                label: format!("{col}, baseline"),
                color: REFERENCE,
                dash: Dash::Dashed,
                reference: true,
                seeds: runs.len(),
                pts: band(&runs, |m| Some(100.0 * m.test_acc)),
            })
        };
        let columns = |rows: &dyn Fn(&Series) -> bool| -> Vec<String> {
            let mut cols = distinct(&of(rows), |s| s.column.clone());
            let rank = |c: &String| {
                ["BP", "RBP", "SRBP"]
                    .iter()
                    .position(|k| k == c)
                    .unwrap_or(3)
            };
            cols.sort_by_key(rank);
            cols
        };
        // the rows of a panel: variants in the order of their parameter, the basic algorithms in
        // the order found
        let panel_rows = |in_panel: &dyn Fn(&Series) -> bool, fam: &str| -> Vec<String> {
            let mut rows = distinct(&of(in_panel), |s| s.row.clone());
            if fam != "basic algorithms" {
                rows.sort_by(|a, b| parameter(a).total_cmp(&parameter(b)).then(a.cmp(b)));
            }
            rows
        };
        // accuracy curves per family of rows: a panel per channel, its variants each in a hue
        // and line style of its own (in the order of their parameter), the baseline grey and
        // dashed behind them
        for fam in distinct(&of(&|_| true), |s| family(&s.row)) {
            let basic = fam == "basic algorithms";
            // the sparsity sweep's 0/1 and signed matrices get panels of their own
            let kinds: Vec<Option<bool>> = if fam == "sparsity sweep" {
                vec![Some(false), Some(true)]
            } else {
                vec![None]
            };
            let mut panels = Vec::new();
            for col in columns(&|s| family(&s.row) == fam) {
                for kind in &kinds {
                    let in_panel = |s: &Series| {
                        family(&s.row) == fam
                            && s.column == col
                            && kind.is_none_or(|signed| {
                                sparsity(&s.row).is_some_and(|(sg, _)| sg == signed)
                            })
                    };
                    let rows = panel_rows(&in_panel, &fam);
                    if rows.is_empty() {
                        continue;
                    }
                    let mut curves: Vec<Curve> = Vec::new();
                    if !basic && let Some(b) = baseline(&col) {
                        curves.push(b);
                    }
                    for (k, r) in rows.iter().enumerate() {
                        let runs = of(&|s| in_panel(s) && &s.row == r);
                        let (color, dash) = style(k);
                        curves.push(Curve {
                            label: format!("{col}, {}", legend_words(r)),
                            color,
                            dash,
                            reference: false,
                            seeds: runs.len(),
                            pts: band(&runs, |m| Some(100.0 * m.test_acc)),
                        });
                    }
                    let what = match kind {
                        Some(true) => format!("{fam} (signed ±1 entries), {col}"),
                        Some(false) => format!("{fam} (0/1 entries), {col}"),
                        None => format!("{fam}, {col}"),
                    };
                    panels.push(Panel {
                        title: format!("{d}: {what}"),
                        y_desc: "test accuracy (%)".into(),
                        x: XAxis::Epochs,
                        curves,
                    });
                }
            }
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-{}.{ext}", slug(d), slug(&fam)));
                figure(&p, &panels)?;
                written.push(p);
            }
            // Table 1 as a figure: the family's final accuracies, the baseline row first
            let cols = columns(&|s| family(&s.row) == fam);
            let mut rows = panel_rows(&|s| family(&s.row) == fam, &fam);
            if !basic && !of(&|s| s.row == "baseline" && cols.contains(&s.column)).is_empty() {
                rows.insert(0, "baseline".into());
            }
            let cells: Vec<Finals> = rows
                .iter()
                .flat_map(|r| cols.iter().map(move |c| (r, c)))
                .filter_map(|(r, c)| {
                    let accs: Vec<f64> = of(&|s| &s.row == r && &s.column == c)
                        .iter()
                        .filter_map(|s| s.metrics.last().map(|m| 100.0 * m.test_acc))
                        .collect();
                    (!accs.is_empty()).then(|| Finals {
                        row: r.clone(),
                        column: c.clone(),
                        accs,
                    })
                })
                .collect();
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-{}-final.{ext}", slug(d), slug(&fam)));
                let title = format!("{d}: {fam}, final test accuracy");
                finals_figure(&p, &title, &rows, &cols, &cells)?;
                written.push(p);
            }
        }
        // final accuracy against sparsity, markers at the measured n only (where two n or more
        // were measured)
        let mut curves: Vec<Curve> = Vec::new();
        let mut measured: Vec<f64> = Vec::new();
        for (col, signed) in ["BP", "RBP", "SRBP"]
            .into_iter()
            .flat_map(|c| [(c, false), (c, true)])
        {
            let mut pts: Vec<(f64, f64, f64)> = Vec::new();
            let mut seeds = 0;
            let mut ns: Vec<f64> = of(&|s| s.column == col)
                .iter()
                .filter_map(|s| sparsity(&s.row))
                .filter(|(sg, _)| *sg == signed)
                .map(|(_, n)| n)
                .collect();
            ns.sort_by(f64::total_cmp);
            ns.dedup();
            for n in ns {
                let runs = of(&|s| s.column == col && sparsity(&s.row) == Some((signed, n)));
                let finals: Vec<f64> = runs
                    .iter()
                    .filter_map(|s| s.metrics.last().map(|m| 100.0 * m.test_acc))
                    .collect();
                seeds = seeds.max(finals.len());
                let (m, sd) = mean_sd(&finals);
                pts.push((n, m, sd));
            }
            if !pts.is_empty() {
                measured.extend(pts.iter().map(|p| p.0));
                let color = channel_color(col);
                curves.push(Curve {
                    label: format!(
                        "{col}, {} entries",
                        if signed { "signed ±1" } else { "0/1" }
                    ),
                    color,
                    dash: if signed { Dash::Dashed } else { Dash::Solid },
                    reference: false,
                    seeds,
                    pts,
                });
            }
        }
        measured.sort_by(f64::total_cmp);
        measured.dedup();
        // a curve against n needs two n at least
        if measured.len() >= 2 {
            let panels = vec![Panel {
                title: format!("{d}: final test accuracy against sparsity"),
                y_desc: "test accuracy (%)".into(),
                x: XAxis::Sparsity(measured),
                curves,
            }];
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-sparsity.{ext}", slug(d)));
                figure(&p, &panels)?;
                written.push(p);
            }
        }
        // alignment angles, where diagnostics were logged: a figure per family of rows, a panel
        // per channel, its variants in its colour as in the accuracy figures; a panel whose every
        // angle is 0 to rounding (below 0.001°: BP with its exact δ) is left out
        let diag = |s: &Series| s.metrics.first().is_some_and(|m| m.layers.is_some());
        for fam in distinct(&of(&diag), |s| family(&s.row)) {
            let mut panels = Vec::new();
            for col in columns(&|s| diag(s) && family(&s.row) == fam) {
                let in_panel = |s: &Series| diag(s) && family(&s.row) == fam && s.column == col;
                let rows = panel_rows(&in_panel, &fam);
                let curves: Vec<Curve> = rows
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let runs = of(&|s| in_panel(s) && &s.row == r);
                        let (color, dash) = style(k);
                        Curve {
                            label: format!("{col}, {}", legend_words(r)),
                            color,
                            dash,
                            reference: false,
                            seeds: runs.len(),
                            // mean over the hidden layers of the δ angle to BP
                            pts: band(&runs, |m| {
                                m.layers.as_ref().map(|ls| {
                                    ls.iter().map(|l| l.delta_angle).sum::<f64>()
                                        / ls.len().max(1) as f64
                                })
                            }),
                        }
                    })
                    .collect();
                if curves
                    .iter()
                    .all(|c| c.pts.iter().all(|p| p.1 + p.2 < 1e-3))
                {
                    continue;
                }
                panels.push(Panel {
                    title: format!("{d}: {fam}, {col}"),
                    y_desc: "angle of δ to BP's (°, mean over hidden layers)".into(),
                    x: XAxis::Epochs,
                    curves,
                });
            }
            if panels.is_empty() {
                continue;
            }
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-{}-delta-angles.{ext}", slug(d), slug(&fam)));
                figure(&p, &panels)?;
                written.push(p);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_curves_differ_in_hue_and_line_style_and_no_two_of_32_share_both() {
        let styles: Vec<_> = (0..32).map(style).collect();
        for k in 1..styles.len() {
            assert_ne!(
                styles[k].0,
                styles[k - 1].0,
                "hue of curves {k} and {}",
                k - 1
            );
            assert_ne!(
                styles[k].1,
                styles[k - 1].1,
                "dash of curves {k} and {}",
                k - 1
            );
            for j in 0..k {
                assert_ne!(styles[k], styles[j], "curves {j} and {k}");
            }
        }
    }

    #[test]
    fn the_seeds_note_names_the_count_and_the_band() {
        let curve = |seeds| Curve {
            label: String::new(),
            color: REFERENCE,
            dash: Dash::Solid,
            reference: false,
            seeds,
            pts: Vec::new(),
        };
        assert_eq!(
            seeds_note(&[curve(5), curve(5)]),
            "lines: mean of 5 seeds; bands: ±1 sd (n − 1)"
        );
        assert_eq!(
            seeds_note(&[curve(3), curve(5)]),
            "lines: mean of 3–5 seeds; bands: ±1 sd (n − 1)"
        );
        assert_eq!(seeds_note(&[curve(1)]), "lines: one seed each; no band");
    }
}
