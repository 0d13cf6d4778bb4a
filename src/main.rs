//! The `fairbits` command line: parse and resolve ([`cli`]), call the library, print (exit codes:
//! [`fairbits::Error::exit_code`]).

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use fairbits::experiments::{merge, report, sweep, Axes};
use fairbits::output::{self, Apply, Input};
use fairbits::progress::TerminalBar;
use fairbits::{eval, Error, FairModel};
use std::io::{IsTerminal, Write};

fn main() {
    let cli = Cli::parse();
    fairbits::progress::init_logs(cli.quiet);
    // A network runs fastest on one thread at these sizes (candle reads this variable); probes, Monte
    // Carlo and sweeps use the pool below.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build_global();
    let bar = TerminalBar::new(!cli.quiet && std::io::stderr().is_terminal());
    let result = run(cli.command, threads, cli.delimiter, &bar);
    bar.finish();
    let Err(e) = result else { return };
    let mut message = String::new();
    for cause in e.chain() {
        let text = match cause.downcast_ref::<Error>() {
            // The library names parameters; the command line names its flags.
            Some(Error::InvalidParam { param, value, reason }) => {
                format!("invalid --{} = {value}: {reason}", param.replace('_', "-").replace('/', "/--"))
            }
            _ => cause.to_string(),
        };
        if !message.contains(&text) {
            message += &if message.is_empty() { text } else { format!(": {text}") };
        }
    }
    eprintln!("error: {message}");
    std::process::exit(e.chain().find_map(|c| c.downcast_ref::<Error>()).map_or(1, Error::exit_code));
}

fn print(text: &str) -> Result<()> {
    // A closed pipe (`| head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn show<T: serde::Serialize>(value: &T, table: impl FnOnce() -> String, json: bool) -> Result<()> {
    print(&if json { serde_json::to_string_pretty(value)? + "\n" } else { table() })
}

fn run(command: Command, threads: usize, delimiter: Option<char>, bar: &TerminalBar) -> Result<()> {
    match command {
        Command::Train(c) => {
            let (run, data, resumed) = c.run_file(delimiter).context("preparing the run")?;
            let out = resumed.clone().or(c.out.clone());
            let m = run.execute(&data, out.as_deref(), resumed.is_some(), bar)?;
            show(&m, || m.table(), c.json)
        }
        Command::Eval(c) => evaluate(c, "eval", delimiter, bar),
        Command::Mi(c) => evaluate(c, "mi", delimiter, bar),
        Command::Certify(c) => evaluate(c, "certify", delimiter, bar),
        Command::Predict(c) => apply(c, false, delimiter),
        Command::Encode(c) => apply(c, true, delimiter),
        Command::Sweep(c) => {
            if let Some(seed) = c.data.seed {
                return Err(Error::param("seed", seed, "a sweep runs every seed of --seeds; give those instead").into());
            }
            let params = c.model.params(0, c.eval.options(0)?).check()?;
            let (methods, penalties, rhos) = (c.methods, c.penalties, c.data.rho.clone());
            let axes = Axes { methods, penalties, rhos, gammas: c.gammas, seeds: c.seeds };
            let outcome =
                sweep(c.data.spec(delimiter)?, axes, &params, &c.out, (c.jobs.unwrap_or(threads), c.shard), bar)?;
            let (total, skipped, others, dir) = (outcome.total, outcome.skipped, outcome.by_others, c.out.display());
            print(&format!("sweep: {total} runs ({skipped} already finished and skipped, {others} trained by another process); results in {dir}/results.csv, summary.csv and plots\n"))
        }
        Command::Report(c) => {
            let command = format!("fairbits {}", std::env::args().skip(1).collect::<Vec<_>>().join(" "));
            let from = if let Some(m) = &c.merge { merge(&c.from, m).map(|_| vec![m.clone()])? } else { c.from };
            report::write_report(&from, &c.out, &command)?;
            print(&format!("report written to {}\n", c.out.display()))
        }
        Command::Bench(c) => print(&fairbits::bench::table(&fairbits::bench::run(c.repeats)?)),
    }
}

fn evaluate(c: cli::EvalCmd, what: &str, delimiter: Option<char>, bar: &TerminalBar) -> Result<()> {
    let model = FairModel::load(&c.model)?;
    let opts = c.eval.options(model.config().eval.seed)?;
    let held = c.held_out(opts.seed, delimiter)?;
    let held = held.as_ref().map(|(p, h)| (p.as_path(), h));
    if what == "certify" {
        let r = model.certify(held, &opts)?;
        return show(&r, || r.table(), c.json);
    }
    let (data, info) = (model.eval_data(held)?, model.saved_run_info(&c.model));
    if what == "mi" {
        let r = eval::mi_report(model.net(), &data, &opts, &info, bar)?;
        return show(&r, || eval::binary::mi_table(&r), c.json);
    }
    let m = model.evaluate(&data, &opts, &info, bar)?;
    show(&m, || m.table(), c.json)
}

fn apply(c: cli::PredictCmd, encode: bool, delimiter: Option<char>) -> Result<()> {
    let model = FairModel::load(&c.model)?;
    let rows = output::rows(&model, &Input::new(c.input.as_deref(), c.split.as_deref(), c.id.as_deref(), delimiter)?)?;
    let what = if encode { Apply::Encode } else { Apply::Predict { draws: c.draws, threshold: c.threshold } };
    let table = output::apply(&model, rows, what, c.inference, c.seed)?;
    output::write(&c.output, &table)?;
    tracing::info!(rows = table.lead[0].1.len(), output = %c.output.display(), "written");
    Ok(())
}
