//! The supervised baseline: the same backbone trained with the labels (cross-entropy of a linear
//! classifier on its features), on the same augmented views as the self-supervised methods. It
//! is the reference the lecture's comparison table measures self-supervision against.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput};
use crate::train::precision::at_edges;
use crate::config::{ConfigError, at_least_one};
use crate::data::batch::TensorBatch;
use crate::model::Backbone;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisedConfig {
    /// Number of classes of the dataset.
    pub classes: usize,
}

impl Default for SupervisedConfig {
    fn default() -> Self {
        Self { classes: 10 }
    }
}

impl MethodSettings for SupervisedConfig {
    type Method = Supervised;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        at_least_one("method.classes", self.classes)
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Supervised, ConfigError> {
        Ok(Supervised { classifier: LinearConfig::new(backbone.feature_dim(), self.classes).init(device), backbone })
    }

    fn label_classes(&self) -> Option<usize> {
        Some(self.classes)
    }
}

#[derive(Module, Debug)]
pub struct Supervised {
    pub backbone: Backbone,
    pub classifier: Linear,
}

impl Method for Supervised {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let labels = batch.labels.as_ref().expect("the supervised baseline needs a labelled dataset (checked before training)");
        let features = self.backbone.forward(batch.views[0].clone());
        let logits = at_edges(&self.classifier, features.clone(), |x| self.classifier.forward(x));
        let device = logits.device();
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [labels.len()]), &device);
        let loss = CrossEntropyLossConfig::new().init(&device).forward(logits, targets);
        StepOutput { terms: vec![("cross_entropy", loss.clone())], loss, embedding: features }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
