//! Joint-embedding methods: backbone + heads + loss, one file each.
//!
//! A method takes the views of a batch (and their masks, for masked prediction) and returns its
//! loss with the named terms it is made of.
//! Stop-gradients sit exactly where each paper puts them. Methods with a target network or a
//! queue update them after the optimiser step ([`Model::after_step`]).

mod barlow_twins;
mod byol;
mod data2vec;
mod dino;
mod mae;
mod moco_v2;
mod moco_v3;
pub mod momentum;
mod nnclr;
pub mod queue;
mod rotnet;
mod simclr;
mod simsiam;
mod supervised;
mod swav;
mod vicreg;

pub use barlow_twins::{BarlowTwins, BarlowTwinsConfig};
pub use byol::{Byol, ByolConfig};
pub use data2vec::{Data2Vec, Data2VecConfig};
pub use dino::{Dino, DinoConfig, DinoHead, DinoHeadConfig};
pub use mae::{Mae, MaeConfig, MaeDecoder};
pub use moco_v2::{MocoV2, MocoV2Config};
pub use moco_v3::{MocoV3, MocoV3Config};
pub use momentum::MomentumConfig;
pub use nnclr::{Nnclr, NnclrConfig};
pub use rotnet::{RotNet, RotNetConfig, rotate, rotations};
pub use simclr::{SimClr, SimClrConfig};
pub use simsiam::{SimSiam, SimSiamConfig};
pub use supervised::{Supervised, SupervisedConfig};
pub use swav::{Swav, SwavConfig};
pub use vicreg::{Vicreg, VicregConfig};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::batch::TensorBatch;
use crate::model::{Backbone, BackboneConfig};

/// What a training step of a method produces.
pub struct StepOutput {
    /// The loss to minimise, `[1]`.
    pub loss: Tensor<1>,
    /// Named parts of the loss (e.g. VICReg's invariance, variance, covariance), for logging.
    pub terms: Vec<(&'static str, Tensor<1>)>,
    /// The first view's embedding (the loss's input), for collapse monitoring.
    pub embedding: Tensor<2>,
}

/// Where training stands, for hyper-parameters that follow a schedule (target momentum, DINO's
/// teacher temperature, SwAV's frozen prototypes and queue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps taken before this one.
    pub step: usize,
    pub total_steps: usize,
    pub steps_per_epoch: usize,
}

impl Progress {
    /// Epochs done, fractional.
    pub fn epoch(&self) -> f64 {
        self.step as f64 / self.steps_per_epoch.max(1) as f64
    }

    /// Fraction of training done, in [0, 1].
    pub fn fraction(&self) -> f64 {
        (self.step as f64 / self.total_steps.max(1) as f64).min(1.0)
    }
}

/// The number of global views: the leading views with the first view's size (multi-crop puts
/// the smaller local crops after them).
pub fn global_views(views: &[Tensor<4>]) -> usize {
    let size = views[0].dims()[2..].to_vec();
    views.iter().take_while(|v| v.dims()[2..] == size[..]).count()
}

/// Runs `encode` once per group of same-sized views (one batch each, as multi-crop
/// implementations do) and splits the result back into one `[B, D]` per view.
pub fn encode_views(views: &[Tensor<4>], encode: impl Fn(Tensor<4>) -> Tensor<2>) -> Vec<Tensor<2>> {
    let mut out = Vec::with_capacity(views.len());
    let mut start = 0;
    while start < views.len() {
        let size = views[start].dims();
        let end = start + views[start..].iter().take_while(|v| v.dims() == size).count();
        let batch = size[0];
        let encoded = encode(Tensor::cat(views[start..end].to_vec(), 0));
        out.extend((0..end - start).map(|i| encoded.clone().narrow(0, i * batch, batch)));
        start = end;
    }
    out
}

/// A method's hyper-parameters; `name` selects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodConfig {
    #[serde(rename = "simclr")]
    SimClr(SimClrConfig),
    #[serde(rename = "simsiam")]
    SimSiam(SimSiamConfig),
    #[serde(rename = "vicreg")]
    Vicreg(VicregConfig),
    #[serde(rename = "barlow_twins")]
    BarlowTwins(BarlowTwinsConfig),
    #[serde(rename = "moco_v2")]
    MocoV2(MocoV2Config),
    #[serde(rename = "moco_v3")]
    MocoV3(MocoV3Config),
    #[serde(rename = "byol")]
    Byol(ByolConfig),
    #[serde(rename = "swav")]
    Swav(SwavConfig),
    #[serde(rename = "dino")]
    Dino(DinoConfig),
    #[serde(rename = "nnclr")]
    Nnclr(NnclrConfig),
    #[serde(rename = "data2vec")]
    Data2Vec(Data2VecConfig),
    /// The generative baseline.
    #[serde(rename = "mae")]
    Mae(MaeConfig),
    /// The pretext-task baseline.
    #[serde(rename = "rotnet")]
    RotNet(RotNetConfig),
    /// Trained with labels: the reference for the others.
    #[serde(rename = "supervised")]
    Supervised(SupervisedConfig),
}

/// Every method's name, for messages.
pub const METHOD_NAMES: [&str; 14] = [
    "simclr",
    "simsiam",
    "vicreg",
    "barlow_twins",
    "moco_v2",
    "moco_v3",
    "byol",
    "swav",
    "dino",
    "nnclr",
    "data2vec",
    "mae",
    "rotnet",
    "supervised",
];

impl MethodConfig {
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::SimClr(_) => "simclr",
            MethodConfig::SimSiam(_) => "simsiam",
            MethodConfig::Vicreg(_) => "vicreg",
            MethodConfig::BarlowTwins(_) => "barlow_twins",
            MethodConfig::MocoV2(_) => "moco_v2",
            MethodConfig::MocoV3(_) => "moco_v3",
            MethodConfig::Byol(_) => "byol",
            MethodConfig::Swav(_) => "swav",
            MethodConfig::Dino(_) => "dino",
            MethodConfig::Nnclr(_) => "nnclr",
            MethodConfig::Data2Vec(_) => "data2vec",
            MethodConfig::Mae(_) => "mae",
            MethodConfig::RotNet(_) => "rotnet",
            MethodConfig::Supervised(_) => "supervised",
        }
    }

    /// The number of classes the method trains with, for methods that use labels.
    pub fn label_classes(&self) -> Option<usize> {
        match self {
            MethodConfig::Supervised(c) => Some(c.classes),
            _ => None,
        }
    }

    /// Whether the method predicts masked patches, so its first view must be masked.
    pub fn needs_masks(&self) -> bool {
        matches!(self, MethodConfig::Data2Vec(_) | MethodConfig::Mae(_))
    }

    /// Checks that need the batch size: queues hold a whole number of batches.
    pub fn validate(&self, batch_size: usize) -> Result<(), String> {
        let queue = |name: &str, size: usize| match size % batch_size {
            0 => Ok(()),
            _ => Err(format!(
                "method.{name} = {size} is not a multiple of train.batch_size = {batch_size}; use e.g. {}",
                size.div_ceil(batch_size).max(1) * batch_size
            )),
        };
        let positive = |name: &str, value: f32| match value > 0.0 && value.is_finite() {
            true => Ok(()),
            false => Err(format!("method.{name} = {value} must be a positive number")),
        };
        let at_least_one = |name: &str, value: usize| match value {
            0 => Err(format!("method.{name} must be at least 1")),
            _ => Ok(()),
        };
        match self {
            MethodConfig::SimClr(c) => {
                c.projector.validate("projector")?;
                positive("temperature", c.temperature)
            }
            MethodConfig::SimSiam(c) => {
                c.projector.validate("projector")?;
                c.predictor.validate("predictor")
            }
            MethodConfig::Vicreg(c) => c.expander.validate("expander"),
            MethodConfig::BarlowTwins(c) => c.projector.validate("projector"),
            MethodConfig::MocoV2(c) => {
                c.projector.validate("projector")?;
                positive("temperature", c.temperature)?;
                c.momentum.validate()?;
                at_least_one("queue_size", c.queue_size)?;
                queue("queue_size", c.queue_size)
            }
            MethodConfig::MocoV3(c) => {
                c.projector.validate("projector")?;
                c.predictor.validate("predictor")?;
                positive("temperature", c.temperature)?;
                c.momentum.validate()
            }
            MethodConfig::Byol(c) => {
                c.projector.validate("projector")?;
                c.predictor.validate("predictor")?;
                c.momentum.validate()
            }
            MethodConfig::Swav(c) => {
                c.projector.validate("projector")?;
                at_least_one("prototypes", c.prototypes)?;
                positive("temperature", c.temperature)?;
                positive("epsilon", c.epsilon)?;
                match c.queue_size {
                    0 => Ok(()),
                    size => queue("queue_size", size),
                }
            }
            MethodConfig::Dino(c) => {
                if c.head.hidden.contains(&0) {
                    return Err(format!("method.head.hidden = {:?}: every layer must be at least 1 wide", c.head.hidden));
                }
                at_least_one("head.bottleneck", c.head.bottleneck)?;
                at_least_one("head.output", c.head.output)?;
                positive("student_temperature", c.student_temperature)?;
                positive("teacher_temperature.start", c.teacher_temperature.start)?;
                positive("teacher_temperature.end", c.teacher_temperature.end)?;
                c.momentum.validate()
            }
            MethodConfig::Nnclr(c) => {
                c.projector.validate("projector")?;
                c.predictor.validate("predictor")?;
                positive("temperature", c.temperature)?;
                at_least_one("support_size", c.support_size)?;
                queue("support_size", c.support_size)
            }
            MethodConfig::Data2Vec(c) => {
                at_least_one("top_k", c.top_k)?;
                if !(c.loss_beta >= 0.0 && c.loss_beta.is_finite()) {
                    return Err(format!("method.loss_beta = {} must be 0 (L2) or positive (smooth-L1)", c.loss_beta));
                }
                c.momentum.validate()
            }
            MethodConfig::Mae(c) => {
                at_least_one("decoder_width", c.decoder_width)?;
                at_least_one("decoder_depth", c.decoder_depth)?;
                at_least_one("decoder_heads", c.decoder_heads)?;
                if c.decoder_width % c.decoder_heads != 0 {
                    return Err(format!(
                        "method.decoder_width = {} must be a multiple of decoder_heads = {}",
                        c.decoder_width, c.decoder_heads
                    ));
                }
                Ok(())
            }
            MethodConfig::RotNet(_) => Ok(()),
            MethodConfig::Supervised(c) => at_least_one("classes", c.classes),
        }
    }

    /// The paper's defaults for method `name`.
    pub fn default_for(name: &str) -> Result<Self, String> {
        Ok(match name {
            "simclr" => MethodConfig::SimClr(SimClrConfig::default()),
            "simsiam" => MethodConfig::SimSiam(SimSiamConfig::default()),
            "vicreg" => MethodConfig::Vicreg(VicregConfig::default()),
            "barlow_twins" | "barlow" => MethodConfig::BarlowTwins(BarlowTwinsConfig::default()),
            "moco_v2" | "mocov2" => MethodConfig::MocoV2(MocoV2Config::default()),
            "moco_v3" | "mocov3" => MethodConfig::MocoV3(MocoV3Config::default()),
            "byol" => MethodConfig::Byol(ByolConfig::default()),
            "swav" => MethodConfig::Swav(SwavConfig::default()),
            "dino" => MethodConfig::Dino(DinoConfig::default()),
            "nnclr" => MethodConfig::Nnclr(NnclrConfig::default()),
            "data2vec" => MethodConfig::Data2Vec(Data2VecConfig::default()),
            "mae" => MethodConfig::Mae(MaeConfig::default()),
            "rotnet" => MethodConfig::RotNet(RotNetConfig::default()),
            "supervised" => MethodConfig::Supervised(SupervisedConfig::default()),
            other => return Err(format!("unknown method '{other}'; choose one of {}", METHOD_NAMES.join(", "))),
        })
    }

    pub fn init(&self, backbone: &BackboneConfig, device: &Device) -> Result<Model, String> {
        let backbone = backbone.init(device)?;
        Ok(match self {
            MethodConfig::SimClr(c) => Model::SimClr(c.init(backbone, device)),
            MethodConfig::SimSiam(c) => Model::SimSiam(c.init(backbone, device)),
            MethodConfig::Vicreg(c) => Model::Vicreg(c.init(backbone, device)),
            MethodConfig::BarlowTwins(c) => Model::BarlowTwins(c.init(backbone, device)),
            MethodConfig::MocoV2(c) => Model::MocoV2(c.init(backbone, device)),
            MethodConfig::MocoV3(c) => Model::MocoV3(c.init(backbone, device)),
            MethodConfig::Byol(c) => Model::Byol(c.init(backbone, device)),
            MethodConfig::Swav(c) => Model::Swav(c.init(backbone, device)),
            MethodConfig::Dino(c) => Model::Dino(c.init(backbone, device)),
            MethodConfig::Nnclr(c) => Model::Nnclr(c.init(backbone, device)),
            MethodConfig::Data2Vec(c) => Model::Data2Vec(c.init(backbone, device)?),
            MethodConfig::Mae(c) => Model::Mae(c.init(backbone, device)?),
            MethodConfig::RotNet(c) => Model::RotNet(c.init(backbone, device)),
            MethodConfig::Supervised(c) => Model::Supervised(c.init(backbone, device)),
        })
    }
}

/// Any method's trainable model.
#[derive(Module, Debug)]
pub enum Model {
    SimClr(SimClr),
    SimSiam(SimSiam),
    Vicreg(Vicreg),
    BarlowTwins(BarlowTwins),
    MocoV2(MocoV2),
    MocoV3(MocoV3),
    Byol(Byol),
    Swav(Swav),
    Dino(Dino),
    Nnclr(Nnclr),
    Data2Vec(Data2Vec),
    Mae(Mae),
    RotNet(RotNet),
    Supervised(Supervised),
}

impl Model {
    /// Loss of a batch: views `[N, 3, H, W]` (two global views, then any local crops; one view
    /// for masked prediction) with their masks. Queues and running centres are updated here, as
    /// BatchNorm updates its statistics.
    pub fn step(&self, batch: &TensorBatch, progress: &Progress) -> StepOutput {
        let joint = || {
            assert!(batch.views.len() >= 2, "joint-embedding methods compare at least two views");
            &batch.views[..]
        };
        match self {
            Model::SimClr(m) => m.step(joint()),
            Model::SimSiam(m) => m.step(joint()),
            Model::Vicreg(m) => m.step(joint()),
            Model::BarlowTwins(m) => m.step(joint()),
            Model::MocoV2(m) => m.step(joint()),
            Model::MocoV3(m) => m.step(joint()),
            Model::Byol(m) => m.step(joint()),
            Model::Swav(m) => m.step(joint(), progress),
            Model::Dino(m) => m.step(joint(), progress),
            Model::Nnclr(m) => m.step(joint()),
            Model::Data2Vec(m) => m.step(batch),
            Model::Mae(m) => m.step(batch),
            Model::RotNet(m) => m.step(&batch.views),
            Model::Supervised(m) => m.step(batch),
        }
    }

    /// Work after the optimiser step: the momentum update of target networks, SwAV's prototype
    /// normalisation.
    pub fn after_step(self, progress: &Progress) -> Self {
        match self {
            Model::MocoV2(m) => Model::MocoV2(m.after_step(progress)),
            Model::MocoV3(m) => Model::MocoV3(m.after_step(progress)),
            Model::Byol(m) => Model::Byol(m.after_step(progress)),
            Model::Swav(m) => Model::Swav(m.after_step()),
            Model::Dino(m) => Model::Dino(m.after_step(progress)),
            Model::Data2Vec(m) => Model::Data2Vec(m.after_step(progress)),
            other => other,
        }
    }

    pub fn backbone(&self) -> &Backbone {
        match self {
            Model::SimClr(m) => &m.backbone,
            Model::SimSiam(m) => &m.backbone,
            Model::Vicreg(m) => &m.backbone,
            Model::BarlowTwins(m) => &m.backbone,
            Model::MocoV2(m) => &m.backbone,
            Model::MocoV3(m) => &m.backbone,
            Model::Byol(m) => &m.backbone,
            Model::Swav(m) => &m.backbone,
            Model::Dino(m) => &m.backbone,
            Model::Nnclr(m) => &m.backbone,
            Model::Data2Vec(m) => &m.backbone,
            Model::Mae(m) => &m.backbone,
            Model::RotNet(m) => &m.backbone,
            Model::Supervised(m) => &m.backbone,
        }
    }
}
