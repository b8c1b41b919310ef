//! Backbones (image → pooled features) and heads (projector, predictor MLPs).

mod convnet;
mod mlp;
mod resnet;

pub use convnet::ConvNet;
pub use mlp::{LastNorm, Mlp, MlpConfig};
pub use resnet::{ResNet, ResNetDepth, Stem};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which backbone to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// `resnet18`, `resnet34`, `resnet50` or `convnet` (a small 4-layer ConvNet for the browser).
    pub arch: String,
    /// Channels of the first stage (64 in the papers; 16 is ResNet-18 at width ¼).
    pub width: usize,
    /// ResNet stem: `cifar` (3×3 stride 1, no max-pool) for small images, `imagenet`
    /// (7×7 stride 2 + max-pool).
    pub stem: Stem,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self { arch: "resnet18".into(), width: 64, stem: Stem::Cifar }
    }
}

impl BackboneConfig {
    pub fn init(&self, device: &Device) -> Result<Backbone, String> {
        if self.width == 0 {
            return Err("backbone width must be at least 1".into());
        }
        Ok(match self.arch.as_str() {
            "resnet18" => Backbone::ResNet(ResNet::new(ResNetDepth::R18, self.width, self.stem, device)),
            "resnet34" => Backbone::ResNet(ResNet::new(ResNetDepth::R34, self.width, self.stem, device)),
            "resnet50" => Backbone::ResNet(ResNet::new(ResNetDepth::R50, self.width, self.stem, device)),
            "convnet" => Backbone::ConvNet(ConvNet::new(self.width, device)),
            other => return Err(format!("unknown backbone '{other}'; choose resnet18, resnet34, resnet50 or convnet")),
        })
    }
}

/// An encoder from `[N, 3, H, W]` images to `[N, feature_dim]` pooled features.
#[derive(Module, Debug)]
pub enum Backbone {
    ResNet(ResNet),
    ConvNet(ConvNet),
}

impl Backbone {
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::ResNet(m) => m.forward(images),
            Backbone::ConvNet(m) => m.forward(images),
        }
    }

    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::ResNet(m) => m.feature_dim,
            Backbone::ConvNet(m) => m.feature_dim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backbones_output_pooled_features() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        for (arch, width, dim) in [("resnet18", 8, 64), ("resnet50", 4, 128), ("convnet", 8, 64)] {
            let b = BackboneConfig { arch: arch.into(), width, stem: Stem::Cifar }.init(&device).unwrap();
            assert_eq!(b.feature_dim(), dim, "{arch}");
            assert_eq!(b.forward(x.clone()).dims(), [2, dim], "{arch}");
        }
        let imagenet = BackboneConfig { arch: "resnet18".into(), width: 4, stem: Stem::ImageNet }.init(&device).unwrap();
        assert_eq!(imagenet.forward(Tensor::<4>::ones([1, 3, 64, 64], &device)).dims(), [1, 32]);
        assert!(BackboneConfig { arch: "vgg".into(), ..Default::default() }.init(&device).unwrap_err().contains("unknown backbone"));
    }

    #[test]
    fn resnet18_has_the_textbook_parameter_count() {
        // torchvision's resnet18 without its fc layer has 11,176,512 parameters; burn also counts
        // the BatchNorms' running mean and variance (2 × 4,800 channels). The CIFAR stem replaces
        // the 7×7 conv (9,408) by a 3×3 one (1,728).
        const RUNNING_STATS: usize = 2 * 4_800;
        let b = BackboneConfig { arch: "resnet18".into(), width: 64, stem: Stem::ImageNet }.init(&Device::flex()).unwrap();
        assert_eq!(b.num_params(), 11_176_512 + RUNNING_STATS);
        let b = BackboneConfig { arch: "resnet18".into(), width: 64, stem: Stem::Cifar }.init(&Device::flex()).unwrap();
        assert_eq!(b.num_params(), 11_176_512 - 9_408 + 1_728 + RUNNING_STATS);
    }
}
