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
    let bank = extract_features(&backbone, train, &eval, 256, &device).unwrap();
    let queries = extract_features(&backbone, test, &eval, 256, &device).unwrap();
    let config = KnnConfig { k: 20, temperature: 0.1 };
    knn_accuracy(bank, train.labels.as_ref().unwrap(), queries, test.labels.as_ref().unwrap(), train.classes.len(), config).top1
}

fn train(method: MethodConfig, optimizer: OptimizerConfig, lr: f64, epochs: u64, train: &Dataset) -> (Trainer, Vec<StepStats>) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let backbone = BackboneConfig { arch: "convnet".into(), width: 16, stem: Stem::Cifar, ..Default::default() };
    let model = method.init(&backbone, &device).unwrap();
    let augment = shapes_augment();
    let batch = 128;
    let steps = epochs as usize * (train.len() / batch);
    let mut trainer = Trainer::new(
        model,
        &optimizer,
        Schedule { peak: lr, min: 0.0, warmup_steps: 0, total_steps: steps, steps_per_epoch: train.len() / batch },
    );
    let mut log = Vec::new();
    for epoch in 0..epochs {
        for indices in EpochPlan::new(train.len(), batch, true, true, 0, epoch).batches {
            let views = augment_batch(&augment, train, &indices, 0, epoch).unwrap().to_tensors(&device);
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
    let random =
        method.init(&BackboneConfig { arch: "convnet".into(), width: 16, stem: Stem::Cifar, ..Default::default() }, &device).unwrap();
    let before = knn_top1(&random, &train_set, &test_set);
    let (trainer, log) = train(method, optimizer, 3e-3, 30, &train_set);
    let after = knn_top1(trainer.model(), &train_set, &test_set);
    let (first, last) = (mean_loss(&log[..8]), mean_loss(&log[log.len() - 8..]));
    eprintln!(
        "SimCLR on shapes: loss {first:.3} → {last:.3}, kNN top-1 {before:.1}% → {after:.1}%, std {:.3}",
        log.last().unwrap().embedding_std
    );
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
    // The per-dimension stds are the 128 projector outputs', and average to the monitor.
    for stats in [&with[0], without.last().unwrap()] {
        assert_eq!(stats.embedding_dimension_std.len(), 128);
        let mean = stats.embedding_dimension_std.iter().sum::<f32>() / 128.0;
        assert!((mean - stats.embedding_std).abs() < 1e-6, "{mean} vs {}", stats.embedding_std);
    }
    // The collapse takes every dimension down, not only the mean: the widest one left is
    // narrower than an average one at the start.
    let max_without = without.last().unwrap().embedding_dimension_std.iter().cloned().fold(0.0f32, f32::max);
    assert!(max_without < with[0].embedding_std, "a dimension survived the collapse: {max_without} vs {}", with[0].embedding_std);
}

/// The browser demo's SimSiam recipe (`recipes/browser/simsiam.toml`) with the demo's collapse
/// switch: `steps` steps on shapes, as the page runs them.
fn browser_simsiam(stop_gradient: bool, steps: usize) -> (Trainer, Vec<StepStats>) {
    let mut recipe = jem_core::recipe::Recipe::from_toml(include_str!("../../recipes/browser/simsiam.toml")).unwrap();
    if let MethodConfig::SimSiam(c) = &mut recipe.method {
        c.stop_gradient = stop_gradient;
    }
    let device = Device::flex().autodiff();
    device.seed(recipe.train.seed);
    let shapes = Shapes::new(32, recipe.train.seed);
    let train_set = shapes.dataset(recipe.data.shapes_count, Split::Train);
    let augment = recipe.data.augment.build(32, 32).unwrap();
    let model = recipe.method.init(&recipe.backbone, &device).unwrap();
    let batch = recipe.train.batch_size;
    let mut trainer = Trainer::new(model, &recipe.optimizer, recipe.train.schedule(train_set.len() / batch));
    let mut log = Vec::new();
    for epoch in 0.. {
        for indices in EpochPlan::new(train_set.len(), batch, true, true, recipe.train.seed, epoch).batches {
            if log.len() == steps {
                return (trainer, log);
            }
            let views = augment_batch(&augment, &train_set, &indices, recipe.train.seed, epoch).unwrap().to_tensors(&device);
            log.push(trainer.step(&views));
        }
    }
    unreachable!()
}

#[test]
fn browser_simsiam_learns_in_30_steps_and_collapses_without_stop_gradient() {
    // What the browser tests check on WebGPU and on the CPU, natively: the loss falls within the
    // first 30 steps, and without stop-gradient the embedding std falls below 5 % of its start.
    let (_, with) = browser_simsiam(true, 30);
    let (first, last) = (mean_loss(&with[..5]), mean_loss(&with[25..]));
    let (_, without) = browser_simsiam(false, 150);
    let stds: Vec<f32> = without.iter().map(|s| s.embedding_std).collect();
    let collapsed_at = stds.iter().position(|s| *s < 0.05 * stds[0]);
    eprintln!(
        "browser SimSiam: loss {first:.3} → {last:.3}; without stop-gradient std {:.4} → {:.4}, below 5 % at step {collapsed_at:?}",
        stds[0],
        stds.last().unwrap()
    );
    assert!(last < first, "loss did not decrease: {first} → {last}");
    assert!(collapsed_at.is_some(), "no collapse within 150 steps: {stds:?}");
}
