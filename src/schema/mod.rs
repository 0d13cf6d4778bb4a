//! Every parameter of fairbits, defined once: its library name, type, default, valid range and one-line
//! doc, with the names it has at each edge (the command line's flag, the Python estimator's parameter or
//! argument) and where a saved model records it (`config.json`). The command line builds its flags and
//! help from [`SCHEMA`], the Python package its estimator's signature and docstring, the README and
//! docs/python.md their tables; a test enumerates the schema and checks every edge against it.
//!
//! The parameters of a model (architecture, training, evaluation, seed) are the fields of
//! [`FairParams`](crate::FairParams), generated here with their builder setters; the others (data, split,
//! prediction, files) are checked and defaulted through [`check`] and [`default`] by the code that owns
//! them. Errors name a parameter by its typed identifier [`Param`]; the edges translate it.

mod value;

pub use value::ParamValue;

use crate::error::{Error, Result};
use crate::model::{Activation, Estimator, Inference, PreActivation};
use crate::penalty::{PenaltyKind, PenaltySpec, Target};
use crate::store::ModelKind;
use crate::train::{Backend, LossForm};
use std::path::PathBuf;

/// Where a parameter belongs (the sections of the docs' tables and of the Python docstring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// The architecture.
    Model,
    /// Training.
    Train,
    /// Evaluation and the certificate.
    Eval,
    /// Which data, its columns and its split.
    Data,
    /// Applying a saved model to rows (`predict`, `encode`).
    Predict,
    /// Files and runs: where models, sweeps and outputs are.
    Files,
    /// A grid of runs.
    Sweep,
    /// Certified fairness on demand: a bound asked for, and the search that meets it.
    Certify,
    /// Only the Python estimator has it.
    Python,
}

impl Group {
    /// The section's title in docs.
    pub fn title(self) -> &'static str {
        match self {
            Group::Model => "model",
            Group::Train => "training",
            Group::Eval => "evaluation",
            Group::Data => "data",
            Group::Predict => "prediction",
            Group::Files => "files",
            Group::Sweep => "sweep",
            Group::Certify => "certified fairness",
            Group::Python => "Python",
        }
    }
}

/// The description of one parameter, as every edge reads it.
pub struct ParamDef {
    /// Its identifier.
    pub param: Param,
    /// The library's name (setter, `config.json` key, error messages).
    pub name: &'static str,
    /// Its section.
    pub group: Group,
    /// One line: what it means.
    pub doc: &'static str,
    /// The values it takes, in words (`>= 0`, `(0, 1)`, ...); empty when any value of its type is valid.
    pub range: &'static str,
    /// The command line's flag, without `--`.
    pub cli: Option<&'static str>,
    /// The Python estimator's constructor parameter.
    pub python: Option<&'static str>,
    /// Python's own default, where it differs from the command line's (the estimator is fair by default).
    pub python_default: Option<&'static str>,
    /// A Python method's argument (e.g. `sensitive_features`), when not a constructor parameter.
    pub python_arg: Option<&'static str>,
    /// Where `config.json` records the value (`train.gamma`).
    pub config: Option<&'static str>,
    /// The type in words (`number`, `integer`, `list of integers`, one of ...).
    pub type_name: &'static str,
    default_text: fn(ModelKind) -> Option<String>,
    normalise: fn(&str) -> std::result::Result<String, String>,
    choices: fn() -> Option<&'static [&'static str]>,
    values: fn() -> Option<String>,
}

impl ParamDef {
    /// The default for data of `kind`, in the text form of the command line (`None`: no default).
    pub fn default_text(&self, kind: ModelKind) -> Option<String> {
        (self.default_text)(kind)
    }

    /// The default in words: one value, or the table and image values when they differ.
    pub fn default_words(&self) -> String {
        match (self.default_text(ModelKind::Table), self.default_text(ModelKind::Image)) {
            (Some(t), Some(i)) if t != i => format!("{t} (images: {i})"),
            (Some(t), _) => t,
            (None, _) => String::new(),
        }
    }

    /// `text` parsed, checked against the range, and written back in its canonical form; the reason
    /// when it is not a valid value.
    pub fn normalise(&self, text: &str) -> std::result::Result<String, String> {
        (self.normalise)(text)
    }

    /// The names of a choice's values, when the parameter is a choice.
    pub fn choices(&self) -> Option<&'static [&'static str]> {
        (self.choices)()
    }

    /// The values in words (a choice's names, the penalty grammar), when not just any value of the type.
    pub fn values(&self) -> Option<String> {
        (self.values)()
    }

    /// The doc line with the values and the range: what help and docs print.
    pub fn meaning(&self) -> String {
        let mut text = self.doc.trim().to_string();
        if let Some(values) = self.values() {
            text += &format!(" ({values})");
        } else if !self.range.is_empty() {
            text += &format!(" ({})", self.range);
        }
        text
    }

    /// True for a flag that takes no value (a boolean switched on by being given).
    pub fn is_switch(&self) -> bool {
        self.type_name == <bool as ParamValue>::TYPE_NAME
    }
}

/// The values of a parameter whose default differs between tables and images.
fn by_kind<T>(kind: ModelKind, table: T, image: T) -> T {
    match kind {
        ModelKind::Table => table,
        ModelKind::Image => image,
    }
}

macro_rules! first_of {
    ($a:expr) => {
        $a
    };
    ($a:expr, $b:expr) => {
        $a
    };
}

macro_rules! opt_str {
    () => {
        None
    };
    ($s:literal) => {
        Some($s)
    };
}

/// `Ok`, or the range check of a parameter that has one.
macro_rules! range_check {
    ($param:expr, $v:expr) => {
        Ok::<(), Error>(())
    };
    ($param:expr, $v:expr, $check:expr, $range:literal) => {
        in_range($param, $v, $check, $range)
    };
}

/// Generates, from one list of parameters: [`Param`], [`SCHEMA`], the modules [`default`] and [`check`],
/// and the fields, setters and text setter of [`FairParams`] (the `model` list: the parameters a saved
/// model is made from).
macro_rules! parameters {
    (
        model { $(
            $(#[doc = $mdoc:literal])+
            $mid:ident $mfield:ident : $mty:ty = ($mtable:expr $(, $mimage:expr)?)
            $(, check($mcheck:expr, $mrange:literal))?, group $mgroup:ident
            $(, cli $mcli:literal)? $(, py $mpy:literal $(= $mpyd:literal)?)? $(, config $mconfig:literal)?;
        )* }
        other { $(
            $(#[doc = $odoc:literal])+
            $oid:ident $ofield:ident : $oty:ty = ($otable:expr $(, $oimage:expr)?)
            $(, check($ocheck:expr, $orange:literal))?, group $ogroup:ident
            $(, cli $ocli:literal)? $(, py $opy:literal $(= $opyd:literal)?)? $(, arg $oarg:literal)?
            $(, config $oconfig:literal)?;
        )* }
    ) => {
        /// A parameter's identifier: errors carry it, and each edge names it its own way
        /// ([`Param::def`]: the flag, the Python name).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Param {
            $( $(#[doc = $mdoc])+ $mid, )*
            $( $(#[doc = $odoc])+ $oid, )*
        }

        /// Every parameter, in the order of [`Param`].
        pub static SCHEMA: &[ParamDef] = &[
            $( ParamDef {
                param: Param::$mid,
                name: stringify!($mfield),
                group: Group::$mgroup,
                doc: concat!($($mdoc),+),
                range: first_of!($($mrange,)? ""),
                cli: opt_str!($($mcli)?),
                python: opt_str!($($mpy)?),
                python_default: opt_str!($($($mpyd)?)?),
                python_arg: None,
                config: opt_str!($($mconfig)?),
                type_name: <$mty as ParamValue>::TYPE_NAME,
                default_text: |kind| ParamValue::default_text(&default::$mfield(kind)),
                normalise: |text| {
                    let v = <$mty as ParamValue>::parse(text)?;
                    check::$mfield(&v).map_err(Error::into_reason)?;
                    Ok(v.text())
                },
                choices: <$mty as ParamValue>::choices,
                values: <$mty as ParamValue>::values,
            }, )*
            $( ParamDef {
                param: Param::$oid,
                name: stringify!($ofield),
                group: Group::$ogroup,
                doc: concat!($($odoc),+),
                range: first_of!($($orange,)? ""),
                cli: opt_str!($($ocli)?),
                python: opt_str!($($opy)?),
                python_default: opt_str!($($($opyd)?)?),
                python_arg: opt_str!($($oarg)?),
                config: opt_str!($($oconfig)?),
                type_name: <$oty as ParamValue>::TYPE_NAME,
                default_text: |kind| ParamValue::default_text(&default::$ofield(kind)),
                normalise: |text| {
                    let v = <$oty as ParamValue>::parse(text)?;
                    check::$ofield(&v).map_err(Error::into_reason)?;
                    Ok(v.text())
                },
                choices: <$oty as ParamValue>::choices,
                values: <$oty as ParamValue>::values,
            }, )*
        ];

        /// Each parameter's default, for data of a kind (tables or images).
        #[allow(unused_variables)]
        pub mod default {
            use super::*;
            $(
                #[doc = concat!("The default of [`Param::", stringify!($mid), "`].")]
                pub fn $mfield(kind: ModelKind) -> $mty {
                    by_kind(kind, $mtable, first_of!($($mimage,)? $mtable))
                }
            )*
            $(
                #[doc = concat!("The default of [`Param::", stringify!($oid), "`].")]
                pub fn $ofield(kind: ModelKind) -> $oty {
                    by_kind(kind, $otable, first_of!($($oimage,)? $otable))
                }
            )*
        }

        /// Each parameter's range check: `Ok`, or an error naming the parameter with its range.
        // One signature for every type (`&Vec<usize>`, `&String`): the checks are generated.
        #[allow(unused_variables, clippy::ptr_arg)]
        pub mod check {
            use super::*;
            $(
                #[doc = concat!("Checks a value of [`Param::", stringify!($mid), "`].")]
                pub fn $mfield(v: &$mty) -> Result<()> {
                    range_check!(Param::$mid, v $(, $mcheck, $mrange)?)
                }
            )*
            $(
                #[doc = concat!("Checks a value of [`Param::", stringify!($oid), "`].")]
                pub fn $ofield(v: &$oty) -> Result<()> {
                    range_check!(Param::$oid, v $(, $ocheck, $orange)?)
                }
            )*
        }

        /// Unchecked parameters of a fairbits model: architecture, training, evaluation and seed, with
        /// builder setters. A value not set takes the preset's, else the default of the data's kind
        /// (tables or images); [`FairParams::check`] validates them, once, into [`ValidParams`].
        /// Every parameter's default, range and names at the edges are in [`SCHEMA`].
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct FairParams {
            $( pub(crate) $mfield: Option<$mty>, )*
        }

        impl FairParams {
            $(
                $(#[doc = $mdoc])+
                #[doc = ""]
                #[doc = concat!("Default: `", stringify!($mtable), "`", $(" (images: `", stringify!($mimage), "`)",)? ". Range: ", first_of!($($mrange,)? "any value"), ".")]
                pub fn $mfield(mut self, value: $mty) -> Self {
                    self.$mfield = Some(value);
                    self
                }
            )*

            /// Sets `param` from its text form (the command line's; the Python package writes its
            /// values this way too). A text that is not a value of the parameter's type is an error
            /// naming it; ranges are checked by [`FairParams::check`].
            pub fn set(mut self, param: Param, text: &str) -> Result<Self> {
                let bad = |reason: String| Error::InvalidParam { param, value: text.to_string(), reason };
                match param {
                    $( Param::$mid => self.$mfield = Some(ParamValue::parse(text).map_err(bad)?), )*
                    _ => return Err(bad("not a parameter of a model".into())),
                }
                Ok(self)
            }

            /// The values set, as `(parameter, text)` in the order of [`SCHEMA`].
            pub fn given(&self) -> Vec<(Param, String)> {
                let mut out = Vec::new();
                $( if let Some(v) = &self.$mfield { out.push((Param::$mid, ParamValue::text(v))); } )*
                out
            }

            /// The value set for each parameter, falling back to `other`'s.
            pub(crate) fn or(&self, other: &FairParams) -> FairParams {
                FairParams { $( $mfield: self.$mfield.clone().or_else(|| other.$mfield.clone()), )* }
            }

            /// Checks the range of every value that is set.
            pub(crate) fn check_each(&self) -> Result<()> {
                $( if let Some(v) = &self.$mfield { check::$mfield(v)?; } )*
                Ok(())
            }

            /// Every value, defaults filled in for data of `kind`.
            pub(crate) fn resolved(&self, kind: ModelKind) -> Resolved {
                Resolved { $( $mfield: self.$mfield.clone().unwrap_or_else(|| default::$mfield(kind)), )* }
            }
        }

        /// [`FairParams`] with every default filled in.
        #[derive(Clone, Debug)]
        pub(crate) struct Resolved {
            $( pub $mfield: $mty, )*
        }
    };
}

/// `Ok` when `test` accepts `v`; else an error naming `param` with `range` as the reason.
fn in_range<T: ParamValue, F: Fn(&T) -> bool>(param: Param, v: &T, test: F, range: &'static str) -> Result<()> {
    if test(v) {
        Ok(())
    } else {
        Err(Error::InvalidParam { param, value: v.text(), reason: format!("must be {range}") })
    }
}

/// `Error::InvalidParam`'s reason (any other error's text).
impl Error {
    fn into_reason(self) -> String {
        match self {
            Error::InvalidParam { reason, .. } => reason,
            e => e.to_string(),
        }
    }
}

parameters! {
    model {
        /// A named set of values for the other parameters (explicitly set ones override it).
        Preset preset: crate::estimator::Preset = (crate::estimator::Preset::None), group Model, cli "preset",
            py "preset" = "certified";
        /// Widths of the hidden layers; the representation is the last stochastic one.
        Hidden hidden: Vec<usize> = (vec![64, 32], vec![64, 12]),
            check(|v: &Vec<usize>| !v.is_empty() && !v.contains(&0), "one or more widths, each >= 1"),
            group Model, cli "hidden", py "hidden", config "model.hidden";
        /// 0-based indices of the stochastic hidden layers (empty: the last); the MI is taken on the last of them.
        Stochastic stochastic: Vec<usize> = (vec![]), group Model, cli "stochastic", py "stochastic",
            config "model.stochastic";
        /// No stochastic layer: the full-precision baseline (its representation is not certified).
        FullPrecision full_precision: bool = (false), group Model, cli "full-precision", py "full_precision";
        /// Pre-activation of a stochastic neuron: `tanh` keeps p in [0.0025, 0.9975] at temperature 6; `linear`.
        PreActivation pre_activation: PreActivation = (PreActivation::Tanh), group Model, cli "pre-activation",
            py "pre_activation", config "model.pre_activation";
        /// Temperature tau of a stochastic neuron's firing probability p = sigmoid(tau a).
        Temperature temperature: f64 = (6.0), check(|v: &f64| v.is_finite() && *v > 0.0, "> 0"), group Model,
            cli "temperature", py "temperature", config "model.temperature";
        /// Gradient through the binary layer: straight through a sample (`identity`: dt/da = 1; `sigmoid`: tau p (1 - p)), or `exact`: the expected loss over the 2^m codes (m <= 10).
        Estimator estimator: Estimator = (Estimator::Identity), group Model, cli "estimator",
            py "gradient_estimator", config "model.estimator";
        /// Activation of the full-precision hidden layers.
        Activation activation: Activation = (Activation::Tanh), group Model, cli "activation", py "activation",
            config "model.activation";
        /// Images: output channels of each convolution.
        Channels channels: Vec<usize> = (vec![8, 16]),
            check(|v: &Vec<usize>| !v.is_empty() && !v.contains(&0), "one or more channel counts, each >= 1"),
            group Model, cli "channels", config "model.conv.channels";
        /// Images: kernel size of the convolutions.
        Kernel kernel: usize = (5), check(|v: &usize| *v >= 1, ">= 1"), group Model, cli "kernel",
            config "model.conv.kernel";
        /// Weight of the penalty in the loss CE + gamma * penalty (0: none).
        Gamma gamma: f64 = (0.0), check(|v: &f64| v.is_finite() && *v >= 0.0, "a finite number >= 0"), group Train,
            cli "gamma", py "gamma", config "train.gamma";
        /// What is penalised, for which independence (parity: I(T; S); odds: I(T; S | Y)), estimated where: KIND[:TARGET][@ESTIMATE].
        Penalty penalty: PenaltySpec = (PenaltySpec::new(PenaltyKind::PerNeuron, Target::Parity),
            PenaltySpec::new(PenaltyKind::PerNeuron, Target::Odds)),
            group Train, cli "penalty", py "penalty", config "train.penalty";
        /// How the task loss and the penalty combine: `sum` (CE + gamma I) or `convex` ((1 - gamma) CE + gamma I).
        LossForm loss_form: LossForm = (LossForm::Sum), group Train, cli "loss-form", py "loss_form",
            config "train.loss_form";
        /// Passes over the training split.
        Epochs epochs: usize = (50, 20), check(|v: &usize| *v >= 1, ">= 1"), group Train, cli "epochs",
            py "epochs", config "train.epochs";
        /// Rows per training batch (the last batch of an epoch may be smaller).
        BatchSize batch_size: usize = (256, 128), check(|v: &usize| *v >= 1, ">= 1"), group Train,
            cli "batch-size", py "batch_size", config "train.batch_size";
        /// Adam's learning rate (betas 0.9, 0.999, eps 1e-8).
        Lr lr: f64 = (1e-3), check(|v: &f64| v.is_finite() && *v > 0.0, "a finite number > 0"), group Train,
            cli "lr", py "learning_rate", config "train.lr";
        /// Decoupled weight decay (0: plain Adam).
        WeightDecay weight_decay: f64 = (0.0), check(|v: &f64| v.is_finite() && *v >= 0.0, "a finite number >= 0"),
            group Train, cli "weight-decay", py "weight_decay", config "train.weight_decay";
        /// Epochs over which gamma ramps linearly from 0 (the ramp must end within the training epochs).
        WarmupEpochs warmup_epochs: usize = (0), group Train, cli "warmup-epochs", py "warmup_epochs",
            config "train.warmup_epochs";
        /// With a validation split: stop after this many epochs without a better validation objective.
        Patience patience: usize = (10), check(|v: &usize| *v >= 1, ">= 1"), group Train, cli "patience",
            py "patience", config "train.patience";
        /// `auto`: the fused CPU step where it applies, else candle; `candle`: always the reference implementation.
        Backend backend: Backend = (Backend::Auto), group Train, cli "backend", py "backend", config "train.backend";
        /// Seed of the split, initialisation, batch order, binary samples and probes.
        Seed seed: u64 = (0), group Train, cli "seed", py "random_state", config "train.seed";
        /// What the stochastic layer emits for the metrics and predictions: a fresh `sample` (certified), `prob` or `threshold`.
        Inference inference: Inference = (Inference::Sample), group Eval, cli "inference", py "inference",
            config "eval.inference";
        /// Draws of one sampled code per row: metrics are averaged over them, predictions too (1: certified).
        Draws draws: usize = (10), check(|v: &usize| *v >= 1, ">= 1"), group Eval, cli "draws", py "draws",
            config "eval.draws";
        /// Monte-Carlo draws of the joint MI and TV when the layer is wider than m_max.
        McSamples mc_samples: usize = (2000), check(|v: &usize| *v >= 2, ">= 2"), group Eval, cli "mc-samples",
            py "mc_samples", config "eval.mc_samples";
        /// Widest layer whose 2^m code distributions are enumerated exactly.
        MMax m_max: usize = (crate::penalty::mi::DEFAULT_M_MAX), check(|v: &usize| *v <= 24, "<= 24"), group Eval,
            cli "m-max", py "m_max", config "eval.m_max";
        /// Trees of the random-forest probe.
        ForestTrees forest_trees: usize = (100), check(|v: &usize| *v >= 1, ">= 1"), group Eval,
            cli "forest-trees", py "forest_trees", config "eval.forest_trees";
        /// The probes learn on a seeded subsample of at most this many training rows and are scored on as many test rows.
        ProbeRows probe_rows: usize = (5000), check(|v: &usize| *v >= 10, ">= 10"), group Eval, cli "probe-rows",
            py "probe_rows", config "eval.probe_rows";
        /// Draws of sampled codes the probes are fitted on.
        ProbeDraws probe_draws: usize = (2), check(|v: &usize| *v >= 1, ">= 1"), group Eval, cli "probe-draws",
            py "probe_draws", config "eval.probe_draws";
        /// Confidence 1 - delta of the population certificate.
        Confidence confidence: f64 = (0.95), check(|v: &f64| *v > 0.0 && *v < 1.0, "in (0, 1)"), group Eval,
            cli "confidence", py "confidence", config "eval.confidence";
        /// Train the most accurate model whose certified demographic-parity gap, on rows no training or selection read, is at most this (a search over gamma).
        MaxCertifiedDp max_certified_dp: Option<f64> = (None),
            check(|v: &Option<f64>| v.is_none_or(|e| e > 0.0 && e <= 1.0), "in (0, 1]"), group Certify,
            cli "max-certified-dp", py "max_certified_dp";
        /// The same for the certified equalised-odds gap (the largest over the labels).
        MaxCertifiedEo max_certified_eo: Option<f64> = (None),
            check(|v: &Option<f64>| v.is_none_or(|e| e > 0.0 && e <= 1.0), "in (0, 1]"), group Certify,
            cli "max-certified-eo", py "max_certified_eo";
        /// With a certified bound asked for: how many candidates the final rows may certify, each at delta / this (a union bound).
        FinalTries final_tries: usize = (1), check(|v: &usize| *v >= 1, ">= 1"), group Certify, cli "final-tries",
            py "final_tries";
    }
    other {
        /// A shipped dataset: adult, compas, german (tables), biased-mnist, biased-fashion-mnist (images).
        Dataset dataset: Option<String> = (None), group Data, cli "dataset";
        /// A table file with a header row: CSV (.csv, .csv.gz), Parquet or Arrow IPC.
        Input input: Option<PathBuf> = (None), group Data, cli "input", arg "X";
        /// The target column of the table.
        Target target: Option<String> = (None), group Data, cli "target", arg "y";
        /// The sensitive column(s) of the table (for a shipped dataset: one of its sensitive attributes).
        Sensitive sensitive: Option<String> = (None), group Data, cli "sensitive", py "sensitive_features";
        /// Cut a numeric sensitive column into this many quantile groups (edges fitted on the training rows, kept with the model).
        SensitiveBins sensitive_bins: Option<usize> = (None),
            check(|v: &Option<usize>| v.is_none_or(|k| (2..=20).contains(&k)), "in 2..=20"), group Data,
            cli "sensitive-bins", py "sensitive_bins";
        /// A binary target's value counted as positive (default: the larger of the two; a target of more classes has none).
        Positive positive: Option<String> = (None), group Data, cli "positive", py "pos_label";
        /// A table's task: classification (the target's 2 to 100 values are labels) or regression (the target is a number, fitted by squared error).
        Task task: crate::data::Task = (crate::data::Task::Classification), group Data, cli "task";
        /// Columns to one-hot encode although they hold numbers.
        Categorical categorical: Vec<String> = (vec![]), group Data, cli "categorical", py "categorical_features";
        /// Columns to ignore (IDs, leakage).
        Drop drop: Vec<String> = (vec![]), group Data, cli "drop";
        /// Fraction of the rows held out for testing.
        TestSize test_size: f64 = (0.3), check(|v: &f64| *v > 0.0 && *v < 1.0, "in (0, 1)"), group Data,
            cli "test-size", config "data.test_size";
        /// Fraction of the training rows held out for validation and early stopping (0: none).
        ValSize val_size: f64 = (0.0), check(|v: &f64| (0.0..1.0).contains(v), "in [0, 1)"), group Data,
            cli "val-size", py "val_size", config "data.val_size";
        /// Fraction of the rows held out before training for the population certificate (0: the test split serves).
        CertifySize certify_size: f64 = (0.0), check(|v: &f64| (0.0..0.9).contains(v), "in [0, 0.9)"), group Data,
            cli "certify-size";
        /// Also feed the sensitive attribute to the network.
        IncludeSensitive include_sensitive: bool = (false), group Data, cli "include-sensitive",
            py "include_sensitive", config "data.include_sensitive";
        /// Read the table file in passes and train from a mapped cache (data larger than memory; without it, a file estimated at more than half the available memory streams anyway).
        Stream stream: bool = (false), group Data, cli "stream";
        /// Rows with a missing feature value: drop them, refuse them (an error naming the cell), or impute the training rows' median (numbers) or most frequent value (text), with an indicator input.
        Missing missing: crate::data::Missing = (crate::data::Missing::Drop), group Data, cli "missing", py "missing" = "error";
        /// Certify: a column of the held-out rows holding their weights; the certificate is then for the weighted population (each group's law the weighted law of its rows).
        Weights weights: Option<String> = (None), group Data, cli "weights", arg "sample_weight";
        /// Field separator of the CSV files read (default: a comma).
        Delimiter delimiter: Option<char> = (None), group Data, cli "delimiter";
        /// Images: P(a training image has its class's colour); a list for a sweep.
        Rho rho: Vec<f64> = (vec![0.99]),
            check(|v: &Vec<f64>| v.iter().all(|r| (0.0..=1.0).contains(r)), "one or more numbers in [0, 1]"),
            group Data, cli "rho";
        /// Images: a directory holding the four MNIST-format IDX files.
        MnistDir mnist_dir: Option<PathBuf> = (None), group Data, cli "mnist-dir";
        /// Images: train on a class-stratified subsample of this many images.
        TrainSize train_size: Option<usize> = (None), check(|v: &Option<usize>| v.is_none_or(|n| n >= 10), ">= 10"),
            group Data, cli "train-size";
        /// A saved model directory (written by training).
        Model model: Option<PathBuf> = (None), group Files, cli "model";
        /// Where a model, or a sweep, is saved.
        Out out: Option<PathBuf> = (None), group Files, cli "out";
        /// The file outputs are written to: .csv or .npy.
        Output output: Option<PathBuf> = (None), group Files, cli "output";
        /// An interrupted training to continue from its checkpoint.
        Resume resume: Option<PathBuf> = (None), group Files, cli "resume";
        /// Image models: one of their own image sets instead of an input file: train, test-unbiased, test-biased.
        Split split: Option<String> = (None), group Predict, cli "split";
        /// A column of the input carried to the output as each row's identifier.
        Id id: Option<String> = (None), group Predict, cli "id";
        /// Decision threshold on the positive-class probability.
        Threshold threshold: f64 = (0.5), check(|v: &f64| (0.0..=1.0).contains(v), "in [0, 1]"), group Predict,
            cli "threshold", py "threshold";
        /// Sweep directories to report on (or to merge, when they are shards of one sweep).
        Sources sources: Vec<PathBuf> = (vec![]), group Sweep, cli "from";
        /// The directory shards are merged into.
        Merged merged: Option<PathBuf> = (None), group Sweep, cli "merge";
        /// Runs trained at once (default: one per thread).
        Jobs jobs: Option<usize> = (None), check(|v: &Option<usize>| v.is_none_or(|n| n >= 1), ">= 1"),
            group Sweep, cli "jobs";
        /// The share of a sweep's grid to train: I/N.
        Shard shard: String = ("1/1".to_string()), group Sweep, cli "shard";
        /// Tables: methods of a sweep (sqnn, sqnn-joint, mlp, adversarial).
        Methods methods: Vec<String> = (vec![]), group Sweep, cli "methods";
        /// Images: penalties of a sweep, each at every gamma > 0.
        Penalties penalties: Vec<String> = (vec![]), group Sweep, cli "penalties";
        /// Penalty weights of a sweep.
        Gammas gammas: Vec<f64> = (vec![]), group Sweep, cli "gammas";
        /// Seeds of a sweep.
        Seeds seeds: Vec<u64> = (vec![0, 1, 2]), group Sweep, cli "seeds";
        /// Replace an existing model (a directory written by training, and nothing else).
        Force force: bool = (false), group Files, cli "force", arg "overwrite";
        /// Print one line per epoch while fitting.
        Verbose verbose: bool = (false), group Python, py "verbose";
    }
}

impl Param {
    /// This parameter's description.
    pub fn def(self) -> &'static ParamDef {
        &SCHEMA[self as usize]
    }

    /// The library's name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The parameter whose library name is `name`.
    pub fn from_name(name: &str) -> Option<Param> {
        SCHEMA.iter().find(|d| d.name == name).map(|d| d.param)
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
