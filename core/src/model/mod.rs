//! Backbones (image → pooled features) and heads (projector, predictor MLPs).

mod convnet;
mod mlp;
mod resnet;
#[cfg(feature = "torch")]
pub mod torch_layout;
mod vit;

pub use convnet::ConvNet;
pub use mlp::{LastNorm, Mlp, MlpConfig};
pub use resnet::{ResNet, ResNetDepth, Stem};
pub use vit::{
    TransformerBlock, Vit, VitConfig, VitPool, VitSize, VitTokens, layer_norm, normalize, resize_position_embeddings, token_linear,
};

use crate::config::ConfigError;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which backbone to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    /// `resnet18`, `resnet34`, `resnet50`, `convnet` (a small 4-layer ConvNet for the browser),
    /// `vit_tiny`, `vit_small`, `vit_base`, or `vit` (sized by `width`, `depth`, `heads`).
    pub arch: String,
    /// ResNet and ConvNet: channels of the first stage (64 in the papers; 16 is ResNet-18 at
    /// width ¼). `vit`: the token width. The named ViTs take theirs from their size.
    #[serde(default = "default_width")]
    pub width: usize,
    /// `vit`: number of transformer blocks.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// `vit`: attention heads (a divisor of `width`).
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// ResNet stem: `cifar` (3×3 stride 1, no max-pool) for small images, `imagenet`
    /// (7×7 stride 2 + max-pool).
    #[serde(default = "default_stem")]
    pub stem: Stem,
    /// ViT: patch side in pixels (4 for 32×32 images, 16 for 224×224).
    #[serde(default = "default_patch_size")]
    pub patch_size: usize,
    /// ViT: the image side its position embeddings are learned for (other sizes are resized to).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// ViT: the feature is the class token (`cls`) or the mean patch token (`mean`).
    #[serde(default)]
    pub pool: VitPool,
}

fn default_width() -> usize {
    64
}

fn default_depth() -> usize {
    12
}

fn default_heads() -> usize {
    4
}

fn default_stem() -> Stem {
    Stem::Cifar
}

fn default_patch_size() -> usize {
    16
}

fn default_image_size() -> usize {
    224
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self {
            arch: "resnet18".into(),
            width: default_width(),
            depth: default_depth(),
            heads: default_heads(),
            stem: default_stem(),
            patch_size: default_patch_size(),
            image_size: default_image_size(),
            pool: VitPool::Cls,
        }
    }
}

impl BackboneConfig {
    pub fn init(&self, device: &Device) -> Result<Backbone, ConfigError> {
        if self.width == 0 {
            return Err(ConfigError::Value("backbone width must be at least 1".into()));
        }
        Ok(match self.arch.as_str() {
            "resnet18" => Backbone::ResNet(ResNet::new(ResNetDepth::R18, self.width, self.stem, device)),
            "resnet34" => Backbone::ResNet(ResNet::new(ResNetDepth::R34, self.width, self.stem, device)),
            "resnet50" => Backbone::ResNet(ResNet::new(ResNetDepth::R50, self.width, self.stem, device)),
            "convnet" => Backbone::ConvNet(ConvNet::new(self.width, device)),
            "vit" | "vit_tiny" | "vit_small" | "vit_base" => {
                let config = match self.arch.as_str() {
                    "vit_tiny" => VitConfig::new(VitSize::Tiny, self.patch_size, self.image_size, self.pool),
                    "vit_small" => VitConfig::new(VitSize::Small, self.patch_size, self.image_size, self.pool),
                    "vit_base" => VitConfig::new(VitSize::Base, self.patch_size, self.image_size, self.pool),
                    _ => VitConfig {
                        width: self.width,
                        depth: self.depth,
                        heads: self.heads,
                        patch: self.patch_size,
                        image_size: self.image_size,
                        pool: self.pool,
                    },
                };
                config.validate()?;
                Backbone::Vit(config.init(device))
            }
            other => {
                return Err(ConfigError::Value(format!(
                    "unknown backbone '{other}'; choose resnet18, resnet34, resnet50, convnet, vit, vit_tiny, vit_small or vit_base"
                )));
            }
        })
    }
}

/// An encoder from `[N, 3, H, W]` images to `[N, feature_dim]` pooled features.
#[derive(Module, Debug)]
pub enum Backbone {
    ResNet(ResNet),
    ConvNet(ConvNet),
    Vit(Vit),
}

impl Backbone {
    /// Pooled features of `images`, in f32 (a half-precision backbone computes in its type, see
    /// [`crate::train::precision`]); inside a data-parallel step the batch is split over the
    /// devices (see [`crate::train::data_parallel`]).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        crate::train::data_parallel::split_forward(self, images, |backbone, images| {
            crate::train::precision::at_edges(backbone, images, |images| match backbone {
                Backbone::ResNet(m) => m.forward(images),
                Backbone::ConvNet(m) => m.forward(images),
                Backbone::Vit(m) => m.forward(images),
            })
        })
    }

    /// The ViT, for methods that work on its tokens.
    pub fn as_vit(&self) -> Option<&Vit> {
        match self {
            Backbone::Vit(vit) => Some(vit),
            _ => None,
        }
    }

    pub fn feature_dim(&self) -> usize {
        match self {
            Backbone::ResNet(m) => m.feature_dim,
            Backbone::ConvNet(m) => m.feature_dim,
            Backbone::Vit(m) => m.feature_dim,
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
            let b = BackboneConfig { arch: arch.into(), width, ..Default::default() }.init(&device).unwrap();
            assert_eq!(b.feature_dim(), dim, "{arch}");
            assert_eq!(b.forward(x.clone()).dims(), [2, dim], "{arch}");
        }
        let imagenet =
            BackboneConfig { arch: "resnet18".into(), width: 4, stem: Stem::ImageNet, ..Default::default() }.init(&device).unwrap();
        let vit = BackboneConfig { arch: "vit_tiny".into(), patch_size: 4, image_size: 32, ..Default::default() }.init(&device).unwrap();
        assert_eq!((vit.feature_dim(), vit.forward(x.clone()).dims()), (192, [2, 192]));
        let err = BackboneConfig { arch: "vit_small".into(), patch_size: 5, image_size: 32, ..Default::default() }
            .init(&device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of patch_size"), "{err}");
        let custom =
            BackboneConfig { arch: "vit".into(), width: 24, depth: 2, heads: 3, patch_size: 8, image_size: 32, ..Default::default() };
        assert_eq!(custom.init(&device).unwrap().forward(x.clone()).dims(), [2, 24]);
        let err = BackboneConfig { heads: 5, ..custom }.init(&device).unwrap_err().to_string();
        assert!(err.contains("multiple of the 5 heads"), "{err}");
        assert_eq!(imagenet.forward(Tensor::<4>::ones([1, 3, 64, 64], &device)).dims(), [1, 32]);
        assert!(
            BackboneConfig { arch: "vgg".into(), ..Default::default() }.init(&device).unwrap_err().to_string().contains("unknown backbone")
        );
    }

    #[test]
    fn resnet18_has_the_textbook_parameter_count() {
        // torchvision's resnet18 without its fc layer has 11,176,512 parameters; burn also counts
        // the BatchNorms' running mean and variance (2 × 4,800 channels). The CIFAR stem replaces
        // the 7×7 conv (9,408) by a 3×3 one (1,728).
        const RUNNING_STATS: usize = 2 * 4_800;
        let b = BackboneConfig { arch: "resnet18".into(), width: 64, stem: Stem::ImageNet, ..Default::default() }
            .init(&Device::flex())
            .unwrap();
        assert_eq!(b.num_params(), 11_176_512 + RUNNING_STATS);
        let b =
            BackboneConfig { arch: "resnet18".into(), width: 64, stem: Stem::Cifar, ..Default::default() }.init(&Device::flex()).unwrap();
        assert_eq!(b.num_params(), 11_176_512 - 9_408 + 1_728 + RUNNING_STATS);
    }
}
