//! The information penalty: what is penalised ([`PenaltySpec`], one value with one grammar), how it is
//! computed ([`mi`]: the MI of docs/design.md, sections 2 and 3; [`bank`]: the whole-training-set
//! estimate; [`adversary`]: adversarial debiasing), and the one place that turns a spec into a training
//! term ([`Regulariser`]).
//!
//! ```
//! use fairbits::penalty::{Estimate, PenaltyKind, PenaltySpec, Target};
//! let spec: PenaltySpec = "joint:odds".parse().unwrap();
//! assert_eq!((spec.kind, spec.target), (PenaltyKind::Joint, Target::Odds));
//! // Equalised odds needs every (y, s) cell, which a batch rarely holds: the default estimate is the bank.
//! assert_eq!(spec.estimate, Estimate::Bank);
//! assert_eq!(spec.to_string(), "joint:odds");
//! assert_eq!("per-neuron@bank".parse::<PenaltySpec>().unwrap().to_string(), "per-neuron@bank");
//! ```

pub(crate) mod adversary;
pub(crate) mod bank;
pub mod mi;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Forward, Inference, Mode, Net};
use crate::rng::{rng, Stream};
use crate::schema::Param;
use adversary::Adversary;
use bank::{CellBank, Form, Swap};
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Widest layer the exact joint penalty enumerates (`2^16` codes per batch).
pub const JOINT_PENALTY_M_MAX: usize = 16;

/// Which quantity is penalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyKind {
    /// The paper's `sum_j I(T_j; S)` (docs/design.md, section 2).
    PerNeuron,
    /// The exact joint `I(T; S)` of the whole layer by enumeration (section 3; m <= 16).
    Joint,
    /// The pairwise-distance (KL) estimate of the joint `I(T; S)`, any width (Kolchinsky and Tracey 2017).
    Pairwise,
    /// Adversarial debiasing (Ganin et al. 2016; Xie et al. 2017): an adversary (one tanh layer of 32)
    /// predicts `s` from the representation through a gradient-reversal layer of weight gamma; the penalty
    /// is its cross-entropy (nats).
    Adversarial,
    /// The largest total variation between two groups' code distributions (exact by enumeration, m <= 16):
    /// the quantity the population certificate bounds (docs/design.md, section 4b).
    Tv,
}
named_choices!(PenaltyKind, Penalty, {
    PerNeuron => "per-neuron",
    Joint => "joint",
    Pairwise => "pairwise",
    Adversarial => "adversarial",
    Tv => "tv",
});

/// Which independence the penalty asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `I(T; S)`: demographic parity.
    Parity,
    /// `I(T; S | Y) = sum_y P(y) I(T; S | Y = y)`: equalised odds.
    Odds,
}
named_choices!(Target, Penalty, { Parity => "parity", Odds => "odds" });

/// Where the penalty is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimate {
    /// On each batch alone.
    Batch,
    /// Over the whole training set: the batch's rows live, the others from a bank of their latest `p`
    /// ([`bank`]); rare `(y, s)` cells count at their true weight.
    Bank,
}
named_choices!(Estimate, Penalty, { Batch => "batch", Bank => "bank" });

impl Estimate {
    /// The one default: the bank for equalised odds (the conditional MI needs every `(y, s)` cell, which a
    /// batch rarely holds when a cell is rare), the batch for demographic parity (faster, and the fused
    /// CPU step implements it).
    pub fn default_for(target: Target) -> Estimate {
        match target {
            Target::Parity => Estimate::Batch,
            Target::Odds => Estimate::Bank,
        }
    }
}

/// A penalty: what (`kind`), for which independence (`target`), estimated where (`estimate`).
///
/// Grammar (`Display` and `FromStr`): `KIND[:TARGET][@ESTIMATE]`, e.g. `per-neuron`, `joint:odds`,
/// `per-neuron:odds@batch`; the estimate is written only when it is not the target's default
/// ([`Estimate::default_for`]). `KIND-conditional` is read as `KIND:odds` (the earlier spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PenaltySpec {
    /// What is penalised.
    pub kind: PenaltyKind,
    /// Parity or odds.
    pub target: Target,
    /// Batch or bank.
    pub estimate: Estimate,
}

impl Default for PenaltySpec {
    fn default() -> Self {
        PenaltySpec::new(PenaltyKind::PerNeuron, Target::Parity)
    }
}

impl PenaltySpec {
    /// A penalty with the target's default estimate.
    pub fn new(kind: PenaltyKind, target: Target) -> Self {
        PenaltySpec { kind, target, estimate: Estimate::default_for(target) }
    }

    /// The same penalty estimated by `estimate`.
    pub fn with_estimate(self, estimate: Estimate) -> Self {
        PenaltySpec { estimate, ..self }
    }

    /// Checks the combination against a representation layer of width `m`.
    pub fn check(&self, m: usize) -> Result<()> {
        let bad = |reason: String| Err(Error::param(Param::Penalty, self, reason));
        match (self.kind, self.target, self.estimate) {
            (PenaltyKind::Adversarial, Target::Odds, _) => {
                return bad("the adversary predicts s from the representation alone: equalised odds \
                            (an adversary that also reads y) is not implemented; use parity"
                    .into())
            }
            (PenaltyKind::Adversarial | PenaltyKind::Pairwise, _, Estimate::Bank) => {
                return bad(format!("the bank estimates the per-neuron and joint penalties, not {}", self.kind))
            }
            _ => {}
        }
        if matches!(self.kind, PenaltyKind::Joint | PenaltyKind::Tv) && m > JOINT_PENALTY_M_MAX {
            return bad(format!(
                "the exact joint penalty enumerates 2^m codes and allows m <= {JOINT_PENALTY_M_MAX}; \
                 the stochastic layer has m = {m}: use the pairwise penalty or a narrower layer"
            ));
        }
        Ok(())
    }

    /// The penalty in bits on a batch (`f32` scalar, differentiable through `p`): `p` the MI layer's
    /// probabilities, `s` each row's group, `y` its label (`< n_labels`). The unconditional per-neuron and
    /// joint penalties on CPU are fused operations; the rest is the tensor form in `f64`.
    pub fn batch_value(&self, p: &Tensor, s: &[u32], y: &[u8], n_groups: usize, n_labels: usize) -> Result<Tensor> {
        let conditional = self.target == Target::Odds;
        if !conditional && p.device().is_cpu() {
            match self.kind {
                PenaltyKind::PerNeuron => return mi::per_neuron_mi_fused(p, s, n_groups),
                PenaltyKind::Joint => return mi::joint_mi_fused(p, s, n_groups),
                PenaltyKind::Pairwise | PenaltyKind::Adversarial | PenaltyKind::Tv => {}
            }
        }
        let groups = mi::group_onehot(s, n_groups, p.device())?;
        let p = p.to_dtype(DType::F64)?;
        let f = match self.kind {
            PenaltyKind::PerNeuron => mi::per_neuron_mi,
            PenaltyKind::Joint => mi::joint_mi_exact,
            PenaltyKind::Pairwise => mi::pairwise_kl_mi,
            PenaltyKind::Tv => mi::total_variation_exact,
            PenaltyKind::Adversarial => {
                return Err(Error::param(
                    Param::Penalty,
                    self,
                    "the adversarial penalty needs its adversary (a Regulariser)",
                ))
            }
        };
        let value = if conditional {
            let labels: Vec<u32> = y.iter().map(|&v| v as u32).collect();
            mi::conditional(f, &p, &groups, &labels, n_labels)?
        } else {
            f(&p, &groups)?
        };
        Ok(value.to_dtype(DType::F32)?)
    }
}

impl std::fmt::Display for PenaltySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.target != Target::Parity {
            write!(f, ":{}", self.target)?;
        }
        if self.estimate != Estimate::default_for(self.target) {
            write!(f, "@{}", self.estimate)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PenaltySpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let grammar = |reason: &str| {
            Error::param(
                Param::Penalty,
                text,
                format!(
                    "{reason}; a penalty is KIND[:TARGET][@ESTIMATE] with KIND one of {}, TARGET one \
                     of {}, ESTIMATE one of {} (e.g. joint, per-neuron:odds, joint@bank)",
                    PenaltyKind::NAMES.join(", "),
                    Target::NAMES.join(", "),
                    Estimate::NAMES.join(", ")
                ),
            )
        };
        let (rest, estimate) = match text.split_once('@') {
            Some((r, e)) => (r, Some(e.parse::<Estimate>().map_err(|_| grammar("unknown estimate"))?)),
            None => (text, None),
        };
        let (kind, target) = match rest.split_once(':') {
            Some((k, t)) => (k, t.parse::<Target>().map_err(|_| grammar("unknown target"))?),
            None => match rest.strip_suffix("-conditional") {
                Some(k) => (k, Target::Odds),
                None => (rest, Target::Parity),
            },
        };
        let kind = kind.parse::<PenaltyKind>().map_err(|_| grammar("unknown kind"))?;
        let spec = PenaltySpec::new(kind, target);
        Ok(match estimate {
            Some(e) => spec.with_estimate(e),
            None => spec,
        })
    }
}

/// The penalty as a term of the training loss: the one dispatch from a [`PenaltySpec`] (and gamma) to
/// what is computed on each batch.
pub enum Regulariser {
    /// Nothing (a full-precision network without an adversary, or the bank estimate at gamma 0): the
    /// penalty is recorded as 0.
    Off,
    /// The batch estimate: attached to the graph when gamma > 0; at gamma 0 computed outside it, so that
    /// the record shows what the penalty would be.
    Batch {
        /// The penalty.
        spec: PenaltySpec,
        /// Whether its gradient enters the loss.
        attached: bool,
    },
    /// The whole-training-set estimate.
    Bank {
        /// The bank of every training row's latest `p`.
        bank: CellBank,
        /// Parity or odds.
        target: Target,
    },
    /// The adversary and its gradient-reversal layer.
    Adversary(Adversary),
}

/// One batch's penalty: its value (bits, or the adversary's nats), and the bank swap to commit once the
/// step is taken.
pub struct BatchPenalty {
    /// `f32` scalar in the graph.
    pub value: Tensor,
    /// For the bank: the batch rows' change.
    pub swap: Option<Swap>,
}

impl Regulariser {
    /// The training term of `spec` at weight `gamma` for `net` trained on `train` (the bank starts from
    /// the network as it is now: a resumed run rebuilds it from the checkpoint's weights).
    pub fn new(spec: &PenaltySpec, gamma: f64, net: &Net, train: &Dataset, seed: u64) -> Result<Self> {
        let cfg = net.config();
        spec.check(cfg.code_width())?;
        if !cfg.is_stochastic() && spec.kind != PenaltyKind::Adversarial {
            if gamma > 0.0 {
                return Err(Error::param(
                    Param::Penalty,
                    spec,
                    "an information penalty needs a stochastic layer; this network has none",
                ));
            }
            return Ok(Regulariser::Off);
        }
        if spec.kind == PenaltyKind::Adversarial {
            return Ok(Regulariser::Adversary(Adversary::new(
                cfg.code_width(),
                train.n_groups,
                net.device(),
                &mut rng(seed, Stream::Adversary),
            )?));
        }
        Ok(match (spec.estimate, gamma > 0.0) {
            (Estimate::Batch, attached) => Regulariser::Batch { spec: *spec, attached },
            (Estimate::Bank, false) => Regulariser::Off,
            (Estimate::Bank, true) => {
                let p = net
                    .forward_features(
                        &net.features_of(train)?,
                        Mode::Infer(Inference::Prob),
                        &mut rng(seed, Stream::Eval),
                    )?
                    .probs
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let labels: Vec<u32> = train.y.iter().map(|&v| v as u32).collect();
                Regulariser::Bank {
                    bank: CellBank::new(
                        Form::of(spec.kind)?,
                        p,
                        cfg.code_width(),
                        &labels,
                        &train.s,
                        train.n_classes,
                        train.n_groups,
                    )?,
                    target: spec.target,
                }
            }
        })
    }

    /// Variables of the regulariser itself (the adversary's), trained with the network.
    pub fn vars(&self) -> Vec<Var> {
        match self {
            Regulariser::Adversary(a) => a.vars(),
            _ => Vec::new(),
        }
    }

    /// The penalty of a batch: `out` the forward pass of the training rows `rows` (groups `s`, labels
    /// `y`, `n_labels` classes), `gamma` this epoch's weight (the adversary's reversal weight).
    #[allow(clippy::too_many_arguments)]
    pub fn batch(
        &self,
        out: &Forward,
        rows: &[usize],
        s: &[u32],
        y: &[u8],
        n_groups: usize,
        n_labels: usize,
        gamma: f64,
    ) -> Result<BatchPenalty> {
        let device = out.probs.device();
        let (value, swap) = match self {
            Regulariser::Off => (Tensor::zeros((), DType::F32, device)?, None),
            Regulariser::Batch { spec, attached } => {
                let p = if *attached { out.probs.clone() } else { out.probs.detach() };
                (spec.batch_value(&p, s, y, n_groups, n_labels)?, None)
            }
            Regulariser::Bank { bank, target } => {
                let (value, swap) = bank.penalty(&out.probs, rows, *target == Target::Odds)?;
                (value, Some(swap))
            }
            Regulariser::Adversary(a) => (a.loss(&out.repr, s, gamma)?, None),
        };
        Ok(BatchPenalty { value, swap })
    }

    /// Makes a batch's bank swap permanent once the step is taken.
    pub fn commit(&mut self, swap: Option<Swap>) {
        if let (Regulariser::Bank { bank, .. }, Some(s)) = (self, swap) {
            bank.commit(s);
        }
    }

    /// True for the adversary (whose loss enters with weight 1: the reversal layer carries gamma).
    pub fn is_adversary(&self) -> bool {
        matches!(self, Regulariser::Adversary(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_round_trips_and_reads_the_earlier_spelling() {
        for kind in PenaltyKind::NAMES {
            for target in ["", ":odds"] {
                for estimate in ["", "@batch", "@bank"] {
                    let text = format!("{kind}{target}{estimate}");
                    let spec: PenaltySpec = text.parse().unwrap();
                    // Display writes the estimate only when it differs from the target's default.
                    assert_eq!(spec.to_string().parse::<PenaltySpec>().unwrap(), spec, "{text}");
                }
            }
        }
        let legacy: PenaltySpec = "per-neuron-conditional".parse().unwrap();
        assert_eq!(legacy, PenaltySpec::new(PenaltyKind::PerNeuron, Target::Odds));
        assert_eq!(legacy.to_string(), "per-neuron:odds");
        assert_eq!("joint:parity@bank".parse::<PenaltySpec>().unwrap().to_string(), "joint@bank");
        for bad in ["", "joint:", "joint:equal", "joint@everywhere", "mutual", "@bank"] {
            let e = bad.parse::<PenaltySpec>().unwrap_err();
            assert!(matches!(&e, Error::InvalidParam { param, .. } if *param == Param::Penalty), "{bad}: {e}");
        }
    }

    #[test]
    fn impossible_combinations_are_refused_with_the_parameter_named() {
        let check = |text: &str, m: usize| text.parse::<PenaltySpec>().unwrap().check(m);
        assert!(check("joint", 16).is_ok());
        assert!(check("joint", 17).is_err());
        assert!(check("pairwise@bank", 32).is_err());
        assert!(check("adversarial", 32).is_ok());
        let e = check("adversarial:odds", 32).unwrap_err();
        assert!(matches!(&e, Error::InvalidParam { param, .. } if *param == Param::Penalty));
    }
}
