//! A procedural dataset of coloured shapes on textured backgrounds: jem's zero-download default.
//!
//! Image `i` of a seed is always the same picture at a given resolution: its class is
//! `i mod classes` (so every class has the same count), and everything else — fill colour (one of
//! 8), background colour (one of 6, dark or light), size, position, rotation and a faint
//! background texture — is drawn from the stream keyed by `(seed, i)`. Only the outline tells
//! the classes apart, so a useful representation must be invariant to colour, scale, position
//! and rotation: exactly what augmentations teach.
//! Shapes are rendered with 2×2 supersampling for smooth edges, at any resolution.

use std::f32::consts::PI;

use super::{Dataset, Split};
use crate::image::Image;
use crate::rng::Rng;

pub const SHAPE_NAMES: [&str; 12] =
    ["circle", "ring", "crescent", "triangle", "square", "diamond", "pentagon", "hexagon", "star", "cross", "heart", "arrow"];

/// Generator of shape images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shapes {
    pub resolution: usize,
    pub seed: u64,
    /// Number of classes, 2 to 12 (default 10: the first ten of [`SHAPE_NAMES`]).
    pub classes: usize,
}

/// Everything random about one image.
struct Scene {
    class: usize,
    center: (f32, f32),
    radius: f32,
    /// cos and sin of the rotation.
    rotation: (f32, f32),
    fill: [f32; 3],
    background: [[f32; 3]; 2],
    texture: Texture,
}

enum Texture {
    /// Linear blend along a direction.
    Gradient {
        dir: (f32, f32),
    },
    /// Sinusoidal stripes.
    Stripes {
        dir: (f32, f32),
        frequency: f32,
        phase: f32,
    },
    Checker {
        cells: f32,
    },
    /// Sum of three random plane waves: a smooth, cloudy pattern.
    Waves {
        waves: [(f32, f32, f32); 3],
    },
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let (r, g, b) = crate::augment::color::hsv_to_rgb(h, s, v);
    [r, g, b]
}

impl Shapes {
    pub fn new(resolution: usize, seed: u64) -> Self {
        Self { resolution, seed, classes: 10 }
    }

    /// The built-in image that previews use when no image is given: a star at 256×256.
    pub fn preview_image() -> Image {
        Shapes::new(256, 0).render(8)
    }

    pub fn class_names(&self) -> Vec<String> {
        SHAPE_NAMES[..self.classes].iter().map(|s| s.to_string()).collect()
    }

    pub fn label(&self, index: u64) -> u32 {
        (index % self.classes as u64) as u32
    }

    fn scene(&self, index: u64) -> Scene {
        let mut rng = Rng::from_key(&[self.seed, index, 0x5EA_5CE7E]);
        let radius = rng.range(0.2, 0.4);
        let center = (rng.range(radius, 1.0 - radius), rng.range(radius, 1.0 - radius));
        let angle = rng.range(0.0, 2.0 * PI);
        // Colours come from small palettes: many images share a colour, so colour cannot tell
        // one image from another and a representation has to look at the outline.
        let fill = hsv(rng.below(8) as f32 / 8.0, 0.8, 0.9);
        let dark_background = rng.chance(0.5);
        let base = hsv(rng.below(6) as f32 / 6.0, 0.25, if dark_background { 0.2 } else { 0.85 });
        // A faint texture: the second colour stays close to the first, so the shape — not the
        // background — is the most salient thing two crops of an image share.
        let shade = [0; 3].map(|_| rng.range(-0.1, 0.1));
        let background = [base, [0, 1, 2].map(|i| (base[i] + shade[i]).clamp(0.0, 1.0))];
        let dir_angle = rng.range(0.0, 2.0 * PI);
        let dir = (libm::cosf(dir_angle), libm::sinf(dir_angle));
        let texture = match rng.below(4) {
            0 => Texture::Gradient { dir },
            1 => Texture::Stripes { dir, frequency: rng.range(3.0, 10.0), phase: rng.range(0.0, 2.0 * PI) },
            2 => Texture::Checker { cells: rng.range(2.0, 8.0) },
            _ => Texture::Waves {
                waves: [0; 3].map(|_| {
                    let a = rng.range(0.0, 2.0 * PI);
                    (libm::cosf(a) * rng.range(2.0, 8.0), libm::sinf(a) * rng.range(2.0, 8.0), rng.range(0.0, 2.0 * PI))
                }),
            },
        };
        Scene {
            class: self.label(index) as usize,
            center,
            radius,
            rotation: (libm::cosf(angle), libm::sinf(angle)),
            fill,
            background,
            texture,
        }
    }

    /// Renders image `index`.
    pub fn render(&self, index: u64) -> Image {
        let scene = self.scene(index);
        let n = self.resolution;
        let mut pixels = Vec::with_capacity(n * n * 3);
        for py in 0..n {
            for px in 0..n {
                let mut acc = [0.0f32; 3];
                for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                    let (x, y) = ((px as f32 + sx) / n as f32, (py as f32 + sy) / n as f32);
                    let c = scene.colour_at(x, y);
                    acc.iter_mut().zip(c).for_each(|(a, c)| *a += 0.25 * c);
                }
                pixels.extend(acc.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
            }
        }
        Image::new(n, n, pixels)
    }

    /// `count` images of one split. Train and test use disjoint streams of the same seed.
    pub fn dataset(&self, count: usize, split: Split) -> Dataset {
        let offset: u64 = match split {
            Split::Train | Split::Unlabeled => 0,
            Split::Test => 1 << 40,
        };
        let indices = (0..count as u64).map(|i| i + offset);
        Dataset {
            format: "shapes (built-in, procedural)".into(),
            images: indices.clone().map(|i| self.render(i)).collect(),
            labels: (split != Split::Unlabeled).then(|| indices.map(|i| self.label(i)).collect()),
            classes: self.class_names(),
            skipped: vec![],
            on_demand: None,
        }
    }
}

impl Scene {
    fn colour_at(&self, x: f32, y: f32) -> [f32; 3] {
        // Into the shape's frame: centred, rotated, radius 1.
        let (dx, dy) = ((x - self.center.0) / self.radius, (y - self.center.1) / self.radius);
        let (c, s) = self.rotation;
        let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
        if inside(self.class, u, v) {
            return self.fill;
        }
        let t = match &self.texture {
            Texture::Gradient { dir } => (x - 0.5) * dir.0 + (y - 0.5) * dir.1 + 0.5,
            Texture::Stripes { dir, frequency, phase } => 0.5 + 0.5 * libm::sinf(2.0 * PI * frequency * (x * dir.0 + y * dir.1) + phase),
            Texture::Checker { cells } => (((x * cells).floor() + (y * cells).floor()) as i32).rem_euclid(2) as f32,
            Texture::Waves { waves } => 0.5 + waves.iter().map(|(fx, fy, p)| libm::sinf(fx * x + fy * y + p)).sum::<f32>() / 6.0,
        }
        .clamp(0.0, 1.0);
        let [a, b] = self.background;
        [0, 1, 2].map(|i| a[i] * (1.0 - t) + b[i] * t)
    }
}

/// Inside test of a regular `n`-gon of circumradius 1 with a vertex on the +u axis.
fn in_polygon(n: usize, u: f32, v: f32) -> bool {
    let sector = 2.0 * PI / n as f32;
    let a = libm::atan2f(v, u).rem_euclid(sector);
    let r = libm::sqrtf(u * u + v * v);
    r * libm::cosf(a - sector / 2.0) <= libm::cosf(PI / n as f32)
}

/// Even–odd point-in-polygon test.
fn in_vertices(vertices: &[(f32, f32)], u: f32, v: f32) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for i in 0..vertices.len() {
        let ((xi, yi), (xj, yj)) = (vertices[i], vertices[j]);
        if (yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn inside(class: usize, u: f32, v: f32) -> bool {
    let r2 = u * u + v * v;
    match SHAPE_NAMES[class] {
        "circle" => r2 <= 1.0,
        "ring" => (0.3..=1.0).contains(&r2),
        "crescent" => r2 <= 1.0 && (u - 0.45) * (u - 0.45) + v * v > 0.75 * 0.75,
        "triangle" => in_polygon(3, u, v),
        "square" => in_polygon(4, u, v),
        "diamond" => u.abs() / 0.55 + v.abs() <= 1.0,
        "pentagon" => in_polygon(5, u, v),
        "hexagon" => in_polygon(6, u, v),
        "star" => {
            let points: Vec<(f32, f32)> = (0..10)
                .map(|k| {
                    let (r, a) = (if k % 2 == 0 { 1.0 } else { 0.42 }, k as f32 * PI / 5.0);
                    (r * libm::cosf(a), r * libm::sinf(a))
                })
                .collect();
            in_vertices(&points, u, v)
        }
        "cross" => (u.abs() <= 0.3 && v.abs() <= 0.95) || (v.abs() <= 0.3 && u.abs() <= 0.95),
        "heart" => {
            let (x, y) = (u * 1.25, -v * 1.25 + 0.25);
            let q = x * x + y * y - 1.0;
            q * q * q - x * x * y * y * y <= 0.0
        }
        _ => in_vertices(&[(-0.9, -0.25), (0.2, -0.25), (0.2, -0.6), (0.95, 0.0), (0.2, 0.6), (0.2, 0.25), (-0.9, 0.25)], u, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_any_resolution_balanced_classes() {
        let s = Shapes::new(32, 9);
        assert_eq!(s.render(5), s.render(5));
        assert_ne!(s.render(5), s.render(6));
        assert_ne!(s.render(5), Shapes::new(32, 10).render(5));
        assert_eq!(Shapes::new(77, 9).render(1).width, 77);
        let ds = s.dataset(100, Split::Train);
        assert_eq!(ds.class_histogram(), vec![10; 10]);
        assert_eq!(ds.classes[8], "star");
        let test = s.dataset(10, Split::Test);
        assert_ne!(test.images[0], ds.images[0], "test split is not the train split");
    }

    #[test]
    fn each_class_has_a_distinct_silhouette() {
        // Rasterise each shape's mask unrotated at the centre; all twelve masks differ.
        let masks: Vec<Vec<bool>> = (0..12)
            .map(|c| (0..40 * 40).map(|p| inside(c, (p % 40) as f32 / 20.0 - 1.0, (p / 40) as f32 / 20.0 - 1.0)).collect())
            .collect();
        for a in 0..12 {
            let area = masks[a].iter().filter(|&&m| m).count();
            assert!(area > 100, "{} covers {area} of 1600 samples", SHAPE_NAMES[a]);
            for b in a + 1..12 {
                let diff = masks[a].iter().zip(&masks[b]).filter(|(x, y)| x != y).count();
                assert!(diff > 40, "{} and {} differ in only {diff} samples", SHAPE_NAMES[a], SHAPE_NAMES[b]);
            }
        }
    }

    #[test]
    fn the_shape_is_visible_against_the_background() {
        // The fill colour occurs in the image: the shape is not hidden off-canvas.
        let s = Shapes::new(48, 1);
        for i in 0..20 {
            let scene = s.scene(i);
            let fill = scene.fill.map(|v| (v * 255.0).round() as u8);
            let img = s.render(i);
            let hits = img.pixels.chunks_exact(3).filter(|p| *p == fill).count();
            assert!(hits > 20, "image {i}: only {hits} fill pixels");
        }
    }
}
