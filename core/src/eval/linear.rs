//! Linear probe: a linear classifier trained on frozen, precomputed features (no augmentation),
//! with AdamW and a cosine schedule, evaluated by top-1/top-5 accuracy. Features are
//! standardised with the training set's statistics first, which makes one learning rate work
//! across encoders.

use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::knn::{Accuracy, accuracy};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearProbeConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self { epochs: 100, batch_size: 256, lr: 1e-3, weight_decay: 1e-4, seed: 0 }
    }
}

/// Trains a linear classifier on `train` features and reports its accuracy on `test`.
/// `device` must support autodiff.
pub fn linear_probe(
    train: Tensor<2>,
    train_labels: &[u32],
    test: Tensor<2>,
    test_labels: &[u32],
    classes: usize,
    config: LinearProbeConfig,
    device: &Device,
) -> Accuracy {
    let (var, mean) = train.clone().detach().var_mean_bias(0);
    let std = var.add_scalar(1e-6).sqrt();
    let standardise = |x: Tensor<2>| ((x.detach() - mean.clone()) / std.clone()).to_device(device);
    let (train, test) = (standardise(train), standardise(test));
    let [n, d] = train.dims();
    let mut model = initial_classifier(d, classes, config.seed, device);
    let mut optim = AdamWConfig::new().with_weight_decay(config.weight_decay).init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(train_labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n]), device);
    let steps_per_epoch = n.div_ceil(config.batch_size);
    let total = (config.epochs * steps_per_epoch).max(1);
    let mut rng = Rng::new(config.seed);
    let mut step = 0;
    for _ in 0..config.epochs {
        let order = rng.permutation(n);
        for chunk in order.chunks(config.batch_size) {
            let idx =
                Tensor::<1, Int>::from_data(TensorData::new(chunk.iter().map(|&i| i as i64).collect::<Vec<_>>(), [chunk.len()]), device);
            let logits = model.forward(train.clone().select(0, idx.clone()));
            let loss = loss_fn.forward(logits, labels.clone().select(0, idx));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = config.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos());
            model = optim.step(lr, model, grads);
            step += 1;
        }
    }
    let scores: Vec<f32> = model.forward(test.detach()).into_data().try_to_vec().expect("f32 logits");
    accuracy(&scores, test_labels, classes)
}

/// The classifier before training, drawn on the host from `seed` as burn draws a `Linear`
/// (uniform in ±1/√d), so that a probe reaches the same accuracy on every device.
fn initial_classifier(d: usize, classes: usize, seed: u64, device: &Device) -> Linear {
    let mut rng = Rng::from_key(&[seed, 1]);
    let bound = 1.0 / (d as f32).sqrt();
    let mut draw = |n: usize| (0..n).map(|_| rng.range(-bound, bound)).collect::<Vec<f32>>();
    let mut linear = LinearConfig::new(d, classes).init(device);
    linear.weight = Param::from_data(TensorData::new(draw(d * classes), [d, classes]), device);
    linear.bias = Some(Param::from_data(TensorData::new(draw(classes), [classes]), device));
    linear
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_linearly_separable_problem() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(1);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..200 {
            let class = i % 2;
            let centre = if class == 0 { 1.0 } else { -1.0 };
            x.extend([centre + rng.range(-0.5, 0.5), rng.range(-2.0, 2.0)]);
            y.push(class as u32);
        }
        let t = Tensor::<2>::from_data(TensorData::new(x, [200, 2]), &device);
        let config = LinearProbeConfig { epochs: 40, batch_size: 32, lr: 1e-2, ..Default::default() };
        let acc = linear_probe(t.clone(), &y, t, &y, 2, config, &device);
        assert!(acc.top1 > 97.0, "{acc:?}");
    }
}
