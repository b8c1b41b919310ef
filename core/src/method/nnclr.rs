//! NNCLR (Dwibedi, Aytar, Tompson, Sermanet & Zisserman, "With a Little Help from My Friends:
//! Nearest-Neighbor Contrastive Learning of Visual Representations", ICCV 2021): the positive
//! of a view is not the other view's embedding but its nearest neighbour in a support set (a
//! queue of past embeddings), which brings in more semantic variation than augmentation can.
//!
//! `z = g(f(x))`, `p = h(z)`; `NN(z)` = the support entry with the highest cosine similarity to
//! `z` (no gradient). `L = ½ [InfoNCE_batch(NN(z₁), p₂) + InfoNCE_batch(NN(z₂), p₁)]`; then the
//! normalised `z₁` enter the support set.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::queue::Queue;
use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::{ConfigError, at_least_one, positive, whole_batches};
use crate::data::batch::TensorBatch;
use crate::loss::{info_nce_in_batch, l2_normalize};
use crate::model::{Backbone, LastNorm, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NnclrConfig {
    /// 2048 hidden, 256 out, ending in BatchNorm in the paper.
    pub projector: MlpConfig,
    /// 4096 hidden, 256 out.
    pub predictor: MlpConfig,
    pub temperature: f32,
    /// Support-set size (98,304 on ImageNet); a multiple of the batch size.
    pub support_size: usize,
}

impl Default for NnclrConfig {
    fn default() -> Self {
        Self {
            projector: MlpConfig::new(&[2048, 256]).with_last_norm(LastNorm::Affine),
            predictor: MlpConfig::new(&[4096, 256]),
            temperature: 0.1,
            support_size: 16384,
        }
    }
}

impl MethodSettings for NnclrConfig {
    type Method = Nnclr;

    fn validate(&self, batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        self.predictor.validate("predictor")?;
        positive("method.temperature", self.temperature)?;
        at_least_one("method.support_size", self.support_size)?;
        whole_batches("method.support_size", self.support_size, batch_size)
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Nnclr, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        let predictor = self.predictor.init(self.projector.output_dim(), device);
        Ok(Nnclr {
            backbone,
            projector,
            predictor,
            support: Queue::new(self.support_size, self.projector.output_dim(), device),
            temperature: self.temperature as f64,
        })
    }
}

#[derive(Module, Debug)]
pub struct Nnclr {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub predictor: Mlp,
    pub support: Queue,
    pub temperature: f64,
}

/// Each row's nearest neighbour (cosine) among `support`'s rows (unit norm), `[B, D]`.
pub fn nearest_neighbours(z: Tensor<2>, support: Tensor<2>) -> Tensor<2> {
    let b = z.dims()[0];
    let nearest = l2_normalize(z.detach()).matmul(support.clone().transpose()).argmax(1).reshape([b]);
    support.select(0, nearest)
}

impl Method for Nnclr {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z: Vec<Tensor<2>> = views[..2].iter().map(|x| self.projector.forward(self.backbone.forward(x.clone()))).collect();
        let p: Vec<Tensor<2>> = z.iter().map(|z| self.predictor.forward(z.clone())).collect();
        let support = self.support.entries();
        let nn: Vec<Tensor<2>> = z.iter().map(|z| nearest_neighbours(z.clone(), support.clone())).collect();
        let t = self.temperature as f32;
        let loss = (info_nce_in_batch(nn[0].clone(), p[1].clone(), t) + info_nce_in_batch(nn[1].clone(), p[0].clone(), t)).div_scalar(2.0);
        let batch = z[0].dims()[0].min(self.support.size());
        self.support.push(l2_normalize(z[0].clone().detach()).narrow(0, 0, batch));
        StepOutput { terms: vec![("info_nce", loss.clone())], loss, embedding: z[0].clone() }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn nearest_neighbour_is_the_most_similar_support_entry() {
        let device = Device::flex().autodiff();
        let support = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0], [3, 2]), &device);
        let z = Tensor::<2>::from_data(TensorData::new(vec![0.2f32, 5.0, -3.0, 0.5, 4.0, 1.0], [3, 2]), &device);
        let nn: Vec<f32> = nearest_neighbours(z, support).into_data().try_to_vec().unwrap();
        assert_eq!(nn, [0.0, 1.0, -1.0, 0.0, 1.0, 0.0]);
    }
}
