//! Fine-tuning: the pretrained backbone, unfrozen, with a new linear classifier, trained on the
//! labelled train split (random resized crops and flips) with AdamW on a warm-up + cosine
//! schedule, then top-1/top-5 on the test split. Frozen-feature protocols (kNN, linear probe)
//! undersell encoders whose features need a non-linear read-out — MAE's above all — and this is
//! the protocol their papers report.

use burn::module::Module;
use burn::tensor::Device;

use super::knn::{Accuracy, accuracy};
use crate::augment::{MultiViewAugment, ViewTransform};
use crate::data::batch::{EpochPlan, augment_batch};
use crate::data::{DataError, Dataset};
use crate::method::{MethodSettings, Model, Supervised, SupervisedConfig};
use crate::model::Backbone;
use crate::train::{OptimizerConfig, Schedule, Trainer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak AdamW learning rate (reached after one epoch of warm-up).
    pub lr: f64,
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self { epochs: 10, batch_size: 256, lr: 1e-3, weight_decay: 0.05, seed: 0 }
    }
}

/// What fine-tuning gave: the test accuracy and the mean training loss of each epoch.
#[derive(Debug, Clone)]
pub struct Finetuned {
    pub accuracy: Accuracy,
    pub epoch_losses: Vec<f32>,
}

/// Fine-tunes `backbone` (on an autodiff `device`) with `train_views` (one view) on `train`,
/// and evaluates on `test` with `eval` (no augmentation). Both splits need labels.
pub fn finetune(
    backbone: Backbone,
    train: &Dataset,
    test: &Dataset,
    train_views: &MultiViewAugment,
    eval: &ViewTransform,
    config: FinetuneConfig,
    device: &Device,
) -> Result<Finetuned, DataError> {
    let classes = train.classes.len();
    let (Some(_), Some(test_labels)) = (&train.labels, &test.labels) else {
        return Err(DataError::new(&train.format, "fine-tuning needs labels in the train and test splits"));
    };
    let head = SupervisedConfig { classes }.init(backbone, device).map_err(|e| DataError::new(&train.format, e.to_string()))?;
    let model = Model::Supervised(head);
    let steps_per_epoch = train.len() / config.batch_size;
    let total_steps = (config.epochs * steps_per_epoch).max(1);
    let peak = config.lr * config.batch_size as f64 / 256.0;
    let schedule = Schedule { peak, min: 0.0, warmup_steps: steps_per_epoch.min(total_steps / 2), total_steps, steps_per_epoch };
    let optimizer = OptimizerConfig::AdamW { weight_decay: config.weight_decay, beta1: 0.9, beta2: 0.999 };
    let mut trainer = Trainer::new(model, &optimizer, schedule);
    let mut epoch_losses = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs as u64 {
        let mut sum = 0.0;
        let plan = EpochPlan::new(train.len(), config.batch_size, true, true, config.seed, epoch);
        for indices in &plan.batches {
            sum += trainer.step(&augment_batch(train_views, train, indices, config.seed, epoch)?.to_tensors(device)).loss;
        }
        epoch_losses.push(sum / plan.batches.len().max(1) as f32);
    }
    let Model::Supervised(Supervised { backbone, classifier }) = trainer.into_model().valid() else { unreachable!("built above") };
    let inner = device.clone().inner();
    let eval_views = MultiViewAugment::symmetric(eval.clone(), 1);
    let indices: Vec<usize> = (0..test.len()).collect();
    let mut scores = Vec::with_capacity(test.len() * classes);
    for chunk in indices.chunks(256) {
        let images = augment_batch(&eval_views, test, chunk, 0, 0)?.to_tensors(&inner).views.remove(0);
        scores.extend(classifier.forward(backbone.forward(images)).into_data().try_to_vec::<f32>().expect("f32 logits"));
    }
    Ok(Finetuned { accuracy: accuracy(&scores, test_labels, classes), epoch_losses })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::Normalize;
    use crate::data::Split;
    use crate::data::shapes::Shapes;
    use crate::model::BackboneConfig;

    #[test]
    fn fine_tuning_trains_the_backbone_and_beats_chance() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let shapes = Shapes::new(16, 2);
        let (train, test) = (shapes.dataset(1024, Split::Train), shapes.dataset(300, Split::Test));
        let backbone = BackboneConfig { arch: "convnet".into(), width: 8, ..Default::default() }.init(&device).unwrap();
        let views = MultiViewAugment::symmetric(ViewTransform::crop_only(16, (0.5, 1.0), Normalize::CIFAR10), 1);
        // Other tests draw from the same global generator in parallel, so the initial weights vary
        // from run to run: over 11 seeds this setting gave 28.7–36.0 % (6 epochs at lr 4e-3 gave
        // 17.7–27.3 %, too close to the bar).
        let config = FinetuneConfig { epochs: 8, batch_size: 32, lr: 2e-2, ..Default::default() };
        let result = finetune(backbone, &train, &test, &views, &ViewTransform::eval(16, Normalize::CIFAR10), config, &device).unwrap();
        eprintln!("fine-tuned: losses {:?}, top-1 {:.1} %", result.epoch_losses, result.accuracy.top1);
        assert!(result.epoch_losses[7] < result.epoch_losses[0], "{:?}", result.epoch_losses);
        assert!(result.accuracy.top1 > 20.0, "10 classes: chance is 10 %, got {:.1} %", result.accuracy.top1);
    }
}
