//! The results report (`fairbits report`): per dataset, a table of every method and gamma (mean ± std over
//! seeds), the sweep's plots, and short answers to the paper's questions written from the numbers:
//! Q1, can these networks learn fair classifiers that compare well with the state of the art; Q2, are
//! their representations more invariant than those of full-precision networks (at matched AUC).

use crate::error::{Error, Result};
use crate::sweep::{read_sweep, summarize, Method, SummaryRow, SUMMARY_COLUMNS};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

/// The fairness level at which Q1 compares AUCs.
pub const DP_TARGET: f64 = 0.05;
/// How far below the `mlp`'s AUC a point may be and still count as matched in Q2.
pub const AUC_MATCH: f64 = 0.02;

fn col(name: &str) -> usize {
    SUMMARY_COLUMNS.iter().position(|c| *c == name).unwrap()
}

fn pm((m, s): (f64, f64)) -> String {
    if m.is_nan() {
        "n/a".into()
    } else {
        format!("{m:.3} ± {s:.3}")
    }
}

/// `target` relative to the directory `base` (both made absolute first).
pub(crate) fn relative(target: &Path, base: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

/// The best row of a method by AUC among those with mean `dp_gap <= DP_TARGET`, or else its fairest row.
fn q1_pick(rows: &[&SummaryRow]) -> Option<(SummaryRow, bool)> {
    let (auc, dp) = (col("task.auc"), col("fairness.dp_gap"));
    let fair: Vec<&&SummaryRow> = rows
        .iter()
        .filter(|r| r.values[dp].0 <= DP_TARGET)
        .collect();
    if let Some(best) = fair
        .iter()
        .max_by(|a, b| a.values[auc].0.total_cmp(&b.values[auc].0))
    {
        return Some(((**best).clone(), true));
    }
    rows.iter()
        .min_by(|a, b| a.values[dp].0.total_cmp(&b.values[dp].0))
        .map(|r| ((*r).clone(), false))
}

/// Writes the report for the sweep directories `from` into `out` (Markdown, plots linked relative to it).
pub fn write_report(from: &[PathBuf], out: &Path, command: &str) -> Result<()> {
    let base = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut md = String::new();
    let _ = writeln!(md, "# fairbits results\n");
    let _ = writeln!(md, "Produced by `{command}` from the sweeps in {}. Mean ± sample standard deviation over seeds; \
        every metric on the held-out test split; sampled inference (one fresh code per row, averaged over draws) \
        unless a sweep says otherwise. Methods: `sqnn` (the paper: per-neuron MI penalty), `sqnn-joint` (exact joint \
        MI penalty on a 12-neuron layer, gamma ramped over 10 epochs), `mlp` (same architecture at full precision, \
        no penalty), `adversarial` (full precision, gradient-reversal adversary of weight gamma). Probe AUCs are for \
        the sensitive attribute (0.5 = nothing recovered); `codes` means one sampled code per row (what the \
        certificate covers); for `mlp` and `adversarial` the probes read the hidden layer itself. At gamma 0 \
        the adversary has no effect, so `adversarial` trains the same network as `mlp` and their points coincide \
        in the plots.\n",
        from.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "));
    for dir in from {
        if dir.join("image_sweep.json").exists() {
            md.push_str(&crate::image_sweep::report_section(dir, &base)?);
            continue;
        }
        let records = read_sweep(dir)?;
        if records.is_empty() {
            return Err(Error::option(
                "--from",
                dir.display(),
                "no finished runs in this directory",
            ));
        }
        let dataset = records[0].metrics.dataset.clone();
        let seeds: std::collections::BTreeSet<u64> = records.iter().map(|r| r.seed).collect();
        let rows = summarize(&records);
        let _ = writeln!(md, "## {dataset}\n");
        let _ = writeln!(
            md,
            "{} runs, seeds {:?}, {} test rows, sensitive attribute `{}` (groups {}), {} epochs.\n",
            records.len(),
            seeds,
            records[0].metrics.n_test,
            records[0].metrics.sensitive,
            records[0].metrics.groups.join(", "),
            records[0].metrics.timing.epochs
        );
        let cols = [
            ("AUC", "task.auc"),
            ("accuracy", "task.accuracy"),
            ("dp_gap", "fairness.dp_gap"),
            ("eo_gap", "fairness.eo_gap"),
            ("logreg s-AUC codes", "probes.logreg.sample"),
            ("forest s-AUC codes", "probes.forest.sample"),
            ("forest s-AUC p", "probes.forest.prob"),
            ("joint MI bits", "information.mi_joint_bits"),
            ("probe-AUC bound", "certificate.probe_auc_bound"),
            ("train s", "timing.train_seconds"),
        ];
        let _ = writeln!(
            md,
            "| method | gamma | n | {} |",
            cols.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(cols.len()));
        for r in &rows {
            let cells: Vec<String> = cols.iter().map(|c| pm(r.values[col(c.1)])).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                r.method.name(),
                r.gamma,
                r.n,
                cells.join(" | ")
            );
        }
        let _ = writeln!(md);
        for (stem, alt) in [
            ("auc_vs_dp_gap", "AUC vs dp_gap"),
            (
                "auc_vs_forest_s_auc",
                "AUC vs forest s-AUC on sampled codes",
            ),
            ("auc_vs_joint_mi", "AUC vs joint MI"),
        ] {
            let svg = dir.join(format!("{stem}.svg"));
            if svg.exists() {
                let _ = writeln!(
                    md,
                    "![{dataset}: {alt}]({})\n",
                    relative(&svg, &base).display()
                );
            }
        }
        // Q1.
        let _ = writeln!(md, "**Q1 (fair classifiers).** Best mean AUC per method with mean `dp_gap <= {DP_TARGET}`:\n");
        let (auc, dp) = (col("task.auc"), col("fairness.dp_gap"));
        let mut picks = Vec::new();
        for method in [
            Method::Sqnn,
            Method::SqnnJoint,
            Method::Adversarial,
            Method::Mlp,
        ] {
            let mine: Vec<&SummaryRow> = rows.iter().filter(|r| r.method == method).collect();
            if let Some((r, fair)) = q1_pick(&mine) {
                let _ = writeln!(
                    md,
                    "- `{}`: {} at gamma {} (AUC {}, dp_gap {})",
                    method.name(),
                    if fair {
                        "reached"
                    } else {
                        "not reached; fairest point"
                    },
                    r.gamma,
                    pm(r.values[auc]),
                    pm(r.values[dp]),
                );
                if fair {
                    picks.push((method, r.values[auc].0, r.values[auc].1));
                }
            }
        }
        picks.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(best) = picks.first() {
            let close: Vec<String> = picks
                .iter()
                .skip(1)
                .filter(|p| best.1 - p.1 <= best.2 + p.2)
                .map(|p| format!("`{}`", p.0.name()))
                .collect();
            let _ = writeln!(
                md,
                "\nAt this fairness level `{}` has the highest AUC{}.\n",
                best.0.name(),
                if close.is_empty() {
                    String::new()
                } else {
                    format!(", within one standard deviation of {}", close.join(", "))
                }
            );
        } else {
            let _ = writeln!(
                md,
                "\nNo method reached `dp_gap <= {DP_TARGET}` in this sweep.\n"
            );
        }
        // Q2.
        let forest = col("probes.forest.sample");
        if let Some(mlp) = rows.iter().find(|r| r.method == Method::Mlp) {
            let _ = writeln!(
                md,
                "**Q2 (invariance at matched AUC).** The `mlp` reaches AUC {}; a forest recovers `s` from its hidden layer with AUC {}.",
                pm(mlp.values[auc]),
                pm(mlp.values[forest])
            );
            for method in [Method::Sqnn, Method::SqnnJoint] {
                let mine: Vec<&SummaryRow> = rows.iter().filter(|r| r.method == method).collect();
                // The most invariant point within AUC_MATCH below the mlp's AUC (or above it); failing
                // that, the point of closest AUC.
                let matched = mine
                    .iter()
                    .filter(|r| r.values[auc].0 >= mlp.values[auc].0 - AUC_MATCH)
                    .min_by(|a, b| a.values[forest].0.total_cmp(&b.values[forest].0))
                    .map(|r| (*r, true))
                    .or_else(|| {
                        mine.iter()
                            .min_by(|a, b| {
                                (a.values[auc].0 - mlp.values[auc].0)
                                    .abs()
                                    .total_cmp(&(b.values[auc].0 - mlp.values[auc].0).abs())
                            })
                            .map(|r| (*r, false))
                    });
                if let Some((r, within)) = matched {
                    let (f, fs) = r.values[forest];
                    let (g, gs) = mlp.values[forest];
                    let verdict = if f + fs < g - gs {
                        "more invariant than the `mlp`"
                    } else if f - fs > g + gs {
                        "less invariant than the `mlp`"
                    } else {
                        "not distinguishable from the `mlp` over these seeds"
                    };
                    let _ = writeln!(
                        md,
                        "`{}` at gamma {} ({}; AUC {}) has forest s-AUC {} on one sampled code per row: {verdict}.",
                        method.name(),
                        r.gamma,
                        if within {
                            format!("within {AUC_MATCH} of the `mlp`'s AUC")
                        } else {
                            format!("no point within {AUC_MATCH}; closest AUC")
                        },
                        pm(r.values[auc]),
                        pm(r.values[forest])
                    );
                }
            }
            let best_joint = rows
                .iter()
                .filter(|r| r.method == Method::SqnnJoint)
                .min_by(|a, b| a.values[forest].0.total_cmp(&b.values[forest].0));
            if let Some(r) = best_joint {
                let _ = writeln!(
                    md,
                    "The most invariant `sqnn-joint` point (gamma {}) has forest s-AUC {} at AUC {} (certified probe-AUC bound {}).",
                    r.gamma,
                    pm(r.values[forest]),
                    pm(r.values[auc]),
                    pm(r.values[col("certificate.probe_auc_bound")])
                );
            }
            let _ = writeln!(md);
        }
    }
    crate::store::write_atomic(out, md.as_bytes())
}
