//! The one weight initialiser: Glorot-uniform (as Keras, which the authors used), biases zero.

use crate::error::Result;
use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::Rng;

/// A variable of `shape` drawn uniformly from `[-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`, values in
/// row-major order from `rng` (one draw per element, so the stream position after it is fixed).
pub fn glorot<R: Rng>(
    fan_in: usize,
    fan_out: usize,
    shape: impl Into<Shape>,
    device: &Device,
    rng: &mut R,
) -> Result<Var> {
    let shape = shape.into();
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    let values: Vec<f32> = (0..shape.elem_count()).map(|_| rng.random_range(-limit..limit)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?)
}

/// A zero bias of `n` values.
pub fn zeros(n: usize, device: &Device) -> Result<Var> {
    Ok(Var::zeros(n, DType::F32, device)?)
}
