//! The `fairbits` command line: a thin layer that turns flags into library calls.

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use fairbits::data::{self, Builtin, DataSpec, Source};
use fairbits::model::{Activation, Estimator, Inference, ModelConfig, PreActivation, SqNet};
use fairbits::report::{self, EvalOptions, Metrics, RunInfo};
use fairbits::store::{self, SavedConfig};
use fairbits::train::{self, streams, LossForm, Penalty, TrainConfig};
use fairbits::vision::{self, Estimate, ImageDataset, ImageSpec};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Exit codes (documented in the README).
mod exit {
    pub const RUNTIME: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INPUT: i32 = 3;
    pub const MODEL_DIR: i32 = 4;
    pub const DIVERGED: i32 = 5;
}

#[derive(Parser)]
#[command(
    name = "fairbits",
    version,
    about = "Invariant representations with stochastically quantized neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads for probes and Monte Carlo (default: all cores); the network itself runs on one thread.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// No progress bar, warnings only.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network, evaluate it on the test split, optionally save it.
    Train(TrainCmd),
    /// Re-evaluate a saved model (on its own data and split unless data flags say otherwise).
    Eval(EvalCmd),
    /// Write the stochastic layer's codes (or probabilities) for the rows of a CSV file.
    Encode(EncodeCmd),
    /// Report the information the stochastic layer carries about the sensitive attribute, and the certificate.
    Mi(MiCmd),
    /// Train several methods over gammas and seeds (in parallel, resumable); write results.csv,
    /// summary.csv and plots.
    Sweep(SweepCmd),
    /// Write a Markdown results report (tables, plots, answers to Q1 and Q2) from sweep directories.
    Report(ReportCmd),
    /// Time training steps, MI computations and encoding on the shipped Adult data; print a table.
    Bench(BenchCmd),
}

#[derive(Args)]
struct BenchCmd {
    /// Repetitions of each measurement (the median is printed).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

#[derive(Args)]
struct SweepCmd {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    images: ImageArgs,
    /// Image datasets: penalties, each run at every gamma > 0 (gamma 0 is the shared baseline):
    /// per-neuron, joint, per-neuron-conditional, joint-conditional.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "per-neuron,per-neuron-conditional,joint-conditional"
    )]
    penalties: Vec<String>,
    /// Image datasets: hidden layer widths [default 64,12].
    #[arg(long, value_delimiter = ',')]
    image_hidden: Option<Vec<usize>>,
    /// Penalty weights (for sqnn, sqnn-joint, adversarial).
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.5,1,2,5")]
    gammas: Vec<f64>,
    /// Seeds.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Methods.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqnn,sqnn-joint,mlp,adversarial"
    )]
    methods: Vec<fairbits::sweep::Method>,
    /// Output directory (an existing sweep there is resumed).
    #[arg(long)]
    out: PathBuf,
    /// Runs in parallel [default: all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Hidden layer widths of the base architecture.
    #[arg(long, value_delimiter = ',', default_value = "64,32")]
    hidden: Vec<usize>,
    /// Passes over the training split.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[command(flatten)]
    eval: EvalArgs,
}

#[derive(Args)]
struct ReportCmd {
    /// Sweep directories (one per dataset).
    #[arg(long, num_args = 1.., required = true)]
    from: Vec<PathBuf>,
    /// The Markdown file to write.
    #[arg(long)]
    out: PathBuf,
}

/// `--dataset`: a shipped table or an image dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DatasetArg {
    /// UCI Adult: income > 50K; sensitive `sex` (default) or `race`.
    Adult,
    /// ProPublica COMPAS: two-year recidivism; sensitive `race` (default) or `sex`.
    Compas,
    /// UCI German credit: good credit; sensitive `age` (> 25, default) or `sex`.
    German,
    /// Biased-MNIST: the shipped 5,000 digits with colour-biased backgrounds (or --mnist-dir).
    BiasedMnist,
    /// Colour-biased Fashion-MNIST (Debian package dataset-fashion-mnist, or --mnist-dir).
    BiasedFashionMnist,
}

impl DatasetArg {
    fn table(self) -> Option<Builtin> {
        match self {
            DatasetArg::Adult => Some(Builtin::Adult),
            DatasetArg::Compas => Some(Builtin::Compas),
            DatasetArg::German => Some(Builtin::German),
            _ => None,
        }
    }

    fn image(self) -> Option<ImageDataset> {
        match self {
            DatasetArg::BiasedMnist => Some(ImageDataset::BiasedMnist),
            DatasetArg::BiasedFashionMnist => Some(ImageDataset::BiasedFashionMnist),
            _ => None,
        }
    }
}

/// Options of the image datasets and the convolutional encoder.
#[derive(Args, Clone)]
struct ImageArgs {
    /// Image datasets: probability that a training image has its class's colour (a list for `sweep`).
    #[arg(long, value_delimiter = ',', default_value = "0.99")]
    rho: Vec<f64>,
    /// Image datasets: directory of the four MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...).
    #[arg(long)]
    mnist_dir: Option<PathBuf>,
    /// Image datasets: train on a class-stratified subsample of this many images.
    #[arg(long)]
    train_size: Option<usize>,
    /// Image datasets: output channels of each convolution (each: kernel, ReLU, 2x2 max pooling).
    #[arg(long, value_delimiter = ',', default_value = "8,16")]
    channels: Vec<usize>,
    /// Image datasets: kernel size of the convolutions.
    #[arg(long, default_value_t = 5)]
    kernel: usize,
    /// Estimate the penalty over the whole training set (bank) or on each batch [default: bank for
    /// images, batch for tables].
    #[arg(long, value_enum)]
    estimate: Option<Estimate>,
}

impl ImageArgs {
    fn spec(&self, dataset: ImageDataset, rho: f64, seed: u64) -> ImageSpec {
        ImageSpec {
            dataset,
            rho,
            mnist_dir: self.mnist_dir.clone(),
            train_size: self.train_size,
            seed,
        }
    }
}

#[derive(Args, Clone, Default)]
struct DataArgs {
    /// A shipped dataset (tables: adult, compas, german; images: biased-mnist, biased-fashion-mnist).
    #[arg(long, value_enum, conflicts_with = "csv")]
    dataset: Option<DatasetArg>,
    /// Any CSV file with a header row (needs --target and --sensitive).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Target column of --csv (two distinct values).
    #[arg(long, requires = "csv")]
    target: Option<String>,
    /// Sensitive column of --csv; for --dataset, which attribute (adult: sex|race, compas: race|sex, german: age|sex).
    #[arg(long)]
    sensitive: Option<String>,
    /// Target value counted as positive (default: the larger of the two).
    #[arg(long, requires = "csv")]
    positive: Option<String>,
    /// Columns of --csv to one-hot even though they hold numbers (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "csv")]
    categorical: Vec<String>,
    /// Columns of --csv to ignore (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "csv")]
    drop: Vec<String>,
    /// Fraction of rows held out for testing [default: 0.3].
    #[arg(long)]
    test_size: Option<f64>,
    /// Fraction of training rows held out for validation and early stopping [default: 0].
    #[arg(long)]
    val_size: Option<f64>,
    /// Seed of split, initialisation, batches, samples and probes [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Also feed the sensitive attribute to the network.
    #[arg(long)]
    include_sensitive: bool,
}

impl DataArgs {
    /// The data spec: the flags over `base` (a saved model's spec, or the defaults).
    fn spec(&self, base: Option<&DataSpec>) -> Result<DataSpec> {
        let source = match (&self.dataset, &self.csv) {
            (Some(d), _) => Source::Builtin {
                name: d.table().with_context(|| {
                    format!("invalid --dataset {d:?}: an image dataset; images work with train, sweep and encode")
                })?,
                sensitive: self.sensitive.clone(),
            },
            (None, Some(path)) => Source::Csv {
                path: path.clone(),
                target: self.target.clone().context("--csv needs --target COL")?,
                sensitive: self.sensitive.clone().context("--csv needs --sensitive COL")?,
                positive: self.positive.clone(),
                categorical: self.categorical.clone(),
                drop: self.drop.clone(),
            },
            (None, None) => match base {
                Some(b) => b.source.clone(),
                None => bail!("say which data: --dataset adult|compas|german or --csv PATH --target COL --sensitive COL"),
            },
        };
        Ok(DataSpec {
            source,
            test_size: self.test_size.or(base.map(|b| b.test_size)).unwrap_or(0.3),
            val_size: self.val_size.or(base.map(|b| b.val_size)).unwrap_or(0.0),
            seed: self.seed.or(base.map(|b| b.seed)).unwrap_or(0),
            include_sensitive: self.include_sensitive || base.is_some_and(|b| b.include_sensitive),
        })
    }
}

#[derive(Args, Clone)]
struct EvalArgs {
    /// What the stochastic layer emits for task and fairness metrics.
    #[arg(long, value_enum, default_value = "sample")]
    inference: Inference,
    /// Draws of one code per row averaged in sample mode (and for probes on sampled codes).
    #[arg(long, default_value_t = 10)]
    draws: usize,
    /// Monte-Carlo draws of the joint MI when the layer is wider than --m-max.
    #[arg(long, default_value_t = 2000)]
    mc_samples: usize,
    /// Widest layer whose joint MI is enumerated exactly (2^m codes).
    #[arg(long, default_value_t = fairbits::mi::DEFAULT_M_MAX)]
    m_max: usize,
    /// Trees of the random-forest probe.
    #[arg(long, default_value_t = 100)]
    forest_trees: usize,
}

impl EvalArgs {
    fn options(&self, seed: u64) -> Result<EvalOptions> {
        if self.draws == 0 {
            bail!("invalid --draws = 0: must be >= 1");
        }
        if self.forest_trees == 0 {
            bail!("invalid --forest-trees = 0: must be >= 1");
        }
        if self.mc_samples < 2 {
            bail!("invalid --mc-samples = {}: must be >= 2", self.mc_samples);
        }
        if self.m_max > 24 {
            bail!("invalid --m-max = {}: at most 24 (2^24 codes)", self.m_max);
        }
        Ok(EvalOptions {
            inference: self.inference,
            draws: self.draws,
            mc_samples: self.mc_samples,
            m_max: self.m_max,
            forest_trees: self.forest_trees,
            seed,
        })
    }
}

/// A named configuration; flags given on the command line override its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    /// Strong invariance (README, "The invariant preset"): a 12-neuron stochastic layer trained with the
    /// exact joint MI penalty, gamma 5 reached by a linear ramp over 20 epochs, 80 epochs.
    Invariant,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct TrainCmd {
    /// A recommended configuration; explicit flags override it.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    images: ImageArgs,
    /// Hidden layer widths [images: 64,12 unless given].
    #[arg(long, value_delimiter = ',', default_value = "64,32")]
    hidden: Vec<usize>,
    /// 0-based indices of stochastic hidden layers [default: the last]; the MI is taken on the last of them.
    #[arg(long, value_delimiter = ',')]
    stochastic: Vec<usize>,
    /// No stochastic layer: the full-precision `mlp` baseline (its representation is the last hidden layer).
    #[arg(long, conflicts_with = "stochastic")]
    full_precision: bool,
    /// Pre-activation of stochastic neurons.
    #[arg(long, value_enum, default_value = "tanh")]
    pre_activation: PreActivation,
    /// Temperature tau of p = sigmoid(tau * a).
    #[arg(long, default_value_t = 6.0)]
    temperature: f64,
    /// Straight-through gradient estimator.
    #[arg(long, value_enum, default_value = "identity")]
    estimator: Estimator,
    /// Activation of full-precision layers.
    #[arg(long, value_enum, default_value = "tanh")]
    activation: Activation,
    /// Weight of the MI penalty.
    #[arg(long, default_value_t = 0.0)]
    gamma: f64,
    /// Which MI penalty.
    #[arg(long, value_enum, default_value = "per-neuron")]
    penalty: Penalty,
    /// Penalise I(T; S | Y) (equalised odds) instead of I(T; S) (demographic parity).
    #[arg(long)]
    conditional: bool,
    /// sum: CE + gamma I; convex: (1 - gamma) CE + gamma I.
    #[arg(long, value_enum, default_value = "sum")]
    loss_form: LossForm,
    /// Passes over the training split.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Decoupled weight decay (0 = plain Adam).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Epochs over which gamma ramps linearly from 0 to its value (0 = no ramp).
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// auto: the fused CPU training step where it applies (per-neuron or joint penalty, or none), else
    /// candle; candle: always candle (the reference implementation).
    #[arg(long, value_enum, default_value = "auto")]
    backend: train::Backend,
    /// Early-stopping patience in epochs (with --val-size > 0).
    #[arg(long, default_value_t = 10)]
    patience: usize,
    #[command(flatten)]
    eval: EvalArgs,
    /// Save model.safetensors, config.json and metrics.json here (and checkpoints while training).
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out: save the training state every N epochs to OUT/checkpoint (0 = never).
    #[arg(long, default_value_t = 5)]
    checkpoint_every: usize,
    /// Continue an interrupted `train --out DIR` from DIR/checkpoint (all other options come from there).
    #[arg(long, conflicts_with_all = ["dataset", "csv", "out"])]
    resume: Option<PathBuf>,
    /// Leave the wall-clock training time out of the metrics (null), so that the same data, seed and
    /// thread count give a byte-identical metrics.json.
    #[arg(long)]
    reproducible: bool,
    /// Print the metrics JSON instead of the table.
    #[arg(long)]
    json: bool,
}

impl TrainCmd {
    /// The training options of the flags; epochs, batch size, backend and estimate are passed in because
    /// their defaults differ between tables and images.
    fn train_config(
        &self,
        epochs: usize,
        batch_size: usize,
        backend: train::Backend,
        estimate: train::Estimate,
        seed: u64,
    ) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            gamma: self.gamma,
            penalty: self.penalty,
            conditional: self.conditional,
            loss_form: self.loss_form,
            patience: self.patience,
            warmup_epochs: self.warmup_epochs,
            backend,
            estimate,
            seed,
        }
    }
}

#[derive(Args)]
struct EvalCmd {
    /// A directory written by `train --out`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    eval: EvalArgs,
    /// Print the metrics JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EncodeCmd {
    /// A directory written by `train --out`.
    #[arg(long)]
    model: PathBuf,
    /// CSV with the model's feature columns (in any order; others are ignored). Not for image models.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Image models: which of the model's image sets to encode.
    #[arg(long, value_enum, default_value = "test-unbiased")]
    split: ImageSplit,
    /// Output: .csv (with a `row` column) or .npy (float32, rows x m).
    #[arg(long)]
    output: PathBuf,
    /// sample (default): one fresh binary code per row, what the certificate covers; prob: p, which is
    /// NOT covered and can leak s; threshold: 1[p >= 0.5].
    #[arg(long, value_enum, default_value = "sample")]
    inference: Inference,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The image sets of an image model's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ImageSplit {
    /// The biased training set.
    Train,
    /// The test images with uniform colours.
    TestUnbiased,
    /// The test images coloured like the training set.
    TestBiased,
}

#[derive(Args)]
struct MiCmd {
    /// A directory written by `train --out`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Monte-Carlo draws of the joint MI.
    #[arg(long, default_value_t = 2000)]
    mc_samples: usize,
    /// Widest layer whose joint MI is enumerated exactly.
    #[arg(long, default_value_t = fairbits::mi::DEFAULT_M_MAX)]
    m_max: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let level = if cli.quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    // Small networks run fastest on one thread; probes and Monte Carlo use the pool below.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global();
    let result = match cli.command {
        Command::Train(mut c) => {
            let given = matches
                .subcommand_matches("train")
                .expect("the train subcommand");
            apply_preset(&mut c, given);
            match c.data.dataset.and_then(DatasetArg::image) {
                Some(d) => run_image_train(c, d, given, cli.quiet),
                None => run_train(c, cli.quiet),
            }
        }
        Command::Eval(c) => run_eval(c),
        Command::Encode(c) => run_encode(c),
        Command::Mi(c) => run_mi(c),
        Command::Sweep(c) => match c.data.dataset.and_then(DatasetArg::image) {
            Some(d) => {
                let given = matches
                    .subcommand_matches("sweep")
                    .expect("the sweep subcommand");
                run_image_sweep(c, d, given, cli.quiet, threads)
            }
            None => run_sweep(c, cli.quiet, threads),
        },
        Command::Report(c) => run_report(c),
        Command::Bench(c) => fairbits::bench::run(c.repeats)
            .map(|rows| print!("{}", fairbits::bench::table(&rows)))
            .map_err(Into::into),
    };
    if let Err(e) = result {
        // Library errors already include their cause's text: print each link of the chain once.
        let mut message = String::new();
        for cause in e.chain() {
            let text = cause.to_string();
            if !message.contains(&text) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&text);
            }
        }
        eprintln!("error: {message}");
        std::process::exit(exit_code(&e));
    }
}

fn exit_code(e: &anyhow::Error) -> i32 {
    use fairbits::Error as E;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<E>() {
            return match err {
                E::InvalidOption { .. } => exit::USAGE,
                E::ModelDir { .. } => exit::MODEL_DIR,
                E::Diverged { .. } => exit::DIVERGED,
                E::Io { .. } | E::Candle(_) | E::Json { .. } => exit::RUNTIME,
                _ => exit::INPUT,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return exit::RUNTIME;
        }
    }
    if e.to_string().starts_with("invalid ") || e.to_string().starts_with("say which data") {
        return exit::USAGE;
    }
    exit::RUNTIME
}

fn progress(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} {msg} ({eta} left)")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_prefix("training");
    bar
}

fn print_metrics(metrics: &Metrics, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let text = if json {
        serde_json::to_string_pretty(metrics)? + "\n"
    } else {
        report::table(metrics)
    };
    // A closed pipe (`| head`) is not an error.
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Fills in the preset's values for every flag not given on the command line.
fn apply_preset(c: &mut TrainCmd, given: &ArgMatches) {
    let Some(Preset::Invariant) = c.preset else {
        return;
    };
    let unset = |id: &str| given.value_source(id) != Some(ValueSource::CommandLine);
    if unset("hidden") {
        c.hidden = vec![64, 12];
    }
    if unset("penalty") {
        c.penalty = Penalty::Joint;
    }
    if unset("gamma") {
        c.gamma = 5.0;
    }
    if unset("warmup_epochs") {
        c.warmup_epochs = 20;
    }
    if unset("epochs") {
        c.epochs = 80;
    }
}

/// What `train --out` records in `DIR/checkpoint/run.json` so that `train --resume DIR` can continue.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunFile {
    config: SavedConfig,
    checkpoint_every: usize,
    reproducible: bool,
}

fn run_train(c: TrainCmd, quiet: bool) -> Result<()> {
    let (run, prepared, out, resume) = match &c.resume {
        Some(dir) => {
            let path = dir.join("checkpoint").join("run.json");
            let text = std::fs::read_to_string(&path).map_err(|e| fairbits::Error::ModelDir {
                dir: dir.clone(),
                reason: format!("nothing to resume: cannot read checkpoint/run.json ({e})"),
            })?;
            let run: RunFile =
                serde_json::from_str(&text).map_err(|e| fairbits::Error::ModelDir {
                    dir: dir.clone(),
                    reason: format!("checkpoint/run.json is unreadable: {e}"),
                })?;
            let prepared = data::prepare(&run.config.data, Some(&run.config.encoding))
                .context("preparing the data")?;
            (run, prepared, Some(dir.clone()), true)
        }
        None => {
            let spec = c.data.spec(None)?;
            let prepared = data::prepare(&spec, None).context("preparing the data")?;
            let model_cfg = ModelConfig {
                n_inputs: prepared.train.d,
                stochastic: if c.full_precision {
                    vec![]
                } else if c.stochastic.is_empty() {
                    vec![c.hidden.len().saturating_sub(1)]
                } else {
                    c.stochastic.clone()
                },
                hidden: c.hidden.clone(),
                pre_activation: c.pre_activation,
                temperature: c.temperature,
                estimator: c.estimator,
                activation: c.activation,
                n_outputs: 1,
            };
            model_cfg.validate()?;
            let train_cfg = c.train_config(
                c.epochs,
                c.batch_size,
                c.backend,
                c.images.estimate.unwrap_or(train::Estimate::Batch),
                spec.seed,
            );
            train_cfg.validate()?;
            let eval_opts = c.eval.options(spec.seed)?;
            let encoding = prepared.encoding.clone();
            let run = RunFile {
                config: SavedConfig::new(model_cfg, train_cfg, spec, encoding, eval_opts),
                checkpoint_every: c.checkpoint_every,
                reproducible: c.reproducible,
            };
            (run, prepared, c.out.clone(), false)
        }
    };
    let cfg = &run.config;
    let spec = &cfg.data;
    tracing::info!(
        dataset = %spec.name(),
        n_train = prepared.train.n,
        n_test = prepared.test.n,
        n_dropped = prepared.n_dropped,
        features = prepared.train.d,
        "data ready"
    );
    let ckpt = out.as_ref().map(|dir| train::Checkpointing {
        dir: dir.join("checkpoint"),
        every: run.checkpoint_every,
        resume,
    });
    if let (Some(ck), false) = (&ckpt, resume) {
        std::fs::create_dir_all(&ck.dir)
            .with_context(|| format!("creating {}", ck.dir.display()))?;
        store::write_json(&ck.dir.join("run.json"), &run)?;
    }
    let device = fairbits::model::default_device()?;
    let net = SqNet::new(
        &cfg.model,
        &device,
        &mut train::rng(spec.seed, streams::INIT),
    )?;
    let bar = progress(cfg.train.epochs as u64, quiet);
    let report_ = train::train_checkpointed(
        &net,
        &prepared.train,
        prepared.val.as_ref(),
        &cfg.train,
        &bar,
        ckpt.as_ref(),
    )?;
    bar.finish_and_clear();
    tracing::info!(
        seconds = format!("{:.2}", report_.train_seconds),
        epochs = report_.epochs,
        "trained; evaluating"
    );
    let info = RunInfo {
        dataset: spec.name(),
        sensitive: prepared.encoding.sensitive.column.clone(),
        groups: prepared.encoding.sensitive.groups.clone(),
        n_dropped: prepared.n_dropped,
        seed: spec.seed,
        gamma: cfg.train.gamma,
        penalty: cfg.train.penalty_label(cfg.model.is_stochastic()),
        // Wall-clock time is the one non-deterministic number; --reproducible leaves it out.
        train_seconds: if run.reproducible {
            f64::NAN
        } else {
            report_.train_seconds
        },
        epochs: report_.epochs,
    };
    let metrics = report::evaluate(&net, &prepared, &cfg.eval, &info)?;
    if let Some(dir) = &out {
        store::save(dir, &net, cfg, &metrics)
            .with_context(|| format!("saving the model to {}", dir.display()))?;
        if let Some(ck) = &ckpt {
            let _ = std::fs::remove_dir_all(&ck.dir);
        }
        tracing::info!(dir = %dir.display(), "saved");
    }
    print_metrics(&metrics, c.json)
}

/// Loads a saved model and prepares the data it names (or the data flags name) with its encoding.
fn load_with_data(
    dir: &std::path::Path,
    data_args: &DataArgs,
) -> Result<(SqNet, SavedConfig, DataSpec, data::Prepared)> {
    let device = fairbits::model::default_device()?;
    let (net, cfg) = store::load(dir, &device)?;
    let spec = data_args.spec(Some(&cfg.data))?;
    let prepared = data::prepare(&spec, Some(&cfg.encoding)).context("preparing the data")?;
    Ok((net, cfg, spec, prepared))
}

fn run_info(
    cfg: &SavedConfig,
    spec: &DataSpec,
    prepared: &data::Prepared,
    metrics_train: Option<(f64, usize)>,
) -> RunInfo {
    let (train_seconds, epochs) = metrics_train.unwrap_or((0.0, 0));
    RunInfo {
        dataset: spec.name(),
        sensitive: prepared.encoding.sensitive.column.clone(),
        groups: prepared.encoding.sensitive.groups.clone(),
        n_dropped: prepared.n_dropped,
        seed: spec.seed,
        gamma: cfg.train.gamma,
        penalty: cfg.train.penalty_label(cfg.model.is_stochastic()),
        train_seconds,
        epochs,
    }
}

/// Training time and epochs from the saved metrics.json, so `eval` reports the same timing as `train`.
fn saved_timing(dir: &std::path::Path) -> Option<(f64, usize)> {
    let text = std::fs::read_to_string(dir.join("metrics.json")).ok()?;
    let m: Metrics = serde_json::from_str(&text).ok()?;
    Some((m.timing.train_seconds, m.timing.epochs))
}

fn run_eval(c: EvalCmd) -> Result<()> {
    let (net, cfg, spec, prepared) = load_with_data(&c.model, &c.data)?;
    let opts = c.eval.options(spec.seed)?;
    let info = run_info(&cfg, &spec, &prepared, saved_timing(&c.model));
    let metrics = report::evaluate(&net, &prepared, &opts, &info)?;
    print_metrics(&metrics, c.json)
}

fn run_mi(c: MiCmd) -> Result<()> {
    let (net, cfg, spec, prepared) = load_with_data(&c.model, &c.data)?;
    let opts = EvalOptions {
        mc_samples: c.mc_samples,
        m_max: c.m_max,
        seed: spec.seed,
        ..cfg.eval.clone()
    };
    let info = run_info(&cfg, &spec, &prepared, saved_timing(&c.model));
    let mi = fairbits::report::mi_report(&net, &prepared, &opts, &info)?;
    let text = if c.json {
        serde_json::to_string_pretty(&mi)? + "\n"
    } else {
        fairbits::report::mi_table(&mi)
    };
    print!("{text}");
    Ok(())
}

fn run_encode(c: EncodeCmd) -> Result<()> {
    if vision::is_image_model(&c.model) {
        return run_image_encode(c);
    }
    let input = c.input.clone().context(
        "invalid --input: a tabular model encodes the rows of a CSV file (--input PATH)",
    )?;
    let device = fairbits::model::default_device()?;
    let (net, cfg) = store::load(&c.model, &device)?;
    let mut table = data::RawTable::from_path(&input, data::Duplicates::Reject)?;
    if let Source::Builtin { name, .. } = &cfg.data.source {
        data::builtin::derive_columns(*name, &mut table)?;
    }
    let rows = data::encode_features(table, &cfg.encoding)?;
    if rows.rows.is_empty() {
        bail!(
            "{}: no row has all the model's feature columns filled",
            input.display()
        );
    }
    let codes = fairbits::report::encode(&net, &rows, c.inference, c.seed)?;
    let m = net.config().code_width();
    let ext = c.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "csv" => fairbits::report::codes_csv(&codes, m, &rows.rows, c.inference),
        "npy" => fairbits::report::codes_npy(&codes, m),
        _ => bail!(
            "invalid --output {}: the name must end in .csv or .npy",
            c.output.display()
        ),
    };
    store::write_atomic(&c.output, &bytes)?;
    tracing::info!(
        rows = rows.rows.len(),
        dropped = rows.n_dropped,
        inference = c.inference.name(),
        output = %c.output.display(),
        "encoded"
    );
    if rows.n_dropped > 0 {
        tracing::warn!(
            "{} row(s) with a missing feature value were skipped; the CSV output's `row` column gives each kept row's index",
            rows.n_dropped
        );
    }
    Ok(())
}

fn sweep_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(
            "sweep [{bar:30}] {pos}/{len} runs ({elapsed} elapsed, {eta} left)",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    b
}

/// `sweep --dataset biased-mnist|biased-fashion-mnist`: rho x penalty x gamma x seed.
fn run_image_sweep(
    c: SweepCmd,
    dataset: ImageDataset,
    given: &ArgMatches,
    quiet: bool,
    threads: usize,
) -> Result<()> {
    let unset = |id: &str| given.value_source(id) != Some(ValueSource::CommandLine);
    let hidden = c.image_hidden.clone().unwrap_or_else(|| vec![64, 12]);
    let penalties = c
        .penalties
        .iter()
        .map(|p| fairbits::image_sweep::PenaltyChoice::parse(p))
        .collect::<fairbits::Result<Vec<_>>>()?;
    let epochs = if unset("epochs") { 20 } else { c.epochs };
    let batch_size = if unset("batch_size") {
        128
    } else {
        c.batch_size
    };
    let gammas = if unset("gammas") {
        vec![0.0, 1.0, 10.0, 30.0]
    } else {
        c.gammas.clone()
    };
    let base = vision::ImageJob {
        data: c.images.spec(dataset, c.images.rho[0], 0),
        channels: c.images.channels.clone(),
        kernel: c.images.kernel,
        dense: ModelConfig {
            n_inputs: 1,
            stochastic: vec![hidden.len().saturating_sub(1)],
            hidden: hidden.clone(),
            n_outputs: 10,
            ..ModelConfig::default()
        },
        train: TrainConfig {
            epochs,
            batch_size,
            lr: c.lr,
            backend: train::Backend::Candle,
            estimate: c.images.estimate.unwrap_or(Estimate::Bank),
            ..TrainConfig::default()
        },
        eval: c.eval.options(0)?,
        reproducible: false,
    };
    let cfg = fairbits::image_sweep::ImageSweepConfig {
        rhos: c.images.rho.clone(),
        penalties,
        gammas,
        seeds: c.seeds.clone(),
        dataset: dataset.name().into(),
        settings: format!(
            "{epochs} epochs, batch {batch_size}, lr {}, channels {:?}, kernel {}, hidden {:?}, penalty estimate {:?}{}",
            c.lr,
            c.images.channels,
            c.images.kernel,
            hidden,
            c.images.estimate.unwrap_or(Estimate::Bank),
            c.images.train_size.map(|n| format!(", training subsample {n}")).unwrap_or_default()
        ),
    };
    let bar = sweep_bar(quiet);
    let records = fairbits::image_sweep::run(&cfg, &base, &c.out, c.jobs.unwrap_or(threads), &bar)?;
    bar.finish_and_clear();
    println!(
        "sweep: {} runs finished; results in {}/results.csv, summary.csv and plots",
        records.len(),
        c.out.display()
    );
    Ok(())
}

fn run_sweep(c: SweepCmd, quiet: bool, threads: usize) -> Result<()> {
    let data = c.data.spec(None)?;
    let cfg = fairbits::sweep::SweepConfig {
        data,
        methods: c.methods.clone(),
        gammas: c.gammas.clone(),
        seeds: c.seeds.clone(),
        model: ModelConfig {
            stochastic: vec![c.hidden.len().saturating_sub(1)],
            hidden: c.hidden.clone(),
            ..ModelConfig::default()
        },
        train: TrainConfig {
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            estimate: c.images.estimate.unwrap_or(train::Estimate::Batch),
            ..TrainConfig::default()
        },
        eval: c.eval.options(0)?,
    };
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "sweep [{bar:30}] {pos}/{len} runs ({elapsed} elapsed, {eta} left)",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        b
    };
    let outcome = fairbits::sweep::run_sweep(&cfg, &c.out, c.jobs.unwrap_or(threads), &bar)?;
    bar.finish_and_clear();
    println!(
        "sweep: {} runs ({} already finished and skipped); results in {}/results.csv, summary.csv and plots",
        outcome.total,
        outcome.skipped,
        c.out.display()
    );
    Ok(())
}

fn run_report(c: ReportCmd) -> Result<()> {
    let command: Vec<String> = std::env::args().collect();
    let command = format!("fairbits {}", command[1..].join(" "));
    fairbits::results::write_report(&c.from, &c.out, &command)?;
    println!("report written to {}", c.out.display());
    Ok(())
}

/// `train --dataset biased-mnist|biased-fashion-mnist`: the convolutional network on coloured images.
fn run_image_train(
    c: TrainCmd,
    dataset: ImageDataset,
    given: &ArgMatches,
    quiet: bool,
) -> Result<()> {
    if c.resume.is_some() || c.data.csv.is_some() {
        bail!("invalid --resume/--csv: image training has neither");
    }
    if c.images.rho.len() != 1 {
        bail!("invalid --rho: train takes one value (a list is for sweep)");
    }
    let unset = |id: &str| given.value_source(id) != Some(ValueSource::CommandLine);
    let hidden = if unset("hidden") {
        vec![64, 12]
    } else {
        c.hidden.clone()
    };
    let seed = c.data.seed.unwrap_or(0);
    let job = vision::ImageJob {
        data: c.images.spec(dataset, c.images.rho[0], seed),
        channels: c.images.channels.clone(),
        kernel: c.images.kernel,
        dense: ModelConfig {
            n_inputs: 1,
            stochastic: if c.full_precision {
                vec![]
            } else if c.stochastic.is_empty() {
                vec![hidden.len().saturating_sub(1)]
            } else {
                c.stochastic.clone()
            },
            hidden,
            pre_activation: c.pre_activation,
            temperature: c.temperature,
            estimator: c.estimator,
            activation: c.activation,
            n_outputs: 10,
        },
        train: c.train_config(
            if unset("epochs") { 20 } else { c.epochs },
            if unset("batch_size") {
                128
            } else {
                c.batch_size
            },
            train::Backend::Candle,
            c.images.estimate.unwrap_or(Estimate::Bank),
            seed,
        ),
        eval: c.eval.options(seed)?,
        reproducible: c.reproducible,
    };
    let bar = progress(job.train.epochs as u64, quiet);
    let (net, config, metrics) = vision::run_job(&job, |e| {
        bar.set_message(format!(
            "loss {:.4} penalty {:.4} bits",
            e.loss, e.penalty_bits
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if let Some(out) = &c.out {
        vision::save(out, &net, &config, &metrics)?;
        tracing::info!(dir = %out.display(), "saved");
    }
    let text = if c.json {
        serde_json::to_string_pretty(&metrics)? + "\n"
    } else {
        vision::table(&metrics)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `encode` of an image model: codes of one of its image sets.
fn run_image_encode(c: EncodeCmd) -> Result<()> {
    if c.input.is_some() {
        bail!(
            "invalid --input: an image model encodes its own image sets (choose one with --split)"
        );
    }
    let device = fairbits::model::default_device()?;
    let (net, cfg) = vision::load_model(&c.model, &device)?;
    let data = vision::load(&cfg.data)?;
    let set = match c.split {
        ImageSplit::Train => &data.train,
        ImageSplit::TestUnbiased => &data.test_unbiased,
        ImageSplit::TestBiased => &data.test_biased,
    };
    let codes = vision::encode(&net, set, c.inference, c.seed)?;
    let m = cfg.model.dense.code_width();
    let ext = c.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    let bytes = match ext {
        "csv" => vision::codes_csv(&codes, m, set, c.inference),
        "npy" => fairbits::report::codes_npy(&codes, m),
        _ => bail!(
            "invalid --output {}: the name must end in .csv or .npy",
            c.output.display()
        ),
    };
    store::write_atomic(&c.output, &bytes)?;
    tracing::info!(rows = set.len(), output = %c.output.display(), "encoded");
    Ok(())
}
