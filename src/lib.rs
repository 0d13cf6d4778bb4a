//! # fairbits
//!
//! Representations that carry (almost) no information about a sensitive attribute, learned with
//! stochastically quantized neural networks (Cerrato, Köppel, Esposito, Kramer, AAAI 2023). A hidden layer
//! of stochastic binary neurons makes the network a random variable, so the mutual information between
//! that layer and the sensitive attribute can be computed exactly and used as a training penalty; the
//! same number certifies how unfair any consumer of the codes can be. The method and every formula are in
//! `docs/design.md`; code comments cite its sections.
//!
//! ```
//! use fairbits::data::{Builtin, DataSpec, Source, TableSpec};
//! use fairbits::{EvalOptions, FairParams};
//!
//! # fn main() -> fairbits::Result<()> {
//! // Adult, sex as the sensitive attribute, the project's 70/30 stratified split.
//! let spec = DataSpec::Table(TableSpec::builtin(Builtin::Adult, 0));
//! let data = spec.prepare()?;
//! // The exact joint MI penalty on a 12-neuron stochastic layer, a few epochs.
//! let model = FairParams::new()
//!     .hidden(vec![64, 12])
//!     .penalty("joint".parse()?)
//!     .gamma(5.0)
//!     .warmup_epochs(2)
//!     .epochs(4)
//!     .check()?
//!     .fit(&data, &spec)?;
//! let opts = EvalOptions { draws: 2, forest_trees: 10, ..EvalOptions::default() };
//! let metrics = model.evaluate(&data, &opts, &model.run_info(f64::NAN, 4), &())?;
//! let m = metrics.binary().unwrap();
//! println!(
//!     "AUC {:.3}, dp_gap {:.3}, certified dp_gap <= {:.3}",
//!     m.task.auc, m.fairness.dp_gap, m.certificate.dp_gap_bound
//! );
//! # Ok(())
//! # }
//! ```
//!
//! ## Modules, in the order the data flows
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`data`] | tables (CSV reading, shipped datasets, encoders, stratified split) and colour-biased images, as [`data::Prepared`] splits |
//! | [`model`] | the architecture ([`ModelConfig`]), the network with stochastic binary layers ([`model::Net`]), its convolution and initialiser |
//! | [`penalty`] | what is penalised ([`penalty::PenaltySpec`]), the MI ([`penalty::mi`]), the whole-set estimate ([`penalty::bank`]), the adversary, and the one dispatch ([`penalty::Regulariser`]) |
//! | [`train`] | the one training loop, Adam, checkpoints, the fused CPU step |
//! | [`eval`] | evaluation (binary and multi-class heads), metrics, probes, the certificate |
//! | [`estimator`] | the library API: [`FairParams`] -> [`estimator::ValidParams`] -> [`FairModel`] (fit, encode, predict, evaluate, save, load) |
//! | [`store`] | saved model directories |
//! | [`output`] | per-row outputs (codes, predictions) as CSV or NPY |
//! | [`experiments`] | grids of trainings (tables and images), their summaries, plots and the results report |
//! | [`bench`] | the `fairbits bench` timing table |
//! | [`error`], [`rng`], [`files`], [`linalg`], [`progress`] | the error type, seeded streams, atomic files, GEMMs, progress events |

// Index loops mirror the formulas of docs/design.md; iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

/// `name()`, `NAMES`, `Display`, `FromStr` and the parameter text form for an enum of named choices (the
/// names are those of the command line, of Python and of saved files); `$param` is the parameter a wrong
/// name is reported against.
macro_rules! named_choices {
    ($ty:ident, $param:ident, { $($variant:ident => $name:literal),+ $(,)? } $(, values = $values:expr)?) => {
        impl $ty {
            /// The name used on the command line and in saved files.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// Every name, in order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = crate::error::Error;

            fn from_str(text: &str) -> crate::error::Result<Self> {
                match text {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(crate::error::Error::param(
                        crate::schema::Param::$param,
                        text,
                        format!("must be one of: {}", Self::NAMES.join(", ")),
                    )),
                }
            }
        }

        impl crate::schema::ParamValue for $ty {
            const TYPE_NAME: &'static str = "choice";

            fn parse(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|e: crate::error::Error| match e {
                    crate::error::Error::InvalidParam { reason, .. } => reason,
                    e => e.to_string(),
                })
            }

            fn text(&self) -> String {
                self.name().to_string()
            }

            fn choices() -> Option<&'static [&'static str]> {
                Some(Self::NAMES)
            }

            $(
                fn values() -> Option<String> {
                    Some($values())
                }
            )?
        }
    };
}

pub mod bench;
pub mod data;
mod error;
pub mod estimator;
pub mod eval;
pub mod experiments;
pub mod files;
pub(crate) mod linalg;
pub mod model;
pub mod output;
pub mod penalty;
pub mod progress;
pub mod rng;
pub mod schema;
pub mod store;
pub mod train;

pub use error::{Error, ErrorKind, Hint, Result};
pub use estimator::{FairModel, FairParams, Preset};
pub use eval::{EvalOptions, Metrics};
pub use model::{Inference, ModelConfig};
pub use penalty::PenaltySpec;
pub use schema::{Param, SCHEMA};
pub use train::TrainConfig;
