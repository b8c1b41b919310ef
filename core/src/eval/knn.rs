//! Weighted k-nearest-neighbour classification on frozen features — the InstDisc protocol
//! (Wu, Xiong, Yu & Lin, CVPR 2018) used by solo-learn and most SSL papers: cosine similarity,
//! the `k` most similar bank samples vote for their class with weight `exp(sim / T)`
//! (k = 200, T = 0.1 by default).

use burn::tensor::Tensor;

use crate::loss::l2_normalize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnConfig {
    pub k: usize,
    pub temperature: f32,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self { k: 200, temperature: 0.1 }
    }
}

/// Top-1 and top-5 accuracy in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub top1: f64,
    pub top5: f64,
}

/// Class scores of each query: `Σ_{j ∈ top-k} exp(sim_j / T) · onehot(label_j)`.
pub fn knn_scores(sims: &[f32], bank_labels: &[u32], classes: usize, config: KnnConfig) -> Vec<f32> {
    let bank = bank_labels.len();
    let k = config.k.min(bank);
    let mut scores = vec![0.0f32; sims.len() / bank * classes];
    let mut order: Vec<usize> = Vec::with_capacity(bank);
    for (row, out) in sims.chunks(bank).zip(scores.chunks_mut(classes)) {
        order.clear();
        order.extend(0..bank);
        if k < bank {
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
        }
        for &j in &order[..k] {
            out[bank_labels[j] as usize] += (row[j] / config.temperature).exp();
        }
    }
    scores
}

/// Accuracy of class `scores` (`[N, C]` row-major) against `labels`.
pub fn accuracy(scores: &[f32], labels: &[u32], classes: usize) -> Accuracy {
    let (mut top1, mut top5) = (0usize, 0usize);
    for (row, &label) in scores.chunks(classes).zip(labels) {
        let better = row.iter().filter(|&&s| s > row[label as usize]).count();
        top1 += (better == 0) as usize;
        top5 += (better < 5) as usize;
    }
    let n = labels.len().max(1) as f64;
    Accuracy { top1: 100.0 * top1 as f64 / n, top5: 100.0 * top5 as f64 / n }
}

/// Weighted kNN accuracy of `queries` (`[Q, D]`) against the labelled `bank` (`[B, D]`).
pub fn knn_accuracy(
    bank: Tensor<2>,
    bank_labels: &[u32],
    queries: Tensor<2>,
    query_labels: &[u32],
    classes: usize,
    config: KnnConfig,
) -> Accuracy {
    let bank = l2_normalize(bank).transpose();
    let queries = l2_normalize(queries);
    let q = queries.dims()[0];
    let mut scores = Vec::with_capacity(q * classes);
    // Chunks of queries keep the similarity matrix small.
    for start in (0..q).step_by(512) {
        let end = (start + 512).min(q);
        let sims: Vec<f32> = queries.clone().slice(start..end).matmul(bank.clone()).into_data().try_to_vec().expect("f32 similarities");
        scores.extend(knn_scores(&sims, bank_labels, classes, config));
    }
    accuracy(&scores, query_labels, classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn votes_are_weighted_by_exp_similarity_over_temperature() {
        // One query, bank of 3: sims 0.9 (class 0), 0.8 (class 1), 0.7 (class 1); k = 2, T = 0.1.
        let scores = knn_scores(&[0.9, 0.8, 0.7], &[0, 1, 1], 2, KnnConfig { k: 2, temperature: 0.1 });
        assert!((scores[0] - 9f32.exp()).abs() < 1e-2 && (scores[1] - 8f32.exp()).abs() < 1e-2);
        // With k = 3 the two class-1 votes outweigh: e^8 + e^7 > e^9? No: 2981 + 1097 < 8103.
        let scores = knn_scores(&[0.9, 0.8, 0.7], &[0, 1, 1], 2, KnnConfig { k: 3, temperature: 0.1 });
        assert!((scores[1] - (8f32.exp() + 7f32.exp())).abs() < 1e-1);
        // With a high temperature votes are nearly equal, and the majority wins.
        let scores = knn_scores(&[0.9, 0.8, 0.7], &[0, 1, 1], 2, KnnConfig { k: 3, temperature: 100.0 });
        assert!(scores[1] > scores[0]);
    }

    #[test]
    fn accuracy_counts_top1_and_top5() {
        let scores = [0.1, 0.9, 0.0, 0.5, 0.4, 0.3];
        let acc = accuracy(&scores, &[1, 1], 3);
        assert_eq!(acc.top1, 50.0);
        assert_eq!(acc.top5, 100.0);
    }

    #[test]
    fn separable_clusters_are_classified_perfectly() {
        let device = Device::flex();
        let t = |v: Vec<f32>, n| Tensor::<2>::from_data(TensorData::new(v, [n, 2]), &device);
        let bank = t(vec![1.0, 0.1, 1.0, -0.1, -0.1, 1.0, 0.1, 1.0], 4);
        let queries = t(vec![2.0, 0.0, 0.0, 3.0], 2);
        let acc = knn_accuracy(bank, &[0, 0, 1, 1], queries, &[0, 1], 2, KnnConfig { k: 2, temperature: 0.1 });
        assert_eq!(acc.top1, 100.0);
    }
}
