//! Recipes: everything a pretraining run needs, as one TOML file (see `recipes/`).
//!
//! ```toml
//! [method]
//! name = "simclr"
//! temperature = 0.2
//! projector = { dims = [512, 128] }
//!
//! [backbone]
//! arch = "resnet18"
//! width = 16
//! stem = "cifar"
//!
//! [optimizer]
//! name = "lars"
//! momentum = 0.9
//! weight_decay = 1e-4
//! eta = 0.001
//!
//! [train]
//! epochs = 10
//! batch_size = 256
//! base_lr = 0.3        # scaled by batch_size / 256
//!
//! [data]
//! dataset = "cifar10"  # or a path, or "shapes"
//! augment = { preset = "simclr", variant = "cifar", crop_scale = [0.2, 1.0], jitter = [0.4, 0.4, 0.4, 0.1] }
//! ```

use serde::{Deserialize, Serialize};

use crate::augment::{MultiViewAugment, Preset, Resolution};
use crate::method::MethodConfig;
use crate::model::BackboneConfig;
use crate::train::OptimizerConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub method: MethodConfig,
    #[serde(default)]
    pub backbone: BackboneConfig,
    pub optimizer: OptimizerConfig,
    pub train: TrainConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Learning rate at batch size 256; the run uses `base_lr × batch_size / 256`.
    pub base_lr: f64,
    #[serde(default)]
    pub warmup_epochs: usize,
    #[serde(default)]
    pub min_lr: f64,
    #[serde(default)]
    pub seed: u64,
    /// Write a checkpoint every this many epochs (and always after the last).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
}

fn default_checkpoint_every() -> usize {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `shapes[:RES]`, a CIFAR/STL-10 folder, or an ImageFolder root.
    pub dataset: String,
    /// Number of images of the built-in shapes dataset (train split); 0 = its default.
    #[serde(default)]
    pub shapes_count: usize,
    pub augment: AugmentConfig,
}

/// A preset plus overrides applied to every view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    pub preset: String,
    /// `cifar`, `imagenet` or `auto` (by the dataset's image size).
    #[serde(default = "auto")]
    pub variant: String,
    pub crop_scale: Option<(f32, f32)>,
    /// ColorJitter `[brightness, contrast, saturation, hue]`.
    pub jitter: Option<[f32; 4]>,
    pub jitter_p: Option<f32>,
    pub grayscale_p: Option<f32>,
    pub blur_p: Option<f32>,
    pub solarize_p: Option<f32>,
    /// View size in pixels (local crops scale along).
    pub size: Option<usize>,
}

fn auto() -> String {
    "auto".into()
}

impl AugmentConfig {
    /// The views for images of `width × height`.
    pub fn build(&self, width: usize, height: usize) -> Result<MultiViewAugment, String> {
        let preset = Preset::from_name(&self.preset)?;
        let mut augment = preset.build(Resolution::resolve(&self.variant, width, height)?);
        if let Some(size) = self.size {
            augment = augment.resized(size);
        }
        for v in &mut augment.views {
            if let Some(s) = self.crop_scale {
                if !(0.0 < s.0 && s.0 <= s.1 && s.1 <= 1.0) {
                    return Err(format!("crop_scale {s:?} must satisfy 0 < min ≤ max ≤ 1"));
                }
                v.crop_scale = s;
            }
            if let Some(j) = self.jitter {
                v.jitter = j;
            }
            let probability = |p: Option<f32>, into: &mut f32| -> Result<(), String> {
                match p {
                    Some(p) if !(0.0..=1.0).contains(&p) => Err(format!("probability {p} is not in [0, 1]")),
                    Some(p) => Ok(*into = p),
                    None => Ok(()),
                }
            };
            probability(self.jitter_p, &mut v.jitter_p)?;
            probability(self.grayscale_p, &mut v.grayscale_p)?;
            probability(self.blur_p, &mut v.blur_p)?;
            probability(self.solarize_p, &mut v.solarize_p)?;
        }
        Ok(augment)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub knn_k: usize,
    pub knn_temperature: f32,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { knn_k: 200, knn_temperature: 0.1 }
    }
}

impl Recipe {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| e.to_string())?;
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a recipe serialises")
    }

    /// Checks that do not need the data.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.train;
        if t.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if t.batch_size < 2 {
            return Err(format!("train.batch_size is {}; {} needs at least 2 samples per batch for its batch statistics", t.batch_size, self.method.name()));
        }
        if !(t.base_lr > 0.0 && t.base_lr.is_finite()) {
            return Err(format!("train.base_lr must be positive, got {}", t.base_lr));
        }
        Ok(())
    }

    /// The built-in default: SimCLR on the shapes dataset with a small ConvNet, a few minutes
    /// on two CPU cores.
    pub fn default_shapes() -> Self {
        Self::from_toml(include_str!("../../recipes/shapes/simclr.toml")).expect("the built-in recipe is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_recipes_parse_and_round_trip() {
        for text in [
            include_str!("../../recipes/shapes/simclr.toml"),
            include_str!("../../recipes/shapes/simsiam.toml"),
            include_str!("../../recipes/shapes/vicreg.toml"),
            include_str!("../../recipes/shapes/barlow_twins.toml"),
            include_str!("../../recipes/cifar10/simclr.toml"),
            include_str!("../../recipes/cifar10/simsiam.toml"),
            include_str!("../../recipes/cifar10/vicreg.toml"),
            include_str!("../../recipes/cifar10/barlow_twins.toml"),
        ] {
            let recipe = Recipe::from_toml(text).unwrap();
            assert_eq!(Recipe::from_toml(&recipe.to_toml()).unwrap(), recipe);
            recipe.data.augment.build(32, 32).unwrap();
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        let good = include_str!("../../recipes/shapes/simclr.toml");
        let typo = good.replace("batch_size", "batch_sise");
        assert!(Recipe::from_toml(&typo).unwrap_err().contains("batch_sise"));
        let tiny = good.replace("batch_size = 128", "batch_size = 1");
        assert!(Recipe::from_toml(&tiny).unwrap_err().contains("at least 2"));
        let method = good.replace("name = \"simclr\"", "name = \"simclr9\"");
        assert!(Recipe::from_toml(&method).unwrap_err().contains("simclr9"));
    }
}
