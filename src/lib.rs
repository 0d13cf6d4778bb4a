//! # fairbits
//!
//! Representations that carry (almost) no information about a sensitive attribute, learned with
//! stochastically quantized neural networks (Cerrato, Köppel, Esposito, Kramer, AAAI 2023). A hidden layer
//! of stochastic binary neurons makes the network a random variable, so the mutual information between
//! that layer and the sensitive attribute can be computed exactly and used as a training penalty; the
//! same number certifies how unfair any consumer of the codes can be.
//!
//! Modules follow the data's path: [`data`] -> [`model`] -> [`mi`] -> [`train`] -> [`metrics`] /
//! [`probes`] / [`certificate`] -> [`report`], with [`store`] for saved models. `DESIGN.md` sections are
//! cited where formulas live.

// Index loops mirror the formulas of DESIGN.md; iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

pub mod bank;
pub mod bench;
pub mod certificate;
pub mod conv;
pub mod data;
pub mod error;
pub mod fused;
pub mod image_sweep;
pub mod metrics;
pub mod mi;
pub mod model;
pub mod plots;
pub mod probes;
pub mod report;
pub mod results;
pub mod store;
pub mod sweep;
pub mod train;
pub mod vision;

pub use error::{Error, Result};
pub use model::{Inference, ModelConfig, SqNet};
pub use report::{EvalOptions, Metrics};
pub use train::TrainConfig;
