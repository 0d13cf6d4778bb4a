//! The `fairbits` command line: parse and resolve ([`cli::args`]), call the library, print
//! ([`cli::show`]), and turn a failure into a message and an exit code ([`cli::exit`]).

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::args::{Cli, Cmd, EvalCmd, PredictCmd};
use cli::exit::Failure;
use cli::terminal::{catch_ctrl_c, init_logs, TerminalBar};
use cli::{exit, report, show};
use fairbits::data::{DataSpec, Prepared};
use fairbits::estimator::ValidParams;
use fairbits::experiments::{merge, sweep};
use fairbits::output::{self, Apply, Input};
use fairbits::schema::{default, Param};
use fairbits::{eval, store, Error, FairModel};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

fn main() {
    let cli = Cli::parse();
    init_logs(cli.quiet);
    catch_ctrl_c();
    // A network runs fastest on one thread at these sizes (candle reads this variable); probes, Monte
    // Carlo and sweeps use the pool below.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    if cli.threads == Some(0) {
        eprintln!("error: invalid --threads = 0: must be >= 1 (leave it out to use every core)");
        std::process::exit(2);
    }
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    let bar = TerminalBar::new(!cli.quiet && std::io::stderr().is_terminal());
    let result = run(cli.command, threads, &bar);
    bar.finish();
    let Err(failure) = result else { return };
    let (message, code) = exit::describe(&failure.error);
    eprintln!("error: {message}");
    if let Some(advice) = failure.advice {
        eprintln!("hint: {advice}");
    }
    std::process::exit(code);
}

fn print(text: &str) -> Result<(), Failure> {
    // A closed pipe (`| head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r.map_err(anyhow::Error::from)?),
    }
}

fn show<T: serde::Serialize>(value: &T, table: impl FnOnce() -> String, json: bool) -> Result<(), Failure> {
    print(&if json { serde_json::to_string_pretty(value)? + "\n" } else { table() })
}

fn run(command: Cmd, threads: usize, bar: &TerminalBar) -> Result<(), Failure> {
    match command {
        Cmd::Train(c) => {
            // The output directory is checked before anything is read: a refusal costs nothing.
            let (out, reuse) = c.output()?;
            if let Some(dir) = &out {
                store::check_model_dir(dir, reuse)?;
            }
            if let Some((params, spec, data)) = c.search_request().context("preparing the search")? {
                let m = searched(&params, &spec, &data, out.as_deref().map(|dir| (dir, reuse)), bar)?;
                return show(&m, || show::metrics(&m), c.json);
            }
            let result = c
                .run_file()
                .context("preparing the run")
                .and_then(|(run, data, _)| Ok(run.execute(&data, out.as_deref().map(|dir| (dir, reuse)), bar)?));
            let m = result.map_err(|e| Failure { advice: exit::resume_advice(&e, out.as_deref()), error: e })?;
            show(&m, || show::metrics(&m), c.json)
        }
        Cmd::Eval(c) => evaluate(c, "eval", bar),
        Cmd::Mi(c) => evaluate(c, "mi", bar),
        Cmd::Certify(c) => evaluate(c, "certify", bar),
        Cmd::Predict(c) => apply(c, false),
        Cmd::Encode(c) => apply(c, true),
        Cmd::Sweep(c) => {
            let params = c.given.params()?.check()?;
            let out: PathBuf = c.given.required(Param::Out, "a sweep needs a directory for its runs")?;
            let spec = c.given.data_spec()?;
            let outcome = sweep(spec, c.axes()?, &params, &out, (c.jobs(threads)?, c.shard()?), bar)?;
            let (total, skipped, others, dir) = (outcome.total, outcome.skipped, outcome.by_others, out.display());
            print(&format!("sweep: {total} runs ({skipped} already finished and skipped, {others} trained by another process); results in {dir}/results.csv, summary.csv and plots\n"))
        }
        Cmd::Report(c) => {
            let command = format!("fairbits {}", std::env::args().skip(1).collect::<Vec<_>>().join(" "));
            let sources: Vec<PathBuf> = c.given.value(Param::Sources, default::sources)?;
            if sources.is_empty() {
                return Err(Error::param(Param::Sources, "none", "give one or more sweep directories").into());
            }
            let from = match c.given.get::<PathBuf>(Param::Merged)? {
                Some(m) => merge(&sources, &m).map(|_| vec![m])?,
                None => sources,
            };
            report::write_report(&from, &c.out, &command)?;
            print(&format!("report written to {}\n", c.out.display()))
        }
        Cmd::Bench(c) => print(&show::bench(&fairbits::bench::run(c.repeats)?)),
    }
}

/// `train` with a certified bound asked for: the search, its outcome in words (an unmet bound is an error
/// with the best bound reached), the found model evaluated as `train` evaluates (its population certificate
/// at the search's confidence per final try) and, with `out`, saved with `search.json`.
fn searched(
    params: &ValidParams,
    spec: &DataSpec,
    data: &Prepared,
    out: Option<(&std::path::Path, store::Reuse)>,
    bar: &TerminalBar,
) -> Result<eval::Metrics, Failure> {
    let Some(found) = params.search(data, spec)? else {
        return Err(anyhow::anyhow!("no certified bound was asked for").into());
    };
    let (message, tries) = (found.report.message.clone(), found.report.final_tries);
    let model = found.model_if_met()?;
    tracing::info!("{message}");
    let mut opts = model.config().eval.clone();
    opts.confidence = 1.0 - (1.0 - opts.confidence) / tries as f64;
    let info = model.run_info(model.report().map_or(f64::NAN, |r| r.train_seconds), model.config().train.epochs);
    let metrics = model.evaluate(data, &opts, &info, bar)?;
    if let Some((dir, reuse)) = out {
        let claim = store::claim_model_dir(dir, reuse)?;
        model.save(claim.dir(), Some(&metrics))?;
    }
    Ok(metrics)
}

fn evaluate(c: EvalCmd, what: &str, bar: &TerminalBar) -> Result<(), Failure> {
    let dir: PathBuf = c.given.required(Param::Model, "the model directory to evaluate")?;
    let model = FairModel::load(&dir)?;
    let opts = c.given.eval_options(model.config().eval.seed)?;
    if what != "certify" {
        // Only the certificate has a weighted form (docs/design.md, section 4e): a flag is never ignored.
        c.given.refuse_weights(what)?;
    }
    let held = c.given.held_out(opts.seed)?;
    let held = held.as_ref().map(|(p, h)| (p.as_path(), h));
    if what == "certify" {
        let r = model.certify(held, &opts)?;
        return show(&r, || show::certification(&r), c.json);
    }
    let (data, info) = (model.eval_data(held)?, model.saved_run_info(&dir));
    if what == "mi" {
        let r = eval::mi_report(model.net(), &data, &opts, &info, bar)?;
        return show(&r, || show::mi(&r), c.json);
    }
    let m = model.evaluate(&data, &opts, &info, bar)?;
    show(&m, || show::metrics(&m), c.json)
}

fn apply(c: PredictCmd, encode: bool) -> Result<(), Failure> {
    let g = &c.given;
    let dir: PathBuf = g.required(Param::Model, "the model directory to apply")?;
    let out: PathBuf = g.required(Param::Output, "the file to write")?;
    let (input_path, split): (Option<PathBuf>, Option<String>) = (g.get(Param::Input)?, g.get(Param::Split)?);
    // Checked before any work: an output never replaces the input or the model it comes from.
    let model_files = ["config.json", "model.safetensors", "metrics.json"].map(|f| dir.join(f));
    let inputs: Vec<&std::path::Path> = input_path.iter().chain(&model_files).map(|p| p.as_path()).collect();
    output::check_output(&out, &inputs)?;
    let (draws, threshold) = (g.value(Param::Draws, default::draws)?, g.value(Param::Threshold, default::threshold)?);
    let inference = g.value(Param::Inference, default::inference)?;
    let model = FairModel::load(&dir)?;
    // The sampled codes' seed: the model's own unless given, as Python's predict draws them, so that the
    // two edges give the same predictions of the same rows.
    let seed = g.get(Param::Seed)?.unwrap_or(model.config().train.seed);
    if model.regression().is_some() && !encode && g.has(Param::Threshold) {
        // A flag is never ignored: a regression model's prediction is a number, not a decision.
        let why = "the model regresses on a number: its prediction has no decision threshold";
        return Err(Error::param(Param::Threshold, threshold, why).into());
    }
    let id: Option<String> = g.get(Param::Id)?;
    let input = Input::new(input_path.as_deref(), split.as_deref(), id.as_deref(), g.get(Param::Delimiter)?)?;
    let rows = output::rows(&model, &input)?;
    let what = if encode { Apply::Encode } else { Apply::Predict { draws, threshold } };
    let table = output::apply(&model, rows, what, inference, seed)?;
    output::write(&out, &table)?;
    tracing::info!(rows = table.lead[0].1.len(), output = %out.display(), "written");
    Ok(())
}
