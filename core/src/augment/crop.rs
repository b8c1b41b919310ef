//! `RandomResizedCrop` with antialiased bilinear resampling.
//!
//! Semantics of torchvision's `RandomResizedCrop(size, scale, ratio, antialias=True)`:
//! 1. Up to ten times, draw a target area `A·U(scale)` (A = source area) and an aspect ratio
//!    `exp(U(ln ratio.0, ln ratio.1))`; set `w = round(√(area·aspect))`, `h = round(√(area/aspect))`.
//!    The first draw with `0 < w ≤ W` and `0 < h ≤ H` is placed uniformly at random.
//! 2. Otherwise fall back to the central crop with the aspect ratio clamped into `ratio`.
//! 3. Resize the crop to `size × size` with a bilinear (triangle) filter whose support grows with the
//!    downscaling factor, as PIL and torchvision's `antialias=True` do, so that small crops of large
//!    images do not alias.
//!
//! Transcendental functions come from `libm` so that native and wasm builds draw the same crops.

use crate::image::Image;
use crate::rng::Rng;

/// A crop rectangle in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl CropBox {
    /// The whole image.
    pub fn whole(img: &Image) -> Self {
        Self { top: 0, left: 0, height: img.height, width: img.width }
    }
}

/// Parameters of `RandomResizedCrop`.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomResizedCrop {
    /// Output side length (square output).
    pub size: usize,
    /// Range of the crop's area as a fraction of the source area.
    pub scale: (f32, f32),
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: (f32, f32),
}

impl RandomResizedCrop {
    pub fn new(size: usize, scale: (f32, f32)) -> Self {
        Self { size, scale, ratio: (3.0 / 4.0, 4.0 / 3.0) }
    }

    /// Draws a crop box for a `width × height` source (step 1 and 2 above).
    pub fn sample_box(&self, width: usize, height: usize, rng: &mut Rng) -> CropBox {
        let area = (width * height) as f64;
        let (log_lo, log_hi) = (libm::log(self.ratio.0 as f64), libm::log(self.ratio.1 as f64));
        for _ in 0..10 {
            let target_area = area * (self.scale.0 as f64 + (self.scale.1 - self.scale.0) as f64 * rng.uniform_f64());
            let aspect = libm::exp(log_lo + (log_hi - log_lo) * rng.uniform_f64());
            let w = libm::round(libm::sqrt(target_area * aspect)) as usize;
            let h = libm::round(libm::sqrt(target_area / aspect)) as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.below(height - h + 1);
                let left = rng.below(width - w + 1);
                return CropBox { top, left, height: h, width: w };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (min_r, max_r) = (self.ratio.0.min(self.ratio.1) as f64, self.ratio.0.max(self.ratio.1) as f64);
        let (w, h) = if in_ratio < min_r {
            (width, (libm::round(width as f64 / min_r) as usize).clamp(1, height))
        } else if in_ratio > max_r {
            ((libm::round(height as f64 * max_r) as usize).clamp(1, width), height)
        } else {
            (width, height)
        };
        CropBox { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
    }
}

/// Resampling weights of one axis: for each output pixel, the first source index and its weights.
struct AxisFilter {
    starts: Vec<usize>,
    taps: usize,
    /// `out_len × taps` weights, zero-padded past each pixel's support.
    weights: Vec<f32>,
}

impl AxisFilter {
    /// Triangle filter from `in_len` source pixels to `out_len` output pixels (PIL's
    /// `precompute_coeffs` for the bilinear filter): support 1 when upscaling, `in/out` when
    /// downscaling.
    fn bilinear(in_len: usize, out_len: usize) -> Self {
        let scale = in_len as f64 / out_len as f64;
        let support = scale.max(1.0);
        // hi - lo ≤ 2·support + 1 source pixels per output pixel.
        let taps = (support.ceil() as usize) * 2 + 1;
        let mut starts = Vec::with_capacity(out_len);
        let mut weights = vec![0.0f32; out_len * taps];
        for i in 0..out_len {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(in_len);
            let row = &mut weights[i * taps..][..hi - lo];
            let mut total = 0.0f64;
            for (k, w) in row.iter_mut().enumerate() {
                let x = ((lo + k) as f64 - center + 0.5) / support;
                let t = (1.0 - x.abs()).max(0.0);
                total += t;
                *w = t as f32;
            }
            let inv = if total > 0.0 { (1.0 / total) as f32 } else { 0.0 };
            row.iter_mut().for_each(|w| *w *= inv);
            starts.push(lo);
        }
        Self { starts, taps, weights }
    }

    /// Number of source pixels output `i` reads (never past the source's end).
    fn span(&self, i: usize, in_len: usize) -> usize {
        self.taps.min(in_len - self.starts[i])
    }
}

/// Resizes `crop` of `src` to `out_size × out_size`, writing planar `[3, out, out]` floats in
/// `[0, 1]` to `out`.
pub fn resize_crop(src: &Image, crop: CropBox, out_size: usize, out: &mut [f32]) {
    resize_crop_rect(src, crop, out_size, out_size, out)
}

/// Rectangular variant of [`resize_crop`].
pub fn resize_crop_rect(src: &Image, crop: CropBox, out_w: usize, out_h: usize, out: &mut [f32]) {
    assert_eq!(out.len(), 3 * out_w * out_h);
    assert!(crop.top + crop.height <= src.height && crop.left + crop.width <= src.width);
    let fx = AxisFilter::bilinear(crop.width, out_w);
    let fy = AxisFilter::bilinear(crop.height, out_h);
    // Horizontal pass over the crop's rows: [crop.height][out_w][3], values in [0, 255].
    let mut rows = vec![0.0f32; crop.height * out_w * 3];
    for y in 0..crop.height {
        let src_row = &src.pixels[((crop.top + y) * src.width + crop.left) * 3..][..crop.width * 3];
        let dst_row = &mut rows[y * out_w * 3..][..out_w * 3];
        for x in 0..out_w {
            let (start, n) = (fx.starts[x], fx.span(x, crop.width));
            let w = &fx.weights[x * fx.taps..][..n];
            let mut acc = [0.0f32; 3];
            for (k, &wk) in w.iter().enumerate() {
                let p = &src_row[(start + k) * 3..][..3];
                acc[0] += wk * p[0] as f32;
                acc[1] += wk * p[1] as f32;
                acc[2] += wk * p[2] as f32;
            }
            dst_row[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass into planar output, scaled to [0, 1].
    let plane = out_w * out_h;
    let mut acc = vec![0.0f32; out_w * 3];
    for y in 0..out_h {
        let (start, n) = (fy.starts[y], fy.span(y, crop.height));
        acc.iter_mut().for_each(|a| *a = 0.0);
        for k in 0..n {
            let wk = fy.weights[y * fy.taps + k];
            for (a, &r) in acc.iter_mut().zip(&rows[(start + k) * out_w * 3..][..out_w * 3]) {
                *a += wk * r;
            }
        }
        for x in 0..out_w {
            for c in 0..3 {
                out[c * plane + y * out_w + x] = (acc[x * 3 + c] * (1.0 / 255.0)).clamp(0.0, 1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_respect_scale_and_ratio_bounds_over_many_draws() {
        let crop = RandomResizedCrop::new(32, (0.2, 1.0));
        let mut rng = Rng::new(1);
        let (w, h) = (500, 375);
        for _ in 0..5_000 {
            let b = crop.sample_box(w, h, &mut rng);
            assert!(b.left + b.width <= w && b.top + b.height <= h);
            let area = (b.width * b.height) as f64 / (w * h) as f64;
            let aspect = b.width as f64 / b.height as f64;
            // Rounding w and h to integers moves area and aspect slightly past the bounds.
            assert!((0.2 * 0.98..=1.0).contains(&area), "area fraction {area}");
            assert!((0.75 * 0.98..=4.0 / 3.0 * 1.02).contains(&aspect) || b.width == w || b.height == h, "aspect {aspect}");
        }
    }

    #[test]
    fn impossible_ratio_falls_back_to_center_crop() {
        // A 100×10 strip cannot hold a crop of ratio ≤ 4/3 with ≥ 90 % of its area.
        let crop = RandomResizedCrop::new(8, (0.9, 1.0));
        let b = crop.sample_box(100, 10, &mut Rng::new(0));
        assert_eq!(b, CropBox { top: 0, left: 43, height: 10, width: 13 });
    }

    #[test]
    fn identity_resize_reproduces_pixels() {
        let img = Image::new(3, 2, (0..18).map(|v| v as u8 * 10).collect());
        let mut out = vec![0.0; 18];
        resize_crop_rect(&img, CropBox { top: 0, left: 0, height: 2, width: 3 }, 3, 2, &mut out);
        // pixel (y=1, x=2) channel 1 is byte ((1*3+2)*3+1) = 16 → 160
        assert!((out[6 + 5] * 255.0 - 160.0).abs() < 1e-3);
        assert!((out[0] * 255.0 - 0.0).abs() < 1e-3);
    }

    #[test]
    fn downscaling_averages_like_an_antialiasing_filter() {
        // 4×1 → 2×1: each output pixel is the triangle-weighted average over its 2-pixel support.
        // For out 0 (center 1.0, support 2): source x=0..2 weights 0.75,0.75,0.25 → normalised.
        let img = Image::new(4, 1, vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40]);
        let mut out = vec![0.0; 6];
        resize_crop_rect(&img, CropBox { top: 0, left: 0, height: 1, width: 4 }, 2, 1, &mut out);
        let expected0 = (0.75 * 0.0 + 0.75 * 100.0 + 0.25 * 200.0) / 1.75;
        let expected1 = (0.25 * 100.0 + 0.75 * 200.0 + 0.75 * 40.0) / 1.75;
        assert!((out[0] * 255.0 - expected0).abs() < 1e-3, "{}", out[0] * 255.0);
        assert!((out[1] * 255.0 - expected1).abs() < 1e-3, "{}", out[1] * 255.0);
    }

    #[test]
    fn constant_image_stays_constant_at_any_scale() {
        let img = Image::filled(97, 61, [51, 102, 204]);
        for size in [7, 32, 224] {
            let mut out = vec![0.0; 3 * size * size];
            resize_crop(&img, CropBox { top: 3, left: 5, height: 50, width: 80 }, size, &mut out);
            for (c, v) in [0.2f32, 0.4, 0.8].iter().enumerate() {
                assert!(out[c * size * size..(c + 1) * size * size].iter().all(|x| (x - v).abs() < 1e-5));
            }
        }
    }
}
