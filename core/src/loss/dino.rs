//! DINO's self-distillation loss, teacher centring and teacher-temperature schedule.
//!
//! Caron, Touvron, Misra, Jégou, Mairal, Bojanowski & Joulin, "Emerging Properties in
//! Self-Supervised Vision Transformers", ICCV 2021.
//!
//! The teacher's outputs on the global views, centred and sharpened, are targets
//! `P_t = softmax((t − c) / τ_t)` (no gradient). The student predicts them from every other view:
//!
//! `L = (1/|pairs|) Σ_{i global} Σ_{v≠i} −(1/B) Σ_b Σ_k P_t,i[b,k] · log softmax(s_v[b] / τ_s)_k`.
//!
//! Centring (`c ← m·c + (1 − m)·mean_b t`, m = 0.9) stops one dimension from dominating;
//! sharpening (τ_t < τ_s) stops the output from going uniform. Together they avoid collapse.
//!
//! Shapes: `student`: one `[B, K]` per view, global views first; `teacher`: one `[B, K]` per
//! global view; `center`: `[K]` → `[1]`.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::cross_view_cross_entropy;

pub fn dino_loss(
    student: &[Tensor<2>],
    teacher: &[Tensor<2>],
    center: Tensor<1>,
    student_temperature: f32,
    teacher_temperature: f32,
) -> Tensor<1> {
    let targets: Vec<Tensor<2>> = teacher_logits(teacher, center, teacher_temperature).map(|z| softmax(z, 1)).collect();
    cross_view_cross_entropy(&targets, student, student_temperature)
}

/// Mean entropy of the teacher's targets `P_t`, `[1]`: the paper's collapse diagnostic (its
/// Fig. 7). Near `ln K` the targets are uniform (centring won); near 0 one dimension dominates
/// (sharpening won). The loss minus this entropy is the KL divergence the student reduces.
pub fn dino_teacher_entropy(teacher: &[Tensor<2>], center: Tensor<1>, teacher_temperature: f32) -> Tensor<1> {
    let per_view =
        teacher_logits(teacher, center, teacher_temperature).map(|z| (softmax(z.clone(), 1) * log_softmax(z, 1)).sum_dim(1).mean().neg());
    let views = teacher.len();
    per_view.reduce(|a, b| a + b).expect("at least one global view").div_scalar(views as f32)
}

/// `(t − c) / τ_t` for each global view, without gradient.
fn teacher_logits(teacher: &[Tensor<2>], center: Tensor<1>, teacher_temperature: f32) -> impl Iterator<Item = Tensor<2>> + '_ {
    let k = center.dims()[0];
    let center = center.reshape([1, k]);
    teacher.iter().map(move |t| (t.clone().detach() - center.clone()).div_scalar(teacher_temperature))
}

/// The centre after one step: `m·c + (1 − m)·(mean of the teacher outputs over the batch and
/// the global views)`.
pub fn dino_center(center: Tensor<1>, teacher: &[Tensor<2>], momentum: f32) -> Tensor<1> {
    let k = center.dims()[0];
    let batch_mean = Tensor::cat(teacher.to_vec(), 0).detach().mean_dim(0).reshape([k]);
    (center.mul_scalar(momentum) + batch_mean.mul_scalar(1.0 - momentum)).detach()
}

/// Teacher temperature: linear from `start` to `end` over `warmup_epochs`, then `end`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DinoTemperature {
    pub start: f32,
    pub end: f32,
    pub warmup_epochs: f32,
}

impl DinoTemperature {
    pub fn at(&self, epoch: f64) -> f32 {
        if (epoch as f32) >= self.warmup_epochs {
            return self.end;
        }
        self.start + (self.end - self.start) * epoch as f32 / self.warmup_epochs
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::super::testing::*;
    use super::*;

    fn vector(v: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &device())
    }

    #[test]
    fn centre_update_follows_the_formula() {
        // Teacher outputs of two global views, B = 2: batch means over all four rows = [2, 1].
        let teacher = [matrix(&[&[1.0, 0.0], &[3.0, 2.0]]), matrix(&[&[2.0, 1.0], &[2.0, 1.0]])];
        let c = values(dino_center(vector(&[10.0, -10.0]), &teacher, 0.9));
        assert!((c[0] - (9.0 + 0.2)).abs() < 1e-5 && (c[1] - (-9.0 + 0.1)).abs() < 1e-5, "{c:?}");
    }

    #[test]
    fn temperature_warms_up_linearly_then_stays() {
        let t = DinoTemperature { start: 0.04, end: 0.07, warmup_epochs: 30.0 };
        assert!((t.at(0.0) - 0.04).abs() < 1e-7);
        assert!((t.at(15.0) - 0.055).abs() < 1e-7);
        assert!((t.at(30.0) - 0.07).abs() < 1e-7 && (t.at(100.0) - 0.07).abs() < 1e-7);
    }

    #[test]
    fn loss_by_hand_with_centring_and_sharpening() {
        // One global view (teacher t = [ln 3 + 1, 1], centre [1, 1], τ_t = 1 → P = [¾, ¼]) and
        // one other view (student s = [0, 0] → uniform). L = −(¾ ln ½ + ¼ ln ½) = ln 2.
        let teacher = [matrix(&[&[3f32.ln() + 1.0, 1.0]])];
        let student = [matrix(&[&[5.0, 1.0]]), matrix(&[&[0.0, 0.0]])];
        let l = scalar(dino_loss(&student, &teacher, vector(&[1.0, 1.0]), 0.1, 1.0));
        assert!((l - 2f64.ln()).abs() < 1e-6, "{l}");
        // The same targets' entropy: −(¾ ln ¾ + ¼ ln ¼).
        let h = scalar(dino_teacher_entropy(&teacher, vector(&[1.0, 1.0]), 1.0));
        assert!((h - -(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln())).abs() < 1e-6, "{h}");
        // The teacher gets no gradient; the student does.
        let t = matrix(&[&[0.3, 0.1]]).require_grad();
        let s = [matrix(&[&[0.0, 0.0]]), matrix(&[&[0.2, 0.5]]).require_grad()];
        let grads = dino_loss(&s, std::slice::from_ref(&t), vector(&[0.0, 0.0]), 0.1, 0.04).backward();
        assert!(t.grad(&grads).is_none() && s[1].grad(&grads).is_some());
    }
}
