//! The tutorial's losses on a batch of embeddings the page hands over: each function calls the
//! core's loss and the matrix it is built on, and returns what a widget draws, as JSON. On the
//! CPU backend: these are small and must answer at once, whatever trains in the worker.
//!
//! Matrices travel as flat row-major `Float32Array`s with their row count; widgets draw them
//! without computing anything themselves. `lesson_views` makes a reproducible batch, so that a
//! widget's numbers for a fixed seed can be checked against the native build's.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use jem_core::loss::{VicregCoeffs, covariance, cross_correlation, nt_xent, nt_xent_logits, sinkhorn, swapped_prediction, vicreg};
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
