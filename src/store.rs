//! A saved model directory: `model.safetensors` (the weights), `config.json` (everything needed to rebuild
//! the model, its preprocessing and its data: a `kind` tag says `table` or `image`) and `metrics.json`.
//! Every file is written through a temporary file and a rename ([`crate::files`]).

use crate::data::{DataFile, DataSpec, Encoding};
use crate::error::{Error, Result};
use crate::eval::EvalOptions;
use crate::files;
use crate::model::{ModelConfig, Net};
use crate::rng::{rng, Stream};
use crate::train::TrainConfig;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the `config.json` layout; a different one is refused with a clear message.
pub const FORMAT_VERSION: u32 = 2;

/// The git commit fairbits was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("FAIRBITS_GIT_COMMIT");

/// What a model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Rows of a table, through saved encoders; a binary task.
    Table,
    /// Coloured images; a multi-class task.
    Image,
}

/// `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedConfig {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Table or image.
    pub kind: ModelKind,
    /// fairbits version that wrote it.
    pub fairbits_version: String,
    /// Git commit of that build.
    pub git_commit: String,
    /// Architecture.
    pub model: ModelConfig,
    /// Training options.
    pub train: TrainConfig,
    /// Data and split.
    pub data: DataSpec,
    /// Fitted encoders and label mappings (tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Evaluation options used for `metrics.json`.
    pub eval: EvalOptions,
    /// Where the training data came from, for a CSV: its absolute path and SHA-256 when trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_file: Option<DataFile>,
}

impl SavedConfig {
    /// A config stamped with this build's version and commit.
    pub fn new(
        model: ModelConfig,
        train: TrainConfig,
        data: DataSpec,
        encoding: Option<Encoding>,
        eval: EvalOptions,
    ) -> Self {
        let kind = match data {
            DataSpec::Table(_) => ModelKind::Table,
            DataSpec::Images(_) => ModelKind::Image,
        };
        SavedConfig {
            format_version: FORMAT_VERSION,
            kind,
            fairbits_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: GIT_COMMIT.to_string(),
            model,
            train,
            data,
            encoding,
            eval,
            data_file: None,
        }
    }
}

impl SavedConfig {
    /// Checks that the parts agree with each other and every value is in its range: what a hand-edited
    /// or corrupt `config.json` must pass before a model is built from it.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        self.eval.validate()?;
        self.train.penalty.check(self.model.code_width())?;
        match (self.kind, &self.encoding, &self.data) {
            (ModelKind::Table, Some(enc), DataSpec::Table(_)) => {
                enc.validate()?;
                if enc.n_features() != self.model.n_inputs {
                    return Err(Error::Shape {
                        what: "the encoders".into(),
                        expected: format!("{} inputs, as the network reads", self.model.n_inputs),
                        got: format!("{} inputs", enc.n_features()),
                    });
                }
                Ok(())
            }
            (ModelKind::Image, None, DataSpec::Images(_)) => Ok(()),
            _ => Err(Error::Shape {
                what: "the configuration".into(),
                expected: "a table model with its encoders, or an image model".into(),
                got: format!("a {:?} model with other data", self.kind),
            }),
        }
    }
}

/// Saves weights, config and (when given) metrics into `dir` (created if needed).
pub fn save<M: Serialize>(dir: &Path, net: &Net, config: &SavedConfig, metrics: Option<&M>) -> Result<()> {
    files::create_dir(dir)?;
    files::write_safetensors(&dir.join("model.safetensors"), &net.tensors())?;
    files::write_json(&dir.join("config.json"), config)?;
    if let Some(m) = metrics {
        files::write_json(&dir.join("metrics.json"), m)?;
    }
    Ok(())
}

/// Reads and checks `dir/config.json`.
pub fn load_config(dir: &Path) -> Result<SavedConfig> {
    let bad = |reason: String| Error::ModelDir { dir: dir.to_path_buf(), reason };
    let text =
        std::fs::read_to_string(dir.join("config.json")).map_err(|e| bad(format!("cannot read config.json: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("config.json is not valid JSON: {e}")))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!(
            "config.json has format_version {version:?}, this fairbits ({}) reads version {FORMAT_VERSION}{}",
            env!("CARGO_PKG_VERSION"),
            if version == Some(1) {
                " (a model saved by fairbits before the one-pipeline layout: train it again)"
            } else {
                ""
            }
        )));
    }
    let config: SavedConfig = serde_json::from_value(value)
        .map_err(|e| bad(format!("config.json does not describe a fairbits model: {e}")))?;
    config.validate().map_err(|e| bad(format!("config.json is not a valid configuration: {e}")))?;
    Ok(config)
}

/// Loads `config.json` and the weights of a saved model (non-finite weights are refused).
pub fn load(dir: &Path, device: &Device) -> Result<(Net, SavedConfig)> {
    let config = load_config(dir)?;
    let weights = dir.join("model.safetensors");
    if !weights.exists() {
        return Err(Error::ModelDir { dir: dir.to_path_buf(), reason: "model.safetensors is missing".into() });
    }
    let tensors = candle_core::safetensors::load(&weights, device).map_err(|e| Error::ModelDir {
        dir: dir.to_path_buf(),
        reason: format!("model.safetensors cannot be read: {e}"),
    })?;
    // The initial weights are overwritten; the seed only fills them in the meantime.
    let net = Net::new(&config.model, device, &mut rng(0, Stream::Init))?;
    net.set_tensors(&tensors, dir)?;
    Ok((net, config))
}
