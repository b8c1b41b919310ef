//! The tutorial's loss widgets, natively: each `lesson_*` function against the paper's formula
//! in f64 loops, on the fixed inputs the browser tests use. The values are written to
//! `test-output/reference/lessons.json`, where `tests/browser/learn.test.mjs` checks that the
//! pages show the same numbers (computed by the wasm build).

use jem_core::rng::Rng;
use jem_wasm::{
    lesson_barlow_twins, lesson_dino_centering, lesson_ema, lesson_infonce, lesson_sinkhorn, lesson_swav, lesson_vicreg, lesson_views,
};
use serde_json::{Value, json};

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

fn views(n: usize, d: usize, seed: u32, noise: f32) -> (Vec<f32>, Vec<f32>) {
    let v: Value = serde_json::from_str(&lesson_views(n, d, seed, noise)).unwrap();
    (floats(&v["z1"]), floats(&v["z2"]))
}

fn rows(flat: &[f32], d: usize) -> Vec<Vec<f64>> {
    flat.chunks(d).map(|r| r.iter().map(|&x| x as f64).collect()).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}: {a} vs reference {b}");
}

// The fixed inputs of the pages' tests (see learn.test.mjs).
const INFONCE: (usize, usize, u32, f32, f32, usize) = (8, 16, 7, 0.3, 0.2, 3); // n, d, seed, noise, τ, anchor
const VICREG: (usize, usize, u32, f32) = (16, 8, 5, 0.5);
const SINKHORN: (usize, usize, u32, f32, usize) = (12, 4, 11, 0.05, 3); // b, K, seed, ε, iterations

fn infonce() -> Value {
    let (n, d, seed, noise, t, anchor) = INFONCE;
    let (z1, z2) = views(n, d, seed, noise);
    let out: Value = serde_json::from_str(&lesson_infonce(z1.clone(), z2.clone(), n, t, anchor).unwrap_or_else(|_| panic!())).unwrap();
    // The formula: u = z/‖z‖, s_ij = u_i·u_j/τ, ℓ_i = −log(exp(s_ip) / Σ_{k≠i} exp(s_ik)).
    let all: Vec<Vec<f64>> = rows(&z1, d)
        .into_iter()
        .chain(rows(&z2, d))
        .map(|r| {
            let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            r.iter().map(|x| x / norm).collect()
        })
        .collect();
    let cos = |i: usize, j: usize| all[i].iter().zip(&all[j]).map(|(a, b)| a * b).sum::<f64>();
    let row = |i: usize| -> Vec<f64> {
        let denom: f64 = (0..2 * n).filter(|&k| k != i).map(|k| (cos(i, k) / t as f64).exp()).sum();
        (0..2 * n).map(|k| if k == i { 0.0 } else { (cos(i, k) / t as f64).exp() / denom }).collect()
    };
    let loss = (0..2 * n).map(|i| -row(i)[(i + n) % (2 * n)].ln()).sum::<f64>() / (2 * n) as f64;
    close(out["loss"].as_f64().unwrap(), loss, 1e-5, "NT-Xent loss");
    let softmax = floats(&out["softmax"]);
    for (k, want) in row(anchor).iter().enumerate() {
        close(softmax[k] as f64, *want, 1e-5, &format!("softmax[{k}]"));
    }
    let similarity = floats(&out["similarity"]);
    for i in 0..2 * n {
        for j in 0..2 * n {
            close(similarity[i * 2 * n + j] as f64, cos(i, j), 1e-5, &format!("similarity[{i}][{j}]"));
        }
    }
    assert_eq!(out["positive"], json!((anchor + n) % (2 * n)));
    // A lower temperature sharpens the anchor's distribution: its largest probability grows.
    let sharper: Value = serde_json::from_str(&lesson_infonce(z1, z2, n, t / 4.0, anchor).unwrap_or_else(|_| panic!())).unwrap();
    let peak = |v: &Value| floats(&v["softmax"]).into_iter().fold(0.0f32, f32::max);
    assert!(peak(&sharper) > peak(&out));
    json!({"n": n, "d": d, "seed": seed, "noise": noise, "temperature": t, "anchor": anchor, "loss": out["loss"], "softmax": out["softmax"]})
}

fn vicreg() -> Value {
    let (n, d, seed, noise) = VICREG;
    let (z1, z2) = views(n, d, seed, noise);
    let out: Value = serde_json::from_str(&lesson_vicreg(z1.clone(), z2.clone(), n, 25.0, 25.0, 1.0).unwrap_or_else(|_| panic!())).unwrap();
    let (a, b) = (rows(&z1, d), rows(&z2, d));
    let invariance = a.iter().zip(&b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).powi(2))).sum::<f64>() / (n * d) as f64;
    let cov = |z: &[Vec<f64>]| -> Vec<Vec<f64>> {
        let mean: Vec<f64> = (0..d).map(|j| z.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
        (0..d)
            .map(|i| (0..d).map(|j| z.iter().map(|r| (r[i] - mean[i]) * (r[j] - mean[j])).sum::<f64>() / (n - 1) as f64).collect())
            .collect()
    };
    let variance_of = |z: &[Vec<f64>]| (0..d).map(|j| (1.0 - (cov(z)[j][j] + 1e-4).sqrt()).max(0.0)).sum::<f64>() / d as f64;
    let covariance_of = |z: &[Vec<f64>]| {
        let c = cov(z);
        (0..d).flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| c[i][j].powi(2)).sum::<f64>() / d as f64
    };
    let variance = (variance_of(&a) + variance_of(&b)) / 2.0;
    let covariance = covariance_of(&a) + covariance_of(&b);
    close(out["invariance"].as_f64().unwrap(), invariance, 1e-5, "invariance");
    close(out["variance"].as_f64().unwrap(), variance, 1e-5, "variance");
    close(out["covariance"].as_f64().unwrap(), covariance, 1e-5, "covariance");
    close(out["total"].as_f64().unwrap(), 25.0 * invariance + 25.0 * variance + covariance, 1e-5, "total");
    let matrix = floats(&out["covariance_matrix"]);
    let c = cov(&a);
    for i in 0..d {
        for j in 0..d {
            close(matrix[i * d + j] as f64, c[i][j], 1e-5, &format!("Cov[{i}][{j}]"));
        }
    }
    json!({"n": n, "d": d, "seed": seed, "noise": noise, "invariance": out["invariance"], "variance": out["variance"], "covariance": out["covariance"], "total": out["total"]})
}

fn barlow_twins() -> Value {
    let (n, d, seed, noise) = VICREG;
    let (z1, z2) = views(n, d, seed, noise);
    let out: Value = serde_json::from_str(&lesson_barlow_twins(z1.clone(), z2.clone(), n, 5e-3).unwrap_or_else(|_| panic!())).unwrap();
    let standardise = |z: &[Vec<f64>]| -> Vec<Vec<f64>> {
        let mean: Vec<f64> = (0..d).map(|j| z.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
        let var: Vec<f64> = (0..d).map(|j| z.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n as f64).collect();
        z.iter().map(|r| (0..d).map(|j| (r[j] - mean[j]) / (var[j] + 1e-5).sqrt()).collect()).collect()
    };
    let (a, b) = (standardise(&rows(&z1, d)), standardise(&rows(&z2, d)));
    let c = |i: usize, j: usize| (0..n).map(|k| a[k][i] * b[k][j]).sum::<f64>() / n as f64;
    let loss: f64 = (0..d).map(|i| (1.0 - c(i, i)).powi(2)).sum::<f64>()
        + 5e-3 * (0..d).flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| c(i, j).powi(2)).sum::<f64>();
    close(out["loss"].as_f64().unwrap(), loss, 1e-4, "Barlow Twins loss");
    let matrix = floats(&out["cross_correlation"]);
    for i in 0..d {
        for j in 0..d {
            close(matrix[i * d + j] as f64, c(i, j), 1e-4, &format!("C[{i}][{j}]"));
        }
    }
    json!({"n": n, "d": d, "seed": seed, "noise": noise, "lambda": 5e-3, "loss": out["loss"], "diagonal": (0..d).map(|i| matrix[i * d + i]).collect::<Vec<_>>()})
}

/// Sinkhorn–Knopp in f64: Q = exp(S/ε)ᵀ / Σ, then rows (prototypes) to 1/K and columns
/// (samples) to 1/B in turn; codes = (B·Q)ᵀ.
fn sinkhorn_reference(scores: &[Vec<f64>], epsilon: f64, iterations: usize) -> Vec<Vec<f64>> {
    let (b, k) = (scores.len(), scores[0].len());
    let max = scores.iter().flatten().cloned().fold(f64::MIN, f64::max);
    let mut q: Vec<Vec<f64>> = (0..k).map(|p| (0..b).map(|s| ((scores[s][p] - max) / epsilon).exp()).collect()).collect();
    let total: f64 = q.iter().flatten().sum();
    q.iter_mut().flatten().for_each(|x| *x /= total);
    for _ in 0..iterations {
        for row in q.iter_mut() {
            let sum: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= sum * k as f64);
        }
        for s in 0..b {
            let sum: f64 = (0..k).map(|p| q[p][s]).sum();
            (0..k).for_each(|p| q[p][s] /= sum * b as f64);
        }
    }
    (0..b).map(|s| (0..k).map(|p| q[p][s] * b as f64).collect()).collect()
}

fn sinkhorn() -> Value {
    let (b, k, seed, epsilon, iterations) = SINKHORN;
    let (scores, other) = views(b, k, seed, 0.5);
    let out: Value = serde_json::from_str(&lesson_sinkhorn(scores.clone(), b, epsilon, iterations).unwrap_or_else(|_| panic!())).unwrap();
    let want = sinkhorn_reference(&rows(&scores, k), epsilon as f64, iterations);
    let codes = floats(&out["codes"]);
    for s in 0..b {
        for p in 0..k {
            close(codes[s * k + p] as f64, want[s][p], 1e-4, &format!("codes[{s}][{p}]"));
        }
    }
    // Every sample's codes sum to 1; with iterations, every prototype's mass nears B/K.
    for m in floats(&out["sample_mass"]) {
        close(m as f64, 1.0, 1e-5, "a sample's mass");
    }
    let spread = |v: &Value| {
        let mass = floats(&v["prototype_mass"]);
        mass.iter().map(|m| (*m as f64 - b as f64 / k as f64).abs()).fold(0.0, f64::max)
    };
    let none: Value = serde_json::from_str(&lesson_sinkhorn(scores.clone(), b, epsilon, 0).unwrap_or_else(|_| panic!())).unwrap();
    assert!(spread(&out) < spread(&none), "iterations equalise the prototypes' mass: {} vs {}", spread(&out), spread(&none));
    // Swapped prediction is the cross-entropy of each view's softmax with the other's codes.
    let swav: Value =
        serde_json::from_str(&lesson_swav(scores.clone(), other.clone(), b, epsilon, iterations, 0.1).unwrap_or_else(|_| panic!()))
            .unwrap();
    let q2 = sinkhorn_reference(&rows(&other, k), epsilon as f64, iterations);
    let cross_entropy = |codes: &[Vec<f64>], s: &[Vec<f64>]| {
        s.iter()
            .zip(codes)
            .map(|(row, q)| {
                let log_z = row.iter().map(|x| (x / 0.1).exp()).sum::<f64>().ln();
                -q.iter().zip(row).map(|(qi, x)| qi * (x / 0.1 - log_z)).sum::<f64>()
            })
            .sum::<f64>()
            / b as f64
    };
    let loss = (cross_entropy(&want, &rows(&other, k)) + cross_entropy(&q2, &rows(&scores, k))) / 2.0;
    close(swav["loss"].as_f64().unwrap(), loss, 1e-4, "swapped prediction");
    json!({"b": b, "k": k, "seed": seed, "epsilon": epsilon, "iterations": iterations, "prototype_mass": out["prototype_mass"], "swav_loss": swav["loss"]})
}

const EMA: (usize, f64, usize, u32, f32) = (100, 0.9, 16, 3, 0.05); // steps, m, weights, seed, noise
const DINO: (usize, usize, u32, f32, f32, f32, usize) = (32, 8, 2, 1.0, 0.04, 0.9, 30); // b, K, seed, bias, τ_t, m, steps

fn ema() -> Value {
    let (steps, m, dims, seed, noise) = EMA;
    let run = |m: f64| -> Value { serde_json::from_str(&lesson_ema(steps, m, dims, seed, noise).unwrap_or_else(|_| panic!())).unwrap() };
    // The student's path as the function draws it; the teacher ξ_k = m·ξ_{k−1} + (1 − m)·θ_k.
    let mut rng = Rng::new(seed as u64);
    let mut draw = |scale: f64| -> Vec<f64> { (0..dims).map(|_| scale * rng.range(-1.0, 1.0) as f64).collect() };
    let drift = draw(0.02);
    let mut student = draw(1.0);
    let mut teacher = student.clone();
    let mut distances = Vec::new();
    for _ in 0..steps {
        let noise = draw(noise as f64);
        student.iter_mut().zip(drift.iter().zip(&noise)).for_each(|(w, (d, n))| *w += d + n);
        teacher.iter_mut().zip(&student).for_each(|(t, s)| *t = m * *t + (1.0 - m) * s);
        distances.push(teacher.iter().zip(&student).map(|(t, s)| (t - s).powi(2)).sum::<f64>().sqrt());
    }
    let out = run(m);
    for (k, (got, want)) in floats(&out["distance"]).iter().zip(&distances).enumerate() {
        close(*got as f64, *want, 1e-4, &format!("distance after step {k}"));
    }
    // m = 0 copies the student; m = 1 never moves.
    assert!(floats(&run(0.0)["distance"]).iter().all(|d| *d < 1e-6));
    let frozen = run(1.0);
    assert_eq!(frozen["teacher"][0], frozen["teacher"][steps - 1]);
    json!({"steps": steps, "momentum": m, "dims": dims, "seed": seed, "noise": noise, "distance": out["distance"]})
}

fn dino() -> Value {
    let (b, k, seed, bias, t, m, steps) = DINO;
    let run = |m: f32| -> Value {
        serde_json::from_str(&lesson_dino_centering(b, k, seed, bias, t, m, steps).unwrap_or_else(|_| panic!())).unwrap()
    };
    let mut rng = Rng::new(seed as u64);
    let logits: Vec<Vec<f64>> =
        (0..b).map(|_| (0..k).map(|j| rng.range(-1.0, 1.0) as f64 + if j == 0 { bias as f64 } else { 0.0 }).collect()).collect();
    let mut center = vec![0.0f64; k];
    let mut entropies = Vec::new();
    for _ in 0..steps {
        let mut total = 0.0;
        for row in &logits {
            let z: Vec<f64> = row.iter().zip(&center).map(|(x, c)| (x - c) / t as f64).collect();
            let max = z.iter().cloned().fold(f64::MIN, f64::max);
            let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            total -= z.iter().map(|v| (v - log_sum).exp() * (v - log_sum)).sum::<f64>();
        }
        entropies.push(total / b as f64);
        for (j, c) in center.iter_mut().enumerate() {
            *c = m as f64 * *c + (1.0 - m as f64) * logits.iter().map(|r| r[j]).sum::<f64>() / b as f64;
        }
    }
    let out = run(m);
    for (step, (got, want)) in floats(&out["entropy"]).iter().zip(&entropies).enumerate() {
        close(*got as f64, *want, 1e-4, &format!("entropy at step {step}"));
    }
    // Without centring the favoured prototype takes most of the mass; with it, the mass spreads.
    let share = |v: &Value| floats(&v["marginal"])[0];
    assert!(share(&run(1.0)) > 0.5 && share(&out) < share(&run(1.0)), "{} vs {}", share(&out), share(&run(1.0)));
    json!({"b": b, "k": k, "seed": seed, "bias": bias, "teacher_temperature": t, "center_momentum": m, "steps": steps, "entropy": out["entropy"], "marginal_entropy": out["marginal_entropy"]})
}

#[test]
fn lesson_widgets_match_the_formulas_and_are_written_for_the_browser_tests() {
    let reference = json!({"infonce": infonce(), "vicreg": vicreg(), "barlow_twins": barlow_twins(), "sinkhorn": sinkhorn(), "ema": ema(), "dino": dino()});
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-output/reference");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lessons.json"), serde_json::to_string_pretty(&reference).unwrap()).unwrap();
}
