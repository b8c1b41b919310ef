//! Learning-rate schedule: linear warm-up, then cosine decay; `lr = base_lr × batch / 256`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Peak learning rate after scaling by `batch / 256`.
    pub peak: f64,
    /// Final learning rate.
    pub min: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// Length of an epoch, for methods whose schedules count in epochs (0 = unknown).
    #[serde(default)]
    pub steps_per_epoch: usize,
}

impl Schedule {
    /// The linear scaling rule of Goyal et al. (2017): `base × batch / 256`.
    pub fn scaled(base_lr: f64, batch_size: usize) -> f64 {
        base_lr * batch_size as f64 / 256.0
    }

    /// Learning rate for step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        self.min + (self.peak - self.min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = Schedule { peak: 1.0, min: 0.0, warmup_steps: 4, total_steps: 14, steps_per_epoch: 7 };
        assert_eq!(s.lr(0), 0.25);
        assert_eq!(s.lr(3), 1.0);
        assert!((s.lr(4) - 1.0).abs() < 1e-12);
        assert!((s.lr(9) - 0.5).abs() < 1e-12, "half-way through the decay");
        assert!(s.lr(14).abs() < 1e-12);
        assert_eq!(Schedule::scaled(0.3, 512), 0.6);
    }

    #[test]
    fn no_warmup_starts_at_the_peak() {
        let s = Schedule { peak: 0.06, min: 0.0, warmup_steps: 0, total_steps: 10, steps_per_epoch: 5 };
        assert!((s.lr(0) - 0.06).abs() < 1e-12);
    }
}
