//! Row-major GEMMs over `matrixmultiply`: the one place that knows its stride layout. Used by the exact
//! joint MI (docs/design.md, section 3), the fused training step and the image convolution.

/// Row and column strides of `op(A)` (`m x k`) and `op(B)` (`k x n`) in their row-major buffers, `op` a
/// transpose when asked: the layout arguments of `matrixmultiply`'s GEMMs.
pub fn gemm_strides(m: usize, k: usize, n: usize, a_t: bool, b_t: bool) -> (isize, isize, isize, isize) {
    let (rsa, csa) = if a_t { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if b_t { (1, k as isize) } else { (n as isize, 1) };
    (rsa, csa, rsb, csb)
}

/// `C = alpha * op(A) * op(B)` for row-major buffers, `op` a transpose when asked. With `single`, the
/// product runs in `f32` (inputs rounded, result widened): twice as fast, for the `f32` training step.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    single: bool,
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: &[f64],
    a_t: bool,
    b: &[f64],
    b_t: bool,
    c: &mut [f64],
) {
    let (rsa, csa, rsb, csb) = gemm_strides(m, k, n, a_t, b_t);
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if single {
        thread_local! {
            // Reused across calls: the training step calls this three times per group and batch.
            static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = Default::default();
        }
        SCRATCH.with(|cell| {
            let (a32, b32, c32) = &mut *cell.borrow_mut();
            a32.clear();
            a32.extend(a[..m * k].iter().map(|&v| v as f32));
            b32.clear();
            b32.extend(b[..k * n].iter().map(|&v| v as f32));
            c32.resize(m * n, 0.0);
            // SAFETY: the buffers hold exactly the matrices the strides describe (checked above).
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    alpha as f32,
                    a32.as_ptr(),
                    rsa,
                    csa,
                    b32.as_ptr(),
                    rsb,
                    csb,
                    0.0,
                    c32.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            for (dst, v) in c.iter_mut().zip(c32.iter()) {
                *dst = *v as f64;
            }
        });
        return;
    }
    // SAFETY: the assert above keeps every index of the three matrices inside its buffer.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `C = op(A) op(B) (+ C when accumulate)` for row-major `f32` buffers (`m x k` times `k x n`).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    let (rsa, csa, rsb, csb) = gemm_strides(m, k, n, a_t, b_t);
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the assert keeps every index of the three matrices inside its buffer.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
