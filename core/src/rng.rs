//! A small, seedable random number generator that gives the same numbers on every platform.
//!
//! Augmentations must produce identical views natively and in the browser for the same seed,
//! so jem does not use `rand`'s platform-dependent sources. Every augmented view gets its own
//! stream, derived from `(seed, epoch, sample index, view index)` by [`Rng::for_view`]; the
//! result is therefore also independent of thread scheduling.
//!
//! The generator is SplitMix64 (Steele, Lea & Flood, 2014): 64 bits of state, passes BigCrush,
//! and is trivially splittable by hashing the key into the state.

/// SplitMix64 generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function, also used to hash keys into seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: mix(seed ^ GOLDEN_GAMMA) }
    }

    /// An independent stream for one key, e.g. `[seed, epoch, index, view]`.
    pub fn from_key(key: &[u64]) -> Self {
        let state = key.iter().fold(0x6A09_E667_F3BC_C909_u64, |h, &k| mix(h ^ mix(k.wrapping_add(GOLDEN_GAMMA))));
        Self { state }
    }

    /// The stream that augments view `view` of sample `index` in `epoch`.
    pub fn for_view(seed: u64, epoch: u64, index: u64, view: u64) -> Self {
        Self::from_key(&[seed, epoch, index, view])
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 24 bits of precision.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`; returns `low` when the range is empty.
    pub fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in `[0, n)`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        // Lemire's multiply-shift; the bias for n ≪ 2^64 is negligible.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// `true` with probability `p`. `p <= 0` never, `p >= 1` always — but a number is drawn
    /// either way so that later draws do not depend on the probability's value.
    pub fn chance(&mut self, p: f32) -> bool {
        self.uniform() < p
    }

    /// In-place Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_key_different_stream() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::for_view(1, 0, 5, 0).next_u64(), Rng::for_view(1, 0, 5, 1).next_u64());
        assert_ne!(Rng::for_view(1, 0, 5, 0).next_u64(), Rng::for_view(1, 1, 5, 0).next_u64());
    }

    #[test]
    fn reference_values_are_stable() {
        // SplitMix64 seeded with state 0 produces this first output (reference implementation);
        // guards against accidental changes that would silently change every augmentation.
        let mut r = Rng { state: 0 };
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn uniform_and_below_stay_in_range_and_cover_it() {
        let mut r = Rng::new(3);
        let mut seen = [0usize; 5];
        for _ in 0..10_000 {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            seen[r.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 1_800 && c < 2_200), "{seen:?}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng::new(11).permutation(100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
