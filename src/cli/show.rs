//! What the command line prints: readable tables of the library's results, each number with the
//! direction that is good, and the one-line verdicts. The JSON forms (`--json`) are the library's own.

use fairbits::bench::BenchRow;
use fairbits::estimator::Certification;
use fairbits::eval::{BinaryMetrics, ImageMetrics, Metrics, MiReport};

/// The table of any metrics.
pub fn metrics(m: &Metrics) -> String {
    match m {
        Metrics::Binary(m) => binary(m),
        Metrics::Multiclass(m) => image(m),
    }
}

fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "n/a".into()
    }
}

fn pm(mean: f64, std: f64) -> String {
    if std > 0.0 && mean.is_finite() {
        format!("{mean:.4} ± {std:.4}")
    } else {
        num(mean, 4)
    }
}

/// A one-line reading of the certificate: how unfair a consumer of one code can be at most.
pub fn verdict(m: &BinaryMetrics) -> String {
    let c = &m.certificate;
    let Some(pop) = &c.population else {
        return "no stochastic layer: nothing is certified; the probes are the only evidence (see their AUCs)".into();
    };
    let (u, conf) = (pop.dp_gap_bound, pop.confidence * 100.0);
    let reach = match c.probe_auc_exact {
        Some(auc) => format!("the best possible probe reaches AUC {auc:.3} for {} on these test rows", m.sensitive),
        None => format!("the forest probe reaches AUC {:.3} for {}", m.probes.forest.sample, m.sensitive),
    };
    let level = if u <= 0.1 {
        "invariant"
    } else if u <= 0.3 {
        "partly invariant"
    } else {
        "NOT invariant"
    };
    let hint = if u > 0.1 && m.gamma == 0.0 { "; train with --gamma > 0 or --preset invariant" } else { "" };
    let mut text = format!(
        "{level}: with {conf:.0}% confidence no classifier of one sampled code per row treats the {} groups more than \
         {u:.3} apart (demographic parity) in the population; {reach}{hint}",
        m.sensitive
    );
    // Equalised odds is certified separately; a loose bound is no guarantee and is said so.
    if pop.eo_gap_bound > 0.1 {
        text += &format!(
            "; equalised odds is NOT certified at a useful level (its bound is {:.3}; train with --penalty KIND:odds)",
            pop.eo_gap_bound
        );
    }
    text
}

/// A number as written by hand: `8`, `0.5`, `1e30` (not thirty zeros).
fn short(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// A warning when the model does worse than predicting the majority class for every row.
fn below_majority(m: &BinaryMetrics) -> Option<String> {
    (m.task.accuracy <= m.task.majority_accuracy).then(|| {
        format!(
            "WARNING: accuracy {:.4} is not above the {:.4} of predicting the majority class for every row: the \
             model learned nothing usable about the task (gamma {} too strong? too few epochs?)",
            m.task.accuracy,
            m.task.majority_accuracy,
            short(m.gamma)
        )
    })
}

/// A readable table of the metrics, each block saying which direction is good.
pub fn binary(m: &BinaryMetrics) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<46} {v}\n"));
    line("data", format!("{} (sensitive: {}; groups: {})", m.dataset, m.sensitive, m.groups.join(", ")));
    line("rows", format!("train {}, test {}, dropped (missing values) {}", m.n_train, m.n_test, m.n_dropped));
    if m.rows_removed_as_training > 0 {
        line("  left out (rows the model was trained on)", m.rows_removed_as_training.to_string());
    }
    let time =
        if m.timing.train_seconds.is_finite() { format!(" in {:.2} s", m.timing.train_seconds) } else { String::new() };
    let run =
        format!("seed {}, penalty {}, gamma {}, {} epochs{time}", m.seed, m.penalty, short(m.gamma), m.timing.epochs);
    line("run", run);
    let mode = if m.inference == "sample" {
        format!("sample (mean ± std over {} draws)", m.draws)
    } else {
        m.inference.clone()
    };
    line("inference", mode);
    if !m.classes.is_empty() {
        line("classes (most probable predicted; AUC macro)", m.classes.join(", "));
    }
    if let Some(r) = &m.regression {
        // A regression model's task and fairness, in the target's units (docs/design.md, section 5c).
        line("task (lower is better): RMSE", pm(r.rmse, r.rmse_std));
        line("  MAE", pm(r.mae, r.mae_std));
        line("  R^2 (higher is better; 1 = exact)", pm(r.r2, r.r2_std));
        line("  RMSE of the training mean alone", num(r.rmse_of_training_mean, 4));
        line("fairness (0 = alike): mean prediction gap", pm(r.mean_gap, r.mean_gap_std));
        let means: Vec<String> = m
            .groups
            .iter()
            .zip(&r.mean_by_group)
            .map(|(g, v)| format!("{g} {}", v.map_or("-".to_string(), |v| num(v, 4))))
            .collect();
        line("  mean prediction per group", means.join(", "));
    } else {
        line("task (higher is better): AUC", pm(m.task.auc, m.task.auc_std));
        line("  accuracy", pm(m.task.accuracy, m.task.accuracy_std));
        line("  accuracy of the majority class alone", num(m.task.majority_accuracy, 4));
        line("fairness (0 = groups treated alike): dp_gap", pm(m.fairness.dp_gap, m.fairness.dp_gap_std));
        if !m.fairness.dp_gap_per_class.is_empty() {
            // The gap above is the largest of these.
            let gaps: Vec<String> = m
                .classes
                .iter()
                .zip(&m.fairness.dp_gap_per_class)
                .map(|(c, g)| format!("{c} {}", num(*g, 4)))
                .collect();
            line("  dp_gap per class", gaps.join(", "));
        }
        line("  eo_gap", pm(m.fairness.eo_gap, m.fairness.eo_gap_std));
        line("  di_ratio (1 = alike)", pm(m.fairness.di_ratio, m.fairness.di_ratio_std));
    }
    let p = &m.probes;
    line(
        &format!("{} from the codes (AUC; 0.5 = nothing recovered)", m.sensitive),
        format!("probes on {} training, {} test rows, {} draw(s)", p.rows_train, p.rows_test, p.draws),
    );
    if let Some(auc) = m.certificate.probe_auc_exact {
        line("  best possible probe (exact, likelihood ratio)", num(auc, 4));
    }
    for (name, r) in [("logistic", &p.logreg), ("forest", &p.forest)] {
        line(
            &format!("  {name} probe, sampled codes"),
            format!("{}   (on p: {}, not certified)", pm(r.sample, r.sample_std), num(r.prob, 4)),
        );
    }
    let i = &m.information;
    let joint = match i.mi_joint_method.as_str() {
        "exact" => format!("{} (exact, m = {})", num(i.mi_joint_bits, 5), i.code_width),
        "monte-carlo" => {
            format!("{} ± {} (Monte Carlo, m = {})", num(i.mi_joint_bits, 5), num(i.mi_joint_stderr, 5), i.code_width)
        }
        _ => format!("n/a (no stochastic layer, m = {})", i.code_width),
    };
    line("information (bits; 0 = none): I(T; S)", joint);
    line("  sum_j I(T_j; S), per neuron", num(i.mi_per_neuron_bits, 5));
    let c = &m.certificate;
    if let Some(pop) = &c.population {
        line(
            &format!("population certificate ({:.0}% confidence, {} codes)", pop.confidence * 100.0, pop.codes),
            format!("(a bound near 1 = no guarantee; groups {:?}, {})", pop.n_per_group, pop.method),
        );
        line("  dp_gap of any classifier <=", num(pop.dp_gap_bound, 4));
        if m.regression.is_some() {
            // The same bound scaled by an output's range (docs/design.md, section 5c).
            line("  mean gap of any output in [a, b] <=", format!("(b - a) x {}", num(pop.dp_gap_bound, 4)));
        }
        line("  eo_gap of any classifier <=", num(pop.eo_gap_bound, 4));
        line("  AUC of any probe for s <=", num(pop.probe_auc_bound, 4));
        line("  balanced accuracy of any adversary <=", num(pop.adversary_balanced_accuracy_bound, 4));
    }
    line(
        "empirical certificate (these test rows)",
        format!("dp_gap <= {}, probe AUC <= {} (from I(T; S))", num(c.dp_gap_bound, 4), num(c.probe_auc_bound, 4)),
    );
    if let Some(tv) = c.tv_exact {
        line("  exact worst-case dp_gap (TV)", num(tv, 4));
    }
    out.push_str(&format!("  verdict: {}\n", verdict(m)));
    if let Some(warning) = below_majority(m) {
        out.push_str(&format!("  {warning}\n"));
    }
    out.push_str(&format!("  note: {}\n", c.caveat));
    out
}

/// A readable form of the [`MiReport`].
pub fn mi(r: &MiReport) -> String {
    let i = &r.information;
    let c = &r.certificate;
    let mut s = format!(
        "information about s in the stochastic layer (m = {}), test split of {} ({} rows)\n",
        i.code_width, r.dataset, r.n_test
    );
    if r.rows_removed_as_training > 0 {
        s += &format!("  {} row(s) of the file were training rows and were left out\n", r.rows_removed_as_training);
    }
    s += &format!("  per-neuron MI  sum_j I(T_j; S)      {:.5} bits\n", i.mi_per_neuron_bits);
    if i.mi_joint_method == "exact" {
        s += &format!("  joint MI  I(T; S), exact             {:.5} bits\n", i.mi_joint_bits);
    }
    s += &format!(
        "  joint MI  I(T; S), Monte Carlo       {:.5} ± {:.5} bits\n",
        r.mi_joint_monte_carlo_bits, r.mi_joint_monte_carlo_stderr
    );
    if i.mi_per_neuron_bits > 0.0 {
        s += &format!("  joint / per-neuron                   {:.2}x\n", i.mi_joint_bits / i.mi_per_neuron_bits);
    }
    s += "certificate (consumers of ONE sampled code per row)\n";
    s += &format!("  MI used                              {:.5} bits\n", c.mi_bits_used);
    s += &format!("  dp_gap bound                         {:.4}\n", c.dp_gap_bound);
    s += &format!("  probe AUC bound                      {:.4}\n", c.probe_auc_bound);
    match (c.tv_exact, c.probe_auc_exact) {
        (Some(tv), Some(auc)) => {
            s += &format!("  exact worst-case dp_gap (TV)         {tv:.4}\n");
            s += &format!("  exact worst-case probe AUC (LR)      {auc:.4}\n");
        }
        _ => s += "  exact worst case                     not computed (layer wider than --m-max)\n",
    }
    s += "measured probes for s (AUC)\n";
    for (name, p) in [("logistic regression", &r.probes.logreg), ("random forest", &r.probes.forest)] {
        s += &format!("  {name:<20} sampled codes {:.4} ± {:.4}   p {:.4}\n", p.sample, p.sample_std, p.prob);
    }
    s += &format!(
        "certificate {} for the probes on sampled codes; p is not covered\n",
        if r.certificate_holds { "holds" } else { "VIOLATED (a bug: please report)" }
    );
    s += &format!("note: {}\n", c.caveat);
    s
}
/// A readable table of image metrics.
pub fn image(m: &ImageMetrics) -> String {
    let r = &m.run;
    let i = &m.information;
    let f = |v: f64| {
        if v.is_nan() {
            "n/a".to_string()
        } else {
            format!("{v:.4}")
        }
    };
    format!(
        "{} rho {} | penalty {} ({}) gamma {} | seed {} | m {} | {} training images, {} off their colour\n\
         accuracy (unbiased test)   {:.4}\n\
         accuracy (biased test)     {:.4}\n\
         I(T; colour)               per-neuron {}  joint {}{}\n\
         I(T; colour | y)           per-neuron {}  joint {}\n\
         colour probe, logistic     AUC {:.4}  accuracy {:.4} (chance 0.1)\n\
         colour probe, forest       AUC {:.4}  accuracy {:.4}\n\
         training                   {} epochs{}\n",
        r.dataset,
        r.rho,
        r.penalty,
        r.estimate,
        r.gamma,
        r.seed,
        r.m,
        r.n_train,
        r.off_colour_train,
        m.task.accuracy_unbiased,
        m.task.accuracy_biased,
        f(i.per_neuron_mi),
        f(i.joint_mi),
        if i.joint_exact { "" } else { " (Monte Carlo)" },
        f(i.per_neuron_mi_conditional),
        f(i.joint_mi_conditional),
        m.probes.logistic.auc,
        m.probes.logistic.accuracy,
        m.probes.forest.auc,
        m.probes.forest.accuracy,
        r.epochs,
        if r.train_seconds.is_nan() { String::new() } else { format!(", {:.1} s", r.train_seconds) },
    )
}
/// A readable form of a certification.
pub fn certification(c: &Certification) -> String {
    {
        let p = &c.population;
        let mut s = format!(
            "population certificate of {} for {} ({}), from {} held-out rows ({}), {:.0}% confidence\n",
            c.dataset,
            c.sensitive,
            c.groups.join(", "),
            c.rows,
            c.rows_from,
            p.confidence * 100.0
        );
        if c.rows_removed_as_training > 0 {
            s += &format!("  {} row(s) of the file were training rows and were left out\n", c.rows_removed_as_training);
        }
        for (k, v) in [
            ("dp_gap of any classifier of one code <=", p.dp_gap_bound),
            ("eo_gap of any classifier of one code <=", p.eo_gap_bound),
            ("AUC of any probe for the sensitive attribute <=", p.probe_auc_bound),
            ("balanced accuracy of any adversary <=", p.adversary_balanced_accuracy_bound),
            ("total variation between the groups' codes <=", p.tv_upper),
            ("  plug-in total variation on these rows", p.tv_plugin),
        ] {
            s += &format!("  {k:<50} {v:.4}\n");
        }
        s += &format!("  codes {}, per group {:?}, {}\n  note: {}\n", p.codes, p.n_per_group, p.method, c.note);
        s
    }
}

/// The table as text.
pub fn bench(rows: &[BenchRow]) -> String {
    let mut s = format!("{:<62} {:>14}\n", "measurement (median)", "value");
    for r in rows {
        s += &format!("{:<62} {:>10.3} {}\n", r.what, r.value, r.unit);
    }
    s
}
