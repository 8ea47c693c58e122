//! `rbp plot`: figures from the results alone (SVG and PNG) — train and test accuracy against the
//! epoch for each family of rows (mean over seeds, with a ±1 standard-deviation band), final
//! test accuracy against the sparsity n of the sparse rows, and, where runs logged diagnostics,
//! the angle between each channel's hidden signal and backprop's over training (a figure per
//! family of rows, a panel per channel).

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
/// (`quantize-signal`) with a fixed α apart from the calibrated ones, else the Table 1 family.
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
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let sd = if vals.len() > 1 {
                (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (vals.len() - 1) as f64).sqrt()
            } else {
                0.0
            };
            Some(((e + 1) as f64, m, sd))
        })
        .collect()
}

/// One curve of a panel: mean and sample sd per x.
struct Curve {
    label: String,
    color: RGBColor,
    /// The unmodified channel, drawn dashed behind its variants.
    reference: bool,
    pts: Vec<(f64, f64, f64)>,
}

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

/// Shade `k` of `n` of a colour: from light (k = 0) to the colour itself darkened (k = n − 1),
/// so the variants of one channel keep its hue and their order.
fn shade(c: RGBColor, k: usize, n: usize) -> RGBColor {
    if n <= 1 {
        return c;
    }
    let t = k as f64 / (n - 1) as f64; // 0 … 1
    let f = |v: u8| -> u8 {
        let v = v as f64;
        // light end: 55 % towards white; dark end: 35 % towards black
        let light = v + (255.0 - v) * 0.55;
        let dark = v * 0.65;
        (light + (dark - light) * t).round() as u8
    };
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// A row label in words: `sparse n=8` → `sparse n = 8`.
fn words(row: &str) -> String {
    row.replace('=', " = ").replace("  ", " ")
}

/// A variant in its figure's legend: its row in words, less the variant's name that the title
/// carries (`quantize-signal b=2, α=0.1` → `b = 2, α = 0.1`, `channel-dropout r=0.25` →
/// `r = 0.25`), so that legends stay beside the data.
fn legend_words(row: &str) -> String {
    let short = ["quantize-signal ", "quantize-update ", "channel-dropout "]
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

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
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
    let all = panel.curves.iter().flat_map(|c| c.pts.iter());
    let (x0, x1) = all
        .clone()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    if !(x0 <= x1 && y0 <= y1) {
        return Ok(());
    }
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
    for c in &panel.curves {
        let pts: Vec<(i32, f64, f64)> = c.pts.iter().map(|p| (to_x(p.0), p.1, p.2)).collect();
        let mut poly: Vec<(i32, f64)> = pts.iter().map(|p| (p.0, p.1 + p.2)).collect();
        poly.extend(pts.iter().rev().map(|p| (p.0, p.1 - p.2)));
        if !c.reference {
            ch.draw_series(std::iter::once(Polygon::new(poly, c.color.mix(0.12))))?;
        }
        let line = pts.iter().map(|p| (p.0, p.1));
        if c.reference {
            ch.draw_series(DashedLineSeries::new(
                line,
                px(6.0),
                px(4.0),
                c.color.stroke_width(px(1.5) as u32),
            ))?;
        } else {
            ch.draw_series(LineSeries::new(line, c.color.stroke_width(px(2.0) as u32)))?;
        }
        if sparsity || pts.len() < 12 {
            ch.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), px(3.0), c.color.filled())),
            )?;
        }
    }
    // the legend: one line per curve, in the panel's order
    let row_h = px(17.0);
    for (k, c) in panel.curves.iter().enumerate() {
        let y = px(40.0) + row_h * k as i32;
        let style = c
            .color
            .stroke_width(px(if c.reference { 1.5 } else { 2.5 }) as u32);
        if c.reference {
            legend.draw(&PathElement::new([(px(4.0), y), (px(10.0), y)], style))?;
            legend.draw(&PathElement::new([(px(14.0), y), (px(22.0), y)], style))?;
        } else {
            legend.draw(&PathElement::new([(px(4.0), y), (px(22.0), y)], style))?;
        }
        legend.draw(&Text::new(
            c.label.clone(),
            (px(28.0), y - px(7.0)),
            font(12.0),
        ))?;
    }
    Ok(())
}

/// Draws `panels` into `path`, two to a row; a PNG at twice the SVG's size (print resolution).
fn figure(path: &Path, panels: &[Panel]) -> Result<()> {
    let scale = match crate::plot::Format::of(path)? {
        crate::plot::Format::Png => 2.0,
        crate::plot::Format::Svg => 1.0,
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
        for (a, p) in areas.iter().zip(panels) {
            draw_panel(a, p, scale)?;
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
                color: RGBColor(90, 90, 90),
                reference: true,
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
        // accuracy curves per family of rows: a panel per channel, its variants in its colour
        // (lighter to darker in the order of their parameter), the baseline dashed behind them
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
                    let color = channel_color(&col);
                    let mut curves: Vec<Curve> = Vec::new();
                    if !basic && let Some(b) = baseline(&col) {
                        curves.push(b);
                    }
                    for (k, r) in rows.iter().enumerate() {
                        let runs = of(&|s| in_panel(s) && &s.row == r);
                        let c = if basic && r == "baseline" {
                            color
                        } else {
                            shade(color, k, rows.len())
                        };
                        curves.push(Curve {
                            label: format!("{col}, {}", legend_words(r)),
                            color: c,
                            reference: false,
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
                let m = finals.iter().sum::<f64>() / finals.len() as f64;
                let sd = if finals.len() > 1 {
                    (finals.iter().map(|v| (v - m).powi(2)).sum::<f64>()
                        / (finals.len() - 1) as f64)
                        .sqrt()
                } else {
                    0.0
                };
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
                    color: if signed { shade(color, 0, 2) } else { color },
                    reference: false,
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
                    .map(|(k, r)| Curve {
                        label: format!("{col}, {}", legend_words(r)),
                        color: shade(channel_color(&col), k, rows.len()),
                        reference: false,
                        // mean over the hidden layers of the δ angle to BP
                        pts: band(&of(&|s| in_panel(s) && &s.row == r), |m| {
                            m.layers.as_ref().map(|ls| {
                                ls.iter().map(|l| l.delta_angle).sum::<f64>()
                                    / ls.len().max(1) as f64
                            })
                        }),
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
