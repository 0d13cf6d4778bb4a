//! A saved model directory: `model.safetensors` (the weights), `config.json` (everything needed to rebuild
//! the model and its preprocessing) and `metrics.json`. Every file is written to a temporary file in the
//! same directory and renamed, so a crash never leaves a half-written file.

use crate::data::{DataSpec, Encoding};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, SqNet};
use crate::report::EvalOptions;
use crate::train::TrainConfig;
use candle_core::Device;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the `config.json` layout; a different one is refused with a clear message.
pub const FORMAT_VERSION: u32 = 1;

/// The git commit fairbits was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("FAIRBITS_GIT_COMMIT");

/// `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedConfig {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
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
    /// Fitted encoders and label mappings.
    pub encoding: Encoding,
    /// Evaluation options used for `metrics.json`.
    pub eval: EvalOptions,
}

impl SavedConfig {
    /// A config stamped with this build's version and commit.
    pub fn new(
        model: ModelConfig,
        train: TrainConfig,
        data: DataSpec,
        encoding: Encoding,
        eval: EvalOptions,
    ) -> Self {
        SavedConfig {
            format_version: FORMAT_VERSION,
            fairbits_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: GIT_COMMIT.to_string(),
            model,
            train,
            data,
            encoding,
            eval,
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// `dir/.name.tmp` beside `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Serialises to pretty JSON and writes atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Writes `dir/model.safetensors` through a temporary file and a rename (`dir` must exist).
pub fn write_weights(
    dir: &Path,
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
) -> Result<()> {
    let weights = dir.join("model.safetensors");
    let tmp = tmp_path(&weights);
    candle_core::safetensors::save(tensors, &tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|source| Error::Io {
        path: weights.clone(),
        source,
    })
}

/// Saves weights, config and metrics into `dir` (created if needed).
pub fn save<M: Serialize>(
    dir: &Path,
    net: &SqNet,
    config: &SavedConfig,
    metrics: &M,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_weights(dir, &net.tensors())?;
    write_json(&dir.join("config.json"), config)?;
    write_json(&dir.join("metrics.json"), metrics)
}

/// Loads `config.json` and the weights of a saved model.
pub fn load(dir: &Path, device: &Device) -> Result<(SqNet, SavedConfig)> {
    let bad = |reason: String| Error::ModelDir {
        dir: dir.to_path_buf(),
        reason,
    };
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| bad(format!("cannot read config.json: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("config.json is not valid JSON: {e}")))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!(
            "config.json has format_version {version:?}, this fairbits ({}) reads version {FORMAT_VERSION}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let config: SavedConfig = serde_json::from_value(value).map_err(|e| {
        bad(format!(
            "config.json does not describe a fairbits model: {e}"
        ))
    })?;
    config.model.validate()?;
    let weights = dir.join("model.safetensors");
    if !weights.exists() {
        return Err(bad("model.safetensors is missing".into()));
    }
    let tensors = candle_core::safetensors::load(&weights, device)
        .map_err(|e| bad(format!("model.safetensors cannot be read: {e}")))?;
    // The initial weights are overwritten; the seed only fills them in the meantime.
    let net = SqNet::new(
        &config.model,
        device,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
    )?;
    net.set_tensors(&tensors, dir)?;
    Ok((net, config))
}
