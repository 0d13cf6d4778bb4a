//! Checkpoints: the whole training state at the end of an epoch (weights, Adam moments and step, batch
//! order, RNG positions, history, the best validation snapshot), so that a resumed run ends exactly as an
//! uninterrupted one.

use super::{EpochStats, Run};
use crate::error::{Error, Result};
use crate::files;
use crate::penalty::Regulariser;
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
    /// The start the state belongs to (a restart after a collapsed code has streams of its own).
    #[serde(default)]
    pub attempt: u32,
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

    /// The start (attempt) the saved state belongs to: a resumed run continues that start.
    pub(crate) fn saved_attempt(&self) -> Result<u32> {
        Ok(if self.has_state() { self.load()?.0.attempt } else { 0 })
    }

    /// Whether a state has been saved (a run killed before its first checkpoint has none).
    pub(crate) fn has_state(&self) -> bool {
        self.json().exists()
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

fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?)
}

/// Continues `run` from the checkpoint in `c`: weights, optimiser, batch order, random streams, history,
/// best snapshot and elapsed time, so that it ends as an uninterrupted run would.
pub(crate) fn restore(c: &Checkpointing, run: &mut Run<'_>) -> Result<()> {
    let (state, tensors) = c.load()?;
    let get = |name: String| -> Result<Tensor> {
        tensors.get(&name).cloned().ok_or_else(|| c.error(format!("the checkpoint has no tensor '{name}'")))
    };
    let device = run.net.device().clone();
    let n_net = run.net.vars().len();
    let (mut m, mut v, mut snapshot) = (Vec::new(), Vec::new(), Vec::new());
    for (k, var) in run.vars.iter().enumerate() {
        let t = get(format!("var.{k}"))?;
        if t.dims() != var.dims() {
            return Err(c.error("the checkpoint's weights do not fit this model"));
        }
        var.set(&t.to_device(&device)?)?;
        m.push(host_vec(&get(format!("adam_m.{k}"))?)?);
        v.push(host_vec(&get(format!("adam_v.{k}"))?)?);
        if state.best.is_some() && k < n_net {
            snapshot.push(get(format!("best.{k}"))?.to_device(&device)?);
        }
    }
    run.opt.set_state(state.adam_t, m, v).map_err(|_| c.error("its optimiser state does not fit this model"))?;
    let pos = |s: &str| s.parse::<u128>().map_err(|_| c.error("corrupt RNG position"));
    run.order_rng.set_word_pos(pos(&state.order_rng_word_pos)?);
    run.noise_rng.set_word_pos(pos(&state.noise_rng_word_pos)?);
    if state.order.len() != run.order.len() {
        return Err(c.error("the checkpoint was made on other data"));
    }
    run.order = state.order;
    run.history = state.history;
    run.best = state.best.map(|(l, e)| (l, e, snapshot));
    run.first_epoch = state.epoch + 1;
    run.prior_seconds = state.elapsed_seconds;
    tracing::info!(epoch = state.epoch, "resuming from the checkpoint");
    // The bank is rebuilt from the checkpoint's weights rather than restored with stale rows.
    if matches!(run.regulariser, Regulariser::Bank { .. }) {
        let cfg = run.cfg;
        run.regulariser = Regulariser::new(&cfg.penalty, cfg.gamma, run.net, run.data, cfg.stream_seed())?;
    }
    Ok(())
}

/// Saves `run`'s state at the end of `epoch` (`elapsed`: seconds trained so far, resumes included).
pub(crate) fn save(c: &Checkpointing, run: &Run<'_>, epoch: usize, elapsed: f64) -> Result<()> {
    let mut tensors = HashMap::new();
    let (t, m, v) = run.opt.state();
    for (k, var) in run.vars.iter().enumerate() {
        tensors.insert(format!("var.{k}"), var.as_tensor().to_device(&Device::Cpu)?);
        tensors.insert(format!("adam_m.{k}"), Tensor::from_slice(&m[k], m[k].len(), &Device::Cpu)?);
        tensors.insert(format!("adam_v.{k}"), Tensor::from_slice(&v[k], v[k].len(), &Device::Cpu)?);
    }
    if let Some((_, _, snap)) = &run.best {
        for (k, t) in snap.iter().enumerate() {
            tensors.insert(format!("best.{k}"), t.to_device(&Device::Cpu)?);
        }
    }
    let state = CheckpointState {
        epoch,
        order: run.order.clone(),
        order_rng_word_pos: run.order_rng.get_word_pos().to_string(),
        noise_rng_word_pos: run.noise_rng.get_word_pos().to_string(),
        adam_t: t,
        history: run.history.clone(),
        best: run.best.as_ref().map(|(l, e, _)| (*l, *e)),
        elapsed_seconds: elapsed,
        tensors: format!("checkpoint-{epoch}.safetensors"),
        attempt: run.cfg.attempt,
    };
    c.save(&state, tensors)
}
