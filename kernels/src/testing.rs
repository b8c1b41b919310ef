//! Assertions and inputs shared by the kernels' tests.

use burn::tensor::{Device, Distribution, Tensor};

/// Each value within 1e-4 of the reference, relative to `1 + |reference|`.
pub fn assert_slices_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

/// [`assert_slices_close`] on tensors' values.
pub fn assert_tensors_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
    assert_slices_close(&a.into_data().try_to_vec::<f32>().unwrap(), &b.into_data().try_to_vec::<f32>().unwrap(), what);
}

/// A loss whose gradient differs at every entry, so that no gradient term can hide.
pub fn weight_of<const D: usize>(y: Tensor<D>) -> Tensor<1> {
    (y.clone() * y.sin()).sum()
}

/// Channels-last storage seen through a permutation: a strided input `[2, 7, 24]`.
pub fn strided_input(device: &Device, scale: f32) -> Tensor<3> {
    Tensor::<3>::random([2, 24, 7], Distribution::Normal(0.5, scale as f64), device).swap_dims(1, 2)
}
