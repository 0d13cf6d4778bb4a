//! The one plot of the experiments (SVG and PNG): a measure on y against another on x, one series per
//! method or penalty, a point per gamma at the mean over seeds with error bars of one standard deviation
//! on both axes, gamma written beside each point, and optionally the Pareto front over all series (lower x
//! and higher y both better) as a dashed black line.

use crate::error::{Error, Result};
use crate::files::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// The bundled DejaVu Sans (assets/), so text renders the same on any machine.
fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/DejaVuSans.ttf"));
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// One plotted point: mean and std of x and y, and its gamma.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Mean of x.
    pub x: f64,
    /// Std of x.
    pub x_std: f64,
    /// Mean of y.
    pub y: f64,
    /// Std of y.
    pub y_std: f64,
    /// The gamma written beside the point.
    pub gamma: f64,
}

/// A labelled series.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour.
    pub colour: Rgb,
    /// Points.
    pub points: Vec<Point>,
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// x axis description.
    pub x_label: String,
    /// y axis description.
    pub y_label: String,
    /// Fixed axis ranges `((x0, x1), (y0, y1))`; `None`: fitted to the points and their error bars.
    pub ranges: Option<((f64, f64), (f64, f64))>,
    /// Draw the Pareto front (and put the legend bottom right, away from it).
    pub pareto: bool,
    /// The series.
    pub series: Vec<Series>,
}

/// Non-dominated points (lower x, higher y), sorted by x.
fn pareto(points: &[Point]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| !points.iter().any(|q| q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y)))
        .map(|p| (p.x, p.y))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

impl Chart {
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        if let Some(r) = self.ranges {
            return r;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for p in self.series.iter().flat_map(|s| &s.points) {
            x0 = x0.min(p.x - p.x_std);
            x1 = x1.max(p.x + p.x_std);
            y0 = y0.min(p.y - p.y_std);
            y1 = y1.max(p.y + p.y_std);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let (dx, dy) = ((x1 - x0).max(1e-3) * 0.08, (y1 - y0).max(1e-3) * 0.08);
        ((x0 - dx, x1 + dx), (y0 - dy, y1 + dy))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 13))
            .draw()?;
        for s in &self.series {
            let c = RGBColor(s.colour.0, s.colour.1, s.colour.2);
            for p in &s.points {
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
                .draw_series(s.points.iter().map(|p| Circle::new((p.x, p.y), 4, c.filled())))?
                .label(s.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
            chart.draw_series(
                s.points.iter().map(|p| {
                    Text::new(format!(" γ={}", p.gamma), (p.x, p.y), ("sans-serif", 11).into_font().color(&c))
                }),
            )?;
        }
        if self.pareto {
            let all: Vec<Point> = self.series.iter().flat_map(|s| s.points.clone()).collect();
            let front = pareto(&all);
            if front.len() > 1 {
                chart
                    .draw_series(DashedLineSeries::new(front.clone(), 6, 4, BLACK.stroke_width(1)))?
                    .label("Pareto front")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
            }
            chart.draw_series(front.iter().map(|&(x, y)| Circle::new((x, y), 7, BLACK.stroke_width(1))))?;
        }
        chart
            .configure_series_labels()
            .position(if self.pareto { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// Writes `out/<stem>.svg` and `out/<stem>.png` (900 x 600), each complete or not at all.
pub fn write_svg_png(out: &Path, stem: &str, chart: &Chart) -> Result<()> {
    register_font();
    let err = |e: String| Error::Plot(e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        chart.draw(root).map_err(|e| err(e.to_string()))?;
    }
    write_atomic(&out.join(format!("{stem}.svg")), svg.as_bytes())?;
    let (w, h) = (900u32, 600u32);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        chart.draw(root).map_err(|e| err(e.to_string()))?;
    }
    let mut png = Vec::new();
    {
        let encoder = image::codecs::png::PngEncoder::new(&mut png);
        image::ImageEncoder::write_image(encoder, &pixels, w, h, image::ColorType::Rgb8)
            .map_err(|e| err(e.to_string()))?;
    }
    write_atomic(&out.join(format!("{stem}.png")), &png)
}
