//! RotNet (Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting Image
//! Rotations", ICLR 2018), the lecture's pretext-task baseline: every image is shown rotated by
//! 0°, 90°, 180° and 270°, and a linear head on the backbone's features predicts which rotation
//! it sees. Recognising "upright" needs some notion of what objects look like — but nothing
//! stops two different objects in the same pose from getting the same features.
//!
//! `L = CE(head(f(rot_r(x))), r)` over the four rotations `r` of each image, as one batch of 4N.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput};
use crate::train::precision::at_edges;
use crate::config::ConfigError;
use crate::data::batch::TensorBatch;
use crate::model::Backbone;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotNetConfig {}

impl MethodSettings for RotNetConfig {
    type Method = RotNet;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        Ok(())
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<RotNet, ConfigError> {
        Ok(RotNet { head: LinearConfig::new(backbone.feature_dim(), 4).init(device), backbone })
    }
}

#[derive(Module, Debug)]
pub struct RotNet {
    pub backbone: Backbone,
    /// Features → the four rotations.
    pub head: Linear,
}

/// `x` rotated counter-clockwise by `quarter_turns × 90°`, `[N, C, H, W]` (square images).
pub fn rotate(x: Tensor<4>, quarter_turns: usize) -> Tensor<4> {
    match quarter_turns % 4 {
        0 => x,
        // Counter-clockwise: out[i][j] = in[j][W−1−i], a transpose then a flip of the rows.
        1 => x.swap_dims(2, 3).flip([2]),
        2 => x.flip([2, 3]),
        _ => x.swap_dims(2, 3).flip([3]),
    }
}

/// The four rotations of `x` stacked as one batch `[4N, C, H, W]` (all of 0°, then all of 90°,
/// …) and their labels `[4N]`: `r` for the images turned `r` quarters.
pub fn rotations(x: Tensor<4>) -> (Tensor<4>, Tensor<1, Int>) {
    let n = x.dims()[0];
    let device = x.device();
    let images = Tensor::cat((0..4).map(|r| rotate(x.clone(), r)).collect(), 0);
    let labels: Vec<i64> = (0..4).flat_map(|r| std::iter::repeat_n(r as i64, n)).collect();
    (images, Tensor::from_data(TensorData::new(labels, [4 * n]), &device))
}

impl Method for RotNet {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = &batch.views;
        let view = views[0].clone();
        let n = view.dims()[0];
        let (images, labels) = rotations(view);
        let features = self.backbone.forward(images);
        let logits = at_edges(&self.head, features.clone(), |x| self.head.forward(x));
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, labels);
        StepOutput { terms: vec![("rotation", loss.clone())], loss, embedding: features.narrow(0, 0, n) }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_turn_counter_clockwise_and_are_labelled_by_quarter_turns() {
        let device = Device::flex();
        // One 1-channel 2×2 image  [a b; c d] = [1 2; 3 4].
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]), &device);
        let (images, labels) = rotations(x);
        let values: Vec<f32> = images.into_data().try_to_vec().unwrap();
        // 90° counter-clockwise: [b d; a c]; 180°: [d c; b a]; 270°: [c a; d b].
        assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 1.0, 3.0, 4.0, 3.0, 2.0, 1.0, 3.0, 1.0, 4.0, 2.0]);
        assert_eq!(labels.into_data().iter::<i64>().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        // Four quarter turns are the identity.
        let y = Tensor::<4>::random([2, 3, 5, 5], burn::tensor::Distribution::Default, &device);
        let back = (0..4).fold(y.clone(), |t, _| rotate(t, 1));
        assert_eq!((back - y).abs().max().into_scalar::<f32>(), 0.0);
    }
}
