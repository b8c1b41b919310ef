//! Principal component analysis for a 2-D picture of embeddings (the browser's scatter plot).

/// Coordinates of the `n` rows of `z` (`n × d`, row-major) on its first two principal axes:
/// the rows are centred, the covariance's two leading eigenvectors are found by power
/// iteration with deflation, and each row is projected on them. Each axis' sign is fixed so
/// that its largest component is positive, so the picture does not flip between calls.
pub fn pca_2d(z: &[f32], n: usize, d: usize) -> Vec<[f32; 2]> {
    assert_eq!(z.len(), n * d, "z must be n × d");
    if n == 0 || d == 0 {
        return vec![[0.0; 2]; n];
    }
    let mut mean = vec![0.0f64; d];
    for row in z.chunks(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64 / n as f64);
    }
    let centred: Vec<f64> = z.chunks(d).flat_map(|row| row.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect::<Vec<_>>()).collect();
    let mut cov = vec![0.0f64; d * d];
    for row in centred.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += row[i] * row[j] / n as f64;
            }
        }
    }
    let first = leading_eigenvector(&cov, d);
    let lambda = rayleigh(&cov, &first, d);
    // Deflate: C − λ v vᵀ has the second axis as its leading eigenvector.
    for i in 0..d {
        for j in 0..d {
            cov[i * d + j] -= lambda * first[i] * first[j];
        }
    }
    let second = leading_eigenvector(&cov, d);
    centred
        .chunks(d)
        .map(|row| {
            let dot = |axis: &[f64]| row.iter().zip(axis).map(|(a, b)| a * b).sum::<f64>() as f32;
            [dot(&first), dot(&second)]
        })
        .collect()
}

fn leading_eigenvector(cov: &[f64], d: usize) -> Vec<f64> {
    // A fixed start with every component non-zero, so no eigenvector is orthogonal to it by design.
    let mut v: Vec<f64> = (0..d).map(|i| 1.0 + (i as f64 * 0.618).fract()).collect();
    normalize(&mut v);
    for _ in 0..500 {
        let mut next: Vec<f64> = (0..d).map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum()).collect();
        if normalize(&mut next) == 0.0 {
            return vec![0.0; d];
        }
        let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        if change < 1e-12 {
            break;
        }
    }
    let largest = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    v
}

fn rayleigh(cov: &[f64], v: &[f64], d: usize) -> f64 {
    (0..d).map(|i| v[i] * (0..d).map(|j| cov[i * d + j] * v[j]).sum::<f64>()).sum()
}

fn normalize(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_axes_of_an_anisotropic_cloud() {
        // Points (3a, b, 0) in 3-D with a, b ∈ {−1, 1}: the first axis is x (variance 9),
        // the second y (variance 1); the projections are exactly (3a, b) after centring.
        let mut z = Vec::new();
        for a in [-1.0f32, 1.0] {
            for b in [-1.0f32, 1.0] {
                z.extend([3.0 * a + 5.0, b - 2.0, 7.0]);
            }
        }
        let p = pca_2d(&z, 4, 3);
        let expected = [[-3.0, -1.0], [-3.0, 1.0], [3.0, -1.0], [3.0, 1.0]];
        for (got, want) in p.iter().zip(expected) {
            assert!((got[0] - want[0]).abs() < 1e-4 && (got[1] - want[1]).abs() < 1e-4, "{p:?}");
        }
    }

    #[test]
    fn a_constant_cloud_maps_to_the_origin() {
        let p = pca_2d(&[1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 3, 2);
        assert!(p.iter().all(|xy| xy == &[0.0, 0.0]), "{p:?}");
    }
}
