//! Colour transforms on planar `[3, H, W]` float images in `[0, 1]`, with torchvision's
//! semantics for float tensors (`torchvision.transforms.v2.functional`).

use crate::rng::Rng;

/// ITU-R BT.601 luma weights, as `rgb_to_grayscale` uses.
pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

fn planes(img: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let n = img.len() / 3;
    let (r, gb) = img.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    (r, g, b)
}

/// `adjust_brightness`: `clamp(img · factor)`. Factor 1 is the identity.
pub fn adjust_brightness(img: &mut [f32], factor: f32) {
    img.iter_mut().for_each(|v| *v = (*v * factor).clamp(0.0, 1.0));
}

/// `adjust_contrast`: blend with the mean of the image's grayscale version,
/// `clamp(f·img + (1−f)·mean(gray(img)))`.
pub fn adjust_contrast(img: &mut [f32], factor: f32) {
    let n = img.len() / 3;
    let (r, g, b) = planes(img);
    let sum: f32 = (0..n).map(|i| LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i]).sum();
    let offset = (1.0 - factor) * sum / n as f32;
    img.iter_mut().for_each(|v| *v = (factor * *v + offset).clamp(0.0, 1.0));
}

/// `adjust_saturation`: blend each pixel with its own gray value, `clamp(f·img + (1−f)·gray)`.
pub fn adjust_saturation(img: &mut [f32], factor: f32) {
    let (r, g, b) = planes(img);
    for i in 0..r.len() {
        let gray = (1.0 - factor) * (LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i]);
        r[i] = (factor * r[i] + gray).clamp(0.0, 1.0);
        g[i] = (factor * g[i] + gray).clamp(0.0, 1.0);
        b[i] = (factor * b[i] + gray).clamp(0.0, 1.0);
    }
}

/// `adjust_hue`: convert to HSV, rotate the hue by `shift` turns (`h ← (h + shift) mod 1`),
/// convert back. torchvision restricts `shift` to `[−0.5, 0.5]`; any value works here, and
/// shifts of 0 and 1 are the identity.
pub fn adjust_hue(img: &mut [f32], shift: f32) {
    let (r, g, b) = planes(img);
    for i in 0..r.len() {
        let (h, s, v) = rgb_to_hsv(r[i], g[i], b[i]);
        let h = fract(h + shift);
        let (nr, ng, nb) = hsv_to_rgb(h, s, v);
        (r[i], g[i], b[i]) = (nr, ng, nb);
    }
}

/// `x mod 1` in `[0, 1)`; `floor` is much cheaper than the `fmod` behind `rem_euclid`.
fn fract(x: f32) -> f32 {
    x - x.floor()
}

/// torchvision's `_rgb2hsv`: hue in `[0, 1)`.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let chroma = maxc - minc;
    if chroma == 0.0 {
        return (0.0, 0.0, maxc);
    }
    let s = chroma / maxc;
    let (rc, gc, bc) = ((maxc - r) / chroma, (maxc - g) / chroma, (maxc - b) / chroma);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    (fract(h / 6.0 + 1.0), s, maxc)
}

/// torchvision's `_hsv2rgb`.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (sector as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// `rgb_to_grayscale` with three output channels: every channel becomes
/// `0.299 R + 0.587 G + 0.114 B`.
pub fn grayscale(img: &mut [f32]) {
    let (r, g, b) = planes(img);
    for i in 0..r.len() {
        let y = LUMA[0] * r[i] + LUMA[1] * g[i] + LUMA[2] * b[i];
        (r[i], g[i], b[i]) = (y, y, y);
    }
}

/// `solarize`: every value `≥ threshold` becomes `1 − value`; the others are unchanged.
pub fn solarize(img: &mut [f32], threshold: f32) {
    img.iter_mut().filter(|v| **v >= threshold).for_each(|v| *v = 1.0 - *v);
}

/// `ColorJitter(brightness, contrast, saturation, hue)`.
///
/// Each strength `s` gives a factor drawn from `U(max(0, 1−s), 1+s)` (hue: a shift from
/// `U(−s, s)`, `s ≤ 0.5`); the four adjustments run in a random order, as torchvision's
/// `ColorJitter` does. A strength of 0 skips that adjustment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
}

impl ColorJitter {
    pub fn new(brightness: f32, contrast: f32, saturation: f32, hue: f32) -> Self {
        Self { brightness, contrast, saturation, hue }
    }

    pub fn apply(&self, img: &mut [f32], rng: &mut Rng) {
        let order = rng.permutation(4);
        // Factors are drawn in a fixed order, independent of the permutation.
        let factor = |s: f32, rng: &mut Rng| rng.range((1.0 - s).max(0.0), 1.0 + s);
        let b = factor(self.brightness, rng);
        let c = factor(self.contrast, rng);
        let s = factor(self.saturation, rng);
        let h = rng.range(-self.hue, self.hue);
        for op in order {
            match op {
                0 if self.brightness > 0.0 => adjust_brightness(img, b),
                1 if self.contrast > 0.0 => adjust_contrast(img, c),
                2 if self.saturation > 0.0 => adjust_saturation(img, s),
                3 if self.hue > 0.0 => adjust_hue(img, h),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-pixel planar image with saturated, mixed and gray pixels.
    fn sample() -> Vec<f32> {
        vec![
            0.9, 0.1, 0.5, 0.3, // R
            0.2, 0.8, 0.5, 0.6, // G
            0.1, 0.3, 0.5, 0.95, // B
        ]
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn brightness_factor_one_is_identity_and_scales_otherwise() {
        let mut img = sample();
        adjust_brightness(&mut img, 1.0);
        assert_eq!(img, sample());
        adjust_brightness(&mut img, 0.5);
        assert!(close(&img, &sample().iter().map(|v| v * 0.5).collect::<Vec<_>>(), 1e-7));
        adjust_brightness(&mut img, 4.0);
        assert!(img.iter().all(|&v| v <= 1.0));
    }

    #[test]
    fn contrast_blends_towards_the_gray_mean() {
        let mut img = sample();
        adjust_contrast(&mut img, 1.0);
        assert!(close(&img, &sample(), 1e-7));
        adjust_contrast(&mut img, 0.0);
        // mean of 0.299R+0.587G+0.114B over the 4 pixels, computed by hand:
        let grays = [
            0.299 * 0.9 + 0.587 * 0.2 + 0.114 * 0.1,
            0.299 * 0.1 + 0.587 * 0.8 + 0.114 * 0.3,
            0.5,
            0.299 * 0.3 + 0.587 * 0.6 + 0.114 * 0.95,
        ];
        let mean: f32 = grays.iter().sum::<f32>() / 4.0;
        assert!(img.iter().all(|v| (v - mean).abs() < 1e-6));
    }

    #[test]
    fn saturation_zero_is_grayscale_and_one_is_identity() {
        let mut a = sample();
        adjust_saturation(&mut a, 1.0);
        assert!(close(&a, &sample(), 1e-7));
        let mut b = sample();
        adjust_saturation(&mut b, 0.0);
        let mut g = sample();
        grayscale(&mut g);
        assert!(close(&b, &g, 1e-6));
    }

    #[test]
    fn grayscale_uses_bt601_weights_on_all_channels() {
        let mut img = sample();
        grayscale(&mut img);
        let expected = 0.299 * 0.9 + 0.587 * 0.2 + 0.114 * 0.1;
        for c in 0..3 {
            assert!((img[c * 4] - expected).abs() < 1e-7);
            assert_eq!(img[c * 4 + 1], img[4 + 1]);
        }
    }

    #[test]
    fn hue_shift_by_zero_and_by_one_is_identity() {
        for shift in [0.0, 1.0, -1.0] {
            let mut img = sample();
            adjust_hue(&mut img, shift);
            assert!(close(&img, &sample(), 1e-6), "shift {shift}: {img:?}");
        }
    }

    #[test]
    fn hue_shift_by_a_third_rotates_primaries() {
        // Pure red shifted by 1/3 turn is pure green, then pure blue.
        let mut img = vec![1.0, 0.0, 0.0];
        adjust_hue(&mut img, 1.0 / 3.0);
        assert!(close(&img, &[0.0, 1.0, 0.0], 1e-6), "{img:?}");
        adjust_hue(&mut img, 1.0 / 3.0);
        assert!(close(&img, &[0.0, 0.0, 1.0], 1e-6), "{img:?}");
    }

    #[test]
    fn hsv_round_trip() {
        for &(r, g, b) in &[(0.9, 0.2, 0.1), (0.1, 0.8, 0.3), (0.3, 0.6, 0.95), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0)] {
            let (h, s, v) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() < 1e-6 && (g - g2).abs() < 1e-6 && (b - b2).abs() < 1e-6);
        }
    }

    #[test]
    fn solarize_inverts_exactly_the_pixels_at_or_above_threshold() {
        let mut img = vec![0.0, 0.25, 0.49999, 0.5, 0.75, 1.0];
        solarize(&mut img, 0.5);
        assert_eq!(img, vec![0.0, 0.25, 0.49999, 0.5, 0.25, 0.0]);
        let mut img = vec![0.2, 0.6];
        solarize(&mut img, 0.6);
        assert_eq!(img, vec![0.2, 1.0 - 0.6]);
    }

    #[test]
    fn jitter_with_zero_strengths_is_identity() {
        let mut img = sample();
        ColorJitter::new(0.0, 0.0, 0.0, 0.0).apply(&mut img, &mut Rng::new(5));
        assert_eq!(img, sample());
    }

    #[test]
    fn jitter_changes_colours_and_stays_in_range() {
        let mut img = sample();
        ColorJitter::new(0.8, 0.8, 0.8, 0.2).apply(&mut img, &mut Rng::new(5));
        assert!(!close(&img, &sample(), 1e-3));
        assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
