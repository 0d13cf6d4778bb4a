//! The constraint search of docs/design.md, section 4d from the command line, until the CLI has its flags
//! (`--max-certified-dp E`, `--max-certified-eo E`): trains the recommended candidates, selects on carved
//! training rows, certifies the chosen model once on the test split (or `--certify-size F`), evaluates it
//! as `fairbits train` does, and prints one JSON object (the search report, the metrics, the decomposition
//! of the final certificate, the seconds of the search).
//!
//!     cargo run --release --example constraint_search -- --dataset adult --seed 3 --max-certified-dp 0.05
//!     cargo run --release --example constraint_search -- --dataset adult --seed 3 --max-certified-eo 0.15
//!     options: --sensitive COL, --certify-size F, --final-tries R, --gammas 1.5,2,2.5, --confidence C,
//!              --val-fraction F, --hidden 64,1, --epochs N, --refit, --margin Z
use fairbits::data::{Builtin, DataSpec, Source, TableSpec};
use fairbits::estimator::constraint::{self, Constraint, SearchOptions};
use fairbits::eval::certificate::{decompose, TvMethod};
use fairbits::eval::EvalOptions;
use fairbits::model::Inference;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let dataset: Builtin = get("--dataset").unwrap_or_else(|| "adult".into()).parse()?;
    let seed: u64 = get("--seed").map(|v| v.parse()).transpose()?.unwrap_or(0);
    let confidence: f64 = get("--confidence").map(|v| v.parse()).transpose()?.unwrap_or(0.95);
    let c = match (get("--max-certified-dp"), get("--max-certified-eo")) {
        (Some(e), None) => Constraint::DemographicParity { max_gap: e.parse()? },
        (None, Some(e)) => Constraint::EqualizedOdds { max_gap: e.parse()? },
        _ => return Err("give one of --max-certified-dp E, --max-certified-eo E".into()),
    };
    let mut table = TableSpec::builtin(dataset, seed);
    table.source = Source::Builtin { name: dataset, sensitive: get("--sensitive") };
    table.certify_size = get("--certify-size").map(|v| v.parse()).transpose()?.unwrap_or(0.0);
    let spec = DataSpec::Table(table);
    let data = spec.prepare()?;
    let (mut base, mut gammas) = constraint::recommended(c);
    if let Some(g) = get("--gammas") {
        gammas = g.split(',').map(|v| v.parse()).collect::<Result<_, _>>()?;
    }
    if let Some(h) = get("--hidden") {
        base = base.hidden(h.split(',').map(|v| v.parse()).collect::<Result<_, _>>()?);
    }
    if let Some(e) = get("--epochs") {
        base = base.epochs(e.parse()?);
    }
    let opts = SearchOptions {
        seed,
        confidence,
        final_tries: get("--final-tries").map(|v| v.parse()).transpose()?.unwrap_or(1),
        val_fraction: get("--val-fraction").map(|v| v.parse()).transpose()?.unwrap_or(0.2),
        refit: args.iter().any(|a| a == "--refit"),
        margin: get("--margin").map(|v| v.parse()).transpose()?.unwrap_or(1.0),
        ..SearchOptions::default()
    };
    let start = Instant::now();
    let found = constraint::search(&base, &gammas, c, &data, &spec, &opts)?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("{}", found.report.message);
    let eval = EvalOptions { seed, confidence, ..EvalOptions::default() };
    let metrics = found.model.evaluate(&data, &eval, &found.model.run_info(found.report.train_seconds, 0), &())?;
    let rows = data.certify.as_ref().unwrap_or(&data.test);
    let m = found.model.code_width();
    let p: Vec<f64> = found.model.encode_set(rows, Inference::Prob, 0)?.iter().map(|&v| v as f64).collect();
    let method = TvMethod { m_max: 20, samples: 2000, mc_share: 0.2 };
    let parts = decompose(&p, m, &rows.s, rows.n_groups, confidence, method, 100, 1);
    let out = serde_json::json!({ "search": found.report, "metrics": metrics, "decomposition": parts,
        "search_seconds": seconds, "gammas": gammas });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if !found.report.met {
        std::process::exit(3);
    }
    Ok(())
}
