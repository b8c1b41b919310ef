//! Token masks for masked-image methods (MAE, Data2Vec, iBOT-style students).
//!
//! An image of side `size` cut into `patch × patch` patches has a `grid × grid` token grid,
//! `grid = size / patch`. A mask marks the tokens a student must not see (`true` = masked).
//! - **Random** (MAE): exactly `round(ratio · N)` tokens, chosen uniformly without replacement.
//! - **Block** (BEiT, Data2Vec): rectangles of random area (≥ `min_block` tokens) and aspect
//!   ratio in `[0.3, 1/0.3]` are added until about `ratio · N` tokens are covered; a block is only
//!   kept if it does not push the count past the target, so the ratio is never exceeded.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskKind {
    Random,
    Block,
}

/// How to mask a view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Masking {
    pub kind: MaskKind,
    pub patch_size: usize,
    /// Fraction of tokens to mask, in `[0, 1]`.
    pub ratio: f32,
    /// Smallest block in tokens (block masking only).
    pub min_block: usize,
}

impl Masking {
    pub fn random(patch_size: usize, ratio: f32) -> Self {
        Self { kind: MaskKind::Random, patch_size, ratio, min_block: 4 }
    }

    pub fn block(patch_size: usize, ratio: f32) -> Self {
        Self { kind: MaskKind::Block, patch_size, ratio, min_block: 4 }
    }

    /// Token grid side for a view of side `size`.
    pub fn grid(&self, size: usize) -> usize {
        size / self.patch_size
    }

    /// Draws a mask for a view of side `size` into `out` (`grid²` entries, row-major).
    pub fn sample(&self, size: usize, rng: &mut Rng, out: &mut [bool]) {
        let grid = self.grid(size);
        assert_eq!(out.len(), grid * grid);
        out.iter_mut().for_each(|m| *m = false);
        let target = (self.ratio.clamp(0.0, 1.0) * out.len() as f32).round() as usize;
        match self.kind {
            MaskKind::Random => {
                // Partial Fisher–Yates: the first `target` entries of a random permutation.
                let mut order: Vec<usize> = (0..out.len()).collect();
                for i in 0..target {
                    let j = i + rng.below(order.len() - i);
                    order.swap(i, j);
                    out[order[i]] = true;
                }
            }
            MaskKind::Block => block_mask(grid, target, self.min_block.max(1), rng, out),
        }
    }
}

fn block_mask(grid: usize, target: usize, min_block: usize, rng: &mut Rng, out: &mut [bool]) {
    let (log_lo, log_hi) = (libm::logf(0.3), libm::logf(1.0 / 0.3));
    let mut masked = 0;
    let mut failures = 0;
    while masked < target && failures < 100 {
        let remaining = target - masked;
        let mut added = 0;
        for _ in 0..10 {
            let area = rng.range(min_block.min(remaining) as f32, remaining as f32 + 1.0);
            let aspect = libm::expf(rng.range(log_lo, log_hi));
            let h = libm::roundf(libm::sqrtf(area * aspect)) as usize;
            let w = libm::roundf(libm::sqrtf(area / aspect)) as usize;
            if h == 0 || w == 0 || h > grid || w > grid {
                continue;
            }
            let top = rng.below(grid - h + 1);
            let left = rng.below(grid - w + 1);
            let fresh = (top..top + h).flat_map(|y| (left..left + w).map(move |x| y * grid + x)).filter(|&t| !out[t]).count();
            if fresh > 0 && fresh <= remaining {
                for y in top..top + h {
                    out[y * grid + left..y * grid + left + w].iter_mut().for_each(|m| *m = true);
                }
                added = fresh;
                break;
            }
        }
        if added == 0 {
            failures += 1;
        }
        masked += added;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_mask_has_exactly_the_ratio() {
        let m = Masking::random(4, 0.75);
        let mut out = vec![false; 64];
        for seed in 0..20 {
            m.sample(32, &mut Rng::new(seed), &mut out);
            assert_eq!(out.iter().filter(|&&b| b).count(), 48);
        }
    }

    #[test]
    fn block_mask_stays_at_or_below_the_ratio_and_near_it() {
        let m = Masking::block(16, 0.6);
        let mut out = vec![false; 14 * 14];
        for seed in 0..20 {
            m.sample(224, &mut Rng::new(seed), &mut out);
            let n = out.iter().filter(|&&b| b).count();
            let target = (0.6f32 * 196.0).round() as usize;
            assert!(n <= target && n + 20 >= target, "masked {n} of target {target}");
        }
    }

    #[test]
    fn block_mask_is_made_of_rectangles_not_scattered_tokens() {
        // In a block mask, most masked tokens have a masked 4-neighbour.
        let m = Masking::block(4, 0.5);
        let mut out = vec![false; 64];
        m.sample(32, &mut Rng::new(3), &mut out);
        let masked: Vec<usize> = (0..64).filter(|&t| out[t]).collect();
        let with_neighbour = masked
            .iter()
            .filter(|&&t| {
                let (y, x) = (t / 8, t % 8);
                (x > 0 && out[t - 1]) || (x < 7 && out[t + 1]) || (y > 0 && out[t - 8]) || (y < 7 && out[t + 8])
            })
            .count();
        assert!(with_neighbour * 10 >= masked.len() * 9, "{with_neighbour}/{}", masked.len());
    }
}
