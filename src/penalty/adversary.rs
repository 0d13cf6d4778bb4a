//! Adversarial debiasing (Ganin et al. 2016; Xie et al. 2017): an adversary reads the representation
//! through a gradient-reversal layer and predicts `s`; the encoder is pushed to defeat it.

use crate::error::Result;
use crate::model::init::{glorot, zeros};
use candle_core::{Device, Tensor, Var};
use rand::Rng;

/// The adversary: `repr -> tanh(32) -> one logit per group`, Glorot-uniform.
pub struct Adversary {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Adversary {
    const HIDDEN: usize = 32;

    /// A fresh adversary for a representation of width `m` and `n_groups` groups.
    pub fn new<R: Rng>(m: usize, n_groups: usize, device: &Device, rng: &mut R) -> Result<Self> {
        let w1 = glorot(m, Self::HIDDEN, (m, Self::HIDDEN), device, rng)?;
        let b1 = zeros(Self::HIDDEN, device)?;
        let w2 = glorot(Self::HIDDEN, n_groups, (Self::HIDDEN, n_groups), device, rng)?;
        Ok(Adversary { w1, b1, w2, b2: zeros(n_groups, device)? })
    }

    /// Its variables.
    pub fn vars(&self) -> Vec<Var> {
        vec![self.w1.clone(), self.b1.clone(), self.w2.clone(), self.b2.clone()]
    }

    /// Cross-entropy of the adversary reading `repr` through a gradient-reversal layer of weight `lambda`:
    /// the forward value is `repr`, the gradient reaching the encoder is `-lambda` times the adversary's.
    pub fn loss(&self, repr: &Tensor, s: &[u32], lambda: f64) -> Result<Tensor> {
        let reversed = ((repr.detach() * (1.0 + lambda))? - (repr * lambda)?)?;
        let h = reversed.matmul(self.w1.as_tensor())?.broadcast_add(self.b1.as_tensor())?.tanh()?;
        let logits = h.matmul(self.w2.as_tensor())?.broadcast_add(self.b2.as_tensor())?;
        let targets = Tensor::from_slice(s, s.len(), repr.device())?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }
}
