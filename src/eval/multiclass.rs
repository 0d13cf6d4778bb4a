//! Evaluation of a multi-class task with a coloured nuisance (the images; docs/design.md, section 6):
//! accuracy on the unbiased and the biased test set, the information the representation carries about the
//! colour (`I(T; S)` and `I(T; S | Y)`, per neuron and joint), and colour probes on sampled codes.

use super::metrics::accuracy;
use super::probes::{self, ProbeScore, Repr};
use super::{nullable, EvalOptions, RunInfo};
use crate::data::{images::off_colour, Prepared};
use crate::error::{Error, Result};
use crate::model::{Inference, Mode, Net};
use crate::penalty::{mi, Estimate};
use crate::progress::{Event, Observer};
use crate::rng::{rng, Stream};
use crate::schema::Param;
use crate::train::EpochStats;
use candle_core::{DType, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What an image run records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageRun {
    /// Dataset name.
    pub dataset: String,
    /// Colour bias of the training set.
    pub rho: f64,
    /// Penalty label (`none`, `per-neuron`, `joint-conditional`, ...).
    pub penalty: String,
    /// Estimate of the penalty (`bank` or `batch`).
    pub estimate: Estimate,
    /// Penalty weight.
    pub gamma: f64,
    /// Seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Width of the stochastic layer.
    pub m: usize,
    /// Training images.
    pub n_train: usize,
    /// Training images off their class's colour.
    pub off_colour_train: usize,
    /// Inference mode of the accuracies.
    pub inference: Inference,
    /// Wall-clock training seconds (null with `--reproducible`).
    #[serde(with = "nullable")]
    pub train_seconds: f64,
}

/// Accuracy on the two test sets (mean over draws in sample mode).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageTask {
    /// Test images with uniform colours: what a network that learned the shape gets right.
    pub accuracy_unbiased: f64,
    /// Test images coloured like the training set.
    pub accuracy_biased: f64,
}

/// Information about the colour in the layer, on the unbiased test set (bits).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageInformation {
    /// `sum_j I(T_j; colour)`.
    pub per_neuron_mi: f64,
    /// Joint `I(T; colour)`: exact up to `--m-max`, else Monte Carlo.
    #[serde(with = "nullable")]
    pub joint_mi: f64,
    /// Whether `joint_mi` is the exact value.
    pub joint_exact: bool,
    /// `sum_j I(T_j; colour | y)`.
    pub per_neuron_mi_conditional: f64,
    /// Joint `I(T; colour | y)` (exact; null above `--m-max`).
    #[serde(with = "nullable")]
    pub joint_mi_conditional: f64,
}

/// Colour probes on sampled codes: trained on the training images recoloured uniformly, scored on the
/// unbiased test set. Chance: AUC 0.5, accuracy 0.1.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColourProbes {
    /// Multinomial-by-one-vs-rest logistic regression: macro AUC and accuracy.
    pub logistic: ProbeScore,
    /// Random forest: macro AUC and accuracy.
    pub forest: ProbeScore,
}

/// `metrics.json` of an image model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageMetrics {
    /// The run.
    pub run: ImageRun,
    /// Accuracies.
    pub task: ImageTask,
    /// Information about the colour.
    pub information: ImageInformation,
    /// Colour probes.
    pub probes: ColourProbes,
    /// Per-epoch averages.
    pub history: Vec<EpochStats>,
}

/// Accuracy of `inference` (the mean over `draws` in sample mode) and one sampled code per row.
fn accuracy_and_codes<R: Rng>(
    net: &Net,
    features: &Tensor,
    y: &[u8],
    inference: Inference,
    draws: usize,
    rng: &mut R,
) -> Result<(f64, Vec<f32>)> {
    let draws = if inference == Inference::Sample { draws } else { 1 };
    let mut acc = 0.0;
    for _ in 0..draws {
        let f = net.forward_features(features, Mode::Infer(inference), rng)?;
        let pred: Vec<u8> = f.logits.argmax(1)?.to_vec1::<u32>()?.into_iter().map(|v| v as u8).collect();
        acc += accuracy(&pred, y);
    }
    Ok((acc / draws as f64, sampled_codes(net, features, rng)?))
}

/// One sampled code per row, row-major.
fn sampled_codes<R: Rng>(net: &Net, features: &Tensor, rng: &mut R) -> Result<Vec<f32>> {
    Ok(net.forward_features(features, Mode::Infer(Inference::Sample), rng)?.code.flatten_all()?.to_vec1::<f32>()?)
}

/// Evaluates a trained network: accuracies, information about the colour, colour probes.
pub(crate) fn evaluate(
    net: &Net,
    data: &Prepared,
    opts: &EvalOptions,
    info: &RunInfo,
    observer: &dyn Observer,
) -> Result<ImageMetrics> {
    let biased = data.test_biased.as_ref().ok_or_else(|| {
        Error::param(
            Param::Dataset,
            &data.description.dataset,
            "a multi-class model is evaluated on coloured images (an unbiased and a biased test set)",
        )
    })?;
    let device = net.device().clone();
    let mut rng = rng(opts.seed, Stream::Eval);
    let m = net.config().code_width();
    let step = |done, what| observer.event(Event::Evaluation { done, of: 4, what });
    step(0, "features");
    let fu = net.features_of(&data.test)?;
    let fb = net.features_of(biased)?;
    let fp = net.features_of(data.probe_train())?;
    step(1, "accuracies");
    let (acc_u, codes_u) = accuracy_and_codes(net, &fu, &data.test.y, opts.inference, opts.draws, &mut rng)?;
    let (acc_b, _) = accuracy_and_codes(net, &fb, &biased.y, opts.inference, opts.draws, &mut rng)?;
    // Only the probe set's codes are needed.
    let codes_p = sampled_codes(net, &fp, &mut rng)?;
    // Information on the unbiased test set, from p.
    step(2, "information");
    let t = &data.test;
    let p = net.forward_features(&fu, Mode::Infer(Inference::Prob), &mut rng)?.probs.to_dtype(DType::F64)?;
    let groups = mi::group_onehot(&t.s, 10, &device)?;
    let labels: Vec<u32> = t.y.iter().map(|&v| v as u32).collect();
    let scalar = |v: Tensor| -> Result<f64> { Ok(v.to_scalar::<f64>()?) };
    let exact = m <= opts.m_max;
    let (joint, joint_cond) = if exact {
        (
            scalar(mi::joint_mi_exact(&p, &groups)?)?,
            scalar(mi::conditional(mi::joint_mi_exact, &p, &groups, &labels, 10)?)?,
        )
    } else {
        let host: Vec<f64> = p.flatten_all()?.to_vec1()?;
        let est = mi::joint_mi_monte_carlo(&host, m, &t.s, 10, opts.mc_samples, &mut rng)?;
        (est.mean, f64::NAN)
    };
    let information = ImageInformation {
        per_neuron_mi: scalar(mi::per_neuron_mi(&p, &groups)?)?,
        joint_mi: joint,
        joint_exact: exact,
        per_neuron_mi_conditional: scalar(mi::conditional(mi::per_neuron_mi, &p, &groups, &labels, 10)?)?,
        joint_mi_conditional: joint_cond,
    };
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (xp, xu) = (to64(&codes_p), to64(&codes_u));
    step(3, "colour probes");
    let probe_train = data.probe_train();
    let train_repr = Repr { x: &xp, d: m, s: &probe_train.s };
    let test_repr = Repr { x: &xu, d: m, s: &t.s };
    let probes = ColourProbes {
        logistic: probes::logreg_probe(train_repr, test_repr, 10),
        forest: probes::forest_probe(train_repr, test_repr, 10, opts.forest_trees, opts.seed),
    };
    step(4, "done");
    let run = ImageRun {
        dataset: data.description.dataset.clone(),
        rho: info.rho.unwrap_or(f64::NAN),
        penalty: info.penalty_label.clone(),
        estimate: info.penalty.estimate,
        gamma: info.gamma,
        seed: info.seed,
        epochs: info.epochs,
        m,
        n_train: data.train.n,
        off_colour_train: off_colour(&data.train),
        inference: opts.inference,
        train_seconds: info.train_seconds,
    };
    Ok(ImageMetrics {
        run,
        task: ImageTask { accuracy_unbiased: acc_u, accuracy_biased: acc_b },
        information,
        probes,
        history: info.history.clone(),
    })
}
