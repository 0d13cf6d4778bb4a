//! `fairbits certify`: a saved encoder's population certificate (docs/design.md, section 4b) from held-out
//! rows, with the rows it was trained on recognised and left out.

use super::FairModel;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::EvalOptions;
use crate::rng::{rng, Stream};
use crate::schema::Param;
use crate::store::ModelKind;
use std::path::Path;

/// `fairbits certify`: a saved encoder's population certificate from held-out rows.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Certification {
    /// Where the rows come from.
    pub dataset: String,
    /// Which rows: a held-out file, the model's certification split, or its test split.
    pub rows_from: String,
    /// Sensitive column and its groups.
    pub sensitive: String,
    /// Group values (index = `s`).
    pub groups: Vec<String>,
    /// Rows certified on.
    pub rows: usize,
    /// Rows of the file left out because the model was trained on them.
    pub rows_removed_as_training: usize,
    /// The certificate.
    pub population: crate::eval::certificate::Population,
    /// What it covers.
    pub note: String,
}

/// The guarantee in words.
pub const CERTIFY_NOTE: &str = "with the stated confidence, for the population the held-out rows were drawn \
from (independently of training): any classifier or probe that reads ONE code per row (a fresh sample, or the \
thresholded code in threshold mode) is within these bounds; p itself and averages of several samples are not \
covered, and rows the encoder was trained on void the guarantee";

impl FairModel {
    /// The population certificate from held-out rows: every row of a held-out CSV (rows the model was
    /// trained on, recognised by their encoded features, are left out), or the model's own certification
    /// split, or its test split. With a weights column in `held_out`, the certificate is that of the
    /// weighted population (docs/design.md, section 4e).
    pub fn certify(
        &self,
        held_out: Option<(&Path, &crate::data::HeldOut)>,
        opts: &EvalOptions,
    ) -> Result<Certification> {
        if self.kind() != ModelKind::Table || !self.net.config().is_stochastic() {
            return Err(Error::param(
                Param::Model,
                "this model",
                "certify covers table models with a stochastic layer",
            ));
        }
        let data = self.eval_data(held_out)?;
        let (rows, from) = match (held_out, &data.certify) {
            (Some(_), _) => (&data.test, "a held-out file"),
            (None, Some(c)) => (c, "the model's certification split"),
            (None, None) => (&data.test, "the model's test split"),
        };
        let (rows, removed) = (rows.clone(), data.n_left_out);
        let mut rng = rng(opts.seed, Stream::Eval);
        // Rows read with a weights column carry them: the certificate of the weighted population (4e).
        let population = match held_out.and_then(|(_, h)| h.weights.as_ref()) {
            Some(_) => crate::eval::binary::population_weighted(&self.net, &rows, opts, &mut rng)?,
            None => crate::eval::binary::population(&self.net, &rows, opts, &mut rng)?,
        };
        Ok(Certification {
            dataset: data.description.dataset.clone(),
            rows_from: from.into(),
            sensitive: data.description.sensitive.clone(),
            groups: data.description.groups.clone(),
            rows: rows.n,
            rows_removed_as_training: removed,
            population,
            note: CERTIFY_NOTE.into(),
        })
    }

    /// `rows` without those whose encoded features equal a training row's (when the model's own data can
    /// be rebuilt; otherwise a warning that it cannot tell).
    pub(crate) fn without_training_rows(&self, rows: &Dataset) -> Result<(Dataset, usize)> {
        let own = match self.config.data.prepare() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(
                    "cannot tell which rows the model was trained on ({e}): make sure the rows are held out"
                );
                return Ok((rows.clone(), 0));
            }
        };
        let key =
            |d: &Dataset, i: usize| -> Vec<u32> { d.x[i * d.d..(i + 1) * d.d].iter().map(|v| v.to_bits()).collect() };
        let mut seen = std::collections::HashSet::new();
        for d in std::iter::once(&own.train).chain(own.val.as_ref()) {
            for i in 0..d.n {
                seen.insert(key(d, i));
            }
        }
        let keep: Vec<usize> = (0..rows.n).filter(|&i| !seen.contains(&key(rows, i))).collect();
        let removed = rows.n - keep.len();
        if removed > 0 {
            tracing::warn!(
                "{removed} row(s) equal a row the model was trained on: left out (the numbers are about held-out rows)"
            );
        }
        Ok((rows.subset(&keep), removed))
    }
}
