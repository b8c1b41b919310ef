//! DINO (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021):
//! self-distillation without labels. A student network is trained to match the output
//! distribution of a teacher — a momentum (EMA) copy of the student — across crops: the teacher
//! sees only the global crops, the student all crops (multi-crop), so the student learns
//! local-to-global correspondences. Centring and sharpening of the teacher output avoid collapse
//! ([`crate::loss::dino_loss`]).
//!
//! The DINO head: an MLP (GELU, no BatchNorm) to a bottleneck, L2-normalised, then a
//! weight-normalised linear layer with its norm fixed to 1 (the paper's `norm_last_layer`) to
//! K outputs (65,536 on ImageNet; a few thousand suffice on CIFAR). ResNet backbones for now;
//! ViT comes with the masking work.

use burn::module::{Module, Param, RunningState};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::momentum::{MomentumConfig, ema_update, target_copy};
use super::{Method, MethodSettings, Progress, StepOutput, encode_views, global_views, joint_views};
use crate::train::precision::at_edges;
use crate::config::{ConfigError, at_least_one, positive};
use crate::data::batch::TensorBatch;
use crate::loss::{DinoTemperature, dino_center, dino_loss, dino_teacher_entropy, l2_normalize};
use crate::model::Backbone;
use jem_kernels::gelu;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DinoHeadConfig {
    /// Widths of the MLP's hidden layers (the paper: two of 2048).
    pub hidden: Vec<usize>,
    pub bottleneck: usize,
    /// K, the number of output dimensions ("prototypes").
    pub output: usize,
}

impl DinoHeadConfig {
    pub fn init(&self, input: usize, device: &Device) -> DinoHead {
        let mut widths = vec![input];
        widths.extend(&self.hidden);
        widths.push(self.bottleneck);
        let layers = widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect();
        let last = Tensor::random([self.output, self.bottleneck], Distribution::Normal(0.0, 0.02), device);
        DinoHead { layers, last: Param::from_tensor(last) }
    }
}

#[derive(Module, Debug)]
pub struct DinoHead {
    layers: Vec<Linear>,
    /// Direction of each output unit's weight vector, `[K, bottleneck]`; normalised when used.
    last: Param<Tensor<2>>,
}

impl DinoHead {
    /// `[N, in] → [N, K]` scores, in f32 (see [`crate::train::precision`]).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        at_edges(self, x, |mut x| {
            let last_hidden = self.layers.len() - 1;
            for (i, layer) in self.layers.iter().enumerate() {
                x = layer.forward(x);
                if i < last_hidden {
                    x = gelu(x);
                }
            }
            l2_normalize(x).matmul(l2_normalize(self.last.val()).transpose())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DinoConfig {
    pub head: DinoHeadConfig,
    pub student_temperature: f32,
    pub teacher_temperature: DinoTemperature,
    pub center_momentum: f32,
    /// Teacher momentum: 0.996 rising to 1 on a cosine.
    pub momentum: MomentumConfig,
}

impl Default for DinoConfig {
    fn default() -> Self {
        Self {
            head: DinoHeadConfig { hidden: vec![2048, 2048], bottleneck: 256, output: 65536 },
            student_temperature: 0.1,
            teacher_temperature: DinoTemperature { start: 0.04, end: 0.07, warmup_epochs: 30.0 },
            center_momentum: 0.9,
            momentum: MomentumConfig::cosine(0.996),
        }
    }
}

impl MethodSettings for DinoConfig {
    type Method = Dino;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        if self.head.hidden.contains(&0) {
            return Err(ConfigError::Value(format!("method.head.hidden = {:?}: every layer must be at least 1 wide", self.head.hidden)));
        }
        at_least_one("method.head.bottleneck", self.head.bottleneck)?;
        at_least_one("method.head.output", self.head.output)?;
        positive("method.student_temperature", self.student_temperature)?;
        positive("method.teacher_temperature.start", self.teacher_temperature.start)?;
        positive("method.teacher_temperature.end", self.teacher_temperature.end)?;
        self.momentum.validate()
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Dino, ConfigError> {
        let head = self.head.init(backbone.feature_dim(), device);
        Ok(Dino {
            teacher_backbone: target_copy(&backbone),
            teacher_head: target_copy(&head),
            center: RunningState::new(Tensor::zeros([self.head.output], device)),
            backbone,
            head,
            config: self.clone(),
        })
    }
}

#[derive(Module, Debug)]
pub struct Dino {
    pub backbone: Backbone,
    pub head: DinoHead,
    pub teacher_backbone: Backbone,
    pub teacher_head: DinoHead,
    /// Running mean of the teacher's outputs, `[K]`.
    pub center: RunningState<Tensor<1>>,
    #[module(skip)]
    pub config: DinoConfig,
}

impl Method for Dino {
    fn step(&self, batch: &TensorBatch, progress: &Progress) -> StepOutput {
        let views = joint_views(batch);
        let c = &self.config;
        let globals = global_views(views).min(2);
        let student = encode_views(views, |x| self.head.forward(self.backbone.forward(x)));
        let teacher: Vec<Tensor<2>> =
            encode_views(&views[..globals], |x| self.teacher_head.forward(self.teacher_backbone.forward(x)).detach());
        let center = self.center.value_sync();
        let teacher_temperature = c.teacher_temperature.at(progress.epoch());
        let loss = dino_loss(&student, &teacher, center.clone(), c.student_temperature, teacher_temperature);
        let entropy = dino_teacher_entropy(&teacher, center.clone(), teacher_temperature);
        self.center.update(dino_center(center, &teacher, c.center_momentum));
        self.center.value_sync(); // settled now, so that a checkpoint holds it (see `Queue::push`)
        StepOutput { terms: vec![("dino", loss.clone()), ("teacher_entropy", entropy)], loss, embedding: student[0].clone() }
    }

    fn after_step(mut self, progress: &Progress) -> Self {
        let m = self.config.momentum.at(progress);
        self.teacher_backbone = ema_update(self.teacher_backbone, &self.backbone, m);
        self.teacher_head = ema_update(self.teacher_head, &self.head, m);
        self
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
