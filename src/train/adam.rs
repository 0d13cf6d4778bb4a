//! Adam (Kingma and Ba) with optional decoupled weight decay: the optimiser of docs/design.md, section 1.

use crate::error::{Error, Result};
use candle_core::{Tensor, Var};

const B1: f32 = 0.9;
const B2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// Adam (Kingma and Ba) with optional decoupled weight decay; betas (0.9, 0.999), eps 1e-8. The update
/// runs on host vectors: at these sizes one fused loop beats a dozen tensor operations per variable.
pub struct Adam {
    pub(crate) vars: Vec<Var>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
    lr: f64,
    weight_decay: f64,
}

impl Adam {
    /// Zero moments for each variable.
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Result<Self> {
        let m: Vec<Vec<f32>> = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        Ok(Adam { v: m.clone(), m, vars, t: 0, lr, weight_decay })
    }

    /// The step count and moments, for checkpoints.
    pub fn state(&self) -> (i32, &[Vec<f32>], &[Vec<f32>]) {
        (self.t, &self.m, &self.v)
    }

    /// Restores the step count and moments of a checkpoint.
    pub fn set_state(&mut self, t: i32, m: Vec<Vec<f32>>, v: Vec<Vec<f32>>) -> Result<()> {
        let ok = m.len() == self.m.len()
            && v.len() == self.v.len()
            && m.iter().zip(&self.m).all(|(a, b)| a.len() == b.len())
            && v.iter().zip(&self.v).all(|(a, b)| a.len() == b.len());
        if !ok {
            let what = "the optimiser state".to_string();
            return Err(Error::Shape { what, expected: "the model's weights".into(), got: "other sizes".into() });
        }
        (self.t, self.m, self.v) = (t, m, v);
        Ok(())
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let c1 = 1.0 / (1.0 - (B1 as f64).powi(self.t)) as f32;
        let c2 = 1.0 / (1.0 - (B2 as f64).powi(self.t)) as f32;
        for (k, var) in self.vars.clone().iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            let mut theta: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            self.update(k, &mut theta, &g, c1, c2);
            var.set(&Tensor::from_vec(theta, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// One update of host parameters from host gradients (the fused path), in the variables' order.
    pub fn step_host(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
        self.t += 1;
        let c1 = 1.0 / (1.0 - (B1 as f64).powi(self.t)) as f32;
        let c2 = 1.0 / (1.0 - (B2 as f64).powi(self.t)) as f32;
        for (k, (theta, g)) in params.iter_mut().zip(grads).enumerate() {
            self.update(k, theta, g, c1, c2);
        }
    }

    fn update(&mut self, k: usize, theta: &mut [f32], g: &[f32], c1: f32, c2: f32) {
        let lr = self.lr as f32;
        let decay = 1.0 - (self.lr * self.weight_decay) as f32;
        let (m, v) = (&mut self.m[k], &mut self.v[k]);
        // Zipped, so the compiler drops the bounds checks and vectorises the loop.
        for ((t, &g), (m, v)) in theta.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            let step = (*m * c1) / ((*v * c2).sqrt() + EPS);
            *t = *t * decay - lr * step;
        }
    }
}
