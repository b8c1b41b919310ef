//! SimSiam (Chen & He, CVPR 2021): a predictor maps one view's projection onto the other's, and
//! the target projection gets no gradient. No negatives, no momentum encoder: the stop-gradient
//! alone prevents collapse — switch it off (or drop the predictor) and the embeddings collapse.
//!
//! `L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1))`, `D` = negative cosine similarity.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput, joint_views};
use crate::config::ConfigError;
use crate::data::batch::TensorBatch;
use crate::loss::negative_cosine;
use crate::model::{Backbone, LastNorm, Mlp, MlpConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSiamConfig {
    /// Projector; the paper ends it with a non-affine BatchNorm.
    pub projector: MlpConfig,
    /// Predictor bottleneck `[hidden, output]`; the output must equal the projector's.
    pub predictor: MlpConfig,
    /// Collapse switch: with `false`, gradients flow into the target branch too.
    pub stop_gradient: bool,
    /// Collapse switch: with `false`, `p = z` (no predictor).
    pub use_predictor: bool,
}

impl Default for SimSiamConfig {
    fn default() -> Self {
        Self {
            projector: MlpConfig::new(&[2048, 2048, 2048]).with_last_norm(LastNorm::NonAffine),
            predictor: MlpConfig::new(&[512, 2048]),
            stop_gradient: true,
            use_predictor: true,
        }
    }
}

impl MethodSettings for SimSiamConfig {
    type Method = SimSiam;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        self.projector.validate("projector")?;
        self.predictor.validate("predictor")
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<SimSiam, ConfigError> {
        let projector = self.projector.init(backbone.feature_dim(), device);
        let predictor = self.predictor.init(self.projector.output_dim(), device);
        Ok(SimSiam { backbone, projector, predictor, stop_gradient: self.stop_gradient, use_predictor: self.use_predictor })
    }
}

#[derive(Module, Debug)]
pub struct SimSiam {
    pub backbone: Backbone,
    pub projector: Mlp,
    pub predictor: Mlp,
    pub stop_gradient: bool,
    pub use_predictor: bool,
}

impl Method for SimSiam {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let z1 = self.projector.forward(self.backbone.forward(views[0].clone()));
        let z2 = self.projector.forward(self.backbone.forward(views[1].clone()));
        let predict = |z: &Tensor<2>| if self.use_predictor { self.predictor.forward(z.clone()) } else { z.clone() };
        let (p1, p2) = (predict(&z1), predict(&z2));
        let target = |z: &Tensor<2>| if self.stop_gradient { z.clone().detach() } else { z.clone() };
        let loss = (negative_cosine(p1, target(&z2)) + negative_cosine(p2, target(&z1))).div_scalar(2.0);
        StepOutput { terms: vec![("negative_cosine", loss.clone())], loss, embedding: z1 }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
