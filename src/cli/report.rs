//! The results report (`fairbits report`): an introduction, then one section per sweep directory: tables
//! (mean ± std over seeds), plots, and answers computed from the numbers (Q1 and Q2 of the paper for
//! tables, a verdict per colour bias for images). Prose is presentation, so it lives here, beside the
//! command; the numbers come from the library's sweep summaries.

use fairbits::experiments::images::{gamma, get, label, read, rho, summary, ImageSweepConfig, Summary};
use fairbits::experiments::tabular::{cells, col, read_sweep, Cell, Method};
use fairbits::experiments::{pm, relative};
use fairbits::{files, Error, Param, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Writes the report for the sweep directories `from` into `out` (Markdown, plots linked relative to it).
pub fn write_report(from: &[PathBuf], out: &Path, command: &str) -> Result<()> {
    let base = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut md = String::new();
    let _ = writeln!(md, "# fairbits results\n");
    let _ = writeln!(
        md,
        "Produced by `{command}` from the sweeps in {}. Mean ± sample standard deviation over seeds; \
        every metric on the held-out test split; sampled inference (one fresh code per row, averaged over draws) \
        unless a sweep says otherwise. Methods: `sqnn` (the paper: per-neuron MI penalty), `sqnn-joint` (exact joint \
        MI penalty on a 12-neuron layer, gamma ramped over 10 epochs), `mlp` (same architecture at full precision, \
        no penalty), `adversarial` (full precision, gradient-reversal adversary of weight gamma). Probe AUCs are for \
        the sensitive attribute (0.5 = nothing recovered); `codes` means one sampled code per row (what the \
        certificate covers); for `mlp` and `adversarial` the probes read the hidden layer itself. At gamma 0 \
        the adversary has no effect, so `adversarial` trains the same network as `mlp` and their points coincide \
        in the plots.\n",
        from.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
    );
    for dir in from {
        if !dir.join("sweep.json").exists() && !dir.join("image_sweep.json").exists() {
            let why = "not a sweep directory (no sweep.json or image_sweep.json)";
            return Err(Error::param(Param::Sources, dir.display(), why));
        }
        if dir.join("image_sweep.json").exists() {
            md.push_str(&image_section(dir, &base)?);
        } else {
            md.push_str(&table_section(dir, &base)?);
        }
    }
    fairbits::files::write_atomic(out, md.as_bytes())
}

/// The best penalised cell of one rho against gamma 0: the verdict of the images issue's acceptance
/// (mean unbiased accuracy above gamma 0 by more than two standard deviations, the larger of the two
/// cells' sample standard deviations, with at least 3 seeds, and a lower colour-probe accuracy).
fn image_verdict(rows: &[Summary], at: f64) -> Option<String> {
    let base = rows.iter().find(|r| rho(r) == at && label(r) == "none")?;
    let best = rows
        .iter()
        .filter(|r| rho(r) == at && label(r) != "none")
        .max_by(|a, b| get(a, "task.accuracy_unbiased").0.total_cmp(&get(b, "task.accuracy_unbiased").0))?;
    let (b, bs) = get(base, "task.accuracy_unbiased");
    let (a, s) = get(best, "task.accuracy_unbiased");
    let (pb, pa) = (get(base, "probes.logistic.accuracy").0, get(best, "probes.logistic.accuracy").0);
    let rho = at;
    let sd = bs.max(s);
    let met = a - b > 2.0 * sd && best.n >= 3 && base.n >= 3 && pa < pb;
    Some(format!(
        "rho {rho}: best setting {} gamma {}: unbiased accuracy {a:.3} ± {s:.3} vs {b:.3} ± {bs:.3} at gamma 0 \
         (difference {:.3} = {:.1} x the larger std; {} and {} seeds); colour-probe accuracy {pa:.3} vs {pb:.3}: {}.",
        label(best),
        gamma(best),
        a - b,
        if sd > 0.0 { (a - b) / sd } else { f64::INFINITY },
        best.n,
        base.n,
        if met { "**target met**" } else { "**target not met**" }
    ))
}

/// The Markdown section of an image sweep for `fairbits report`; plots linked relative to `base`.
fn image_section(dir: &Path, base: &Path) -> Result<String> {
    let records = read(dir)?;
    if records.is_empty() {
        return Err(Error::param(Param::Sources, dir.display(), "no finished runs in this directory"));
    }
    let cfg: ImageSweepConfig = files::read_json(&dir.join("image_sweep.json"))?;
    let rows = summary(&records);
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
        cfg.settings()
    );
    let rel = |p: &Path| relative(p, base).display().to_string();
    let mut rhos: Vec<f64> = rows.iter().map(rho).collect();
    rhos.dedup();
    for at in rhos {
        let off: Vec<usize> = records.iter().filter(|r| r.run.rho == at).map(|r| r.run.off_colour_train).collect();
        let _ = writeln!(
            md,
            "### rho {at}\n\nTraining images off their class's colour: {:.0} on average.\n",
            off.iter().sum::<usize>() as f64 / off.len().max(1) as f64
        );
        let _ = writeln!(md, "| penalty | gamma | n | unbiased acc | biased acc | colour probe acc (logistic) | colour probe acc (forest) | I(T;colour) joint | I(T;colour\\|y) joint | I(T;colour\\|y) per-neuron | train s |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in rows.iter().filter(|r| rho(r) == at) {
            let f = |name: &str| pm(get(r, name));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                label(r),
                gamma(r),
                r.n,
                f("task.accuracy_unbiased"),
                f("task.accuracy_biased"),
                f("probes.logistic.accuracy"),
                f("probes.forest.accuracy"),
                f("information.joint_mi"),
                f("information.joint_mi_conditional"),
                f("information.per_neuron_mi_conditional"),
                get(r, "run.train_seconds").0
            );
        }
        if let Some(v) = image_verdict(&rows, at) {
            let _ = writeln!(md, "\n{v}\n");
        }
        let _ = writeln!(md, "![rho {at}]({})\n", rel(&dir.join(format!("unbiased_accuracy_rho{at}.svg"))));
    }
    Ok(md)
}

/// The fairness level at which Q1 compares AUCs.
const DP_TARGET: f64 = 0.05;
/// How far below the `mlp`'s AUC a point may be and still count as matched in Q2.
const AUC_MATCH: f64 = 0.02;

/// The best row of a method by AUC among those with mean `dp_gap <= DP_TARGET`, or else its fairest row.
fn q1_pick(rows: &[&Cell]) -> Option<(Cell, bool)> {
    let (auc, dp) = (col("task.auc"), col("fairness.dp_gap"));
    let fair: Vec<&&Cell> = rows.iter().filter(|r| r.values[dp].0 <= DP_TARGET).collect();
    if let Some(best) = fair.iter().max_by(|a, b| a.values[auc].0.total_cmp(&b.values[auc].0)) {
        return Some(((**best).clone(), true));
    }
    rows.iter().min_by(|a, b| a.values[dp].0.total_cmp(&b.values[dp].0)).map(|r| ((*r).clone(), false))
}

/// The Markdown section of a tabular sweep for `fairbits report`: the table of every method and gamma,
/// the plots (linked relative to `base`), and the answers to Q1 and Q2.
fn table_section(dir: &Path, base: &Path) -> Result<String> {
    let records = read_sweep(dir)?;
    let Some(first) = records.first() else {
        return Err(Error::param(Param::Sources, dir.display(), "no finished runs in this directory"));
    };
    let m = &first.metrics;
    let seeds: std::collections::BTreeSet<u64> = records.iter().map(|r| r.seed).collect();
    let rows = cells(&records);
    let mut md = format!("## {}\n\n", m.dataset);
    let _ = writeln!(
        md,
        "{} runs, seeds {seeds:?}, {} test rows, sensitive attribute `{}` (groups {}), {} epochs.\n",
        records.len(),
        m.n_test,
        m.sensitive,
        m.groups.join(", "),
        m.timing.epochs
    );
    md += &cells_table(&rows);
    md += &plot_links(dir, base, &m.dataset);
    md += &q1(&rows);
    md += &q2(&rows);
    Ok(md)
}

/// Every method and gamma: mean ± std over seeds of the report's columns.
fn cells_table(rows: &[Cell]) -> String {
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
    let mut md = format!("| method | gamma | n | {} |\n", cols.iter().map(|c| c.0).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(cols.len()));
    for r in rows {
        let cells: Vec<String> = cols.iter().map(|c| pm(r.values[col(c.1)])).collect();
        let _ = writeln!(md, "| {} | {} | {} | {} |", r.method.name(), r.gamma, r.n, cells.join(" | "));
    }
    md + "\n"
}

/// The sweep's plots that exist, linked relative to `base`.
fn plot_links(dir: &Path, base: &Path, dataset: &str) -> String {
    let mut md = String::new();
    for (stem, alt) in [
        ("auc_vs_dp_gap", "AUC vs dp_gap"),
        ("auc_vs_forest_s_auc", "AUC vs forest s-AUC on sampled codes"),
        ("auc_vs_joint_mi", "AUC vs joint MI"),
    ] {
        let svg = dir.join(format!("{stem}.svg"));
        if svg.exists() {
            let _ = writeln!(md, "![{dataset}: {alt}]({})\n", relative(&svg, base).display());
        }
    }
    md
}

/// Q1 of the paper: the best mean AUC per method among its fair enough cells.
fn q1(rows: &[Cell]) -> String {
    let mut md = format!("**Q1 (fair classifiers).** Best mean AUC per method with mean `dp_gap <= {DP_TARGET}`:\n\n");
    let (auc, dp) = (col("task.auc"), col("fairness.dp_gap"));
    let mut picks = Vec::new();
    for method in [Method::Sqnn, Method::SqnnJoint, Method::Adversarial, Method::Mlp] {
        let mine: Vec<&Cell> = rows.iter().filter(|r| r.method == method).collect();
        if let Some((r, fair)) = q1_pick(&mine) {
            let _ = writeln!(
                md,
                "- `{}`: {} at gamma {} (AUC {}, dp_gap {})",
                method.name(),
                if fair { "reached" } else { "not reached; fairest point" },
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
    let Some(best) = picks.first() else {
        return md + &format!("\nNo method reached `dp_gap <= {DP_TARGET}` in this sweep.\n\n");
    };
    let close: Vec<String> =
        picks.iter().skip(1).filter(|p| best.1 - p.1 <= best.2 + p.2).map(|p| format!("`{}`", p.0.name())).collect();
    let within = if close.is_empty() {
        String::new()
    } else {
        format!(", within one standard deviation of {}", close.join(", "))
    };
    md + &format!("\nAt this fairness level `{}` has the highest AUC{within}.\n\n", best.0.name())
}

/// Q2 of the paper: at an AUC matching the `mlp`'s, is the representation more invariant?
fn q2(rows: &[Cell]) -> String {
    let (auc, forest) = (col("task.auc"), col("probes.forest.sample"));
    let Some(mlp) = rows.iter().find(|r| r.method == Method::Mlp) else { return String::new() };
    let mut md = format!(
        "**Q2 (invariance at matched AUC).** The `mlp` reaches AUC {}; a forest recovers `s` from its hidden layer \
         with AUC {}.\n",
        pm(mlp.values[auc]),
        pm(mlp.values[forest])
    );
    for method in [Method::Sqnn, Method::SqnnJoint] {
        let mine: Vec<&Cell> = rows.iter().filter(|r| r.method == method).collect();
        if let Some((r, within)) = matched_point(&mine, mlp) {
            let (f, fs) = r.values[forest];
            let (g, gs) = mlp.values[forest];
            let verdict = if f + fs < g - gs {
                "more invariant than the `mlp`"
            } else if f - fs > g + gs {
                "less invariant than the `mlp`"
            } else {
                "not distinguishable from the `mlp` over these seeds"
            };
            let at = if within {
                format!("within {AUC_MATCH} of the `mlp`'s AUC")
            } else {
                format!("no point within {AUC_MATCH}; closest AUC")
            };
            let _ = writeln!(
                md,
                "`{}` at gamma {} ({at}; AUC {}) has forest s-AUC {} on one sampled code per row: {verdict}.",
                method.name(),
                r.gamma,
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
    md + "\n"
}

/// The most invariant point within [`AUC_MATCH`] below the `mlp`'s AUC (or above it); failing that, the
/// point of closest AUC. The flag says which.
fn matched_point<'a>(mine: &[&'a Cell], mlp: &Cell) -> Option<(&'a Cell, bool)> {
    let (auc, forest) = (col("task.auc"), col("probes.forest.sample"));
    let target = mlp.values[auc].0;
    mine.iter()
        .filter(|r| r.values[auc].0 >= target - AUC_MATCH)
        .min_by(|a, b| a.values[forest].0.total_cmp(&b.values[forest].0))
        .map(|r| (*r, true))
        .or_else(|| {
            mine.iter()
                .min_by(|a, b| (a.values[auc].0 - target).abs().total_cmp(&(b.values[auc].0 - target).abs()))
                .map(|r| (*r, false))
        })
}
