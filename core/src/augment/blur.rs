//! Gaussian blur, as torchvision's `GaussianBlur(kernel_size, sigma)`.
//!
//! The kernel is `exp(−x²/(2σ²))` sampled at the integer offsets `x ∈ [−(k−1)/2, (k−1)/2]` and
//! normalised to sum 1; it is applied separably (rows, then columns) with reflect padding
//! (`…, 2, 1 | 0, 1, 2, …`), so a constant image is left unchanged. σ is drawn from
//! `U(sigma.0, sigma.1)` per image.

/// Parameters of `GaussianBlur`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianBlur {
    /// Odd kernel size; 0 means "about 10 % of the image side", as SimCLR chooses it.
    pub kernel_size: usize,
    pub sigma: (f32, f32),
}

impl GaussianBlur {
    /// The kernel size used for an image of side `size`.
    pub fn kernel_size_for(&self, size: usize) -> usize {
        if self.kernel_size > 0 { self.kernel_size | 1 } else { ((size / 10) | 1).max(3) }
    }
}

/// Normalised 1-D Gaussian kernel of odd length `k`.
pub fn gaussian_kernel(k: usize, sigma: f32) -> Vec<f32> {
    let half = (k / 2) as f32;
    let w: Vec<f64> = (0..k)
        .map(|i| {
            let x = (i as f32 - half) as f64 / sigma as f64;
            libm::exp(-0.5 * x * x)
        })
        .collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| (v / total) as f32).collect()
}

/// Reflects an index into `0..n` without repeating the edge (`−1 → 1`, `n → n−2`).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Blurs a planar `[3, height, width]` image in place.
///
/// Rows are convolved from a reflect-padded copy of each row; columns by accumulating whole
/// reflected rows, so both inner loops run over contiguous memory.
pub fn gaussian_blur(img: &mut [f32], width: usize, height: usize, kernel: &[f32]) {
    let half = kernel.len() / 2;
    let mut padded = vec![0.0f32; width + 2 * half];
    let mut blurred = vec![0.0f32; width * height];
    for plane in img.chunks_exact_mut(width * height) {
        for row in plane.chunks_exact_mut(width) {
            for (i, p) in padded.iter_mut().enumerate() {
                *p = row[reflect(i as isize - half as isize, width)];
            }
            row.fill(0.0);
            for (k, &w) in kernel.iter().enumerate() {
                for (o, &v) in row.iter_mut().zip(&padded[k..]) {
                    *o += w * v;
                }
            }
        }
        for (y, out_row) in blurred.chunks_exact_mut(width).enumerate() {
            out_row.fill(0.0);
            for (k, &w) in kernel.iter().enumerate() {
                let src = reflect(y as isize + k as isize - half as isize, height);
                for (o, &v) in out_row.iter_mut().zip(&plane[src * width..(src + 1) * width]) {
                    *o += w * v;
                }
            }
        }
        plane.copy_from_slice(&blurred);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_matches_the_formula() {
        let k = gaussian_kernel(3, 1.0);
        let e = (-0.5f64).exp();
        let total = 1.0 + 2.0 * e;
        assert!((k[1] as f64 - 1.0 / total).abs() < 1e-7);
        assert!((k[0] as f64 - e / total).abs() < 1e-7);
        assert_eq!(k[0], k[2]);
    }

    #[test]
    fn blur_preserves_a_constant_image_and_the_mean_of_a_symmetric_one() {
        let mut img = vec![0.37f32; 3 * 9 * 7];
        gaussian_blur(&mut img, 9, 7, &gaussian_kernel(5, 1.5));
        assert!(img.iter().all(|v| (v - 0.37).abs() < 1e-6));
    }

    #[test]
    fn blur_spreads_an_impulse_by_the_outer_product_of_kernels() {
        let (w, h) = (7, 7);
        let mut img = vec![0.0f32; 3 * w * h];
        img[3 * w + 3] = 1.0; // red channel, centre
        let k = gaussian_kernel(3, 0.8);
        gaussian_blur(&mut img, w, h, &k);
        assert!((img[3 * w + 3] - k[1] * k[1]).abs() < 1e-7);
        assert!((img[2 * w + 4] - k[0] * k[2]).abs() < 1e-7);
        assert!(img[w * h..].iter().all(|&v| v == 0.0), "other channels untouched");
    }

    #[test]
    fn reflect_padding_does_not_repeat_the_edge() {
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(-2, 5), 2);
        assert_eq!(reflect(5, 5), 3);
        assert_eq!(reflect(12, 5), 4);
        assert_eq!(reflect(3, 1), 0);
    }
}
