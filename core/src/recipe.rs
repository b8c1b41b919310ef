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

use crate::augment::{MaskKind, Masking, MultiViewAugment, Preset, Resolution, ViewTransform};
use crate::config::ConfigError;
use crate::method::MethodConfig;
use crate::model::BackboneConfig;
use crate::train::{OptimizerConfig, Precision, Schedule};

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
    /// Passes over the training set. 0 trains nothing: `jem pretrain` then saves the initial
    /// weights, the random-init baseline that `jem eval linear` and `jem eval finetune` take.
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
    /// How many checkpoints a run keeps (the newest); 0 keeps all.
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// `f32`, or mixed precision: `bf16` or `f16` forward and backward passes with f32 weights
    /// (see [`crate::train::precision`]).
    #[serde(default, skip_serializing_if = "is_f32")]
    pub precision: Precision,
}

fn is_f32(precision: &Precision) -> bool {
    *precision == Precision::F32
}

impl TrainConfig {
    /// The learning-rate schedule for `steps_per_epoch` steps per epoch: warm-up then cosine,
    /// peaking at `base_lr × batch_size / 256`.
    pub fn schedule(&self, steps_per_epoch: usize) -> Schedule {
        Schedule {
            peak: Schedule::scaled(self.base_lr, self.batch_size),
            min: self.min_lr,
            warmup_steps: self.warmup_epochs * steps_per_epoch,
            total_steps: self.epochs * steps_per_epoch,
            steps_per_epoch,
        }
    }
}

fn default_checkpoint_every() -> usize {
    10
}

fn default_keep_checkpoints() -> usize {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `shapes[:RES]`, a CIFAR/STL-10 folder, or an ImageFolder root.
    pub dataset: String,
    /// Number of images of the built-in shapes dataset (train split); 0 = its default.
    #[serde(default)]
    pub shapes_count: usize,
    /// ImageFolder only: decode every image at load time, or read them from disk per batch.
    #[serde(default)]
    pub stream: StreamMode,
    pub augment: AugmentConfig,
}

/// Whether an ImageFolder dataset is decoded into memory at load time or streamed from disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamMode {
    /// Stream when the decoded images would take more than half of the available memory.
    #[default]
    Auto,
    /// Always decode per batch: little memory, more decoding work each epoch.
    Always,
    /// Always decode at load time (broken files are found, and skipped, before training).
    Never,
}

/// A preset plus overrides. Photometric overrides (jitter, grayscale, blur, solarize) apply to
/// every view; `crop_scale` and masking to the global views; `local_*` to the local crops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Number of global views, replacing the preset's 2 (masked prediction takes 1).
    pub global_views: Option<usize>,
    /// Number of local crops (SwAV/DINO multi-crop), replacing the preset's.
    pub local_crops: Option<usize>,
    /// Side of the local crops in pixels (default: the preset's, or 3/7 of the global size).
    pub local_size: Option<usize>,
    /// RandomResizedCrop scale range of the local crops (default: the preset's, or 0.05–0.14).
    pub local_crop_scale: Option<(f32, f32)>,
    /// Fraction of patches masked block-wise in the global views (masked-image methods).
    pub mask_ratio: Option<f32>,
    /// Patch side in pixels for masking (default: 4 for views up to 64 px, else 16).
    pub mask_patch: Option<usize>,
    /// `block` (BEiT, Data2Vec; the default) or `random` (MAE: exactly `mask_ratio` of the
    /// patches of every image).
    pub mask_kind: Option<MaskKind>,
}

fn auto() -> String {
    "auto".into()
}

impl AugmentConfig {
    /// The views for images of `width × height`.
    pub fn build(&self, width: usize, height: usize) -> Result<MultiViewAugment, ConfigError> {
        let preset = Preset::from_name(&self.preset)?;
        let mut augment = preset.build(Resolution::resolve(&self.variant, width, height)?);
        if let Some(size) = self.size {
            if size == 0 {
                return Err(ConfigError::Value("augment.size must be at least 1 pixel".into()));
            }
            augment = augment.resized(size);
        }
        let global_size = augment.views[0].size;
        let (globals, locals): (Vec<_>, Vec<_>) = augment.views.into_iter().partition(|v| v.size == global_size);
        let mut locals = match self.local_crops {
            None => locals,
            Some(n) => {
                let mut template = locals.first().cloned().unwrap_or_else(|| ViewTransform { masking: None, ..globals[0].clone() });
                if locals.is_empty() {
                    template.size = (global_size * 3 / 7).max(1);
                    template.crop_scale = (0.05, 0.14);
                }
                vec![template; n]
            }
        };
        let mut globals = globals;
        if let Some(n) = self.global_views {
            if n == 0 {
                return Err(ConfigError::Value("augment.global_views must be at least 1".into()));
            }
            globals = (0..n).map(|i| globals[i % globals.len()].clone()).collect();
        }
        for v in &mut locals {
            if let Some(size) = self.local_size {
                if size == 0 || size > global_size {
                    return Err(ConfigError::Value(format!(
                        "augment.local_size {size} must be between 1 and the global view size {global_size}"
                    )));
                }
                v.size = size;
            }
            if let Some(s) = self.local_crop_scale {
                v.crop_scale = check_scale(s, "local_crop_scale")?;
            }
        }
        for v in &mut globals {
            if let Some(s) = self.crop_scale {
                v.crop_scale = check_scale(s, "crop_scale")?;
            }
            if let Some(ratio) = self.mask_ratio {
                if !(0.0..1.0).contains(&ratio) {
                    return Err(ConfigError::Value(format!("augment.mask_ratio {ratio} must be in [0, 1)")));
                }
                let patch = self.mask_patch.unwrap_or(if global_size <= 64 { 4 } else { 16 });
                if patch == 0 || patch > global_size {
                    return Err(ConfigError::Value(format!(
                        "augment.mask_patch {patch} must be between 1 and the view size {global_size}"
                    )));
                }
                v.masking = (ratio > 0.0).then(|| match self.mask_kind.unwrap_or(MaskKind::Block) {
                    MaskKind::Block => Masking::block(patch, ratio),
                    MaskKind::Random => Masking::random(patch, ratio),
                });
            }
        }
        let mut views = globals;
        views.extend(locals);
        for v in &mut views {
            if let Some(j) = self.jitter {
                if j.iter().any(|x| *x < 0.0) || j[3] > 0.5 {
                    return Err(ConfigError::Value(format!("augment.jitter {j:?}: strengths must be ≥ 0 and hue ≤ 0.5")));
                }
                v.jitter = j;
            }
            let probability = |p: Option<f32>, into: &mut f32| -> Result<(), ConfigError> {
                match p {
                    Some(p) if !(0.0..=1.0).contains(&p) => Err(ConfigError::Value(format!("probability {p} is not in [0, 1]"))),
                    Some(p) => {
                        *into = p;
                        Ok(())
                    }
                    None => Ok(()),
                }
            };
            probability(self.jitter_p, &mut v.jitter_p)?;
            probability(self.grayscale_p, &mut v.grayscale_p)?;
            probability(self.blur_p, &mut v.blur_p)?;
            probability(self.solarize_p, &mut v.solarize_p)?;
        }
        Ok(MultiViewAugment { views })
    }
}

fn check_scale(s: (f32, f32), name: &str) -> Result<(f32, f32), ConfigError> {
    if 0.0 < s.0 && s.0 <= s.1 && s.1 <= 1.0 {
        Ok(s)
    } else {
        Err(ConfigError::Value(format!("augment.{name} {s:?} must satisfy 0 < min ≤ max ≤ 1")))
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
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a recipe serialises")
    }

    /// Checks that need the built views: a masked-prediction method's first view is masked, in
    /// patches of the ViT's patch size.
    pub fn check_views(&self, augment: &MultiViewAugment) -> Result<(), ConfigError> {
        if !self.method.needs_masks() {
            return Ok(());
        }
        match augment.views[0].masking {
            None => {
                Err(ConfigError::Value(format!("{} predicts masked patches: set data.augment.mask_ratio (e.g. 0.6)", self.method.name())))
            }
            Some(m) if m.patch_size != self.backbone.patch_size => Err(ConfigError::Value(format!(
                "data.augment.mask_patch is {} but backbone.patch_size is {}: masks must cover whole ViT patches; set mask_patch = {}",
                m.patch_size, self.backbone.patch_size, self.backbone.patch_size
            ))),
            Some(m) if m.kind != MaskKind::Random && matches!(self.method, MethodConfig::Mae(_)) => Err(ConfigError::Value(
                "mae drops the masked patches and needs as many in every image: set data.augment.mask_kind = \"random\"".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks that do not need the data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.train;
        if t.batch_size < 2 {
            return Err(ConfigError::Value(format!(
                "train.batch_size is {}; {} needs at least 2 samples per batch for its batch statistics",
                t.batch_size,
                self.method.name()
            )));
        }
        if !(t.base_lr > 0.0 && t.base_lr.is_finite()) {
            return Err(ConfigError::Value(format!("train.base_lr must be positive, got {}", t.base_lr)));
        }
        if self.backbone.width == 0 {
            return Err(ConfigError::Value("backbone.width must be at least 1".into()));
        }
        if t.precision != Precision::F32 && self.method.needs_masks() {
            return Err(ConfigError::Value(format!(
                "train.precision = \"{}\": {} computes in f32 only (its masked-token path has no half-precision casts); set precision = \"f32\"",
                t.precision.name(),
                self.method.name()
            )));
        }
        self.method.validate(t.batch_size)
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
            include_str!("../../recipes/shapes/moco_v2.toml"),
            include_str!("../../recipes/shapes/moco_v3.toml"),
            include_str!("../../recipes/shapes/byol.toml"),
            include_str!("../../recipes/shapes/swav.toml"),
            include_str!("../../recipes/shapes/dino.toml"),
            include_str!("../../recipes/shapes/nnclr.toml"),
            include_str!("../../recipes/cifar10/moco_v2.toml"),
            include_str!("../../recipes/cifar10/moco_v3.toml"),
            include_str!("../../recipes/cifar10/byol.toml"),
            include_str!("../../recipes/cifar10/swav.toml"),
            include_str!("../../recipes/cifar10/dino.toml"),
            include_str!("../../recipes/cifar10/nnclr.toml"),
            include_str!("../../recipes/shapes/data2vec.toml"),
            include_str!("../../recipes/cifar10/data2vec.toml"),
            include_str!("../../recipes/shapes/mae.toml"),
            include_str!("../../recipes/cifar10/mae.toml"),
            include_str!("../../recipes/cifar10/dino_vit.toml"),
            include_str!("../../recipes/cifar10/moco_v3_vit.toml"),
            include_str!("../../recipes/shapes/rotnet.toml"),
            include_str!("../../recipes/cifar10/rotnet.toml"),
            include_str!("../../recipes/shapes/supervised.toml"),
            include_str!("../../recipes/cifar10/supervised.toml"),
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
        assert!(Recipe::from_toml(&typo).unwrap_err().to_string().contains("batch_sise"));
        let tiny = good.replace("batch_size = 128", "batch_size = 1");
        assert!(Recipe::from_toml(&tiny).unwrap_err().to_string().contains("at least 2"));
        let method = good.replace("name = \"simclr\"", "name = \"simclr9\"");
        assert!(Recipe::from_toml(&method).unwrap_err().to_string().contains("simclr9"));
        // Sizes that cannot be built (found by fuzzing: they panicked in model init).
        let empty = good.replace("dims = [256, 64]", "dims = [256, 0]");
        assert!(Recipe::from_toml(&empty).unwrap_err().to_string().contains("at least 1 wide"));
        let width = good.replace("width = 16", "width = 0");
        assert!(Recipe::from_toml(&width).unwrap_err().to_string().contains("backbone.width"));
        let cold = good.replace("temperature = 0.2", "temperature = 0.0");
        assert!(Recipe::from_toml(&cold).unwrap_err().to_string().contains("temperature"));
        // Attention heads must split the MAE decoder's width evenly.
        let mae = include_str!("../../recipes/shapes/mae.toml");
        let heads = mae.replace("decoder_heads = 4", "decoder_heads = 3");
        assert!(Recipe::from_toml(&heads).unwrap_err().to_string().contains("multiple of decoder_heads = 3"));
    }

    fn augment(toml_fields: &str) -> Result<MultiViewAugment, ConfigError> {
        let config: AugmentConfig = toml::from_str(toml_fields).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.build(32, 32)
    }

    #[test]
    fn multi_crop_overrides_touch_only_the_local_crops() {
        // SwAV's CIFAR preset: 2 global views of 32 px and 4 local crops of 16 px.
        let a =
            augment("preset = 'swav'\nlocal_crops = 3\nlocal_size = 12\nlocal_crop_scale = [0.1, 0.3]\ncrop_scale = [0.5, 1.0]").unwrap();
        let sizes: Vec<usize> = a.views.iter().map(|v| v.size).collect();
        assert_eq!(sizes, [32, 32, 12, 12, 12]);
        assert_eq!((a.views[0].crop_scale, a.views[4].crop_scale), ((0.5, 1.0), (0.1, 0.3)));
        // A two-view preset gains local crops at 3/7 of the global size.
        let a = augment("preset = 'simclr'\nlocal_crops = 2").unwrap();
        assert_eq!(a.views.iter().map(|v| v.size).collect::<Vec<_>>(), [32, 32, 13, 13]);
        assert_eq!(augment("preset = 'dino'\nlocal_crops = 0").unwrap().views.len(), 2);
    }

    #[test]
    fn mask_ratio_masks_only_the_global_views() {
        let a = augment("preset = 'dino'\nmask_ratio = 0.6").unwrap();
        assert_eq!(a.views[0].masking, Some(Masking::block(4, 0.6)));
        assert!(a.views[2].masking.is_none(), "local crops stay unmasked");
        assert_eq!(
            augment("preset = 'simclr'\nmask_ratio = 0.75\nmask_kind = 'random'").unwrap().views[1].masking,
            Some(Masking::random(4, 0.75))
        );
        assert!(augment("preset = 'simclr'\nmask_ratio = 1.0").unwrap_err().to_string().contains("mask_ratio"));
        assert!(augment("preset = 'simclr'\nmask_ratio = 0.5\nmask_patch = 64").unwrap_err().to_string().contains("mask_patch"));
        assert!(augment("preset = 'simclr'\nlocal_crops = 1\nlocal_size = 40").unwrap_err().to_string().contains("local_size"));
        assert!(augment("preset = 'simclr'\njitter = [0.4, 0.4, 0.4, 0.7]").unwrap_err().to_string().contains("hue"));
    }
}
