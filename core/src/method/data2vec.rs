//! Data2Vec for images (Baevski et al., "data2vec: A General Framework for Self-supervised
//! Learning in Speech, Vision and Language", ICML 2022): masked prediction of contextualised
//! targets. One view per image; the student ViT sees it with about 60 % of its patches masked
//! block-wise (the augmentation's `mask_ratio`), the teacher — an EMA of the student — sees it
//! whole. A linear head on the student's final tokens regresses, at the masked patches, the mean
//! of the teacher's top K instance-normalised block outputs ([`crate::loss::data2vec_targets`]).
//!
//! Differences from the paper: targets are the blocks' outputs (the paper takes each block's
//! feed-forward output before its last residual connection), and the teacher momentum rises
//! 0.999 → 0.9999 on a cosine over training (the paper: linearly, over a first part of it).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::momentum::{MomentumConfig, ema_update, target_copy};
use super::{Method, MethodSettings, Progress, StepOutput};
use crate::config::{ConfigError, at_least_one};
use crate::data::batch::TensorBatch;
use crate::loss::{data2vec_targets, masked_regression};
use crate::model::{Backbone, token_linear};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Data2VecConfig {
    /// K, the teacher blocks averaged into the targets (tuned per modality in the paper;
    /// fairseq's configurations use 4 to 8 of 12).
    pub top_k: usize,
    /// Smooth-L1 β; 0 is the L2 loss (fairseq's default).
    pub loss_beta: f32,
    pub momentum: MomentumConfig,
}

impl Default for Data2VecConfig {
    fn default() -> Self {
        Self { top_k: 6, loss_beta: 0.0, momentum: MomentumConfig::cosine_to(0.999, 0.9999) }
    }
}

impl MethodSettings for Data2VecConfig {
    type Method = Data2Vec;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        at_least_one("method.top_k", self.top_k)?;
        if !(self.loss_beta >= 0.0 && self.loss_beta.is_finite()) {
            return Err(ConfigError::Value(format!("method.loss_beta = {} must be 0 (L2) or positive (smooth-L1)", self.loss_beta)));
        }
        self.momentum.validate()
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Data2Vec, ConfigError> {
        let Some(vit) = backbone.as_vit() else {
            return Err(ConfigError::Mismatch(
                "data2vec predicts masked patches: it needs a ViT backbone (backbone.arch = \"vit_tiny\", \"vit_small\" or \"vit_base\")"
                    .into(),
            ));
        };
        if self.top_k == 0 || self.top_k > vit.depth() {
            return Err(ConfigError::Value(format!(
                "method.top_k = {} must be between 1 and the backbone's {} blocks",
                self.top_k,
                vit.depth()
            )));
        }
        let d = backbone.feature_dim();
        Ok(Data2Vec { teacher: target_copy(&backbone), regression: LinearConfig::new(d, d).init(device), backbone, config: self.clone() })
    }

    fn needs_masks(&self) -> bool {
        true
    }
}

#[derive(Module, Debug)]
pub struct Data2Vec {
    /// The student.
    pub backbone: Backbone,
    pub teacher: Backbone,
    /// Student tokens → targets.
    pub regression: Linear,
    #[module(skip)]
    pub config: Data2VecConfig,
}

impl Method for Data2Vec {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let view = batch.views[0].clone();
        let mask = batch.masks[0].clone().expect("the recipe check requires a masked first view for data2vec");
        let student = self.backbone.as_vit().expect("checked at init").forward_tokens(view.clone(), Some(mask.clone()), false).tokens;
        let teacher = self.teacher.as_vit().expect("checked at init").forward_tokens(view, None, true).blocks;
        let targets = data2vec_targets(&teacher, self.config.top_k).detach();
        let [n, tokens, d] = student.dims();
        let predictions = token_linear(&self.regression, student.clone().slice([0..n, 1..tokens, 0..d]));
        let loss = masked_regression(predictions, targets, mask, self.config.loss_beta);
        let class_token = student.slice([0..n, 0..1, 0..d]).reshape([n, d]);
        StepOutput { terms: vec![("regression", loss.clone())], loss, embedding: class_token }
    }

    fn after_step(mut self, progress: &Progress) -> Self {
        self.teacher = ema_update(self.teacher, &self.backbone, self.config.momentum.at(progress));
        self
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
