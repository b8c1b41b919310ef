//! Short training runs on the built-in shapes dataset: the whole pipeline, end to end.

use burn::module::Module;
use burn::tensor::Device;
use jem_core::augment::{MultiViewAugment, Normalize, Preset, Resolution, ViewTransform};
use jem_core::data::batch::{EpochPlan, augment_batch};
use jem_core::data::shapes::Shapes;
use jem_core::data::{Dataset, Split};
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::method::{MethodConfig, Model, SimSiamConfig};
use jem_core::model::{BackboneConfig, MlpConfig, Stem};
use jem_core::train::{OptimizerConfig, Schedule, StepStats, Trainer};

fn knn_top1(model: &Model, train: &Dataset, test: &Dataset) -> f64 {
    let device = Device::flex();
    let backbone = model.backbone().valid();
    let eval = ViewTransform::eval(32, Normalize::CIFAR10);
    let bank = extract_features(&backbone, train, &eval, 256, &device);
    let queries = extract_features(&backbone, test, &eval, 256, &device);
    let config = KnnConfig { k: 20, temperature: 0.1 };
    knn_accuracy(bank, train.labels.as_ref().unwrap(), queries, test.labels.as_ref().unwrap(), train.classes.len(), config).top1
}

fn train(method: MethodConfig, optimizer: OptimizerConfig, lr: f64, epochs: u64, train: &Dataset) -> (Trainer, Vec<StepStats>) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let backbone = BackboneConfig { arch: "convnet".into(), width: 16, stem: Stem::Cifar };
    let model = method.init(&backbone, &device).unwrap();
    let augment = shapes_augment();
    let batch = 128;
    let steps = epochs as usize * (train.len() / batch);
    let mut trainer = Trainer::new(model, &optimizer, Schedule { peak: lr, min: 0.0, warmup_steps: 0, total_steps: steps });
    let mut log = Vec::new();
    for epoch in 0..epochs {
        for indices in EpochPlan::new(train.len(), batch, true, true, 0, epoch).batches {
            let views = augment_batch(&augment, train, &indices, 0, epoch).to_tensors(&device).views;
            log.push(trainer.step(&views));
        }
    }
    (trainer, log)
}

/// SimCLR's CIFAR pipeline with colour destroyed far more often: every shapes image has one
/// of a few colours, and with SimCLR's usual jitter the encoder tells images apart by colour
/// instead of outline (kNN then stays at random-init level).
fn shapes_augment() -> MultiViewAugment {
    let mut augment = Preset::SimClr.build(Resolution::Cifar);
    for view in &mut augment.views {
        view.crop_scale = (0.2, 1.0);
        view.jitter[3] = 0.5;
        view.grayscale_p = 0.8;
    }
    augment
}

fn mean_loss(log: &[StepStats]) -> f32 {
    log.iter().map(|s| s.loss).sum::<f32>() / log.len() as f32
}

#[test]
fn simclr_learns_shapes_better_than_random_init() {
    let shapes = Shapes::new(32, 0);
    let (train_set, test_set) = (shapes.dataset(1024, Split::Train), shapes.dataset(500, Split::Test));
    let method = MethodConfig::SimClr(jem_core::method::SimClrConfig { temperature: 0.2, projector: MlpConfig::new(&[256, 64]) });
    let optimizer = OptimizerConfig::AdamW { weight_decay: 1e-4, beta1: 0.9, beta2: 0.999 };
    let device = Device::flex().autodiff();
    device.seed(0);
    let random = method.init(&BackboneConfig { arch: "convnet".into(), width: 16, stem: Stem::Cifar }, &device).unwrap();
    let before = knn_top1(&random, &train_set, &test_set);
    let (trainer, log) = train(method, optimizer, 3e-3, 30, &train_set);
    let after = knn_top1(trainer.model(), &train_set, &test_set);
    let (first, last) = (mean_loss(&log[..8]), mean_loss(&log[log.len() - 8..]));
    eprintln!("SimCLR on shapes: loss {first:.3} → {last:.3}, kNN top-1 {before:.1}% → {after:.1}%, std {:.3}", log.last().unwrap().embedding_std);
    assert!(last < first - 0.3, "loss did not decrease: {first} → {last}");
    assert!(log.last().unwrap().embedding_std > 0.3 / 8.0, "embedding collapsed");
    assert!(after > before + 5.0, "kNN {before} → {after}");
}

#[test]
fn simsiam_collapses_without_stop_gradient_but_not_with_it() {
    let shapes = Shapes::new(32, 1);
    let train_set = shapes.dataset(512, Split::Train);
    let config = |stop_gradient| {
        MethodConfig::SimSiam(SimSiamConfig {
            // Without the paper's final BatchNorm, whose per-dimension standardisation hides a
            // collapse from this monitor.
            projector: MlpConfig::new(&[128, 128]),
            predictor: MlpConfig::new(&[32, 128]),
            stop_gradient,
            use_predictor: true,
        })
    };
    let optimizer = OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 5e-4 };
    let (_, with) = train(config(true), optimizer.clone(), 0.3, 8, &train_set);
    let (_, without) = train(config(false), optimizer, 0.3, 8, &train_set);
    let (std_with, std_without) = (with.last().unwrap().embedding_std, without.last().unwrap().embedding_std);
    eprintln!("SimSiam std with stop-gradient {std_with:.4}, without {std_without:.4} (start {:.4})", without[0].embedding_std);
    assert!(std_without < 0.2 * without[0].embedding_std, "no collapse without stop-gradient: {std_without}");
    assert!(std_with > 3.0 * std_without, "stop-gradient did not prevent collapse: {std_with} vs {std_without}");
}
