//! Plots of a sweep (SVG and PNG): task AUC against a fairness or invariance measure, one series per method,
//! a point per gamma at the mean over seeds with error bars of one standard deviation on both axes, and the
//! Pareto front over all methods (higher AUC and lower x both better) marked by a dashed black line.

use crate::error::{Error, Result};
use crate::store::write_atomic;
use crate::sweep::{summarize, Method, RunRecord, SUMMARY_COLUMNS};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// The bundled DejaVu Sans (assets/), so text renders the same on any machine.
pub(crate) fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/DejaVuSans.ttf"
        ));
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// One plotted point: mean and std of x and y, and its gamma.
#[derive(Clone, Copy, Debug)]
struct Point {
    x: f64,
    x_std: f64,
    y: f64,
    y_std: f64,
    gamma: f64,
}

/// A plot: file stem, title and axis labels, and the column plotted on x.
struct Spec {
    stem: &'static str,
    title: &'static str,
    x_label: &'static str,
    x_column: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        stem: "auc_vs_dp_gap",
        title: "Task AUC vs demographic-parity gap",
        x_label: "dp_gap (|P(yhat=1|S=0) - P(yhat=1|S=1)|, test split)",
        x_column: "fairness.dp_gap",
    },
    Spec {
        stem: "auc_vs_forest_s_auc",
        title: "Task AUC vs random-forest probe for s (sampled codes)",
        x_label: "forest probe AUC for s on one sampled code per row (0.5 = invariant)",
        x_column: "probes.forest.sample",
    },
    Spec {
        stem: "auc_vs_joint_mi",
        title: "Task AUC vs joint MI of the stochastic layer",
        x_label: "I(T; S) in bits (test split)",
        x_column: "information.mi_joint_bits",
    },
];

/// The method's colour in every plot.
fn colour(m: Method) -> RGBColor {
    match m {
        Method::Sqnn => RGBColor(31, 119, 180),
        Method::SqnnJoint => RGBColor(214, 39, 40),
        Method::Mlp => RGBColor(44, 160, 44),
        Method::Adversarial => RGBColor(255, 127, 14),
    }
}

/// Non-dominated points (lower x, higher y), sorted by x.
fn pareto(points: &[Point]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| {
            !points
                .iter()
                .any(|q| q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y))
        })
        .map(|p| (p.x, p.y))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &Spec,
    series: &[(Method, Vec<Point>)],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let all: Vec<Point> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in &all {
        x0 = x0.min(p.x - p.x_std);
        x1 = x1.max(p.x + p.x_std);
        y0 = y0.min(p.y - p.y_std);
        y1 = y1.max(p.y + p.y_std);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (dx, dy) = ((x1 - x0).max(1e-3) * 0.08, (y1 - y0).max(1e-3) * 0.08);
    let mut chart = ChartBuilder::on(&root)
        .caption(spec.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(65)
        .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc("task ROC AUC (test split)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (method, points) in series {
        let c = colour(*method);
        for p in points {
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                p.x,
                p.y - p.y_std,
                p.y,
                p.y + p.y_std,
                c.stroke_width(1),
                6,
            )))?;
            chart.draw_series(std::iter::once(ErrorBar::new_horizontal(
                p.y,
                p.x - p.x_std,
                p.x,
                p.x + p.x_std,
                c.stroke_width(1),
                6,
            )))?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.y), 4, c.filled())),
            )?
            .label(method.name())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        chart.draw_series(points.iter().map(|p| {
            Text::new(
                format!(" γ={}", p.gamma),
                (p.x, p.y),
                ("sans-serif", 11).into_font().color(&c),
            )
        }))?;
    }
    let front = pareto(&all);
    if front.len() > 1 {
        chart
            .draw_series(DashedLineSeries::new(
                front.clone(),
                6,
                4,
                BLACK.stroke_width(1),
            ))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    }
    chart.draw_series(
        front
            .iter()
            .map(|&(x, y)| Circle::new((x, y), 7, BLACK.stroke_width(1))),
    )?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A figure drawable on any plotters backend, so that one drawing serves the SVG and the PNG file.
pub(crate) trait Figure {
    /// Draws onto `root`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Writes `out/<stem>.svg` and `out/<stem>.png` (900 x 600), each complete or not at all.
pub(crate) fn write_svg_png(out: &Path, stem: &str, figure: &impl Figure) -> Result<()> {
    let err = |e: String| Error::Plot(e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        figure.draw(root).map_err(|e| err(e.to_string()))?;
    }
    write_atomic(&out.join(format!("{stem}.svg")), svg.as_bytes())?;
    let png = out.join(format!("{stem}.png"));
    let tmp = out.join(format!(".{stem}.tmp.png"));
    {
        let root = BitMapBackend::new(&tmp, (900, 600)).into_drawing_area();
        figure.draw(root).map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, &png).map_err(|source| Error::Io { path: png, source })
}

struct SweepFigure<'a> {
    spec: &'a Spec,
    series: &'a [(Method, Vec<Point>)],
}

impl Figure for SweepFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        draw(root, self.spec, self.series)
    }
}

/// Writes the sweep's plots into `out` as `<name>.svg` and `<name>.png`; returns the file stems.
pub fn plot_sweep(out: &Path, records: &[RunRecord]) -> Result<Vec<&'static str>> {
    register_font();
    let rows = summarize(records);
    let col = |name: &str| SUMMARY_COLUMNS.iter().position(|c| *c == name).unwrap();
    let auc = col("task.auc");
    let mut stems = Vec::new();
    for spec in SPECS {
        let xc = col(spec.x_column);
        let mut series: Vec<(Method, Vec<Point>)> = Vec::new();
        for row in &rows {
            let (x, x_std) = row.values[xc];
            let (y, y_std) = row.values[auc];
            if x.is_nan() || y.is_nan() {
                continue;
            }
            let p = Point {
                x,
                x_std,
                y,
                y_std,
                gamma: row.gamma,
            };
            match series.iter_mut().find(|(m, _)| *m == row.method) {
                Some((_, v)) => v.push(p),
                None => series.push((row.method, vec![p])),
            }
        }
        if series.is_empty() {
            continue;
        }
        write_svg_png(
            out,
            spec.stem,
            &SweepFigure {
                spec,
                series: &series,
            },
        )?;
        stems.push(spec.stem);
    }
    Ok(stems)
}
