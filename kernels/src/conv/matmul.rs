//! The one dense matrix product the GEMM-based paths use: the `gemm` crate (the one burn-flex
//! uses), on rayon's threads natively and on one thread in wasm32.

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`, each operand given by its
/// row and column strides; on all threads when `parallel`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    parallel: bool,
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_strides: [usize; 2],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [usize; 2],
    rhs: &[f32],
    rhs_strides: [usize; 2],
) {
    let reach = |[rs, cs]: [usize; 2], rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.len() >= reach(dst_strides, m, n)
            && lhs.len() >= reach(lhs_strides, m, k.max(1))
            && rhs.len() >= reach(rhs_strides, k.max(1), n)
    );
    #[cfg(not(target_arch = "wasm32"))]
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    #[cfg(target_arch = "wasm32")]
    let parallelism = {
        let _ = parallel; // one thread in the browser
        gemm::Parallelism::None
    };
    // SAFETY: the assertion above keeps every index the strides reach inside its slice, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides[1] as isize,
            dst_strides[0] as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides[1] as isize,
            lhs_strides[0] as isize,
            rhs.as_ptr(),
            rhs_strides[1] as isize,
            rhs_strides[0] as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
