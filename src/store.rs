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
    /// SHA-256 of the `model.safetensors` written with this config (set by [`save`]): weights and config
    /// from two different saves, as a write interrupted midway leaves them, are refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
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
            weights_sha256: None,
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

/// Saves weights, config and (when given) metrics into `dir` (created if needed), having checked that
/// [`load`] will read them back: the config valid and the same once read ([`SavedConfig::validate`],
/// nothing non-finite lost as `null`), every weight finite. The files are written weights first, then the
/// config holding the weights' checksum, then the metrics (an older `metrics.json` is removed first), each
/// atomically: a write interrupted midway leaves a directory that load refuses, never a mixed model.
pub fn save<M: Serialize>(dir: &Path, net: &Net, config: &SavedConfig, metrics: Option<&M>) -> Result<()> {
    let weights = dir.join("model.safetensors");
    let tensors = net.tensors();
    for (name, t) in &tensors {
        let values: Vec<f32> = t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            let reason = format!("tensor '{name}' holds a non-finite weight ({v}); the model is not saved");
            return Err(Error::Values { what: weights.display().to_string(), reason });
        }
    }
    let bytes = files::safetensors_bytes(&weights, &tensors)?;
    let config = SavedConfig { weights_sha256: Some(files::sha256_hex(&bytes)), ..config.clone() };
    check_reads_back(&config, dir)?;
    files::create_dir(dir)?;
    let _ = std::fs::remove_file(dir.join("metrics.json"));
    files::write_atomic(&weights, &bytes)?;
    files::pause_point("writing");
    files::write_json(&dir.join("config.json"), &config)?;
    if let Some(m) = metrics {
        files::write_json(&dir.join("metrics.json"), m)?;
    }
    Ok(())
}

/// Checks that `config` is what [`load_config`] would read back from its JSON and accept.
fn check_reads_back(config: &SavedConfig, dir: &Path) -> Result<()> {
    config.validate()?;
    let json = dir.join("config.json");
    let text = serde_json::to_string(config).map_err(|source| Error::Json { path: json.clone(), source })?;
    let back: SavedConfig = serde_json::from_str(&text).map_err(|source| Error::Json { path: json.clone(), source })?;
    if back != *config {
        let reason = "the configuration would not read back as it is (a value that JSON cannot hold, such as \
                      NaN or infinity): the model is not saved"
            .into();
        return Err(Error::Values { what: json.display().to_string(), reason });
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
    let bad = |reason: String| Error::ModelDir { dir: dir.to_path_buf(), reason };
    let bytes = std::fs::read(&weights).map_err(|e| bad(format!("model.safetensors cannot be read: {e}")))?;
    if config.weights_sha256.as_ref().is_some_and(|sha| *sha != files::sha256_hex(&bytes)) {
        return Err(bad("model.safetensors is not the file saved with config.json (a write interrupted midway, \
                        or files copied from two models): train the model again, or continue an interrupted \
                        training from its checkpoint"
            .into()));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| bad(format!("model.safetensors cannot be read: {e}")))?;
    // The initial weights are overwritten; the seed only fills them in the meantime.
    let net = Net::new(&config.model, device, &mut rng(0, Stream::Init))?;
    net.set_tensors(&tensors, dir)?;
    Ok((net, config))
}

/// What training may find in its output directory, besides nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Only an empty or new directory.
    Fresh,
    /// The directory of an interrupted training, continued from its checkpoint.
    Resume,
    /// A model (or an interrupted training's checkpoint) may be replaced.
    Replace,
}

/// The files a model directory holds (anything else is someone else's).
const MODEL_FILES: &[&str] =
    &["config.json", "model.safetensors", "metrics.json", "python.json", "search.json", "checkpoint"];

/// A model directory held by this process while it writes: created if it did not exist, and locked (an
/// exclusive lock on the directory itself, which the system releases however the process ends) so that a
/// second writer fails with a message instead of racing the first.
#[derive(Debug)]
pub struct DirClaim {
    dir: std::path::PathBuf,
    _lock: std::fs::File,
    created: bool,
}

impl DirClaim {
    /// Whether this claim created the directory.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Checks, without changing anything, that a model may be written into `dir`: refused when it is not a
/// directory, holds files that are not a model's (they are not fairbits' to overwrite), holds a model
/// (unless [`Reuse::Replace`]), or holds an interrupted training's checkpoint (continue it with
/// [`Reuse::Resume`], or discard it with [`Reuse::Replace`]). A directory that does not exist is fine.
pub fn check_model_dir(dir: &Path, reuse: Reuse) -> Result<()> {
    let refused = |reason: String, allow| Error::Refused { path: dir.to_path_buf(), reason, allow };
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(refused("not a directory: a model is saved as a directory of files".into(), None));
    }
    // Another writer's files are its own business: say so before reading them as an interrupted run's.
    let probe = std::fs::File::open(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    if probe.try_lock().is_err() {
        return Err(locked(dir));
    }
    drop(probe);
    check_contents(dir, reuse)
}

/// What `dir` (an existing directory) holds, against what a model written there may find.
fn check_contents(dir: &Path, reuse: Reuse) -> Result<()> {
    let refused = |reason: String, allow| Error::Refused { path: dir.to_path_buf(), reason, allow };
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let foreign: Vec<&String> =
        names.iter().filter(|n| !MODEL_FILES.contains(&n.as_str()) && !files::is_tmp(n)).collect();
    if !foreign.is_empty() {
        let list = foreign.iter().take(3).map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        let why = format!(
            "holds files that are not a fairbits model's ({list}); a model is saved into a new or empty directory"
        );
        return Err(refused(why, None));
    }
    let has = |name: &str| names.iter().any(|n| n == name);
    match reuse {
        Reuse::Resume | Reuse::Replace => Ok(()),
        Reuse::Fresh if has("checkpoint") => {
            let state = crate::files::read_json::<serde_json::Value>(&dir.join("checkpoint").join("checkpoint.json"))
                .ok()
                .and_then(|v| v.get("epoch").and_then(|e| e.as_u64()))
                .map_or("killed before its first checkpoint".to_string(), |e| format!("checkpoint of epoch {e}"));
            Err(Error::Unfinished { path: dir.to_path_buf(), state })
        }
        Reuse::Fresh if has("config.json") || has("model.safetensors") => {
            Err(refused("holds a trained model, which would be replaced".into(), Some(crate::schema::Param::Force)))
        }
        Reuse::Fresh => Ok(()),
    }
}

/// The error for a directory another process holds: names it when its run file says who it is.
fn locked(dir: &Path) -> Error {
    let who = crate::files::read_json::<serde_json::Value>(&dir.join("checkpoint").join("run.json"))
        .ok()
        .and_then(|v| v.get("writer_pid").and_then(|p| p.as_u64()))
        .map_or(String::new(), |pid| format!(" (process {pid})"));
    let reason = format!("another fairbits process{who} is writing a model here; wait for it or use another directory");
    Error::Refused { path: dir.to_path_buf(), reason, allow: None }
}

/// Claims `dir` for writing a model: [`check_model_dir`], then the directory created if needed and locked
/// (a second writer is refused, naming the first when it can), the temporary files of killed writers
/// removed, and with [`Reuse::Replace`] an earlier checkpoint discarded.
pub fn claim_model_dir(dir: &Path, reuse: Reuse) -> Result<DirClaim> {
    check_model_dir(dir, reuse)?;
    let created = !dir.exists();
    files::create_dir(dir)?;
    let lock = std::fs::File::open(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    if lock.try_lock().is_err() {
        return Err(locked(dir));
    }
    // Checked again under the lock: a writer that held it may have finished a model here meanwhile.
    check_contents(dir, reuse)?;
    files::remove_stale_tmp(dir);
    files::remove_stale_tmp(&dir.join("checkpoint"));
    let checkpoint = dir.join("checkpoint");
    if reuse == Reuse::Replace && checkpoint.exists() {
        std::fs::remove_dir_all(&checkpoint).map_err(|source| Error::Io { path: checkpoint.clone(), source })?;
    }
    Ok(DirClaim { dir: dir.to_path_buf(), _lock: lock, created })
}

impl Drop for DirClaim {
    /// A directory this claim created and left without a model or a checkpoint to continue from (a run
    /// that failed) is removed: a failed run leaves nothing behind but what can be resumed.
    fn drop(&mut self) {
        let keep = self.dir.join("config.json").exists() || self.dir.join("checkpoint").join("run.json").exists();
        if self.created && !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
