//! Sweeps over the image datasets (images issue, experiments issue): rho x penalty x gamma x seed, one
//! model per core, resumable (one JSON per finished run under `runs/`), then `results.csv`, `summary.csv`,
//! a plot per rho (unbiased accuracy against colour-probe accuracy) and a Markdown section for the report.

use crate::error::{Error, Result};
use crate::metrics::mean_std;
use crate::store::{write_atomic, write_json};
use crate::train::Penalty;
use crate::vision::{self, ImageJob, ImageMetrics};
use indicatif::ProgressBar;
use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// A penalty of the sweep: which MI and whether conditional on the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PenaltyChoice {
    /// Per-neuron or joint.
    pub penalty: Penalty,
    /// `I(T; S | Y)` instead of `I(T; S)`.
    pub conditional: bool,
}

impl PenaltyChoice {
    /// `per-neuron`, `joint-conditional`, ...
    pub fn label(self) -> String {
        if self.conditional {
            format!("{}-conditional", self.penalty.name())
        } else {
            self.penalty.name().to_string()
        }
    }

    /// Parses a label.
    pub fn parse(text: &str) -> Result<Self> {
        let (base, conditional) = match text.strip_suffix("-conditional") {
            Some(b) => (b, true),
            None => (text, false),
        };
        let penalty =
            match base {
                "per-neuron" => Penalty::PerNeuron,
                "joint" => Penalty::Joint,
                _ => return Err(Error::option(
                    "--penalties",
                    text,
                    "each must be per-neuron, joint, per-neuron-conditional or joint-conditional",
                )),
            };
        Ok(PenaltyChoice {
            penalty,
            conditional,
        })
    }
}

/// The grid; written to `image_sweep.json` so that a resumed sweep runs the same one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSweepConfig {
    /// Colour biases.
    pub rhos: Vec<f64>,
    /// Penalties (each with every gamma > 0; gamma 0 is the shared baseline).
    pub penalties: Vec<PenaltyChoice>,
    /// Penalty weights.
    pub gammas: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Dataset name (informational).
    pub dataset: String,
    /// Epochs, batch size, estimate and architecture of every run, as text (informational).
    pub settings: String,
}

/// One run of the grid.
#[derive(Clone, Debug)]
struct Key {
    rho: f64,
    penalty: Option<PenaltyChoice>,
    gamma: f64,
    seed: u64,
}

impl Key {
    fn id(&self) -> String {
        let label = self.penalty.map_or("none".to_string(), |p| p.label());
        format!("rho{}_{label}_g{}_s{}", self.rho, self.gamma, self.seed)
    }
}

/// Runs (or resumes) the sweep; `base` gives everything but rho, penalty, gamma and seed.
pub fn run(
    cfg: &ImageSweepConfig,
    base: &ImageJob,
    out: &Path,
    jobs: usize,
    progress: &ProgressBar,
) -> Result<Vec<ImageMetrics>> {
    if cfg.gammas.iter().any(|g| !(g.is_finite() && *g >= 0.0)) || cfg.seeds.is_empty() {
        return Err(Error::option(
            "--gammas/--seeds",
            format!("{:?} / {:?}", cfg.gammas, cfg.seeds),
            "gammas must be >= 0 and there must be a seed",
        ));
    }
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).map_err(|source| Error::Io {
        path: runs.clone(),
        source,
    })?;
    crate::sweep::claim_directory(out, "image_sweep.json", cfg)?;
    let mut keys = Vec::new();
    for &rho in &cfg.rhos {
        for &seed in &cfg.seeds {
            keys.push(Key {
                rho,
                penalty: None,
                gamma: 0.0,
                seed,
            });
            for &p in &cfg.penalties {
                for &gamma in cfg.gammas.iter().filter(|g| **g > 0.0) {
                    keys.push(Key {
                        rho,
                        penalty: Some(p),
                        gamma,
                        seed,
                    });
                }
            }
        }
    }
    let todo: Vec<&Key> = keys
        .iter()
        .filter(|k| !runs.join(format!("{}.json", k.id())).exists())
        .collect();
    progress.set_length(keys.len() as u64);
    progress.set_position((keys.len() - todo.len()) as u64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::option("--jobs", jobs, e.to_string()))?;
    // Runs of one (rho, seed) share their images and colours: load them once per group.
    let mut groups: Vec<Vec<&Key>> = Vec::new();
    for k in todo {
        match groups
            .iter_mut()
            .find(|g| g[0].rho == k.rho && g[0].seed == k.seed)
        {
            Some(g) => g.push(k),
            None => groups.push(vec![k]),
        }
    }
    pool.install(|| {
        groups.par_iter().try_for_each(|group| -> Result<()> {
            let mut spec = base.data.clone();
            (spec.rho, spec.seed) = (group[0].rho, group[0].seed);
            let data = vision::load(&spec)?;
            group.par_iter().try_for_each(|k| -> Result<()> {
                let mut job = base.clone();
                job.data = spec.clone();
                job.train.seed = k.seed;
                job.eval.seed = k.seed;
                job.train.gamma = k.gamma;
                if let Some(p) = k.penalty {
                    job.train.penalty = p.penalty;
                    job.train.conditional = p.conditional;
                }
                let (_, _, metrics) = vision::run_job_on(&job, &data, |_| {})?;
                write_json(&runs.join(format!("{}.json", k.id())), &metrics)?;
                progress.inc(1);
                Ok(())
            })
        })
    })?;
    let records = read(out)?;
    write_results(out, &records)?;
    Ok(records)
}

/// The finished runs of a sweep directory, in name order.
pub fn read(dir: &Path) -> Result<Vec<ImageMetrics>> {
    crate::sweep::read_runs(dir)
}

/// The summarised columns: name and how to read it from a run.
type Column = (&'static str, fn(&ImageMetrics) -> f64);

const COLUMNS: &[Column] = &[
    ("accuracy_unbiased", |m| m.task.accuracy_unbiased),
    ("accuracy_biased", |m| m.task.accuracy_biased),
    ("colour_probe_logistic_accuracy", |m| {
        m.probes.logistic.accuracy
    }),
    ("colour_probe_logistic_auc", |m| m.probes.logistic.auc),
    ("colour_probe_forest_accuracy", |m| m.probes.forest.accuracy),
    ("colour_probe_forest_auc", |m| m.probes.forest.auc),
    ("per_neuron_mi", |m| m.information.per_neuron_mi),
    ("joint_mi", |m| m.information.joint_mi),
    ("per_neuron_mi_conditional", |m| {
        m.information.per_neuron_mi_conditional
    }),
    ("joint_mi_conditional", |m| {
        m.information.joint_mi_conditional
    }),
    ("train_seconds", |m| m.run.train_seconds),
];

/// Mean and std over seeds of one (rho, penalty, gamma) cell.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Colour bias.
    pub rho: f64,
    /// Penalty label (`none` at gamma 0).
    pub penalty: String,
    /// Weight.
    pub gamma: f64,
    /// Seeds.
    pub n: usize,
    /// `(mean, std)` per entry of the columns, in order.
    pub values: Vec<(f64, f64)>,
}

impl Summary {
    fn get(&self, name: &str) -> (f64, f64) {
        self.values[COLUMNS.iter().position(|c| c.0 == name).unwrap()]
    }
}

/// Groups runs by (rho, penalty, gamma).
pub fn summarize(records: &[ImageMetrics]) -> Vec<Summary> {
    let mut out: Vec<Summary> = Vec::new();
    let mut keys: Vec<(f64, String, f64)> = records
        .iter()
        .map(|r| (r.run.rho, r.run.penalty.clone(), r.run.gamma))
        .collect();
    keys.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then((a.1 != "none").cmp(&(b.1 != "none")))
            .then(a.1.cmp(&b.1))
            .then(a.2.total_cmp(&b.2))
    });
    keys.dedup();
    for (rho, penalty, gamma) in keys {
        let group: Vec<&ImageMetrics> = records
            .iter()
            .filter(|r| r.run.rho == rho && r.run.penalty == penalty && r.run.gamma == gamma)
            .collect();
        let values = COLUMNS
            .iter()
            .map(|(_, f)| mean_std(&group.iter().map(|r| f(r)).collect::<Vec<_>>()))
            .collect();
        out.push(Summary {
            rho,
            penalty,
            gamma,
            n: group.len(),
            values,
        });
    }
    out
}

/// `results.csv` (one row per run), `summary.csv` (mean and std per cell) and the plots.
pub fn write_results(out: &Path, records: &[ImageMetrics]) -> Result<()> {
    let mut csv = String::from("dataset,rho,penalty,estimate,gamma,seed");
    for (name, _) in COLUMNS {
        let _ = write!(csv, ",{name}");
    }
    csv.push('\n');
    for r in records {
        let _ = write!(
            csv,
            "{},{},{},{},{},{}",
            r.run.dataset,
            r.run.rho,
            r.run.penalty,
            serde_json::to_value(r.run.estimate)
                .unwrap()
                .as_str()
                .unwrap_or(""),
            r.run.gamma,
            r.run.seed
        );
        for (_, f) in COLUMNS {
            let _ = write!(csv, ",{}", f(r));
        }
        csv.push('\n');
    }
    write_atomic(&out.join("results.csv"), csv.as_bytes())?;
    let rows = summarize(records);
    let mut s = String::from("rho,penalty,gamma,n");
    for (name, _) in COLUMNS {
        let _ = write!(s, ",{name}_mean,{name}_std");
    }
    s.push('\n');
    for row in &rows {
        let _ = write!(s, "{},{},{},{}", row.rho, row.penalty, row.gamma, row.n);
        for (m, sd) in &row.values {
            let _ = write!(s, ",{m},{sd}");
        }
        s.push('\n');
    }
    write_atomic(&out.join("summary.csv"), s.as_bytes())?;
    plot(out, &rows)
}

/// A plotted point: probe accuracy (mean, std), unbiased accuracy (mean, std), gamma.
type Point = (f64, f64, f64, f64, f64);

/// One series per penalty.
type Series = Vec<(String, Vec<Point>)>;

const PALETTE: [RGBColor; 5] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    rho: f64,
    series: &Series,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("rho {rho}: unbiased accuracy vs colour decodability"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..1.05, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("colour-probe accuracy on sampled codes (logistic; chance 0.1)")
        .y_desc("accuracy on the unbiased test set")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, (label, points)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        for &(x, xs, y, ys, _) in points {
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                x,
                y - ys,
                y,
                y + ys,
                c.stroke_width(1),
                6,
            )))?;
            chart.draw_series(std::iter::once(ErrorBar::new_horizontal(
                y,
                x - xs,
                x,
                x + xs,
                c.stroke_width(1),
                6,
            )))?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, _, y, _, _)| Circle::new((x, y), 4, c.filled())),
            )?
            .label(label.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        chart.draw_series(points.iter().map(|&(x, _, y, _, g)| {
            Text::new(
                format!(" γ={g}"),
                (x, y),
                ("sans-serif", 11).into_font().color(&c),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

struct RhoFigure<'a> {
    rho: f64,
    series: &'a Series,
}

impl crate::plots::Figure for RhoFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        draw(root, self.rho, self.series)
    }
}

fn plot(out: &Path, rows: &[Summary]) -> Result<()> {
    crate::plots::register_font();
    let mut rhos: Vec<f64> = rows.iter().map(|r| r.rho).collect();
    rhos.dedup();
    for rho in rhos {
        let mut series: Series = Vec::new();
        for r in rows.iter().filter(|r| r.rho == rho) {
            let (x, xs) = r.get("colour_probe_logistic_accuracy");
            let (y, ys) = r.get("accuracy_unbiased");
            let point = (x, xs, y, ys, r.gamma);
            match series.iter_mut().find(|(l, _)| *l == r.penalty) {
                Some((_, v)) => v.push(point),
                None => series.push((r.penalty.clone(), vec![point])),
            }
        }
        let figure = RhoFigure {
            rho,
            series: &series,
        };
        crate::plots::write_svg_png(out, &format!("unbiased_accuracy_rho{rho}"), &figure)?;
    }
    Ok(())
}

/// The best penalised cell of one rho against gamma 0: the verdict of the images issue's acceptance
/// (mean unbiased accuracy above gamma 0 by more than two standard deviations, the larger of the two
/// cells' sample standard deviations, with at least 3 seeds, and a lower colour-probe accuracy).
pub fn verdict(rows: &[Summary], rho: f64) -> Option<String> {
    let base = rows.iter().find(|r| r.rho == rho && r.penalty == "none")?;
    let best = rows
        .iter()
        .filter(|r| r.rho == rho && r.penalty != "none")
        .max_by(|a, b| {
            a.get("accuracy_unbiased")
                .0
                .total_cmp(&b.get("accuracy_unbiased").0)
        })?;
    let (b, bs) = base.get("accuracy_unbiased");
    let (a, s) = best.get("accuracy_unbiased");
    let (pb, pa) = (
        base.get("colour_probe_logistic_accuracy").0,
        best.get("colour_probe_logistic_accuracy").0,
    );
    let sd = bs.max(s);
    let met = a - b > 2.0 * sd && best.n >= 3 && base.n >= 3 && pa < pb;
    Some(format!(
        "rho {rho}: best setting {} gamma {}: unbiased accuracy {a:.3} ± {s:.3} vs {b:.3} ± {bs:.3} at gamma 0 \
         (difference {:.3} = {:.1} x the larger std; {} and {} seeds); colour-probe accuracy {pa:.3} vs {pb:.3}: {}.",
        best.penalty,
        best.gamma,
        a - b,
        if sd > 0.0 { (a - b) / sd } else { f64::INFINITY },
        best.n,
        base.n,
        if met { "**target met**" } else { "**target not met**" }
    ))
}

/// The Markdown section of an image sweep for `fairbits report`; plots linked relative to `base`.
pub fn report_section(dir: &Path, base: &Path) -> Result<String> {
    let records = read(dir)?;
    if records.is_empty() {
        return Err(Error::option(
            "--from",
            dir.display(),
            "no finished runs in this directory",
        ));
    }
    let cfg: ImageSweepConfig = crate::sweep::read_json(&dir.join("image_sweep.json"))?;
    let rows = summarize(&records);
    let r0 = &records[0].run;
    let mut md = String::new();
    let _ = writeln!(md, "## {}\n", r0.dataset);
    let _ = writeln!(
        md,
        "{} runs, seeds {:?}, {} training images, width m = {}; {}. Accuracies on the unbiased test set \
         (uniform colours) and the biased one (coloured like training), sampled inference; colour probes on one \
         sampled code per row, trained on the training images recoloured uniformly, scored on the unbiased \
         test set (chance: accuracy 0.1, AUC 0.5); MI in bits on the unbiased test set.\n",
        records.len(),
        cfg.seeds,
        r0.n_train,
        r0.m,
        cfg.settings
    );
    let rel = |p: &Path| crate::results::relative(p, base).display().to_string();
    let mut rhos: Vec<f64> = rows.iter().map(|r| r.rho).collect();
    rhos.dedup();
    for rho in rhos {
        let off: Vec<usize> = records
            .iter()
            .filter(|r| r.run.rho == rho)
            .map(|r| r.run.off_colour_train)
            .collect();
        let _ = writeln!(
            md,
            "### rho {rho}\n\nTraining images off their class's colour: {:.0} on average.\n",
            off.iter().sum::<usize>() as f64 / off.len().max(1) as f64
        );
        let _ = writeln!(md, "| penalty | gamma | n | unbiased acc | biased acc | colour probe acc (logistic) | colour probe acc (forest) | I(T;colour) joint | I(T;colour\\|y) joint | I(T;colour\\|y) per-neuron | train s |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in rows.iter().filter(|r| r.rho == rho) {
            let f = |name: &str| {
                let (m, s) = r.get(name);
                if m.is_nan() {
                    "n/a".to_string()
                } else {
                    format!("{m:.3} ± {s:.3}")
                }
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                r.penalty,
                r.gamma,
                r.n,
                f("accuracy_unbiased"),
                f("accuracy_biased"),
                f("colour_probe_logistic_accuracy"),
                f("colour_probe_forest_accuracy"),
                f("joint_mi"),
                f("joint_mi_conditional"),
                f("per_neuron_mi_conditional"),
                r.get("train_seconds").0
            );
        }
        if let Some(v) = verdict(&rows, rho) {
            let _ = writeln!(md, "\n{v}\n");
        }
        let _ = writeln!(
            md,
            "![rho {rho}]({})\n",
            rel(&dir.join(format!("unbiased_accuracy_rho{rho}.svg")))
        );
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_labels_round_trip() {
        for text in [
            "per-neuron",
            "joint",
            "per-neuron-conditional",
            "joint-conditional",
        ] {
            assert_eq!(PenaltyChoice::parse(text).unwrap().label(), text);
        }
        assert!(PenaltyChoice::parse("adversarial").is_err());
    }
}
