//! Checkpoints: the whole training state at the end of an epoch (weights, Adam moments and step, batch
//! order, RNG positions, history, the best validation snapshot), so that a resumed run ends exactly as an
//! uninterrupted one.

use super::EpochStats;
use crate::error::{Error, Result};
use crate::files;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where and how often the training state is saved, and whether to continue from it.
#[derive(Clone, Debug)]
pub struct Checkpointing {
    /// Directory of `checkpoint.json` and its tensors.
    pub dir: PathBuf,
    /// Save after every `every` epochs (0: never).
    pub every: usize,
    /// Continue from the checkpoint in `dir`.
    pub resume: bool,
}

/// The training state at the end of an epoch: with the tensors in `tensors`, everything needed to
/// continue exactly as if never interrupted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub epoch: usize,
    pub order: Vec<u32>,
    pub order_rng_word_pos: String,
    pub noise_rng_word_pos: String,
    pub adam_t: i32,
    pub history: Vec<EpochStats>,
    pub best: Option<(f64, usize)>,
    pub elapsed_seconds: f64,
    pub tensors: String,
}

impl Checkpointing {
    fn json(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::ModelDir { dir: self.dir.clone(), reason: reason.into() }
    }

    /// Saves the state: tensors under a per-epoch name first, then `checkpoint.json` (renamed into place,
    /// so a crash at any moment leaves the previous checkpoint valid), then the older tensors are removed.
    pub(crate) fn save(&self, state: &CheckpointState, tensors: HashMap<String, Tensor>) -> Result<()> {
        files::create_dir(&self.dir)?;
        files::write_safetensors(&self.dir.join(&state.tensors), &tensors)?;
        files::write_json(&self.json(), state)?;
        let io = |source| Error::Io { path: self.dir.clone(), source };
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let p = entry.map_err(io)?.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            if name.starts_with("checkpoint-") && name.ends_with(".safetensors") && name != state.tensors {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(())
    }

    /// The saved state and its tensors.
    pub(crate) fn load(&self) -> Result<(CheckpointState, HashMap<String, Tensor>)> {
        let text = std::fs::read_to_string(self.json())
            .map_err(|e| self.error(format!("no checkpoint to resume from: {e}")))?;
        let state: CheckpointState =
            serde_json::from_str(&text).map_err(|e| self.error(format!("checkpoint.json is unreadable: {e}")))?;
        let tensors = candle_core::safetensors::load(self.dir.join(&state.tensors), &Device::Cpu)
            .map_err(|e| self.error(format!("{} cannot be read: {e}", state.tensors)))?;
        Ok((state, tensors))
    }
}
