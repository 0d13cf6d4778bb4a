//! The parameters of a fairbits model and where they are checked: [`FairParams`] (unchecked, builder
//! setters; generated from the one list in [`crate::schema`]), [`ValidParams`] (checked, once: resolved
//! against the data's kind into the saved configuration) and the [`Preset`].

use super::constraint::{Constraint, Found, SearchOptions};
use super::run::check_memory;
use super::FairModel;
use crate::data::{DataSpec, Prepared};
use crate::error::{Error, Result};
use crate::eval::certificate::TvMethod;
use crate::eval::EvalOptions;
use crate::model::{ConvLayers, ModelConfig};
use crate::penalty::{PenaltyKind, PenaltySpec, Target};
use crate::progress::Observer;
use crate::schema::{Param, Resolved};
use crate::store::{ModelKind, SavedConfig};
use crate::train::{Checkpointing, TrainConfig, TrainReport};

pub use crate::schema::FairParams;

/// A named set of parameter values; values set explicitly override it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// No preset: every value not set takes its default.
    None,
    /// Strong invariance on tables: a 12-neuron stochastic layer trained with the exact joint MI penalty,
    /// gamma reached by a linear ramp ([`Preset::values`]); on Adult a certified population DP gap of
    /// 0.077 at accuracy 0.831 (seeds 0-2; README, "The certified front").
    Invariant,
    /// The tightest certificate: a one-bit code trained on its exact expected loss with the total-variation
    /// penalty (docs/design.md, sections 1b and 4d); on Adult a certified population DP gap of 0.048 at
    /// accuracy 0.832 (tuning seeds 0-2 and 6-8), 0.044 at 0.830 on seeds 3-5 (README, "Certified fairness
    /// on demand"). The base of the search for a certified bound.
    Certified,
}
named_choices!(Preset, Preset, { None => "none", Invariant => "invariant", Certified => "certified" }, values = Preset::describe);

impl Preset {
    /// Every preset with the values it sets, in words (`invariant: hidden 64,12, ...`), for help and docs.
    pub fn describe() -> String {
        let each = Preset::NAMES.iter().filter_map(|n| n.parse::<Preset>().ok()).map(|p| {
            let values: Vec<String> = p.values().given().iter().map(|(q, v)| format!("{q} {v}")).collect();
            if values.is_empty() {
                p.name().to_string()
            } else {
                format!("{}: {}", p.name(), values.join(", "))
            }
        });
        format!("one of: {}", each.collect::<Vec<_>>().join("; "))
    }

    /// The values the preset sets (explicitly set ones override them).
    pub fn values(self) -> FairParams {
        match self {
            Preset::None => FairParams::new(),
            Preset::Invariant => FairParams::new()
                .hidden(vec![64, 12])
                .penalty(PenaltySpec::new(PenaltyKind::Joint, Target::Parity))
                .gamma(8.0)
                .warmup_epochs(20)
                .epochs(80),
            Preset::Certified => FairParams::new()
                .hidden(vec![64, 1])
                .estimator(crate::model::Estimator::Exact)
                .temperature(10.0)
                .lr(2e-3)
                .batch_size(128)
                .epochs(80)
                .warmup_epochs(20)
                .penalty(PenaltySpec::new(PenaltyKind::Tv, Target::Parity))
                .gamma(1.75),
        }
    }
}

impl FairParams {
    /// No value set: every parameter takes its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// A regression target (docs/design.md, section 5c) trains the candle step's linear head: the preset
    /// `certified` (the exact estimator of a binary head) and a certified bound's search (which selects
    /// the most accurate candidate) are for classifiers.
    fn check_regression(&self) -> Result<()> {
        let r = self.resolved(ModelKind::Table);
        if r.preset == Preset::Certified {
            let why = "the preset is for binary targets (the exact estimator of a binary head); a regression target \
                       takes the preset invariant or none";
            return Err(Error::param(Param::Preset, r.preset, why));
        }
        if let Some(c) = self.constraint() {
            let (param, value) = match c {
                Constraint::DemographicParity { max_gap } => (Param::MaxCertifiedDp, max_gap),
                Constraint::EqualizedOdds { max_gap } => (Param::MaxCertifiedEo, max_gap),
            };
            let why = "the search selects the most accurate classifier; for a regression target train with a gamma \
                       and read the certificate, which bounds any downstream model (docs/design.md, section 5c)";
            return Err(Error::param(param, value, why));
        }
        Ok(())
    }

    /// The certified bound asked for, if any.
    pub fn constraint(&self) -> Option<Constraint> {
        let r = self.resolved(ModelKind::Table);
        match (r.max_certified_dp, r.max_certified_eo) {
            (Some(max_gap), _) => Some(Constraint::DemographicParity { max_gap }),
            (None, Some(max_gap)) => Some(Constraint::EqualizedOdds { max_gap }),
            (None, None) => None,
        }
    }

    /// The parameters with the preset's values filled in where none was set.
    fn with_preset(&self) -> FairParams {
        let Some(preset) = self.preset else { return self.clone() };
        self.filled_from(&preset.values())
    }

    /// These parameters with `values` (a preset's, a search's base) filled in where none was set.
    fn filled_from(&self, values: &FairParams) -> FairParams {
        let mut p = self.or(values);
        // A preset's ramp of gamma is a share of its epochs: with other epochs set (and no ramp), the ramp
        // keeps that share rather than outlasting the training.
        if let (None, Some(epochs), Some(w), Some(e)) =
            (self.warmup_epochs, self.epochs, values.warmup_epochs, values.epochs)
        {
            p.warmup_epochs = Some(w * epochs / e.max(1));
        }
        p
    }

    /// The evaluation options these parameters describe (their seed the run's), checked: what `eval`,
    /// `mi` and `certify` apply to a saved model.
    pub fn eval_options(&self) -> Result<EvalOptions> {
        self.check_each()?;
        let options = eval_options(&self.resolved(ModelKind::Table));
        options.validate().map(|_| options)
    }

    /// Checks every value, and every combination that can be checked without the data, once; errors name
    /// the parameter.
    pub fn check(&self) -> Result<ValidParams> {
        if let (Some(_), Some(_)) = (self.max_certified_dp.flatten(), self.max_certified_eo.flatten()) {
            let why = "one certified bound at a time: demographic parity or equalised odds";
            return Err(Error::param(
                Param::MaxCertifiedEo,
                crate::schema::ParamValue::text(&self.max_certified_eo.flatten()),
                why,
            ));
        }
        if let (Some(g), true) = (self.gamma, self.constraint().is_some()) {
            let why = "the search for a certified bound chooses gamma itself; give one or the other";
            return Err(Error::param(Param::Gamma, g, why));
        }
        let p = self.with_preset();
        p.check_each()?;
        let r = p.resolved(ModelKind::Table);
        if r.full_precision && !r.stochastic.is_empty() {
            let why = "a full-precision network has no stochastic layer";
            return Err(Error::param(Param::Stochastic, crate::schema::ParamValue::text(&r.stochastic), why));
        }
        let model = ModelConfig { n_inputs: 1, ..model_config(&r) };
        model.validate()?;
        let train = train_config(&r);
        train.validate()?;
        eval_options(&r).validate()?;
        train.penalty.check(model.code_width())?;
        Ok(ValidParams(p))
    }
}

fn model_config(r: &Resolved) -> ModelConfig {
    let stochastic = match (r.full_precision, r.stochastic.is_empty()) {
        (true, _) => vec![],
        (false, true) => vec![r.hidden.len().saturating_sub(1)],
        (false, false) => r.stochastic.clone(),
    };
    ModelConfig {
        n_inputs: 0,
        hidden: r.hidden.clone(),
        stochastic,
        pre_activation: r.pre_activation,
        temperature: r.temperature,
        estimator: r.estimator,
        activation: r.activation,
        n_outputs: 1,
        regression: false,
        conv: None,
    }
}

fn train_config(r: &Resolved) -> TrainConfig {
    TrainConfig {
        epochs: r.epochs,
        batch_size: r.batch_size,
        lr: r.lr,
        weight_decay: r.weight_decay,
        gamma: r.gamma,
        penalty: r.penalty,
        loss_form: r.loss_form,
        patience: r.patience,
        warmup_epochs: r.warmup_epochs,
        backend: r.backend,
        seed: r.seed,
        attempt: 0,
    }
}

fn eval_options(r: &Resolved) -> EvalOptions {
    EvalOptions {
        inference: r.inference,
        draws: r.draws,
        mc_samples: r.mc_samples,
        m_max: r.m_max,
        forest_trees: r.forest_trees,
        seed: r.seed,
        probe_rows: r.probe_rows,
        probe_draws: r.probe_draws,
        confidence: r.confidence,
    }
}

impl Default for ModelConfig {
    /// The defaults of [`crate::schema`] for tables (no inputs yet: `n_inputs` is the data's).
    fn default() -> Self {
        model_config(&FairParams::new().resolved(ModelKind::Table))
    }
}

impl Default for TrainConfig {
    /// The defaults of [`crate::schema`] for tables.
    fn default() -> Self {
        train_config(&FairParams::new().resolved(ModelKind::Table))
    }
}

impl Default for EvalOptions {
    /// The defaults of [`crate::schema`].
    fn default() -> Self {
        eval_options(&FairParams::new().resolved(ModelKind::Table))
    }
}

/// Checked parameters ([`FairParams::check`]): [`ValidParams::fit`] trains a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidParams(FairParams);

impl ValidParams {
    /// The seed of the run.
    pub fn seed(&self) -> u64 {
        self.0.resolved(ModelKind::Table).seed
    }

    /// The architecture, training and evaluation options for inputs of `shape` (one row: `[d]`, or
    /// `[3, h, w]` for images) and `n_classes` task classes: the defaults of the data's kind filled in.
    pub fn resolve_for(
        &self,
        kind: ModelKind,
        shape: &[usize],
        n_classes: usize,
    ) -> Result<(ModelConfig, TrainConfig, EvalOptions)> {
        let r = self.0.resolved(kind);
        if let (ModelKind::Image, preset @ (Preset::Invariant | Preset::Certified)) = (kind, r.preset) {
            let why = "the preset is for tables; images take the image defaults";
            return Err(Error::param(Param::Preset, preset, why));
        }
        if let (ModelKind::Table, Preset::Certified, 3..) = (kind, r.preset, n_classes) {
            let why = "the preset is for binary targets (a one-bit code trained by the exact estimator of a binary \
                       head); a target of more classes takes the preset invariant or none";
            return Err(Error::param(Param::Preset, r.preset, why));
        }
        let mut model = model_config(&r);
        model.n_outputs = if n_classes == 2 { 1 } else { n_classes };
        model.n_inputs = shape.iter().product();
        if kind == ModelKind::Image {
            let conv = ConvLayers { image: (shape[1], shape[2]), channels: r.channels.clone(), kernel: r.kernel };
            model.n_inputs = conv.feature_width()?;
            model.conv = Some(conv);
        }
        model.validate()?;
        let train = train_config(&r);
        // The defaults of images differ from those of tables that `check` saw.
        train.validate()?;
        train.penalty.check(model.code_width())?;
        Ok((model, train, eval_options(&r)))
    }

    /// The resolved configuration for `data` prepared from `spec`, checked against the memory the run
    /// would need.
    pub fn resolve(&self, data: &Prepared, spec: &DataSpec) -> Result<SavedConfig> {
        let kind = match spec {
            DataSpec::Table(_) => ModelKind::Table,
            DataSpec::Images(_) => ModelKind::Image,
        };
        let (mut model, train, eval) = self.resolve_for(kind, &data.train.shape, data.train.n_classes)?;
        if data.train.t.is_some() {
            self.0.check_regression()?;
            model.regression = true;
            model.validate()?;
        }
        check_memory(&model, &train, &eval, data)?;
        let mut config = SavedConfig::new(model, train, spec.clone(), data.encoding.clone(), eval);
        if let DataSpec::Table(crate::data::TableSpec { source: crate::data::Source::Csv { path, .. }, .. }) = spec {
            config.data_file = Some(crate::data::file_fingerprint(path)?);
        }
        Ok(config)
    }

    /// Trains on `data` (prepared from `spec`): returns the fitted model. With a certified bound asked for
    /// ([`FairParams::max_certified_dp`]), the model the search found, or an error when no candidate met
    /// the bound (with the best bound reached and its accuracy).
    pub fn fit(&self, data: &Prepared, spec: &DataSpec) -> Result<FairModel> {
        Ok(self.fit_with(data, spec, None, &())?.0)
    }

    /// The certified bound asked for, if any.
    pub fn constraint(&self) -> Option<Constraint> {
        self.0.constraint()
    }

    /// The search for the most accurate model whose certificate meets the bound asked for
    /// ([`super::constraint::search`]): the candidates are the recommended configuration for the
    /// constraint ([`super::constraint::recommended`]) with the values set here over it, at its ladder of
    /// gammas; confidence, seed and the final tries are these parameters'. `None` without a constraint.
    pub fn search(&self, data: &Prepared, spec: &DataSpec) -> Result<Option<Found>> {
        let Some(constraint) = self.constraint() else { return Ok(None) };
        if data.train.t.is_some() {
            self.0.check_regression()?;
        }
        let (recommended, gammas) = super::constraint::recommended(constraint);
        let mut base = self.0.clone();
        (base.max_certified_dp, base.max_certified_eo, base.final_tries) = (None, None, None);
        let base = base.filled_from(&recommended);
        let r = self.0.resolved(ModelKind::Table);
        let tv_method = TvMethod { m_max: r.m_max, samples: r.mc_samples, ..SearchOptions::default().tv_method };
        let opts = SearchOptions {
            confidence: r.confidence,
            final_tries: r.final_tries,
            seed: r.seed,
            tv_method,
            ..SearchOptions::default()
        };
        super::constraint::search(&base, &gammas, constraint, data, spec, &opts).map(Some)
    }

    /// [`ValidParams::fit`] with checkpoints and a progress observer.
    pub fn fit_with(
        &self,
        data: &Prepared,
        spec: &DataSpec,
        ckpt: Option<&Checkpointing>,
        observer: &dyn Observer,
    ) -> Result<(FairModel, TrainReport)> {
        if let Some(found) = self.search(data, spec)? {
            let model = found.model_if_met()?;
            let report = model.report().cloned();
            let empty = TrainReport { epochs: 0, best_epoch: 0, train_seconds: 0.0, history: Vec::new(), restarts: 0 };
            return Ok((model, report.unwrap_or(empty)));
        }
        FairModel::train(self.resolve(data, spec)?, data, ckpt, observer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_fills_what_is_not_set_and_yields_to_what_is() {
        let p = FairParams::new().preset(Preset::Invariant).gamma(3.0).check().unwrap();
        let (model, train, _) = p.resolve_for(ModelKind::Table, &[10], 2).unwrap();
        assert_eq!((model.hidden, train.gamma, train.epochs), (vec![64, 12], 3.0, 80));
        assert_eq!(train.penalty.kind, PenaltyKind::Joint);
    }

    #[test]
    fn the_presets_ramp_keeps_its_share_of_fewer_epochs() {
        let p = FairParams::new().preset(Preset::Invariant).epochs(8).check().unwrap();
        let (_, train, _) = p.resolve_for(ModelKind::Table, &[10], 2).unwrap();
        assert_eq!((train.epochs, train.warmup_epochs), (8, 2));
        let p = FairParams::new().preset(Preset::Invariant).epochs(8).warmup_epochs(5).check().unwrap();
        assert_eq!(p.resolve_for(ModelKind::Table, &[10], 2).unwrap().1.warmup_epochs, 5);
    }

    #[test]
    fn every_value_is_checked_once_with_its_name() {
        let e = FairParams::new().gamma(-1.0).check().unwrap_err();
        assert!(matches!(e, Error::InvalidParam { param: Param::Gamma, .. }), "{e}");
        let e = FairParams::new().epochs(10).warmup_epochs(20).check().unwrap_err();
        assert!(matches!(e, Error::InvalidParam { param: Param::WarmupEpochs, .. }), "{e}");
        let e = FairParams::new().draws(0).check().unwrap_err();
        assert!(matches!(e, Error::InvalidParam { param: Param::Draws, .. }), "{e}");
        let e = FairParams::new().set(Param::Gamma, "abc").unwrap_err();
        assert!(e.to_string().contains("invalid gamma = abc: must be a number"), "{e}");
    }
}
