//! The convolution of the image encoder (images issue): "valid" (no padding), stride 1, as im2col + GEMM
//! with an explicit backward, on CPU. candle's own CPU `conv2d` spends about 80% of a training step in its
//! backward pass (measured: 28 ms forward, 190 ms forward + backward for a batch of 128 digits); here both
//! directions are `matrixmultiply` GEMMs over per-image column buffers. Other devices use candle's
//! `conv2d` (the op's CPU result is tested against it, value and gradients).

use crate::error::Result;
use crate::linalg::sgemm;
use candle_core::{CpuStorage, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Images per parallel chunk: a fixed size, so that the order of the weight-gradient sum, and thus every
/// bit of the result, does not depend on the number of threads.
const CHUNK: usize = 8;

/// `conv2d(x, w)` with `x: [b, c, h, w]`, `w: [o, c, k, k]`, no padding, stride 1: `[b, o, h-k+1, w-k+1]`.
pub fn conv2d(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        Ok(x.contiguous()?.apply_op2(&w.contiguous()?, Conv2dOp)?)
    } else {
        Ok(x.conv2d(w, 0, 1, 1, 1)?)
    }
}

struct Conv2dOp;

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
}

impl Dims {
    fn out_hw(&self) -> (usize, usize) {
        (self.h + 1 - self.k, self.w + 1 - self.k)
    }
    /// Rows of the column matrix: `c k k`.
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    fn positions(&self) -> usize {
        let (oh, ow) = self.out_hw();
        oh * ow
    }
}

fn dims(x: &Shape, w: &Shape) -> candle_core::Result<Dims> {
    let (b, c, h, wd) = x.dims4()?;
    let (o, c2, k, k2) = w.dims4()?;
    if c != c2 || k != k2 || k == 0 || k > h || k > wd {
        return Err(candle_core::Error::Msg(format!(
            "conv2d: input {x:?} and kernel {w:?} do not fit (square kernel, same channels, no larger than the image)"
        )));
    }
    Ok(Dims { b, c, h, w: wd, o, k })
}

/// `cols[(ci k + ky) k + kx, oy ow + ox] = x[ci, oy + ky, ox + kx]` for one image.
fn im2col(x: &[f32], d: Dims, cols: &mut [f32]) {
    let (oh, ow) = d.out_hw();
    let p = oh * ow;
    for ci in 0..d.c {
        for ky in 0..d.k {
            for kx in 0..d.k {
                let row = &mut cols[((ci * d.k + ky) * d.k + kx) * p..][..p];
                for oy in 0..oh {
                    let src = &x[(ci * d.h + oy + ky) * d.w + kx..][..ow];
                    row[oy * ow..(oy + 1) * ow].copy_from_slice(src);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back onto its pixel.
fn col2im(cols: &[f32], d: Dims, x: &mut [f32]) {
    let (oh, ow) = d.out_hw();
    let p = oh * ow;
    for ci in 0..d.c {
        for ky in 0..d.k {
            for kx in 0..d.k {
                let row = &cols[((ci * d.k + ky) * d.k + kx) * p..][..p];
                for oy in 0..oh {
                    let dst = &mut x[(ci * d.h + oy + ky) * d.w + kx..][..ow];
                    for (a, b) in dst.iter_mut().zip(&row[oy * ow..(oy + 1) * ow]) {
                        *a += b;
                    }
                }
            }
        }
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let (start, end) =
        l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("conv2d: {what} must be contiguous")))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => Err(candle_core::Error::Msg(format!("conv2d: {what} must be f32"))),
    }
}

impl candle_core::CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = dims(l1.shape(), l2.shape())?;
        let (x, w) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "kernel")?);
        let (oh, ow) = d.out_hw();
        let (p, ckk) = (d.positions(), d.ckk());
        let (in_size, out_size) = (d.c * d.h * d.w, d.o * p);
        let mut out = vec![0f32; d.b * out_size];
        out.par_chunks_mut(out_size * CHUNK).zip(x.par_chunks(in_size * CHUNK)).for_each(|(out, x)| {
            let mut cols = vec![0f32; ckk * p];
            for (o, x) in out.chunks_mut(out_size).zip(x.chunks(in_size)) {
                im2col(x, d, &mut cols);
                sgemm(d.o, ckk, p, w, false, &cols, false, o, false);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((d.b, d.o, oh, ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.shape(), w.shape())?;
        let xv: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let gv: Vec<f32> = grad.contiguous()?.flatten_all()?.to_vec1()?;
        let (p, ckk) = (d.positions(), d.ckk());
        let (in_size, out_size) = (d.c * d.h * d.w, d.o * p);
        // An input that is not a variable and depends on none (the images) needs no gradient.
        let want_dx = x.track_op();
        let mut dx = vec![0f32; if want_dx { xv.len() } else { 0 }];
        let dx_chunks: Vec<Option<&mut [f32]>> = if want_dx {
            dx.chunks_mut(in_size * CHUNK).map(Some).collect()
        } else {
            (0..d.b.div_ceil(CHUNK)).map(|_| None).collect()
        };
        let partial_dw: Vec<Vec<f32>> = dx_chunks
            .into_par_iter()
            .zip(xv.par_chunks(in_size * CHUNK))
            .zip(gv.par_chunks(out_size * CHUNK))
            .map(|((mut dx, x), g)| {
                let mut cols = vec![0f32; ckk * p];
                let mut dw = vec![0f32; d.o * ckk];
                for (i, (x, g)) in x.chunks(in_size).zip(g.chunks(out_size)).enumerate() {
                    im2col(x, d, &mut cols);
                    // dW += g [o, P] cols^T [P, ckk]
                    sgemm(d.o, p, ckk, g, false, &cols, true, &mut dw, true);
                    if let Some(dx) = dx.as_deref_mut() {
                        // dcols = W^T [ckk, o] g [o, P], then back onto the pixels.
                        sgemm(ckk, d.o, p, &wv, true, g, false, &mut cols, false);
                        col2im(&cols, d, &mut dx[i * in_size..(i + 1) * in_size]);
                    }
                }
                dw
            })
            .collect();
        let mut dw = vec![0f32; d.o * ckk];
        for part in &partial_dw {
            dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        let dw = Tensor::from_vec(dw, w.shape(), w.device())?;
        let dx = if want_dx { Some(Tensor::from_vec(dx, x.shape(), x.device())?) } else { None };
        Ok((dx, Some(dw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Value and both gradients equal candle's own conv2d (with an input that needs its gradient).
    #[test]
    fn matches_candle_conv2d_value_and_gradients() {
        let dev = Device::Cpu;
        for (b, c, h, w, o, k) in [(3, 2, 7, 6, 4, 3), (17, 3, 12, 12, 5, 5), (1, 1, 4, 4, 1, 4)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, h, w), &dev).unwrap()).unwrap();
            let kern = Var::from_tensor(&Tensor::randn(0f32, 1., (o, c, k, k), &dev).unwrap()).unwrap();
            let weights = Tensor::randn(0f32, 1., (b, o, h + 1 - k, w + 1 - k), &dev).unwrap();
            let ours = conv2d(x.as_tensor(), kern.as_tensor()).unwrap();
            let theirs = x.as_tensor().conv2d(kern.as_tensor(), 0, 1, 1, 1).unwrap();
            let diff = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
            let g1 = (ours * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (theirs * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &kern] {
                let d = (g1.get(v).unwrap() - g2.get(v).unwrap()).unwrap();
                let scale = g2.get(v).unwrap().abs().unwrap().max_all().unwrap();
                let rel =
                    d.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap();
                assert!(rel < 1e-5, "({b},{c},{h},{w},{o},{k}): relative gradient error {rel}");
            }
        }
    }

    #[test]
    fn a_constant_input_gets_no_gradient_and_mismatched_shapes_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (2, 1, 5, 5), &dev).unwrap();
        let kern = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 1, 3, 3), &dev).unwrap()).unwrap();
        let g = conv2d(&x, kern.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(&x).is_none() && g.get(&kern).is_some());
        let bad = Tensor::zeros((3, 2, 3, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(conv2d(&x, &bad).is_err());
    }
}
