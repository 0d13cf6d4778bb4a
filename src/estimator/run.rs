//! A training run as the command line makes it ([`RunFile`]: checkpoints, the output directory, resuming),
//! the memory check made before anything is allocated, and reading a saved model's data again.

use super::FairModel;
use crate::data::encoding::available_memory;
use crate::data::{DataSpec, Prepared};
use crate::error::{Error, Result};
use crate::eval::{EvalOptions, Metrics, RunInfo};
use crate::model::ModelConfig;
use crate::penalty::PenaltyKind;
use crate::progress::Observer;
use crate::schema::Param;
use crate::store::{Reuse, SavedConfig};
use crate::train::{Checkpointing, TrainConfig};
use std::path::Path;

/// The largest allocations of a run, in bytes, by what needs them (an estimate made before anything is
/// allocated, so that a configuration too big for the machine fails with a message instead of an abort).
pub fn memory_needed(
    model: &ModelConfig,
    train: &TrainConfig,
    eval: &EvalOptions,
    data: &Prepared,
) -> Vec<(&'static str, f64)> {
    let f = |v: usize| v as f64;
    let (n_train, n_test) = (f(data.train.n), f(data.test.n));
    let m = model.code_width();
    let widest = model.hidden.iter().copied().max().unwrap_or(0).max(model.n_inputs);
    let mut parts = vec![
        ("weights, gradients and Adam moments", f(model.n_weights()) * 4.0 * 4.0),
        ("activations of a training batch", f(train.batch_size * model.hidden.iter().sum::<usize>()) * 4.0 * 8.0),
        ("activations of an evaluation pass", (n_train + n_test) * f(widest) * 4.0 * 2.0),
        ("representations for the probes", (n_train + n_test) * f(m) * 8.0 * 3.0),
        ("the logistic probe's Newton system", f((m + 1) * (m + 1)) * 8.0 * f(data.test.n_groups.max(2))),
        ("the forest probe's binned features", n_train * f(m)),
    ];
    if m <= eval.m_max && model.is_stochastic() {
        let half = f(1usize << m.div_ceil(2));
        parts.push((
            "the exact joint MI's code tables",
            f(1usize << m) * 8.0 * f(data.test.n_groups + 1) + n_test * half * 8.0 * 2.0,
        ));
    }
    if train.gamma > 0.0 && train.penalty.estimate == crate::penalty::Estimate::Bank {
        let cells = f(data.train.n_classes * data.train.n_groups);
        let stat = if train.penalty.kind == PenaltyKind::Joint { f(1usize << m) } else { f(m) };
        parts.push(("the penalty's bank", n_train * f(m) * 4.0 + cells * stat * 8.0 * 3.0));
    }
    parts
}

/// Refuses a configuration whose estimated memory exceeds what the machine has available.
pub(crate) fn check_memory(
    model: &ModelConfig,
    train: &TrainConfig,
    eval: &EvalOptions,
    data: &Prepared,
) -> Result<()> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let parts = memory_needed(model, train, eval, data);
    let total: f64 = parts.iter().map(|p| p.1).sum();
    if total <= available {
        return Ok(());
    }
    let (what, largest) = parts.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let gb = |b: f64| format!("{:.1} GB", b / 1e9);
    Err(Error::param(
        Param::Hidden,
        format!("{:?}", model.hidden),
        format!(
            "this configuration needs about {} ({} of it for {what}); this machine has {} available: \
             use narrower layers or fewer rows",
            gb(total),
            gb(largest),
            gb(available)
        ),
    ))
}

/// A training run as `train` starts it, saved to `DIR/checkpoint/run.json` so that `train --resume DIR`
/// continues it with every option unchanged.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunFile {
    /// The resolved configuration.
    pub config: SavedConfig,
    /// Save the training state every this many epochs (0: never).
    pub checkpoint_every: usize,
    /// Leave the wall-clock time out of the metrics.
    pub reproducible: bool,
    /// The process writing the run (named to a second writer that finds the directory locked).
    #[serde(default)]
    pub writer_pid: u32,
}

impl RunFile {
    /// The run recorded in `dir/checkpoint/run.json`.
    pub fn load(dir: &Path) -> Result<RunFile> {
        let run: RunFile = crate::files::read_json(&dir.join("checkpoint").join("run.json"))
            .map_err(|e| Error::ModelDir { dir: dir.to_path_buf(), reason: format!("nothing to resume: {e}") })?;
        run.config.validate().map_err(|e| Error::ModelDir {
            dir: dir.to_path_buf(),
            reason: format!("checkpoint/run.json is not a valid configuration: {e}"),
        })?;
        Ok(run)
    }

    /// Trains (or, with [`Reuse::Resume`], continues from `out`'s checkpoint), evaluates on `data`'s test
    /// split and, with `out`, saves the model there: the directory is claimed first
    /// ([`crate::store::claim_model_dir`]: created, locked, what it may hold checked); the training state
    /// is checkpointed into it while training, and the checkpoint removed once the model is saved. A run
    /// that fails leaves no directory it created, unless it holds a training to resume.
    pub fn execute(&self, data: &Prepared, out: Option<(&Path, Reuse)>, observer: &dyn Observer) -> Result<Metrics> {
        let d = &data.train;
        tracing::info!(dataset = %data.description.dataset, n_train = d.n, n_test = data.test.n, n_dropped = data.n_dropped, inputs = d.d, "data ready");
        let claim = out.map(|(dir, reuse)| crate::store::claim_model_dir(dir, reuse)).transpose()?;
        let resume = out.is_some_and(|(_, reuse)| reuse == Reuse::Resume);
        let dir = claim.as_ref().map(|c| c.dir());
        let ckpt = dir.map(|dir| Checkpointing { dir: dir.join("checkpoint"), every: self.checkpoint_every, resume });
        if let Some(ck) = &ckpt {
            crate::files::create_dir(&ck.dir)?;
            let run = RunFile { writer_pid: std::process::id(), ..self.clone() };
            crate::files::write_json(&ck.dir.join("run.json"), &run)?;
        }
        let (model, report) = FairModel::train(self.config.clone(), data, ckpt.as_ref(), observer)?;
        tracing::info!(seconds = format!("{:.2}", report.train_seconds), epochs = report.epochs, "trained; evaluating");
        // Wall-clock time is the one non-deterministic number; `reproducible` leaves it out.
        let seconds = if self.reproducible { f64::NAN } else { report.train_seconds };
        let info = model.run_info(seconds, report.epochs);
        crate::files::pause_point("evaluation");
        let metrics = model.evaluate(data, &self.config.eval, &info, observer)?;
        if let Some(dir) = dir {
            model.save(dir, Some(&metrics))?;
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            tracing::info!(dir = %dir.display(), "saved");
        }
        Ok(metrics)
    }
}

impl FairModel {
    /// Reads a CSV for this (table) model, adding the derived columns of the shipped dataset it was
    /// trained on.
    pub fn read_table(&self, path: &Path, delimiter: Option<char>) -> Result<crate::data::RawTable> {
        let mut table = crate::data::RawTable::from_path_with(path, crate::data::Duplicates::Reject, delimiter)?;
        if let DataSpec::Table(t) = &self.config.data {
            if let crate::data::Source::Builtin { name, .. } = &t.source {
                crate::data::builtin::derive_columns(*name, &mut table)?;
            }
        }
        Ok(table)
    }

    /// The data to evaluate on: the model's own data and split (its training file checked to be where
    /// and what it was), or the rows of a held-out file, without those the model was trained on (one rule
    /// for `eval`, `mi` and `certify`: [`Prepared::n_left_out`] counts them).
    pub fn eval_data(&self, held_out: Option<(&Path, &crate::data::HeldOut)>) -> Result<Prepared> {
        match held_out {
            None => {
                crate::data::check_fingerprint(&self.config.data, self.config.data_file.as_ref())?;
                self.config.data.prepare()
            }
            Some((path, held)) => {
                let encoding = self.config.encoding.as_ref().ok_or_else(|| {
                    Error::param(Param::Input, path.display(), "an image model is evaluated on its own images")
                })?;
                let table = self.read_table(path, held.delimiter)?;
                crate::data::prepare_held_out(table, encoding, held, |rows| self.without_training_rows(&rows))
            }
        }
    }

    /// The run facts recorded in a saved model's `metrics.json` (training time, epochs, history), so
    /// that evaluating it again reproduces the metrics of its training.
    pub fn saved_run_info(&self, dir: &Path) -> RunInfo {
        let saved: Option<Metrics> = crate::files::read_json(&dir.join("metrics.json")).ok();
        let mut info = self.run_info(f64::NAN, 0);
        match saved {
            Some(Metrics::Binary(m)) => (info.train_seconds, info.epochs) = (m.timing.train_seconds, m.timing.epochs),
            Some(Metrics::Multiclass(m)) => {
                (info.train_seconds, info.epochs, info.history) = (m.run.train_seconds, m.run.epochs, m.history)
            }
            None => {}
        }
        info
    }
}
