//! `rbp plot`: figures from the results alone (SVG and PNG) — train and test accuracy against the
//! epoch for each family of rows (mean over seeds, with a ±1 standard-deviation band), final
//! test accuracy against the sparsity n of the sparse rows, and, where runs logged diagnostics,
//! the angle between each channel's hidden signal and backprop's over training.

use super::results;
use super::table::{self, ROW_ORDER};
use crate::error::{Error, Result};
use crate::run::EpochMetrics;
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
/// top-only), the sparsity sweep apart from the sparse rows, else the Table 1 family.
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

/// A labelled line with its band.
type Line = (String, Vec<(f64, f64, f64)>);

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let ys = lines
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|q| [q.1 - q.2, q.1 + q.2]));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x1 + 1.0)
    };
    let mut ch = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
    ch.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw()?;
    for (k, (label, pts)) in lines.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let mut poly: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1 + p.2)).collect();
        poly.extend(pts.iter().rev().map(|p| (p.0, p.1 - p.2)));
        ch.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.15))))?;
        ch.draw_series(
            LineSeries::new(pts.iter().map(|p| (p.0, p.1)), color.stroke_width(2))
                .point_size(if pts.len() < 12 { 3 } else { 0 }),
        )?
        .label(label.clone())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

fn figure(path: &Path, panels: &[(String, String, String, Vec<Line>)]) -> Result<()> {
    crate::render!(
        path,
        (560 * panels.len() as u32, 440),
        |root: &DrawingArea<_, Shift>| {
            root.fill(&WHITE)?;
            let areas = root.split_evenly((1, panels.len()));
            for (a, (title, xd, yd, lines)) in areas.iter().zip(panels) {
                draw_panel(a, title, xd, yd, lines)?;
            }
            Ok::<(), DrawingAreaErrorKind<_>>(())
        }
    )
}

/// Draws every figure into `dir/figures/` (SVG and PNG); returns the files written.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>> {
    let series = load(dir)?;
    let out = dir.join("figures");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let mut written = Vec::new();
    let mut datasets: Vec<&str> = Vec::new();
    for s in &series {
        if !datasets.contains(&s.dataset.as_str()) {
            datasets.push(&s.dataset);
        }
    }
    let slug = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    for d in datasets {
        let of = |f: &dyn Fn(&Series) -> bool| -> Vec<&Series> {
            series.iter().filter(|s| s.dataset == d && f(s)).collect()
        };
        // accuracy curves per family of rows
        let mut families: Vec<String> = Vec::new();
        for s in of(&|_| true) {
            let f = family(&s.row);
            if !families.contains(&f) {
                families.push(f);
            }
        }
        for fam in families {
            let mut cells: Vec<(String, String)> = Vec::new();
            for s in of(&|s| family(&s.row) == fam) {
                let key = (s.row.clone(), s.column.clone());
                if !cells.contains(&key) {
                    cells.push(key);
                }
            }
            let lines = |value: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<Line> {
                cells
                    .iter()
                    .map(|(r, c)| {
                        let runs = of(&|s| &s.row == r && &s.column == c);
                        (
                            format!("{r} / {c}"),
                            band(&runs, |m| value(m).map(|v| 100.0 * v)),
                        )
                    })
                    .collect()
            };
            let panels = vec![
                (
                    format!("{d}: {fam} — training accuracy"),
                    "epoch".to_string(),
                    "train accuracy (%)".to_string(),
                    lines(&|m| Some(m.train_acc)),
                ),
                (
                    format!("{d}: {fam} — test accuracy"),
                    "epoch".to_string(),
                    "test accuracy (%)".to_string(),
                    lines(&|m| Some(m.test_acc)),
                ),
            ];
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-{}.{ext}", slug(d), slug(&fam)));
                figure(&p, &panels)?;
                written.push(p);
            }
        }
        // final accuracy against sparsity
        let mut sparse: Vec<Line> = Vec::new();
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
                let label = if signed {
                    format!("{col}, signed")
                } else {
                    col.to_string()
                };
                sparse.push((label, pts));
            }
        }
        if !sparse.is_empty() {
            let panels = vec![(
                format!("{d}: final test accuracy against sparsity"),
                "expected fan-out n of each sending neuron".to_string(),
                "test accuracy (%)".to_string(),
                sparse,
            )];
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-sparsity.{ext}", slug(d)));
                figure(&p, &panels)?;
                written.push(p);
            }
        }
        // alignment angles, where diagnostics were logged
        let with_diag = of(&|s| s.metrics.first().is_some_and(|m| m.layers.is_some()));
        if !with_diag.is_empty() {
            let mut cells: Vec<(String, String)> = Vec::new();
            for s in &with_diag {
                let key = (s.row.clone(), s.column.clone());
                if !cells.contains(&key) {
                    cells.push(key);
                }
            }
            let lines: Vec<Line> = cells
                .iter()
                .map(|(r, c)| {
                    let runs: Vec<&Series> = with_diag
                        .iter()
                        .copied()
                        .filter(|s| &s.row == r && &s.column == c)
                        .collect();
                    // mean over hidden layers of the δ angle to BP
                    (
                        format!("{r} / {c}"),
                        band(&runs, |m| {
                            m.layers.as_ref().map(|ls| {
                                ls.iter().map(|l| l.delta_angle).sum::<f64>()
                                    / ls.len().max(1) as f64
                            })
                        }),
                    )
                })
                .collect();
            let panels = vec![(
                format!("{d}: angle between the hidden δ and BP's (mean over layers)"),
                "epoch".to_string(),
                "angle (degrees)".to_string(),
                lines,
            )];
            for ext in ["svg", "png"] {
                let p = out.join(format!("{}-delta-angles.{ext}", slug(d)));
                figure(&p, &panels)?;
                written.push(p);
            }
        }
    }
    Ok(written)
}
