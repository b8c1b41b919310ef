//! Joint-embedding methods: backbone + heads + loss, one file each.
//!
//! A method takes the views of a batch and returns its loss with the named terms it is made of.
//! Stop-gradients sit exactly where each paper puts them.

mod barlow_twins;
mod simclr;
mod simsiam;
mod vicreg;

pub use barlow_twins::{BarlowTwins, BarlowTwinsConfig};
pub use simclr::{SimClr, SimClrConfig};
pub use simsiam::{SimSiam, SimSiamConfig};
pub use vicreg::{Vicreg, VicregConfig};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

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
}

impl MethodConfig {
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::SimClr(_) => "simclr",
            MethodConfig::SimSiam(_) => "simsiam",
            MethodConfig::Vicreg(_) => "vicreg",
            MethodConfig::BarlowTwins(_) => "barlow_twins",
        }
    }

    /// The paper's defaults for method `name`.
    pub fn default_for(name: &str) -> Result<Self, String> {
        Ok(match name {
            "simclr" => MethodConfig::SimClr(SimClrConfig::default()),
            "simsiam" => MethodConfig::SimSiam(SimSiamConfig::default()),
            "vicreg" => MethodConfig::Vicreg(VicregConfig::default()),
            "barlow_twins" | "barlow" => MethodConfig::BarlowTwins(BarlowTwinsConfig::default()),
            other => return Err(format!("unknown method '{other}'; choose simclr, simsiam, vicreg or barlow_twins")),
        })
    }

    pub fn init(&self, backbone: &BackboneConfig, device: &Device) -> Result<Model, String> {
        let backbone = backbone.init(device)?;
        Ok(match self {
            MethodConfig::SimClr(c) => Model::SimClr(c.init(backbone, device)),
            MethodConfig::SimSiam(c) => Model::SimSiam(c.init(backbone, device)),
            MethodConfig::Vicreg(c) => Model::Vicreg(c.init(backbone, device)),
            MethodConfig::BarlowTwins(c) => Model::BarlowTwins(c.init(backbone, device)),
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
}

impl Model {
    /// Loss of a batch of two views, `[N, 3, H, W]` each.
    pub fn step(&self, views: &[Tensor<4>]) -> StepOutput {
        assert!(views.len() >= 2, "joint-embedding methods compare at least two views");
        match self {
            Model::SimClr(m) => m.step(views),
            Model::SimSiam(m) => m.step(views),
            Model::Vicreg(m) => m.step(views),
            Model::BarlowTwins(m) => m.step(views),
        }
    }

    pub fn backbone(&self) -> &Backbone {
        match self {
            Model::SimClr(m) => &m.backbone,
            Model::SimSiam(m) => &m.backbone,
            Model::Vicreg(m) => &m.backbone,
            Model::BarlowTwins(m) => &m.backbone,
        }
    }
}
