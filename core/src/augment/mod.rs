//! Data augmentation: the views a joint-embedding method compares.
//!
//! A [`ViewTransform`] turns one source image into one view, in torchvision's order for SimCLR,
//! BYOL and their successors:
//!
//! `RandomResizedCrop → HorizontalFlip(p) → ColorJitter(p) → Grayscale(p) → GaussianBlur(p) →
//! Solarize(p) → Normalize`
//!
//! A [`MultiViewAugment`] holds one transform per view, which covers symmetric pipelines (SimCLR:
//! the same transform twice), asymmetric ones (BYOL: blur p 1.0 / 0.1, solarize 0 / 0.2) and
//! multi-crop (SwAV, DINO: two large global crops plus several small local ones). Views can carry a
//! token mask for masked-image methods ([`mask`]).
//!
//! Every view draws from its own [`Rng`] stream keyed by `(seed, epoch, sample, view)`, so the same
//! seed gives the same views natively, in wasm, and under any thread schedule.

pub mod blur;
pub mod color;
pub mod crop;
pub mod mask;
pub mod presets;

use serde::{Deserialize, Serialize};

pub use blur::GaussianBlur;
pub use color::ColorJitter;
pub use crop::{CropBox, RandomResizedCrop};
pub use mask::{MaskKind, Masking};
pub use presets::{Preset, Resolution};

use crate::image::Image;
use crate::rng::Rng;

/// Per-channel `(x − mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    pub const IMAGENET: Self = Self { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    pub const CIFAR10: Self = Self { mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616] };

    /// Normalises a planar `[3, H, W]` image in place.
    pub fn apply(&self, img: &mut [f32]) {
        let plane = img.len() / 3;
        for (c, channel) in img.chunks_exact_mut(plane).enumerate() {
            let (m, inv) = (self.mean[c], 1.0 / self.std[c]);
            channel.iter_mut().for_each(|v| *v = (*v - m) * inv);
        }
    }

    /// Undoes [`Normalize::apply`] (for previews of normalised tensors).
    pub fn invert(&self, img: &mut [f32]) {
        let plane = img.len() / 3;
        for (c, channel) in img.chunks_exact_mut(plane).enumerate() {
            channel.iter_mut().for_each(|v| *v = *v * self.std[c] + self.mean[c]);
        }
    }
}

/// The pipeline that makes one view from one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewTransform {
    /// Output side length of the (square) view.
    pub size: usize,
    /// `RandomResizedCrop` area range, as a fraction of the source image. `(1, 1)` takes the
    /// whole image, resized, without a random draw (the evaluation transform).
    pub crop_scale: (f32, f32),
    /// `RandomResizedCrop` aspect-ratio range.
    pub crop_ratio: (f32, f32),
    pub flip_p: f32,
    /// `ColorJitter` strengths `[brightness, contrast, saturation, hue]`.
    pub jitter: [f32; 4],
    pub jitter_p: f32,
    pub grayscale_p: f32,
    /// Gaussian blur σ range; kernel size 0 = 10 % of the view size (odd).
    pub blur_sigma: (f32, f32),
    pub blur_kernel: usize,
    pub blur_p: f32,
    pub solarize_threshold: f32,
    pub solarize_p: f32,
    pub normalize: Normalize,
    /// Token mask drawn with the view, for masked-image methods.
    pub masking: Option<Masking>,
}

impl ViewTransform {
    /// Crop and flip only: the "weak" augmentation, and a base for presets.
    pub fn crop_only(size: usize, crop_scale: (f32, f32), normalize: Normalize) -> Self {
        Self {
            size,
            crop_scale,
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_p: 0.5,
            jitter: [0.0; 4],
            jitter_p: 0.0,
            grayscale_p: 0.0,
            blur_sigma: (0.1, 2.0),
            blur_kernel: 0,
            blur_p: 0.0,
            solarize_threshold: 0.5,
            solarize_p: 0.0,
            normalize,
            masking: None,
        }
    }

    /// No randomness: resize the whole image to `size` (evaluation and kNN banks).
    pub fn eval(size: usize, normalize: Normalize) -> Self {
        Self { flip_p: 0.0, ..Self::crop_only(size, (1.0, 1.0), normalize) }
    }

    pub fn crop(&self) -> RandomResizedCrop {
        RandomResizedCrop { size: self.size, scale: self.crop_scale, ratio: self.crop_ratio }
    }

    /// Number of floats one view occupies (`3 · size²`).
    pub fn values_per_view(&self) -> usize {
        3 * self.size * self.size
    }

    /// Writes the augmented view, planar `[3, size, size]` in `[0, 1]` (before normalisation).
    pub fn augment(&self, img: &Image, rng: &mut Rng, out: &mut [f32]) {
        let crop = if self.crop_scale == (1.0, 1.0) { CropBox::whole(img) } else { self.crop().sample_box(img.width, img.height, rng) };
        crop::resize_crop(img, crop, self.size, out);
        if rng.chance(self.flip_p) {
            for row in out.chunks_exact_mut(self.size) {
                row.reverse();
            }
        }
        if rng.chance(self.jitter_p) {
            let [b, c, s, h] = self.jitter;
            ColorJitter::new(b, c, s, h).apply(out, rng);
        }
        if rng.chance(self.grayscale_p) {
            color::grayscale(out);
        }
        if rng.chance(self.blur_p) {
            let sigma = rng.range(self.blur_sigma.0, self.blur_sigma.1);
            let k = GaussianBlur { kernel_size: self.blur_kernel, sigma: self.blur_sigma }.kernel_size_for(self.size);
            blur::gaussian_blur(out, self.size, self.size, &blur::gaussian_kernel(k, sigma));
        }
        if rng.chance(self.solarize_p) {
            color::solarize(out, self.solarize_threshold);
        }
    }

    /// [`ViewTransform::augment`] as an 8-bit image (previews).
    pub fn augment_image(&self, img: &Image, rng: &mut Rng) -> Image {
        let mut out = vec![0.0; self.values_per_view()];
        self.augment(img, rng, &mut out);
        Image::from_planar_f32(self.size, self.size, &out)
    }

    /// What a training view looks like: [`ViewTransform::augment_image`], with the masked patches
    /// (if the view masks) painted mid-grey.
    pub fn preview_image(&self, img: &Image, rng: &mut Rng) -> Image {
        let mut view = self.augment_image(img, rng);
        if let Some(masking) = &self.masking {
            let (grid, patch) = (masking.grid(self.size), masking.patch_size);
            let mut mask = vec![false; grid * grid];
            masking.sample(self.size, rng, &mut mask);
            for (token, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
                let (ty, tx) = (token / grid, token % grid);
                for y in ty * patch..(ty + 1) * patch {
                    let row = (y * self.size + tx * patch) * 3;
                    view.pixels[row..row + 3 * patch].fill(128);
                }
            }
        }
        view
    }

    /// [`ViewTransform::augment`] followed by normalisation, plus the view's token mask if it has
    /// one: what a training batch holds.
    pub fn apply(&self, img: &Image, rng: &mut Rng, out: &mut [f32], mask: Option<&mut [bool]>) {
        self.augment(img, rng, out);
        self.normalize.apply(out);
        if let (Some(masking), Some(mask)) = (&self.masking, mask) {
            masking.sample(self.size, rng, mask);
        }
    }

    /// Tokens in this view's mask (0 without masking).
    pub fn mask_tokens(&self) -> usize {
        self.masking.map_or(0, |m| m.grid(self.size).pow(2))
    }
}

/// One transform per view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiViewAugment {
    pub views: Vec<ViewTransform>,
}

impl MultiViewAugment {
    /// The same transform for `n` views (SimCLR-style symmetric pipelines).
    pub fn symmetric(view: ViewTransform, n: usize) -> Self {
        Self { views: vec![view; n] }
    }

    /// Draws view `v` of sample `index` in `epoch`, in `[0, 1]` (preview, no normalisation).
    pub fn preview(&self, img: &Image, seed: u64, epoch: u64, index: u64, v: usize) -> Image {
        self.views[v].preview_image(img, &mut Rng::for_view(seed, epoch, index, v as u64))
    }

    /// The evaluation transform that goes with these training views: the whole image at the
    /// first view's size and normalisation, no randomness (kNN banks, features, inference).
    pub fn eval_transform(&self) -> ViewTransform {
        ViewTransform::eval(self.views[0].size, self.views[0].normalize)
    }

    /// The whole image resized to the first view's size (the reference tile of a preview).
    pub fn preview_original(&self, img: &Image) -> Image {
        let size = self.views[0].size;
        let mut original = vec![0.0; 3 * size * size];
        crop::resize_crop(img, CropBox::whole(img), size, &mut original);
        Image::from_planar_f32(size, size, &original)
    }

    /// A preview grid: the whole image, then `views` random views (cycling through this
    /// augmentation's transforms), `columns` per row. Views are shown before normalisation.
    pub fn preview_grid(&self, img: &Image, views: usize, seed: u64, columns: usize) -> Image {
        let mut tiles = vec![self.preview_original(img)];
        for k in 0..views {
            let view = &self.views[k % self.views.len()];
            tiles.push(view.preview_image(img, &mut Rng::for_view(seed, 0, 0, k as u64)));
        }
        Image::grid(&tiles, columns, 4)
    }

    /// Rescales every view so that the first (global) view has side `size`; local crops keep
    /// their size relative to it. Blur kernels that follow the view size follow along.
    pub fn resized(mut self, size: usize) -> Self {
        let base = self.views[0].size;
        for v in &mut self.views {
            v.size = (v.size * size / base).max(1);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Image {
        crate::data::shapes::Shapes::new(64, 1).render(3)
    }

    #[test]
    fn normalize_matches_the_formula_and_inverts() {
        let mut img = vec![0.5, 0.5, 0.2, 0.8, 1.0, 0.0];
        Normalize::CIFAR10.apply(&mut img);
        assert!((img[0] - (0.5 - 0.4914) / 0.2470).abs() < 1e-6);
        assert!((img[5] - (0.0 - 0.4465) / 0.2616).abs() < 1e-6);
        Normalize::CIFAR10.invert(&mut img);
        assert!((img[3] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn the_same_key_gives_the_same_view_and_keys_differ() {
        let aug = Preset::SimClr.build(Resolution::Cifar);
        let img = photo();
        assert_eq!(aug.preview(&img, 7, 0, 1, 0), aug.preview(&img, 7, 0, 1, 0));
        assert_ne!(aug.preview(&img, 7, 0, 1, 0), aug.preview(&img, 7, 0, 1, 1));
        assert_ne!(aug.preview(&img, 7, 0, 1, 0), aug.preview(&img, 8, 0, 1, 0));
    }

    #[test]
    fn flip_only_mirrors_the_image() {
        let img = photo();
        let mut view = ViewTransform::eval(64, Normalize::IMAGENET);
        let plain = MultiViewAugment::symmetric(view.clone(), 1).preview(&img, 0, 0, 0, 0);
        assert_eq!(plain, img, "the evaluation transform at the source size is the identity");
        view.flip_p = 1.0;
        let flipped = MultiViewAugment::symmetric(view, 1).preview(&img, 0, 0, 0, 0);
        for y in 0..64 {
            for x in 0..64 {
                let a = &img.pixels[(y * 64 + x) * 3..][..3];
                let b = &flipped.pixels[(y * 64 + 63 - x) * 3..][..3];
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn apply_normalises_and_draws_masks() {
        let mut view = ViewTransform::crop_only(32, (0.5, 1.0), Normalize::CIFAR10);
        view.masking = Some(Masking::random(4, 0.5));
        let mut out = vec![0.0; view.values_per_view()];
        let mut mask = vec![false; view.mask_tokens()];
        view.apply(&photo(), &mut Rng::new(1), &mut out, Some(&mut mask));
        assert_eq!(mask.iter().filter(|&&m| m).count(), 32);
        assert!(out.iter().any(|&v| v < 0.0), "normalised values go below zero");
    }

    #[test]
    fn preview_paints_exactly_the_masked_patches_grey() {
        let mut view = ViewTransform::crop_only(32, (1.0, 1.0), Normalize::CIFAR10);
        view.flip_p = 0.0;
        view.masking = Some(Masking::random(8, 0.25));
        let img = Image::filled(32, 32, [10, 200, 30]);
        let out = view.preview_image(&img, &mut Rng::new(3));
        // 16 tokens of 8 × 8 pixels, 4 masked: a quarter of the pixels grey, the rest untouched.
        let grey = out.pixels.chunks(3).filter(|p| p == &[128, 128, 128]).count();
        let kept = out.pixels.chunks(3).filter(|p| p == &[10, 200, 30]).count();
        assert_eq!((grey, kept), (256, 768));
    }

    #[test]
    fn multi_crop_returns_the_requested_sizes() {
        let aug = Preset::Dino.build(Resolution::ImageNet);
        assert_eq!(aug.views.len(), 10);
        let img = crate::data::shapes::Shapes::new(256, 1).render(0);
        for (v, view) in aug.views.iter().enumerate() {
            let out = aug.preview(&img, 0, 0, 0, v);
            assert_eq!((out.width, out.height), (view.size, view.size));
            assert_eq!(view.size, if v < 2 { 224 } else { 96 });
        }
        let grid = aug.preview_grid(&img, 10, 1, 11);
        assert_eq!((grid.width, grid.height), (11 * 224 + 12 * 4, 224 + 8));
        let small = aug.resized(32);
        assert_eq!(small.views[0].size, 32);
        assert_eq!(small.views[9].size, 13);
    }
}
