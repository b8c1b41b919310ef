//! Joint-embedding methods: backbone + heads + loss, one file each.
//!
//! A method's file holds its settings (the recipe's `[method]` table), which implement
//! [`MethodSettings`] (checks, and the model they build), and its model, which implements
//! [`Method`]: the loss of a batch with the named terms it is made of, and the work after the
//! optimiser step (momentum targets, queues). Stop-gradients sit exactly where each paper puts
//! them. The table at the end of this file lists every method once; CONTRIBUTING.md walks
//! through adding one.

pub mod momentum;
pub mod queue;

// Each method's module and its model and settings types come from the `methods!` table below;
// these are the other items some of them export.
pub use dino::{DinoHead, DinoHeadConfig};
pub use mae::MaeDecoder;
pub use momentum::MomentumConfig;
pub use rotnet::{rotate, rotations};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
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

/// A method's model: what a training step computes, and what changes after the optimiser step.
pub trait Method: Sized {
    /// The loss of a batch: views `[N, 3, H, W]` (two global views, then any local crops; one
    /// view for masked prediction) with their masks. Queues and running centres are updated
    /// here, as BatchNorm updates its statistics.
    fn step(&self, batch: &TensorBatch, progress: &Progress) -> StepOutput;

    /// Work after the optimiser step: the momentum update of target networks, queues, SwAV's
    /// prototype normalisation. Nothing by default.
    fn after_step(self, _progress: &Progress) -> Self {
        self
    }

    /// The encoder being trained (what evaluation and export use).
    fn backbone(&self) -> &Backbone;
}

/// A method's settings: the recipe's `[method]` table, with the paper's values as defaults.
pub trait MethodSettings: Default {
    type Method: Method;

    /// Checks that need nothing but the settings and the batch size (queues hold whole batches).
    fn validate(&self, batch_size: usize) -> Result<(), ConfigError>;

    /// The method's model around `backbone`, with fresh heads.
    fn init(&self, backbone: Backbone, device: &Device) -> Result<Self::Method, ConfigError>;

    /// The number of classes the method trains with, for methods that use labels.
    fn label_classes(&self) -> Option<usize> {
        None
    }

    /// Whether the method predicts masked patches, so its first view must be masked.
    fn needs_masks(&self) -> bool {
        false
    }
}

/// The views a joint-embedding method compares: at least two.
pub fn joint_views(batch: &TensorBatch) -> &[Tensor<4>] {
    assert!(batch.views.len() >= 2, "joint-embedding methods compare at least two views");
    &batch.views
}

/// Lists every method once: its module, its name in recipes (and other names it is known by),
/// its model type and its settings type. From the list come the module declarations and
/// re-exports, [`MethodConfig`] (the recipe's `[method]` table, tagged by `name`), [`Model`]
/// (any method's model) and [`METHOD_NAMES`].
macro_rules! methods {
    ($($(#[$doc:meta])* $module:ident: $name:literal $(| $alias:literal)* => $model:ident($settings:ident),)+) => {
        $(
            mod $module;
            pub use $module::{$model, $settings};
        )+


        /// A method's settings; `name` selects the method.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name", deny_unknown_fields)]
        pub enum MethodConfig {
            $($(#[$doc])* #[serde(rename = $name)] $model($settings),)+
        }

        /// Every method's name, for messages.
        pub const METHOD_NAMES: &[&str] = &[$($name),+];

        impl MethodConfig {
            pub fn name(&self) -> &'static str {
                match self { $(MethodConfig::$model(_) => $name,)+ }
            }

            /// The paper's defaults for method `name`.
            pub fn default_for(name: &str) -> Result<Self, ConfigError> {
                match name {
                    $($name $(| $alias)* => Ok(MethodConfig::$model($settings::default())),)+
                    other => Err(ConfigError::UnknownMethod { name: other.into() }),
                }
            }

            /// Checks that need the batch size: see [`MethodSettings::validate`].
            pub fn validate(&self, batch_size: usize) -> Result<(), ConfigError> {
                match self { $(MethodConfig::$model(c) => c.validate(batch_size),)+ }
            }

            pub fn label_classes(&self) -> Option<usize> {
                match self { $(MethodConfig::$model(c) => c.label_classes(),)+ }
            }

            pub fn needs_masks(&self) -> bool {
                match self { $(MethodConfig::$model(c) => c.needs_masks(),)+ }
            }

            pub fn init(&self, backbone: &BackboneConfig, device: &Device) -> Result<Model, ConfigError> {
                self.init_with(backbone.init(device)?, device)
            }

            /// The method's model around a given backbone (imported weights, say); momentum
            /// targets start as copies of it.
            pub fn init_with(&self, backbone: Backbone, device: &Device) -> Result<Model, ConfigError> {
                Ok(match self { $(MethodConfig::$model(c) => Model::$model(c.init(backbone, device)?),)+ })
            }
        }

        /// Any method's trainable model.
        #[derive(Module, Debug)]
        pub enum Model {
            $($model($model),)+
        }

        impl Model {
            /// The loss of a batch: see [`Method::step`].
            pub fn step(&self, batch: &TensorBatch, progress: &Progress) -> StepOutput {
                match self { $(Model::$model(m) => m.step(batch, progress),)+ }
            }

            /// See [`Method::after_step`].
            pub fn after_step(self, progress: &Progress) -> Self {
                match self { $(Model::$model(m) => Model::$model(m.after_step(progress)),)+ }
            }

            pub fn backbone(&self) -> &Backbone {
                match self { $(Model::$model(m) => m.backbone(),)+ }
            }
        }
    };
}

methods! {
    simclr: "simclr" => SimClr(SimClrConfig),
    simsiam: "simsiam" => SimSiam(SimSiamConfig),
    vicreg: "vicreg" => Vicreg(VicregConfig),
    barlow_twins: "barlow_twins" | "barlow" => BarlowTwins(BarlowTwinsConfig),
    moco_v2: "moco_v2" | "mocov2" => MocoV2(MocoV2Config),
    moco_v3: "moco_v3" | "mocov3" => MocoV3(MocoV3Config),
    byol: "byol" => Byol(ByolConfig),
    swav: "swav" => Swav(SwavConfig),
    dino: "dino" => Dino(DinoConfig),
    nnclr: "nnclr" => Nnclr(NnclrConfig),
    data2vec: "data2vec" => Data2Vec(Data2VecConfig),
    /// The generative baseline.
    mae: "mae" => Mae(MaeConfig),
    /// The pretext-task baseline.
    rotnet: "rotnet" => RotNet(RotNetConfig),
    /// Trained with labels: the reference for the others.
    supervised: "supervised" => Supervised(SupervisedConfig),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table gives every method one name that selects it, its defaults pass their own checks,
    /// and its settings survive a trip through a recipe's TOML.
    #[test]
    fn every_method_is_listed_once_and_selected_by_its_name() {
        let mut names = METHOD_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHOD_NAMES.len(), "{METHOD_NAMES:?}");
        for &name in METHOD_NAMES {
            let config = MethodConfig::default_for(name).unwrap();
            assert_eq!(config.name(), name);
            config.validate(256).unwrap_or_else(|e| panic!("{name}'s defaults: {e}"));
            let text = toml::to_string(&config).unwrap();
            assert!(text.contains(&format!("name = \"{name}\"")), "{text}");
            assert_eq!(toml::from_str::<MethodConfig>(&text).unwrap(), config, "{name}");
        }
        for (alias, name) in [("barlow", "barlow_twins"), ("mocov2", "moco_v2"), ("mocov3", "moco_v3")] {
            assert_eq!(MethodConfig::default_for(alias).unwrap().name(), name);
        }
        let unknown = MethodConfig::default_for("simclr2").unwrap_err();
        assert_eq!(unknown, ConfigError::UnknownMethod { name: "simclr2".into() });
        assert!(unknown.to_string().contains("supervised"), "{unknown}");
    }

    /// Each method's checks live with its settings and name the key at fault.
    #[test]
    fn settings_check_their_own_keys() {
        let queue = MethodConfig::MocoV2(MocoV2Config { queue_size: 1000, ..Default::default() });
        assert!(queue.validate(256).unwrap_err().to_string().starts_with("method.queue_size = 1000 is not a multiple"));
        let cold = MethodConfig::SimClr(SimClrConfig { temperature: 0.0, ..Default::default() });
        assert_eq!(cold.validate(256).unwrap_err().to_string(), "method.temperature = 0 must be a positive number");
        let heads = MethodConfig::Mae(MaeConfig { decoder_width: 10, decoder_heads: 3, ..Default::default() });
        assert!(heads.validate(256).unwrap_err().to_string().contains("multiple of decoder_heads = 3"));
        assert_eq!(MethodConfig::Supervised(SupervisedConfig { classes: 7 }).label_classes(), Some(7));
        assert!(MethodConfig::default_for("data2vec").unwrap().needs_masks());
        assert!(!MethodConfig::default_for("simclr").unwrap().needs_masks());
    }
}
