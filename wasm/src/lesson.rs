//! The tutorial's losses on a batch of embeddings the page hands over: each function calls the
//! core's loss and the matrix it is built on, and returns what a widget draws, as JSON. On the
//! CPU backend: these are small and must answer at once, whatever trains in the worker.
//!
//! Matrices travel as flat row-major `Float32Array`s with their row count; widgets draw them
//! without computing anything themselves. `lesson_views` makes a reproducible batch, so that a
//! widget's numbers for a fixed seed can be checked against the native build's.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use jem_core::loss::{
    VicregCoeffs, covariance, cross_correlation, dino_center, dino_teacher_entropy, nt_xent, nt_xent_logits, sinkhorn, swapped_prediction,
    vicreg,
};
use jem_core::method::momentum::{ema_update, target_copy};
use jem_core::rng::Rng;
use serde_json::json;
use wasm_bindgen::prelude::*;

/// Two views of `n` embeddings of dimension `d` from `seed`: `z1` uniform in [-1, 1], and
/// `z2 = z1 + noise · u` with `u` uniform in [-1, 1] too (0: identical views). `{"z1", "z2"}`.
#[wasm_bindgen]
pub fn lesson_views(n: usize, d: usize, seed: u32, noise: f32) -> String {
    let mut rng = Rng::new(seed as u64);
    let z1: Vec<f32> = (0..n * d).map(|_| rng.range(-1.0, 1.0)).collect();
    let z2: Vec<f32> = z1.iter().map(|v| v + noise * rng.range(-1.0, 1.0)).collect();
    json!({"z1": z1, "z2": z2}).to_string()
}

/// SimCLR's NT-Xent on `z1`, `z2` (`[n, D]` each) at `temperature` (τ = 1/β). `{"loss",
/// "similarity": [2n × 2n] cosine similarities (z1's rows first), "softmax": anchor's row of
/// probabilities over all 2n (0 for itself), "positive": the index of its other view}`.
#[wasm_bindgen]
pub fn lesson_infonce(z1: Vec<f32>, z2: Vec<f32>, n: usize, temperature: f32, anchor: usize) -> Result<String, JsError> {
    let (a, b) = (matrix(z1, n)?, matrix(z2, n)?);
    check_same_shape(&a, &b)?;
    if temperature <= 0.0 || !temperature.is_finite() {
        return Err(JsError::new("the temperature must be positive"));
    }
    if anchor >= 2 * n {
        return Err(JsError::new(&format!("anchor {anchor} is not one of the {} embeddings", 2 * n)));
    }
    let loss = scalar(nt_xent(a.clone(), b.clone(), temperature));
    // At τ = 1 the logits are the cosine similarities off the diagonal; on it, u·u = 1.
    let cosine = nt_xent_logits(a.clone(), b.clone(), 1.0);
    let eye = Tensor::<2>::eye(2 * n, &cosine.device());
    let similarity = cosine * eye.clone().neg().add_scalar(1.0) + eye;
    let row = nt_xent_logits(a, b, temperature).slice([anchor..anchor + 1, 0..2 * n]);
    let probabilities = softmax(row, 1);
    Ok(json!({"loss": loss, "similarity": values(similarity), "softmax": values(probabilities), "positive": (anchor + n) % (2 * n)})
        .to_string())
}

/// VICReg on `z1`, `z2` (`[n, D]` each) with the three weights. `{"invariance", "variance",
/// "covariance", "total", "covariance_matrix": Cov(z1), D × D, "dims": D}`.
#[wasm_bindgen]
pub fn lesson_vicreg(z1: Vec<f32>, z2: Vec<f32>, n: usize, sim: f32, std: f32, cov: f32) -> Result<String, JsError> {
    let (a, b) = (matrix(z1, n)?, matrix(z2, n)?);
    check_same_shape(&a, &b)?;
    if n < 2 {
        return Err(JsError::new("VICReg's variance needs at least 2 embeddings"));
    }
    let dims = a.dims()[1];
    let terms = vicreg(a.clone(), b, VicregCoeffs { sim, std, cov });
    Ok(json!({
        "invariance": scalar(terms.invariance),
        "variance": scalar(terms.variance),
        "covariance": scalar(terms.covariance),
        "total": scalar(terms.total),
        "covariance_matrix": values(covariance(a)),
        "dims": dims,
    })
    .to_string())
}

/// Barlow Twins' cross-correlation of `z1`, `z2` (`[n, D]` each) and its loss with weight
/// `lambda`. `{"loss", "cross_correlation": D × D, "dims": D}`.
#[wasm_bindgen]
pub fn lesson_barlow_twins(z1: Vec<f32>, z2: Vec<f32>, n: usize, lambda: f32) -> Result<String, JsError> {
    let (a, b) = (matrix(z1, n)?, matrix(z2, n)?);
    check_same_shape(&a, &b)?;
    let dims = a.dims()[1];
    let loss = scalar(jem_core::loss::barlow_twins(a.clone(), b.clone(), lambda));
    Ok(json!({"loss": loss, "cross_correlation": values(cross_correlation(a, b)), "dims": dims}).to_string())
}

/// SwAV's Sinkhorn–Knopp on `scores` (`[b, K]`: samples × prototypes) after `iterations`
/// rounds at `epsilon`. `{"codes": b × K (each row sums to 1), "sample_mass": each row's sum,
/// "prototype_mass": each column's sum (b/K when equipartitioned), "prototypes": K}`.
#[wasm_bindgen]
pub fn lesson_sinkhorn(scores: Vec<f32>, b: usize, epsilon: f32, iterations: usize) -> Result<String, JsError> {
    let scores = matrix(scores, b)?;
    check_epsilon(epsilon)?;
    let k = scores.dims()[1];
    let codes = sinkhorn(scores, epsilon, iterations);
    let sample_mass = values(codes.clone().sum_dim(1));
    let prototype_mass = values(codes.clone().sum_dim(0));
    Ok(json!({"codes": values(codes), "sample_mass": sample_mass, "prototype_mass": prototype_mass, "prototypes": k}).to_string())
}

/// SwAV's swapped prediction for two views' `scores` (`[b, K]` each): each view's codes
/// (Sinkhorn at `epsilon`, `iterations`) are the targets of the other view's softmax at
/// `temperature`. `{"codes1", "codes2", "loss"}`.
#[wasm_bindgen]
pub fn lesson_swav(
    scores1: Vec<f32>,
    scores2: Vec<f32>,
    b: usize,
    epsilon: f32,
    iterations: usize,
    temperature: f32,
) -> Result<String, JsError> {
    let (s1, s2) = (matrix(scores1, b)?, matrix(scores2, b)?);
    check_same_shape(&s1, &s2)?;
    check_epsilon(epsilon)?;
    let codes = [sinkhorn(s1.clone(), epsilon, iterations), sinkhorn(s2.clone(), epsilon, iterations)];
    let loss = scalar(swapped_prediction(&codes, &[s1, s2], temperature));
    let [c1, c2] = codes;
    Ok(json!({"codes1": values(c1), "codes2": values(c2), "loss": loss}).to_string())
}

/// A momentum (EMA) teacher following a student: the student's `dims` weights move as SGD would,
/// a steady drift plus seeded noise of size `noise` per step; the teacher starts as its copy and
/// is updated by the core's `ema_update` with momentum `m` after every step. `{"distance":
/// ‖teacher − student‖ after each step, "student": [[w₁, w₂]] path of the first two weights,
/// "teacher": the same for the teacher}`.
#[wasm_bindgen]
pub fn lesson_ema(steps: usize, momentum: f64, dims: usize, seed: u32, noise: f32) -> Result<String, JsError> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(JsError::new("the momentum must be between 0 and 1"));
    }
    if dims < 2 {
        return Err(JsError::new("at least 2 weights"));
    }
    // Gradients must be on for `ema_update` to see the weights as trained.
    let device = device().autodiff();
    let mut rng = Rng::new(seed as u64);
    let mut draw = |scale: f32| -> Vec<f32> { (0..dims).map(|_| scale * rng.range(-1.0, 1.0)).collect() };
    let weights = |w: &[f32]| Weights { w: Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [dims]), &device)) };
    let drift = draw(0.02);
    let mut student = draw(1.0);
    let mut teacher = target_copy(&weights(&student));
    let (mut distance, mut student_path, mut teacher_path) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps {
        let noise = draw(noise);
        student.iter_mut().zip(drift.iter().zip(&noise)).for_each(|(w, (d, n))| *w += d + n);
        teacher = ema_update(teacher, &weights(&student), momentum);
        let t = values(teacher.w.val().inner());
        distance.push(student.iter().zip(&t).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt());
        student_path.push([student[0], student[1]]);
        teacher_path.push([t[0], t[1]]);
    }
    Ok(json!({"distance": distance, "student": student_path, "teacher": teacher_path}).to_string())
}

/// The weights of [`lesson_ema`]'s student and teacher.
#[derive(Module, Debug)]
struct Weights {
    w: Param<Tensor<1>>,
}

/// DINO's teacher on a fixed batch of `b` outputs over `k` prototypes (seeded, prototype 0
/// favoured by `bias`), for `steps` steps: targets `softmax((t − c)/τ_t)` with the centre `c`
/// updated by the core's `dino_center` at `center_momentum` (1: no centring). `{"entropy": mean
/// entropy of the targets after each step (0: one-hot, ln K: uniform), "marginal_entropy":
/// entropy of their batch mean (ln K: every prototype used alike), "marginal": the batch mean
/// at the end, per prototype}`.
#[wasm_bindgen]
pub fn lesson_dino_centering(
    b: usize,
    k: usize,
    seed: u32,
    bias: f32,
    teacher_temperature: f32,
    center_momentum: f32,
    steps: usize,
) -> Result<String, JsError> {
    if teacher_temperature <= 0.0 || !teacher_temperature.is_finite() {
        return Err(JsError::new("the teacher temperature must be positive"));
    }
    if !(0.0..=1.0).contains(&center_momentum) {
        return Err(JsError::new("the centring momentum must be between 0 and 1"));
    }
    let mut rng = Rng::new(seed as u64);
    let logits: Vec<f32> = (0..b * k).map(|i| rng.range(-1.0, 1.0) + if i % k == 0 { bias } else { 0.0 }).collect();
    let teacher = [matrix(logits, b)?];
    let mut center = Tensor::<1>::zeros([k], &device());
    let (mut entropy, mut marginal_entropy, mut marginal) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps.max(1) {
        entropy.push(scalar(dino_teacher_entropy(&teacher, center.clone(), teacher_temperature)));
        let targets = softmax((teacher[0].clone() - center.clone().reshape([1, k])).div_scalar(teacher_temperature), 1);
        marginal = values(targets.mean_dim(0));
        marginal_entropy.push(-marginal.iter().filter(|p| **p > 0.0).map(|p| p * p.ln()).sum::<f32>());
        center = dino_center(center, &teacher, center_momentum);
    }
    Ok(json!({"entropy": entropy, "marginal_entropy": marginal_entropy, "marginal": marginal}).to_string())
}

fn device() -> Device {
    Device::flex()
}

/// A flat row-major `[rows, len / rows]` matrix.
fn matrix(flat: Vec<f32>, rows: usize) -> Result<Tensor<2>, JsError> {
    if rows == 0 || flat.is_empty() || !flat.len().is_multiple_of(rows) {
        return Err(JsError::new(&format!("{} values do not make {rows} rows", flat.len())));
    }
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(JsError::new("the values must be finite"));
    }
    let cols = flat.len() / rows;
    Ok(Tensor::from_data(TensorData::new(flat, [rows, cols]), &device()))
}

fn check_same_shape(a: &Tensor<2>, b: &Tensor<2>) -> Result<(), JsError> {
    if a.dims() != b.dims() {
        return Err(JsError::new(&format!("the two views' shapes differ: {:?} and {:?}", a.dims(), b.dims())));
    }
    Ok(())
}

fn check_epsilon(epsilon: f32) -> Result<(), JsError> {
    if epsilon <= 0.0 || !epsilon.is_finite() {
        return Err(JsError::new("ε must be positive"));
    }
    Ok(())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 tensors")
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar()
}
