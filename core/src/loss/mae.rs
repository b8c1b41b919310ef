//! MAE's reconstruction target (He, Chen, Xie, Li, Dollár & Girshick, "Masked Autoencoders Are
//! Scalable Vision Learners", CVPR 2022).
//!
//! Images `[N, 3, H, W]` are cut into `p × p` patches and flattened to `[N, T, p·p·3]`: patches
//! row-major, and within a patch pixels row-major with their three channels together (the
//! official `patchify`). With `norm_pix_loss` each patch is standardised by its own mean and
//! variance (ε = 1e-6), which the paper found gives better features. The loss is the mean squared
//! error on the masked patches only: [`super::masked_regression`] with β = 0.

use burn::tensor::Tensor;

/// `[N, 3, H, W]` → `[N, (H/p)·(W/p), p·p·3]`.
pub fn patchify(images: Tensor<4>, p: usize) -> Tensor<3> {
    let [n, c, height, width] = images.dims();
    let (h, w) = (height / p, width / p);
    assert!(h * p == height && w * p == width, "a {height}×{width} image is not made of {p}×{p} patches");
    images.reshape([n, c, h, p, w, p]).permute([0, 2, 4, 3, 5, 1]).reshape([n, h * w, p * p * c])
}

/// The regression targets: patches, standardised per patch when `normalize`.
pub fn mae_targets(images: Tensor<4>, p: usize, normalize: bool) -> Tensor<3> {
    let patches = patchify(images, p);
    if !normalize {
        return patches;
    }
    let (var, mean) = patches.clone().var_mean_bias(2);
    (patches - mean) / var.add_scalar(1e-6).sqrt()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Bool, Device, TensorData};

    use super::super::masked_regression;
    use super::*;

    #[test]
    fn patches_are_row_major_with_channels_last() {
        // Pixel value = 100·channel + 10·row + column, 4×4, patches of 2.
        let values: Vec<f32> = (0..3).flat_map(|c| (0..4).flat_map(move |y| (0..4).map(move |x| (100 * c + 10 * y + x) as f32))).collect();
        let images = Tensor::<4>::from_data(TensorData::new(values, [1, 3, 4, 4]), &Device::flex());
        let patches = patchify(images, 2);
        assert_eq!(patches.dims(), [1, 4, 12]);
        // Patch 1: rows 0–1, columns 2–3.
        let second: Vec<f32> = patches.slice([0..1, 1..2, 0..12]).into_data().try_to_vec().unwrap();
        assert_eq!(second, vec![2.0, 102.0, 202.0, 3.0, 103.0, 203.0, 12.0, 112.0, 212.0, 13.0, 113.0, 213.0]);
    }

    #[test]
    fn normalised_targets_and_a_loss_blind_to_visible_patches() {
        let device = Device::flex();
        let images = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Normal(3.0, 2.0), &device);
        let targets = mae_targets(images.clone(), 4, true);
        let (var, mean) = targets.clone().var_mean_bias(2);
        assert!(mean.abs().max().into_scalar::<f32>() < 1e-5);
        assert!((var - 1.0).abs().max().into_scalar::<f32>() < 1e-3);
        // Patches 1 and 2 of each image are masked; predictions elsewhere do not count.
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false, true, true, false, false, true, true, false], [2, 4]), &device);
        let predictions = Tensor::<3>::zeros([2, 4, 48], &device);
        let loss: f32 = masked_regression(predictions.clone(), targets.clone(), mask.clone(), 0.0).into_scalar();
        // Zero predictions of standardised targets: each masked patch's error is its variance, 1.
        assert!((loss - 1.0).abs() < 1e-3, "{loss}");
        let elsewhere = predictions.slice_assign([0..2, 0..1, 0..48], Tensor::ones([2, 1, 48], &device) * 50.0);
        let unchanged: f32 = masked_regression(elsewhere, targets, mask, 0.0).into_scalar();
        assert_eq!(loss, unchanged);
    }
}
