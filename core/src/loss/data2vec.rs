//! Data2Vec's targets and masked regression loss.
//!
//! Baevski, Hsu, Xu, Babu, Gu & Auli, "data2vec: A General Framework for Self-supervised Learning
//! in Speech, Vision and Language", ICML 2022. The target of patch `t` is the mean of the
//! teacher's top `K` block outputs, each instance-normalised (every channel standardised over
//! the patch tokens of its image, no affine, ε = 1e-5):
//!
//! `y_t = (1/K) Σ_{l=L−K+1}^{L} IN(a^l)_t`
//!
//! and the student's prediction `p_t` is regressed onto it at the masked patches only:
//! `L = (1/|M|) Σ_{t∈M} (1/D) Σ_d ℓ(p_td − y_td)` with `ℓ(x) = x²` (β = 0, fairseq's default) or
//! smooth-L1 `ℓ(x) = x²/(2β)` for `|x| < β`, `|x| − β/2` otherwise.
//!
//! Shapes: block outputs `[N, 1 + T, D]` (class token first, left out of the targets); targets
//! and predictions `[N, T, D]`; mask `[N, T]`, `true` = masked.

use burn::tensor::{Bool, Tensor};

/// `y`, `[N, T, D]`, from the teacher's block outputs (first block first).
pub fn data2vec_targets(blocks: &[Tensor<3>], top_k: usize) -> Tensor<3> {
    assert!((1..=blocks.len()).contains(&top_k), "top_k = {top_k} must be between 1 and the {} blocks", blocks.len());
    let normalized: Vec<Tensor<3>> = blocks[blocks.len() - top_k..]
        .iter()
        .map(|a| {
            let [n, tokens, d] = a.dims();
            let patches = a.clone().slice([0..n, 1..tokens, 0..d]);
            let (var, mean) = patches.clone().var_mean_bias(1);
            (patches - mean) / var.add_scalar(1e-5).sqrt()
        })
        .collect();
    let k = normalized.len() as f32;
    normalized.into_iter().reduce(|sum, x| sum + x).expect("top_k ≥ 1").div_scalar(k)
}

/// The regression loss at the masked patches, `[1]`; `beta = 0` is L2.
pub fn masked_regression(predictions: Tensor<3>, targets: Tensor<3>, mask: Tensor<2, Bool>, beta: f32) -> Tensor<1> {
    let [n, tokens, d] = predictions.dims();
    assert_eq!(targets.dims(), [n, tokens, d], "predictions and targets differ in shape");
    assert_eq!(mask.dims(), [n, tokens], "one mask entry per patch");
    let diff = predictions - targets;
    let per_element = if beta > 0.0 {
        let abs = diff.abs();
        let quadratic = abs.clone().powi_scalar(2).div_scalar(2.0 * beta);
        let linear = abs.clone().sub_scalar(beta / 2.0);
        quadratic.mask_where(abs.greater_equal_elem(beta), linear)
    } else {
        diff.powi_scalar(2)
    };
    let per_patch = per_element.mean_dim(2).reshape([n, tokens]);
    let weights = mask.float();
    (per_patch * weights.clone()).sum() / weights.sum().clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn tensor3(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn targets_are_the_mean_of_the_instance_normalised_top_blocks() {
        // One image, class token + 2 patches, 1 channel; three blocks, top 2 used.
        let block = |cls: f32, a: f32, b: f32| tensor3(vec![cls, a, b], [1, 3, 1]);
        let blocks = [block(9.0, 100.0, -100.0), block(5.0, 1.0, 3.0), block(7.0, 10.0, 30.0)];
        // IN([1, 3]) = [−1, 1]/√(1 + 1e-5) (mean 2, variance 1) and IN([10, 30]) =
        // [−10, 10]/√(100 + 1e-5): both ≈ [−1, 1], and so is their mean; the first block and the
        // class tokens play no part.
        let expected_1 = -1.0 / (1.0f32 + 1e-5).sqrt();
        let expected_2 = -10.0 / (100.0f32 + 1e-5).sqrt();
        let y = values(data2vec_targets(&blocks, 2));
        assert_eq!(y.len(), 2);
        assert!((y[0] - (expected_1 + expected_2) / 2.0).abs() < 1e-6, "{y:?}");
        assert!((y[1] + y[0]).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn only_masked_patches_count() {
        let device = Device::flex();
        let p = tensor3(vec![1.0, 2.0, 0.0, 0.0, 5.0, 5.0], [1, 3, 2]);
        let y = tensor3(vec![0.0, 0.0, 3.0, 4.0, 5.0, 9.0], [1, 3, 2]);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false, true], [1, 3]), &device);
        // Patch 0: (1 + 4)/2 = 2.5; patch 2: (0 + 16)/2 = 8; patch 1 (25/2 = 12.5) is not masked.
        let l2: f32 = masked_regression(p.clone(), y.clone(), mask.clone(), 0.0).into_scalar();
        assert!((l2 - (2.5 + 8.0) / 2.0).abs() < 1e-6, "{l2}");
        // Smooth-L1 with β = 2: |1| → 1/4, |2| → 1, |4| → 3 ⇒ patch 0: 0.625, patch 2: 1.5.
        let smooth: f32 = masked_regression(p, y, mask, 2.0).into_scalar();
        assert!((smooth - (0.625 + 1.5) / 2.0).abs() < 1e-6, "{smooth}");
    }
}
