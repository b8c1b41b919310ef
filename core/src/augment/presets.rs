//! Named augmentation recipes from the papers, in a CIFAR (32×32) and an ImageNet (224×224)
//! variant. The CIFAR variants follow solo-learn's CIFAR recipes (no blur: at 32 pixels it
//! destroys the image).
//!
//! | preset | views | jitter (b, c, s, h) p 0.8 | gray | blur p | solarize p | crop scale |
//! |---|---|---|---|---|---|---|
//! | SimCLR (Chen et al. 2020) | 2 × same | 0.8, 0.8, 0.8, 0.2 | 0.2 | 0.5 | 0 | 0.08–1 |
//! | BYOL (Grill et al. 2020) | 2, asymmetric | 0.4, 0.4, 0.2, 0.1 | 0.2 | 1.0 / 0.1 | 0 / 0.2 | 0.08–1 |
//! | VICReg, Barlow Twins | as BYOL | 0.4, 0.4, 0.2, 0.1 | 0.2 | 1.0 / 0.1 | 0 / 0.2 | 0.08–1 |
//! | SwAV (Caron et al. 2020) | 2 × 224 + 6 × 96 | 0.8, 0.8, 0.8, 0.2 | 0.2 | 0.5 | 0 | 0.14–1 / 0.05–0.14 |
//! | DINO (Caron et al. 2021) | 2 × 224 + 8 × 96 | 0.4, 0.4, 0.2, 0.1 | 0.2 | 1.0 / 0.1 / 0.5 | 0 / 0.2 / 0 | 0.4–1 / 0.05–0.4 |
//!
//! CIFAR multi-crop uses 2 × 32 global and 4 (SwAV) or 6 (DINO) × 16 local crops.

use super::{MultiViewAugment, Normalize, ViewTransform};
use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    SimClr,
    Byol,
    SwAV,
    Dino,
    Vicreg,
    Barlow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// 32×32 views, CIFAR normalisation, no blur.
    Cifar,
    /// 224×224 views (96×96 local crops), ImageNet normalisation.
    ImageNet,
}

impl Resolution {
    /// `cifar`, `imagenet`, or `auto`: CIFAR for images whose short side is under 64 pixels.
    pub fn resolve(variant: &str, width: usize, height: usize) -> Result<Self, ConfigError> {
        match variant {
            "cifar" => Ok(Resolution::Cifar),
            "imagenet" => Ok(Resolution::ImageNet),
            "auto" if width.min(height) < 64 => Ok(Resolution::Cifar),
            "auto" => Ok(Resolution::ImageNet),
            other => Err(ConfigError::Value(format!("unknown variant '{other}'; choose cifar, imagenet or auto"))),
        }
    }
}

impl Preset {
    pub const ALL: [Preset; 6] = [Preset::SimClr, Preset::Byol, Preset::SwAV, Preset::Dino, Preset::Vicreg, Preset::Barlow];

    pub fn name(self) -> &'static str {
        match self {
            Preset::SimClr => "simclr",
            Preset::Byol => "byol",
            Preset::SwAV => "swav",
            Preset::Dino => "dino",
            Preset::Vicreg => "vicreg",
            Preset::Barlow => "barlow",
        }
    }

    /// Looks a preset up by name (`simclr`, `byol`, `swav`, `dino`, `vicreg`, `barlow`).
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let lower = if lower == "barlowtwins" || lower == "barlow_twins" { "barlow".to_string() } else { lower };
        Self::ALL.into_iter().find(|p| p.name() == lower).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
            ConfigError::Value(format!("unknown augmentation preset '{name}'; choose one of {}", names.join(", ")))
        })
    }

    pub fn build(self, resolution: Resolution) -> MultiViewAugment {
        let cifar = resolution == Resolution::Cifar;
        let (global, local, normalize) = if cifar { (32, 16, Normalize::CIFAR10) } else { (224, 96, Normalize::IMAGENET) };
        // Blur at 32 pixels destroys the image; the CIFAR recipes drop it.
        let blur = |p: f32| if cifar { 0.0 } else { p };
        let view = |size: usize, scale: (f32, f32), jitter: [f32; 4], blur_p: f32, solarize_p: f32| ViewTransform {
            jitter,
            jitter_p: 0.8,
            grayscale_p: 0.2,
            blur_p: blur(blur_p),
            solarize_p,
            ..ViewTransform::crop_only(size, scale, normalize)
        };
        const STRONG: [f32; 4] = [0.8, 0.8, 0.8, 0.2];
        const BYOL: [f32; 4] = [0.4, 0.4, 0.2, 0.1];
        match self {
            Preset::SimClr => MultiViewAugment::symmetric(view(global, (0.08, 1.0), STRONG, 0.5, 0.0), 2),
            Preset::Byol | Preset::Vicreg | Preset::Barlow => {
                MultiViewAugment { views: vec![view(global, (0.08, 1.0), BYOL, 1.0, 0.0), view(global, (0.08, 1.0), BYOL, 0.1, 0.2)] }
            }
            Preset::SwAV => {
                let locals = if cifar { 4 } else { 6 };
                let mut views = vec![view(global, (0.14, 1.0), STRONG, 0.5, 0.0); 2];
                views.extend(vec![view(local, (0.05, 0.14), STRONG, 0.5, 0.0); locals]);
                MultiViewAugment { views }
            }
            Preset::Dino => {
                let locals = if cifar { 6 } else { 8 };
                let mut views = vec![view(global, (0.4, 1.0), BYOL, 1.0, 0.0), view(global, (0.4, 1.0), BYOL, 0.1, 0.2)];
                views.extend(vec![view(local, (0.05, 0.4), BYOL, 0.5, 0.0); locals]);
                MultiViewAugment { views }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byol_is_asymmetric_as_in_the_paper() {
        let aug = Preset::Byol.build(Resolution::ImageNet);
        assert_eq!((aug.views[0].blur_p, aug.views[1].blur_p), (1.0, 0.1));
        assert_eq!((aug.views[0].solarize_p, aug.views[1].solarize_p), (0.0, 0.2));
        assert_eq!(aug.views[0].size, 224);
    }

    #[test]
    fn cifar_variants_are_32_pixels_without_blur() {
        for p in Preset::ALL {
            let aug = p.build(Resolution::Cifar);
            assert_eq!(aug.views[0].size, 32, "{}", p.name());
            assert!(aug.views.iter().all(|v| v.blur_p == 0.0));
        }
    }

    #[test]
    fn auto_variant_follows_the_image_size() {
        assert_eq!(Resolution::resolve("auto", 32, 32), Ok(Resolution::Cifar));
        assert_eq!(Resolution::resolve("auto", 512, 300), Ok(Resolution::ImageNet));
        assert_eq!(Resolution::resolve("cifar", 512, 300), Ok(Resolution::Cifar));
        assert!(Resolution::resolve("tiny", 1, 1).is_err());
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()).unwrap(), p);
        }
        let err = Preset::from_name("mocov9").unwrap_err().to_string();
        assert!(err.contains("simclr") && err.contains("mocov9"), "{err}");
    }
}
