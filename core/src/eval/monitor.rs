//! Collapse monitors.
//!
//! - **Embedding std** (Chen & He 2021): the per-dimension standard deviation of the
//!   L2-normalised embeddings over a batch, averaged over dimensions. For embeddings spread over
//!   the sphere it is about `1/√D`; a collapsed encoder (all outputs equal) gives 0.
//! - **Effective rank** (Roy & Vetterli 2007; used for SSL by Garrido et al. 2023):
//!   `exp(H(p))` with `p_i = σ_i / Σσ` the normalised singular values of the centred embedding
//!   matrix. 1 for a rank-one (dimensionally collapsed) embedding, up to `min(N, D)`.

use burn::tensor::Tensor;

use crate::loss::l2_normalize;

/// Mean per-dimension std of the L2-normalised rows of `z` (`[N, D]` → `[1]`).
pub fn normalized_std(z: Tensor<2>) -> Tensor<1> {
    normalized_dimension_std(z).mean()
}

/// The std of each dimension of the L2-normalised rows of `z`, `[N, D]` → `[D]`: the vector
/// whose mean is [`normalized_std`]. Dimensions a collapse has killed are 0.
pub fn normalized_dimension_std(z: Tensor<2>) -> Tensor<1> {
    let d = z.dims()[1];
    l2_normalize(z).var_bias(0).sqrt().reshape([d])
}

/// Per-dimension std of the L2-normalised rows of `z` (`n × d`, row-major), computed on the
/// host: the vector whose mean is [`normalized_std`], for a bar chart of which dimensions live.
pub fn per_dimension_std(z: &[f32], n: usize, d: usize) -> Vec<f32> {
    assert_eq!(z.len(), n * d);
    let (mut sum, mut sum_sq) = (vec![0.0f64; d], vec![0.0f64; d]);
    for row in z.chunks(d) {
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
        for (i, v) in row.iter().enumerate() {
            let x = *v as f64 / norm;
            sum[i] += x;
            sum_sq[i] += x * x;
        }
    }
    let n = n.max(1) as f64;
    sum.iter().zip(&sum_sq).map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0)).sqrt() as f32).collect()
}

/// Effective rank of the rows of `z` (`n × d`, row-major), computed on the host.
pub fn effective_rank(z: &[f32], n: usize, d: usize) -> f64 {
    assert_eq!(z.len(), n * d);
    // Singular values of the centred Z are the square roots of the eigenvalues of the Gram
    // matrix G = Z̄ Z̄ᵀ (n × n), which is small for a batch.
    let mut mean = vec![0.0f64; d];
    for row in z.chunks(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64 / n as f64);
    }
    let centred: Vec<f64> = z.chunks(d).flat_map(|row| row.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect::<Vec<_>>()).collect();
    let mut gram = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = centred[i * d..(i + 1) * d].iter().zip(&centred[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum();
            gram[i * n + j] = dot;
            gram[j * n + i] = dot;
        }
    }
    let singular: Vec<f64> = symmetric_eigenvalues(gram, n).into_iter().map(|e| e.max(0.0).sqrt()).collect();
    let total: f64 = singular.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = singular.iter().map(|s| s / total).filter(|&p| p > 0.0).map(|p| -p * p.ln()).sum();
    entropy.exp()
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations.
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..50 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * n + j].powi(2)).sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>().max(1e-300);
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn std_is_zero_for_collapse_and_about_one_over_sqrt_d_when_spread() {
        let device = Device::flex();
        let same = Tensor::<2>::from_data(TensorData::new([1.0f32, 2.0, 3.0].repeat(8), [8, 3]), &device);
        assert!(normalized_std(same).into_scalar::<f32>().abs() < 1e-6);
        // ± unit vectors along each axis: each dimension has values ±1 twice and 0 otherwise.
        let mut v = Vec::new();
        for axis in 0..4 {
            for sign in [1.0f32, -1.0] {
                let mut row = vec![0.0; 4];
                row[axis] = sign;
                v.extend(row);
            }
        }
        let spread = Tensor::<2>::from_data(TensorData::new(v, [8, 4]), &device);
        // per dimension: values {1, −1, 0×6}: mean 0, biased var 2/8 → std 0.5 = 1/√4.
        assert!((normalized_std(spread).into_scalar::<f32>() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn per_dimension_std_matches_the_tensor_monitor() {
        // Rows ±e_0, ±2e_1: normalised they are ±e_0, ±e_1; dimension 0 has values {1, −1, 0, 0}
        // (std √(2/4)), dimension 1 the same, dimension 2 is always 0.
        let z = [1.0f32, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, -2.0, 0.0];
        let stds = per_dimension_std(&z, 4, 3);
        let half = 0.5f32.sqrt();
        assert!((stds[0] - half).abs() < 1e-6 && (stds[1] - half).abs() < 1e-6 && stds[2] == 0.0, "{stds:?}");
        let tensor = Tensor::<2>::from_data(TensorData::new(z.to_vec(), [4, 3]), &Device::flex());
        let mean = stds.iter().sum::<f32>() / 3.0;
        assert!((normalized_std(tensor).into_scalar::<f32>() - mean).abs() < 1e-6);
    }

    #[test]
    fn effective_rank_of_known_spectra() {
        // Rank one: every row a multiple of the same vector → 1.
        let rank1: Vec<f32> = (0..6).flat_map(|i| [i as f32, 2.0 * i as f32, -(i as f32)]).collect();
        assert!((effective_rank(&rank1, 6, 3) - 1.0).abs() < 1e-6);
        // Equal singular values in k dimensions → k: rows ±e_i (centred already).
        let mut v = Vec::new();
        for axis in 0..3 {
            for sign in [1.0f32, -1.0] {
                let mut row = vec![0.0; 5];
                row[axis] = sign;
                v.extend(row);
            }
        }
        assert!((effective_rank(&v, 6, 5) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn jacobi_eigenvalues_of_a_small_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
        let mut e = symmetric_eigenvalues(vec![2.0, 1.0, 1.0, 2.0], 2);
        e.sort_by(f64::total_cmp);
        assert!((e[0] - 1.0).abs() < 1e-12 && (e[1] - 3.0).abs() < 1e-12);
    }
}
