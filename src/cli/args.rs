//! The command line's arguments ("low" arguments, as clap parses them) and their resolution, once, into
//! library values (the "high" arguments: [`FairParams`], [`DataSpec`], [`EvalOptions`]).
//!
//! Every flag that is a library parameter is built from [`SCHEMA`]: its name, help, default and range are
//! the schema's, and its value is parsed and checked by the library ([`Given`]). Only what exists on the
//! command line alone (`--json`, `--quiet`, `--threads`, `--reproducible`, `--checkpoint-every`,
//! `--repeats`) is declared here.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Parser, Subcommand};
use fairbits::data::{Builtin, DataSpec, HeldOut, ImageDataset, ImageSpec, Prepared, Source, TableSpec};
use fairbits::estimator::RunFile;
use fairbits::estimator::ValidParams;
use fairbits::experiments::{tabular::Method, Axes, Shard};
use fairbits::schema::{check, default, Group, Param, ParamValue};
use fairbits::store::{ModelKind, Reuse};
use fairbits::{Error, EvalOptions, FairParams, PenaltySpec, Result, SCHEMA};
use std::marker::PhantomData;
use std::path::PathBuf;

const EXAMPLES: &str = "Examples:\n  fairbits train --dataset adult --preset invariant --out model\n  fairbits eval --model model\n  fairbits certify --model model --input audit.csv --target income-per-year --sensitive sex\n  fairbits predict --model model --input new.csv --output predictions.csv\n  fairbits sweep --dataset compas --out sweeps/compas && fairbits report --from sweeps/compas --out RESULTS.md";

/// Invariant representations with stochastically quantized neural networks.
#[derive(Parser)]
#[command(name = "fairbits", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
    #[arg(long, global = true, help = "Threads for probes, Monte Carlo and sweeps (>= 1) [default: all cores].")]
    pub threads: Option<usize>,
    #[arg(long, short, global = true, overrides_with = "quiet", help = "No progress bar, warnings only.")]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Train a network, evaluate it on the test split, optionally save it.
    Train(TrainCmd),
    /// Evaluate a saved model on its own test split, or on every held-out row of a table file.
    Eval(EvalCmd),
    /// Positive-class probability and 0/1 decision (images: class probabilities) for every input row.
    Predict(PredictCmd),
    /// Write the stochastic layer's codes (or probabilities) for every input row.
    Encode(PredictCmd),
    /// The information the stochastic layer carries about the sensitive attribute, and the certificate.
    Mi(EvalCmd),
    /// Certify a saved encoder for the population, from held-out rows it never saw or its own.
    Certify(EvalCmd),
    /// Train methods (tables) or penalties (images) over gammas and seeds; resumable; CSVs and plots.
    Sweep(SweepCmd),
    /// Write a Markdown results report from sweep directories.
    Report(ReportCmd),
    /// Time training steps, MI computations and encoding; print a table.
    Bench(BenchCmd),
}

/// The parameters a command takes from the schema.
pub trait ParamSet {
    /// Whether the command takes `p`.
    fn takes(p: Param) -> bool;
}

fn model_group(p: Param) -> bool {
    matches!(p.def().group, Group::Model | Group::Train | Group::Eval | Group::Certify)
}

fn data_group(p: Param) -> bool {
    p.def().group == Group::Data
}

/// `train`: the data, the model, training, evaluation, and where the model goes.
pub struct TrainParams;
impl ParamSet for TrainParams {
    fn takes(p: Param) -> bool {
        (model_group(p) || data_group(p) || matches!(p, Param::Out | Param::Resume | Param::Force))
            && p != Param::Weights
    }
}

/// `sweep`: as `train`, but seeds (and gammas) are the grid's axes.
pub struct SweepParams;
impl ParamSet for SweepParams {
    fn takes(p: Param) -> bool {
        (model_group(p) || data_group(p) || p.def().group == Group::Sweep || p == Param::Out)
            && !matches!(p, Param::Seed | Param::Sources | Param::Merged)
            && p.def().group != Group::Certify
            && p != Param::Weights
    }
}

/// `eval`, `mi`, `certify`: a saved model, held-out rows, evaluation.
pub struct EvalParams;
impl ParamSet for EvalParams {
    fn takes(p: Param) -> bool {
        p.def().group == Group::Eval
            || matches!(p, Param::Model | Param::Input | Param::Target | Param::Sensitive | Param::Positive)
            || matches!(p, Param::Delimiter | Param::Weights)
    }
}

/// `predict`, `encode`: a saved model applied to rows.
pub struct PredictParams;
impl ParamSet for PredictParams {
    fn takes(p: Param) -> bool {
        p.def().group == Group::Predict
            || matches!(
                p,
                Param::Model
                    | Param::Input
                    | Param::Output
                    | Param::Inference
                    | Param::Draws
                    | Param::Seed
                    | Param::Delimiter
            )
    }
}

/// `report`: sweep directories.
pub struct ReportParams;
impl ParamSet for ReportParams {
    fn takes(p: Param) -> bool {
        matches!(p, Param::Sources | Param::Merged)
    }
}

/// The values given on the command line for the schema's parameters a command takes, as text (parsed and
/// checked by the library, so a value means the same here, in Python and in a saved model).
pub struct Given<S> {
    values: Vec<(Param, String)>,
    set: PhantomData<S>,
}

impl<S> Given<S> {
    /// The text given for `p`.
    pub fn text(&self, p: Param) -> Option<&str> {
        self.values.iter().find(|(q, _)| *q == p).map(|(_, v)| v.as_str())
    }

    /// Whether `p` was given.
    pub fn has(&self, p: Param) -> bool {
        self.text(p).is_some()
    }

    /// The value of `p`, parsed and checked against its range, when given.
    pub fn get<T: ParamValue>(&self, p: Param) -> Result<Option<T>> {
        let Some(text) = self.text(p) else { return Ok(None) };
        let bad = |reason| Error::param(p, text, reason);
        let canonical = p.def().normalise(text).map_err(bad)?;
        Ok(Some(T::parse(&canonical).map_err(bad)?))
    }

    /// The value of `p`, or its default (for tables).
    pub fn value<T: ParamValue>(&self, p: Param, default: fn(ModelKind) -> T) -> Result<T> {
        Ok(self.get(p)?.unwrap_or_else(|| default(ModelKind::Table)))
    }

    /// The value of a parameter that must be given.
    pub fn required<T: ParamValue>(&self, p: Param, why: &str) -> Result<T> {
        self.get(p)?.ok_or_else(|| Error::param(p, "missing", why))
    }

    /// The model parameters given (the schema's `model` list), over the preset and the defaults.
    pub fn params(&self) -> Result<FairParams> {
        let mut params = FairParams::new();
        for (p, text) in self.values.iter().filter(|(p, _)| model_group(*p) || *p == Param::Seed) {
            params = params.set(*p, text)?;
        }
        Ok(params)
    }

    /// The evaluation options given, over their defaults, with `seed`.
    pub fn eval_options(&self, seed: u64) -> Result<EvalOptions> {
        self.params()?.seed(seed).eval_options()
    }
}

/// A flag of the schema: long name, help (doc, range, default) and, for a switch, no value.
fn flag(p: Param) -> Arg {
    let d = p.def();
    let mut help = d.meaning();
    let default = d.default_words();
    if !default.is_empty() && !d.is_switch() {
        help += &format!(" [default: {default}]");
    }
    let long = d.cli.unwrap_or(d.name);
    let arg = Arg::new(d.name).long(long).help(help).help_heading(heading(d.group));
    let arg = if p == Param::Input { arg.visible_alias("csv") } else { arg };
    if d.is_switch() {
        arg.action(ArgAction::SetTrue).overrides_with(d.name)
    } else if d.type_name == "list of paths" {
        // Directories are listed the way a shell expands a glob: `--from sweeps/*`.
        arg.value_name("PATH").num_args(1..).action(ArgAction::Append)
    } else {
        // Given twice, the last value counts (as a later flag overrides an earlier one in most tools).
        arg.value_name(value_name(d.type_name)).allow_hyphen_values(true).action(ArgAction::Set).overrides_with(d.name)
    }
}

/// The section of `--help` a parameter's flag is listed in.
fn heading(group: Group) -> &'static str {
    match group {
        Group::Model => "Model",
        Group::Train => "Training",
        Group::Eval => "Evaluation",
        Group::Data => "Data",
        Group::Predict => "Prediction",
        Group::Certify => "Certified fairness on demand",
        Group::Files | Group::Python => "Files",
        Group::Sweep => "Sweep",
    }
}

fn value_name(type_name: &str) -> &'static str {
    match type_name {
        "number" => "F",
        "integer" => "N",
        "path" => "PATH",
        "choice" => "NAME",
        "penalty" => "KIND[:TARGET][@ESTIMATE]",
        t if t.starts_with("list") => "LIST",
        _ => "VALUE",
    }
}

impl<S: ParamSet> Args for Given<S> {
    fn augment_args(cmd: Command) -> Command {
        SCHEMA.iter().filter(|d| d.cli.is_some() && S::takes(d.param)).fold(cmd, |cmd, d| cmd.arg(flag(d.param)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<S: ParamSet> FromArgMatches for Given<S> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut values = Vec::new();
        for d in SCHEMA.iter().filter(|d| d.cli.is_some() && S::takes(d.param)) {
            if d.is_switch() {
                if m.get_flag(d.name) {
                    values.push((d.param, "true".to_string()));
                }
            } else if let Some(v) = m.get_many::<String>(d.name) {
                values.push((d.param, v.cloned().collect::<Vec<_>>().join(",")));
            }
        }
        Ok(Given { values, set: PhantomData })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

#[derive(Args)]
pub struct BenchCmd {
    #[arg(long, default_value_t = 5, help = "Repetitions of each measurement (the median is printed).")]
    pub repeats: usize,
}

#[derive(Args)]
pub struct ReportCmd {
    #[command(flatten)]
    pub given: Given<ReportParams>,
    #[arg(long, help = "The Markdown file to write.")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct TrainCmd {
    #[command(flatten)]
    pub given: Given<TrainParams>,
    #[arg(long, default_value_t = 5, help = "With --out: save the training state every N epochs (0 = never).")]
    pub checkpoint_every: usize,
    #[arg(long, help = "Leave the wall-clock time out (null): a byte-identical metrics.json.")]
    pub reproducible: bool,
    #[arg(long, help = "Print the metrics JSON instead of the table.")]
    pub json: bool,
}

#[derive(Args)]
pub struct EvalCmd {
    #[command(flatten)]
    pub given: Given<EvalParams>,
    #[arg(long, help = "Print JSON instead of the table.")]
    pub json: bool,
}

#[derive(Args)]
pub struct PredictCmd {
    #[command(flatten)]
    pub given: Given<PredictParams>,
}

#[derive(Args)]
pub struct SweepCmd {
    #[command(flatten)]
    pub given: Given<SweepParams>,
}

impl<S> Given<S> {
    /// The training data: a shipped table or image set, or a table file.
    pub fn data_spec(&self) -> Result<DataSpec> {
        let seed = self.value(Param::Seed, default::seed)?;
        let dataset: Option<String> = self.get(Param::Dataset)?;
        if let Some(Ok(images)) = dataset.as_ref().map(|d| d.parse::<ImageDataset>()) {
            let what = "an image dataset (its sensitive attribute is the colour)";
            self.refuse(
                &[Param::TestSize, Param::ValSize, Param::Sensitive, Param::Delimiter, Param::Input, Param::Task],
                what,
            )?;
            let rho = self.value(Param::Rho, default::rho)?;
            let spec = ImageSpec {
                mnist_dir: self.get(Param::MnistDir)?,
                train_size: self.get::<usize>(Param::TrainSize)?,
                ..ImageSpec::new(images, rho.first().copied().unwrap_or(0.99), seed)
            };
            return Ok(DataSpec::Images(spec));
        }
        if let Some(name) = &dataset {
            let builtin: Builtin = name.parse()?;
            let what = "a shipped dataset (its columns are fixed; see data/README.md)";
            self.refuse(
                &[
                    Param::Input,
                    Param::Target,
                    Param::Positive,
                    Param::Categorical,
                    Param::Drop,
                    Param::Delimiter,
                    Param::Task,
                ],
                what,
            )?;
            let source = Source::Builtin { name: builtin, sensitive: self.get(Param::Sensitive)? };
            return self.table(source, seed).map(DataSpec::Table);
        }
        let Some(path) = self.get::<PathBuf>(Param::Input)? else {
            let why = "say which data: a shipped dataset (adult, compas, german, biased-mnist, biased-fashion-mnist) \
                       or a table file with its target and sensitive columns";
            return Err(Error::param(Param::Dataset, "nothing", why));
        };
        let why = "a table file needs its target and sensitive columns";
        let source = Source::Csv {
            path: std::path::absolute(&path).unwrap_or_else(|_| path.clone()),
            target: self.required(Param::Target, why)?,
            sensitive: self.required(Param::Sensitive, why)?,
            sensitive_bins: self.get(Param::SensitiveBins)?,
            positive: self.get(Param::Positive)?,
            categorical: self.value(Param::Categorical, default::categorical)?,
            drop: self.value(Param::Drop, default::drop)?,
            delimiter: self.get(Param::Delimiter)?,
            task: self.value(Param::Task, default::task)?,
        };
        self.table(source, seed).map(DataSpec::Table)
    }

    fn table(&self, source: Source, seed: u64) -> Result<TableSpec> {
        let spec = TableSpec {
            source,
            test_size: self.value(Param::TestSize, default::test_size)?,
            val_size: self.value(Param::ValSize, default::val_size)?,
            seed,
            include_sensitive: self.value(Param::IncludeSensitive, default::include_sensitive)?,
            certify_size: self.value(Param::CertifySize, default::certify_size)?,
            stream: self.value(Param::Stream, default::stream)?,
            missing: self.value(Param::Missing, default::missing)?,
        };
        spec.validate().map(|_| spec)
    }

    /// An error naming the first given parameter of `params`, which `what` does not take (a flag is never
    /// ignored).
    fn refuse(&self, params: &[Param], what: &str) -> Result<()> {
        match params.iter().find(|p| self.has(**p)) {
            Some(p) => Err(Error::param(*p, self.text(*p).unwrap_or_default(), format!("not an option of {what}"))),
            None => Ok(()),
        }
    }

    /// An error when row weights are given to a command other than `certify` (`what`), which would not
    /// read them.
    pub fn refuse_weights(&self, what: &str) -> Result<()> {
        self.refuse(&[Param::Weights], &format!("{what} (only certify reads row weights)"))
    }

    /// The held-out rows' roles, when a table file is given.
    pub fn held_out(&self, seed: u64) -> Result<Option<(PathBuf, HeldOut)>> {
        let Some(path) = self.get::<PathBuf>(Param::Input)? else {
            if let Some(w) = self.text(Param::Weights) {
                let why = "weights are a column of held-out rows: give the table file that holds it";
                return Err(Error::param(Param::Weights, w, why));
            }
            return Ok(None);
        };
        let why = "held-out rows need their target and sensitive columns";
        let held = HeldOut {
            target: self.required(Param::Target, why)?,
            sensitive: self.required(Param::Sensitive, why)?,
            positive: self.get(Param::Positive)?,
            seed,
            delimiter: self.get(Param::Delimiter)?,
            weights: self.get(Param::Weights)?,
        };
        Ok(Some((path, held)))
    }
}

impl TrainCmd {
    /// The model directory (the one to resume, or `--out`) and what it may already hold.
    pub fn output(&self) -> Result<(Option<PathBuf>, Reuse)> {
        let g = &self.given;
        if let Some(dir) = g.get::<PathBuf>(Param::Resume)? {
            return Ok((Some(dir), Reuse::Resume));
        }
        let reuse = if g.value(Param::Force, default::force)? { Reuse::Replace } else { Reuse::Fresh };
        Ok((g.get(Param::Out)?, reuse))
    }

    /// With a certified bound asked for (`--max-certified-dp`/`--max-certified-eo`): the checked
    /// parameters, the data and its spec, for the search; `None` for a plain training run.
    pub fn search_request(&self) -> Result<Option<(ValidParams, DataSpec, Prepared)>> {
        let g = &self.given;
        if !g.has(Param::MaxCertifiedDp) && !g.has(Param::MaxCertifiedEo) {
            return Ok(None);
        }
        if let Some(text) = g.text(Param::Resume) {
            let why = "a search for a certified bound keeps no checkpoint to resume; run it again";
            return Err(Error::param(Param::Resume, text, why));
        }
        let spec = g.data_spec()?;
        let params = g.params()?.check()?;
        let data = spec.prepare()?;
        Ok(Some((params, spec, data)))
    }

    /// The run the flags describe (or the one to resume, and its directory), and its data (prepared once:
    /// the defaults depend on it).
    pub fn run_file(&self) -> Result<(RunFile, Prepared, Option<PathBuf>)> {
        let g = &self.given;
        if let Some(dir) = g.get::<PathBuf>(Param::Resume)? {
            // A resumed run keeps every option it had: any other parameter given is refused.
            if let Some((p, text)) = g.values.iter().find(|(p, _)| *p != Param::Resume) {
                let why = format!("a resumed run keeps every option of {}", dir.display());
                return Err(Error::param(*p, text, why));
            }
            let run = RunFile::load(&dir)?;
            let data = run.config.data.prepare()?;
            return Ok((run, data, Some(dir)));
        }
        let rho: Vec<f64> = g.value(Param::Rho, default::rho)?;
        if rho.len() > 1 {
            return Err(Error::param(Param::Rho, rho.text(), "train takes one value (a list is for a sweep)"));
        }
        let spec = g.data_spec()?;
        let params = g.params()?.check()?;
        let data = spec.prepare()?;
        let config = params.resolve(&data, &spec)?;
        let (checkpoint_every, reproducible) = (self.checkpoint_every, self.reproducible);
        Ok((RunFile { config, checkpoint_every, reproducible, writer_pid: 0 }, data, None))
    }
}

impl SweepCmd {
    /// The grid's axes.
    pub fn axes(&self) -> Result<Axes> {
        let g = &self.given;
        let methods: Vec<String> =
            g.value(Param::Methods, |_| Method::NAMES.iter().map(|m| m.to_string()).collect())?;
        let penalties: Vec<String> = g.value(Param::Penalties, |_| {
            ["per-neuron@bank", "per-neuron:odds", "joint:odds"].iter().map(|p| p.to_string()).collect()
        })?;
        Ok(Axes {
            methods: methods.iter().map(|m| m.parse()).collect::<Result<_>>()?,
            penalties: penalties.iter().map(|p| p.parse::<PenaltySpec>()).collect::<Result<_>>()?,
            rhos: g.value(Param::Rho, |_| vec![])?,
            gammas: g.get(Param::Gammas)?,
            seeds: g.value(Param::Seeds, default::seeds)?,
        })
    }

    /// Which share of the grid to train.
    pub fn shard(&self) -> Result<Shard> {
        self.given.value::<String>(Param::Shard, default::shard)?.parse()
    }

    /// Runs trained at once.
    pub fn jobs(&self, threads: usize) -> Result<usize> {
        let jobs: Option<usize> = self.given.get(Param::Jobs)?;
        check::jobs(&jobs)?;
        Ok(jobs.unwrap_or(threads))
    }
}
