//! The command line's arguments ("low" arguments, as clap parses them) and their resolution, once, into
//! library values (the "high" arguments: [`FairParams`], [`DataSpec`], [`EvalOptions`]). Defaults that
//! depend on the data (tables or images) live in the library: a model flag not given stays `None` here.

use clap::{Args, Parser, Subcommand};
use fairbits::data::{Builtin, DataSpec, HeldOut, ImageDataset, ImageSpec, Prepared, Source, TableSpec};
use fairbits::estimator::RunFile;
use fairbits::experiments::{tabular::Method, Shard};
use fairbits::model::{Activation, Estimator, PreActivation};
use fairbits::train::{Backend, LossForm};
use fairbits::{Error, EvalOptions, FairParams, Inference, PenaltySpec, Preset, Result};
use std::path::PathBuf;

fn parse<T: std::str::FromStr<Err = Error>>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

const EXAMPLES: &str = "Examples:\n  fairbits train --dataset adult --preset invariant --out model\n  fairbits eval --model model\n  fairbits certify --model model --csv audit.csv --target income-per-year --sensitive sex\n  fairbits predict --model model --input new.csv --output predictions.csv\n  fairbits sweep --dataset compas --out sweeps/compas && fairbits report --from sweeps/compas --out RESULTS.md";

/// Invariant representations with stochastically quantized neural networks.
#[derive(Parser)]
#[command(name = "fairbits", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[arg(long, global = true, help = "Threads for probes, Monte Carlo and sweeps [default: all cores].")]
    pub threads: Option<usize>,
    #[arg(long, short, global = true, help = "No progress bar, warnings only.")]
    pub quiet: bool,
    #[arg(long, global = true, help = "Field separator of the CSV files read [default: ,] (`$'\\t'` for tabs).")]
    pub delimiter: Option<char>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a network, evaluate it on the test split, optionally save it.
    Train(TrainCmd),
    /// Evaluate a saved model on its own test split, or on every row of a held-out CSV.
    Eval(EvalCmd),
    /// Positive-class probability and 0/1 decision (images: class probabilities) for every input row.
    Predict(PredictCmd),
    /// Write the stochastic layer's codes (or probabilities) for every input row.
    Encode(PredictCmd),
    /// The information the stochastic layer carries about the sensitive attribute, and the certificate.
    Mi(EvalCmd),
    /// Certify a saved encoder for the population, from held-out rows it never saw (--csv) or its own.
    Certify(EvalCmd),
    /// Train methods (tables) or penalties (images) over gammas and seeds; resumable; CSVs and plots.
    Sweep(SweepCmd),
    /// Write a Markdown results report from sweep directories.
    Report(ReportCmd),
    /// Time training steps, MI computations and encoding; print a table.
    Bench(BenchCmd),
}

#[derive(Args)]
pub struct BenchCmd {
    #[arg(long, default_value_t = 5, help = "Repetitions of each measurement (the median is printed).")]
    pub repeats: usize,
}

#[derive(Args)]
pub struct ReportCmd {
    #[arg(long, num_args = 1.., required = true, help = "Sweep directories (one per dataset).")]
    pub from: Vec<PathBuf>,
    #[arg(long, help = "The Markdown file to write.")]
    pub out: PathBuf,
    #[arg(long, help = "Merge the --from directories (shards of one sweep) into this one, then report it.")]
    pub merge: Option<PathBuf>,
}

#[derive(Args, Default)]
pub struct DataArgs {
    /// Shipped data: adult, compas, german, biased-mnist, biased-fashion-mnist.
    #[arg(long, conflicts_with = "csv")]
    pub dataset: Option<String>,
    #[arg(
        long,
        help = "A table with a header: CSV (.csv, .csv.gz), Parquet or Arrow IPC (needs --target, --sensitive)."
    )]
    pub csv: Option<PathBuf>,
    #[arg(long, help = "Target column of --csv (two distinct values).")]
    pub target: Option<String>,
    #[arg(long, help = "Sensitive column of --csv; for --dataset: adult sex|race, compas race|sex, german age|sex.")]
    pub sensitive: Option<String>,
    #[arg(long, help = "Target value counted as positive (default: the larger of the two).")]
    pub positive: Option<String>,
    #[arg(long, value_delimiter = ',', help = "Columns of --csv to one-hot although they hold numbers.")]
    pub categorical: Vec<String>,
    #[arg(long, value_delimiter = ',', help = "Columns of --csv to ignore.")]
    pub drop: Vec<String>,
    #[arg(long, help = "Fraction of rows held out for testing [default: 0.3].")]
    pub test_size: Option<f64>,
    #[arg(long, help = "Fraction of rows held out for the population certificate [default: 0: the test split].")]
    pub certify_size: Option<f64>,
    #[arg(long, help = "Fraction of training rows held out for validation and early stopping [default: 0].")]
    pub val_size: Option<f64>,
    #[arg(long, help = "Seed of split, initialisation, batches, samples and probes [default: 0].")]
    pub seed: Option<u64>,
    #[arg(long, help = "Also feed the sensitive attribute to the network.")]
    pub include_sensitive: bool,
    #[arg(long, help = "Parquet/Arrow files larger than memory: read in passes, train from a mapped cache.")]
    pub stream: bool,
    /// Images: P(a training image has its class's colour) [default: 0.99; a list for sweep].
    #[arg(long, value_delimiter = ',')]
    pub rho: Vec<f64>,
    #[arg(long, help = "Images: directory of the four MNIST-format IDX files.")]
    pub mnist_dir: Option<PathBuf>,
    #[arg(long, help = "Images: train on a class-stratified subsample of this many images.")]
    pub train_size: Option<usize>,
}

#[derive(Args, Default, PartialEq)]
#[command(allow_negative_numbers = true)]
pub struct ModelArgs {
    /// invariant: --hidden 64,12 --penalty joint --gamma 8 --warmup-epochs 20 --epochs 80; flags override it.
    #[arg(long, value_parser = parse::<Preset>)]
    pub preset: Option<Preset>,
    #[arg(long, value_delimiter = ',', help = "Hidden layer widths [default: 64,32 for tables, 64,12 for images].")]
    pub hidden: Option<Vec<usize>>,
    #[arg(long, value_delimiter = ',', help = "0-based indices of the stochastic hidden layers [default: the last].")]
    pub stochastic: Option<Vec<usize>>,
    #[arg(long, help = "No stochastic layer: the full-precision `mlp` baseline.")]
    pub full_precision: bool,
    #[arg(long, value_parser = parse::<PreActivation>, help = "Stochastic pre-activation: tanh (default) or linear.")]
    pub pre_activation: Option<PreActivation>,
    #[arg(long, help = "Temperature tau of p = sigmoid(tau a) [default: 6].")]
    pub temperature: Option<f64>,
    #[arg(long, value_parser = parse::<Estimator>, help = "Straight-through estimator: identity (default) or sigmoid.")]
    pub estimator: Option<Estimator>,
    #[arg(long, value_parser = parse::<Activation>, help = "Full-precision activation: tanh (default) or relu.")]
    pub activation: Option<Activation>,
    #[arg(long, value_delimiter = ',', help = "Images: output channels of each convolution [default: 8,16].")]
    pub channels: Option<Vec<usize>>,
    #[arg(long, help = "Images: kernel size [default: 5].")]
    pub kernel: Option<usize>,
    #[arg(long, help = "Weight of the penalty [default: 0].")]
    pub gamma: Option<f64>,
    /// KIND[:TARGET][@ESTIMATE]: KIND per-neuron|joint|pairwise|adversarial, TARGET parity|odds, ESTIMATE batch|bank [default: per-neuron for tables, per-neuron:odds for images].
    #[arg(long, value_parser = parse::<PenaltySpec>)]
    pub penalty: Option<PenaltySpec>,
    /// sum: CE + gamma I (default); convex: (1-gamma) CE + gamma I.
    #[arg(long, value_parser = parse::<LossForm>)]
    pub loss_form: Option<LossForm>,
    #[arg(long, help = "Passes over the training split [default: 50 for tables, 20 for images].")]
    pub epochs: Option<usize>,
    #[arg(long, help = "Rows per batch [default: 256 for tables, 128 for images].")]
    pub batch_size: Option<usize>,
    #[arg(long, help = "Adam learning rate [default: 0.001].")]
    pub lr: Option<f64>,
    #[arg(long, help = "Decoupled weight decay [default: 0].")]
    pub weight_decay: Option<f64>,
    #[arg(long, help = "Epochs over which gamma ramps linearly from 0 [default: 0].")]
    pub warmup_epochs: Option<usize>,
    /// auto (default): the fused CPU step where it applies; candle: always.
    #[arg(long, value_parser = parse::<Backend>)]
    pub backend: Option<Backend>,
    #[arg(long, help = "Early-stopping patience in epochs (with --val-size > 0) [default: 10].")]
    pub patience: Option<usize>,
}

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// What T emits for the metrics: sample (certified), prob, threshold.
    #[arg(long, default_value = "sample", value_parser = parse::<Inference>)]
    pub inference: Inference,
    #[arg(long, default_value_t = 10, help = "Draws of one code per row averaged in sample mode and for probes.")]
    pub draws: usize,
    #[arg(long, default_value_t = 2000, help = "Monte-Carlo draws of the joint MI when m > --m-max.")]
    pub mc_samples: usize,
    #[arg(long, default_value_t = 20, help = "Widest layer enumerated exactly (2^m codes; at most 24).")]
    pub m_max: usize,
    #[arg(long, default_value_t = 100, help = "Trees of the random-forest probe.")]
    pub forest_trees: usize,
    #[arg(long, default_value_t = 5000, help = "Probes learn on (and are scored on) at most this many rows.")]
    pub probe_rows: usize,
    #[arg(long, default_value_t = 2, help = "Draws of sampled codes the probes are fitted on.")]
    pub probe_draws: usize,
    #[arg(long, default_value_t = 0.95, help = "Confidence of the population certificate.")]
    pub confidence: f64,
}

#[derive(Args)]
pub struct TrainCmd {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[arg(long, help = "Save model.safetensors, config.json and metrics.json here (and checkpoints while training).")]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 5, help = "With --out: save the training state every N epochs (0 = never).")]
    pub checkpoint_every: usize,
    /// Continue an interrupted `train --out DIR` with its options.
    #[arg(long, conflicts_with_all = ["dataset", "csv", "out"])]
    pub resume: Option<PathBuf>,
    #[arg(long, help = "Leave the wall-clock time out (null): a byte-identical metrics.json.")]
    pub reproducible: bool,
    #[arg(long, help = "Print the metrics JSON instead of the table.")]
    pub json: bool,
}

#[derive(Args)]
pub struct EvalCmd {
    #[arg(long, help = "A directory written by `train --out`.")]
    pub model: PathBuf,
    #[arg(long, help = "Held-out CSV: every row is evaluated (needs --target and --sensitive).")]
    pub csv: Option<PathBuf>,
    #[arg(long, requires = "csv", help = "Target column of --csv.")]
    pub target: Option<String>,
    #[arg(long, requires = "csv", help = "Sensitive column of --csv (its groups are read from the file).")]
    pub sensitive: Option<String>,
    #[arg(long, requires = "csv", help = "Positive target value [default: the model's, when the column has it].")]
    pub positive: Option<String>,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[arg(long, help = "Print JSON instead of the table.")]
    pub json: bool,
}

#[derive(Args)]
pub struct PredictCmd {
    #[arg(long, help = "A directory written by `train --out`.")]
    pub model: PathBuf,
    /// Rows: a CSV with the model's feature columns (by name), or for images a .npy array N x 3 x H x W.
    #[arg(long)]
    pub input: Option<PathBuf>,
    #[arg(long, help = "Image models: instead of --input, one of their sets: train, test-unbiased, test-biased.")]
    pub split: Option<String>,
    #[arg(long, help = "Output: .csv (with the input row index) or .npy (values; index in FILE.index.csv).")]
    pub output: PathBuf,
    #[arg(long, help = "A column of --input carried to the output as the row's identifier.")]
    pub id: Option<String>,
    /// sample: fresh codes; prob: p (not certified); threshold: 1[p >= 0.5].
    #[arg(long, default_value = "sample", value_parser = parse::<Inference>)]
    pub inference: Inference,
    #[arg(long, default_value_t = 10, help = "predict: mean of this many sampled predictions (1 = certified).")]
    pub draws: usize,
    #[arg(long, default_value_t = 0.5, help = "predict: decision threshold on the positive-class probability.")]
    pub threshold: f64,
    #[arg(long, default_value_t = 0, help = "Seed of the samples.")]
    pub seed: u64,
}

#[derive(Args)]
pub struct SweepCmd {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Tables: methods: sqnn, sqnn-joint, mlp, adversarial.
    #[arg(long, value_delimiter = ',', default_value = "sqnn,sqnn-joint,mlp,adversarial", value_parser = parse::<Method>)]
    pub methods: Vec<Method>,
    /// Images: penalties, each at every gamma > 0 (gamma 0 is the shared baseline).
    #[arg(long, value_delimiter = ',', default_value = "per-neuron@bank,per-neuron:odds,joint:odds", value_parser = parse::<PenaltySpec>)]
    pub penalties: Vec<PenaltySpec>,
    #[arg(long, value_delimiter = ',', help = "Penalty weights [default: 0,0.1,0.5,1,2,5 tables; 0,1,10,30 images].")]
    pub gammas: Option<Vec<f64>>,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2", help = "Seeds.")]
    pub seeds: Vec<u64>,
    #[arg(long, help = "Output directory (an existing sweep there is resumed; several processes may share it).")]
    pub out: PathBuf,
    #[arg(long, help = "Runs in parallel [default: --threads].")]
    pub jobs: Option<usize>,
    #[arg(long, default_value = "1/1", value_parser = parse::<Shard>, help = "Train only this share of the grid: I/N.")]
    pub shard: Shard,
}

impl DataArgs {
    /// The training data: a shipped table or image set, or a CSV.
    pub fn spec(&self, delimiter: Option<char>) -> Result<DataSpec> {
        let seed = self.seed.unwrap_or(0);
        if let Some(Ok(dataset)) = self.dataset.as_ref().map(|d| d.parse::<ImageDataset>()) {
            #[rustfmt::skip]
            self.refuse(&[("test_size", self.test_size.is_some()), ("val_size", self.val_size.is_some()),
                ("sensitive", self.sensitive.is_some()), ("delimiter", delimiter.is_some())], "an image dataset (its sensitive attribute is the colour)")?;
            let (rho, dir, train_size) = (self.rho.first().copied(), self.mnist_dir.clone(), self.train_size);
            let spec = ImageSpec { mnist_dir: dir, train_size, ..ImageSpec::new(dataset, rho.unwrap_or(0.99), seed) };
            return Ok(DataSpec::Images(spec));
        }
        if let Some(name) = &self.dataset {
            let builtin: Builtin = name.parse()?;
            #[rustfmt::skip]
            self.refuse(&[("target", self.target.is_some()), ("positive", self.positive.is_some()),
                ("categorical", !self.categorical.is_empty()), ("drop", !self.drop.is_empty()), ("delimiter", delimiter.is_some())],
                "a shipped dataset (its columns are fixed; see data/README.md)")?;
            let source = Source::Builtin { name: builtin, sensitive: self.sensitive.clone() };
            return Ok(DataSpec::Table(self.table(source)));
        }
        let Some(path) = &self.csv else {
            return Err(Error::param("dataset", "nothing", "say which data: --dataset adult|compas|german|biased-mnist|biased-fashion-mnist, or --csv PATH --target COL --sensitive COL"));
        };
        let why = "--csv needs --target COL and --sensitive COL";
        let need = |v: &Option<String>, what| v.clone().ok_or_else(|| Error::param(what, "missing", why));
        Ok(DataSpec::Table(self.table(Source::Csv {
            path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            target: need(&self.target, "target")?,
            sensitive: need(&self.sensitive, "sensitive")?,
            positive: self.positive.clone(),
            categorical: self.categorical.clone(),
            drop: self.drop.clone(),
            delimiter,
        })))
    }

    fn table(&self, source: Source) -> TableSpec {
        let (test_size, val_size) = (self.test_size.unwrap_or(0.3), self.val_size.unwrap_or(0.0));
        let (seed, certify_size, stream) = (self.seed.unwrap_or(0), self.certify_size.unwrap_or(0.0), self.stream);
        TableSpec { source, test_size, val_size, seed, include_sensitive: self.include_sensitive, certify_size, stream }
    }

    /// An error naming the first given flag that `what` does not take (a flag is never ignored).
    fn refuse(&self, given: &[(&str, bool)], what: &str) -> Result<()> {
        let why = || format!("not an option of {what}");
        given.iter().find(|g| g.1).map_or(Ok(()), |g| Err(Error::param(g.0, "given", why())))
    }
}

impl ModelArgs {
    /// The parameters: the flags given, over the preset, over the library's defaults.
    pub fn params(&self, seed: u64, eval: EvalOptions) -> FairParams {
        let mut p = FairParams::new().seed(seed).eval(eval).full_precision(self.full_precision);
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field.clone() { p = p.$field(v); })* };
        }
        #[rustfmt::skip]
        set!(preset, hidden, stochastic, pre_activation, temperature, estimator, activation, channels, kernel,
             gamma, penalty, loss_form, epochs, batch_size, lr, weight_decay, warmup_epochs, backend, patience);
        p
    }
}

impl EvalArgs {
    /// The evaluation options with `seed`.
    pub fn options(&self, seed: u64) -> Result<EvalOptions> {
        let mut o = EvalOptions { seed, inference: self.inference, draws: self.draws, ..EvalOptions::default() };
        (o.mc_samples, o.m_max, o.forest_trees) = (self.mc_samples, self.m_max, self.forest_trees);
        (o.probe_rows, o.probe_draws, o.confidence) = (self.probe_rows, self.probe_draws, self.confidence);
        o.validate().map(|_| o)
    }
}

impl TrainCmd {
    /// The run the flags describe (or the one to resume, and its directory), and its data (prepared once:
    /// the defaults depend on it).
    pub fn run_file(&self, delimiter: Option<char>) -> Result<(RunFile, Prepared, Option<PathBuf>)> {
        if let Some(dir) = &self.resume {
            if self.model != ModelArgs::default() {
                let why = format!("a resumed run keeps every option of {}", dir.display());
                return Err(Error::param("resume", dir.display(), why));
            }
            let run = RunFile::load(dir)?;
            let data = run.config.data.prepare()?;
            return Ok((run, data, Some(dir.clone())));
        }
        if self.data.rho.len() > 1 {
            let rho = format!("{:?}", self.data.rho);
            return Err(Error::param("rho", rho, "train takes one value (a list is for sweep)"));
        }
        let (spec, seed) = (self.data.spec(delimiter)?, self.data.seed.unwrap_or(0));
        let params = self.model.params(seed, self.eval.options(seed)?).check()?;
        let data = spec.prepare()?;
        let config = params.resolve(&data, &spec)?;
        let (checkpoint_every, reproducible) = (self.checkpoint_every, self.reproducible);
        Ok((RunFile { config, checkpoint_every, reproducible }, data, None))
    }
}

impl EvalCmd {
    /// The held-out rows' roles, when a CSV is given.
    pub fn held_out(&self, seed: u64, delimiter: Option<char>) -> Result<Option<(PathBuf, HeldOut)>> {
        let Some(path) = &self.csv else { return Ok(None) };
        let why = "a held-out --csv needs --target COL and --sensitive COL";
        let need = |v: &Option<String>, what| v.clone().ok_or_else(|| Error::param(what, "missing", why));
        let (target, sensitive) = (need(&self.target, "target")?, need(&self.sensitive, "sensitive")?);
        Ok(Some((path.clone(), HeldOut { target, sensitive, positive: self.positive.clone(), seed, delimiter })))
    }
}
