//! The methods with target networks, queues and prototypes: what the papers require of their
//! parts (no gradient into targets, unit prototypes), and a short run of each shapes recipe
//! (`recipes/shapes/*.toml`) that must learn without collapsing.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};
use jem_core::data::Split;
use jem_core::data::batch::{EpochPlan, augment_batch};
use jem_core::data::shapes::Shapes;
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::method::{MethodConfig, Model, Progress};
use jem_core::model::{BackboneConfig, Stem};
use jem_core::recipe::Recipe;
use jem_core::train::{Schedule, Trainer};

/// The tests of this file one at a time: the device's random generator is shared, and
/// concurrent tests would draw from it in an order that changes from run to run, and so would
/// their seeded results. (Each training run uses every core anyway.)
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tiny_backbone() -> BackboneConfig {
    BackboneConfig { arch: "convnet".into(), width: 4, stem: Stem::Cifar }
}

fn random_views(n: usize, device: &Device) -> Vec<Tensor<4>> {
    (0..2).map(|_| Tensor::random([n, 3, 16, 16], Distribution::Normal(0.0, 1.0), device)).collect()
}

/// How many of a module's trainable parameters received a gradient, and how many did not.
fn gradient_counts<M: Module>(module: &M, grads: &burn::tensor::Gradients) -> (usize, usize) {
    struct Count<'a>(&'a burn::tensor::Gradients, usize, usize);
    impl ModuleVisitor for Count<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            match param.val().grad(self.0) {
                Some(_) => self.1 += 1,
                None => self.2 += 1,
            }
        }
    }
    let mut count = Count(grads, 0, 0);
    module.visit(&mut count);
    (count.1, count.2)
}

const AT_START: Progress = Progress { step: 0, total_steps: 10, steps_per_epoch: 2 };

#[test]
fn targets_get_no_gradient_and_online_networks_do() {
    let _serial = one_at_a_time();
    let device = Device::flex().autodiff();
    for name in ["byol", "moco_v2", "moco_v3", "dino"] {
        let mut config = MethodConfig::default_for(name).unwrap();
        if let MethodConfig::MocoV2(c) = &mut config {
            c.queue_size = 64;
        }
        if let MethodConfig::Dino(c) = &mut config {
            c.head.output = 128;
        }
        let model = config.init(&tiny_backbone(), &device).unwrap();
        let out = model.step(&random_views(8, &device), &AT_START);
        let grads = out.loss.backward();
        let (online, target) = match &model {
            Model::Byol(m) => (gradient_counts(&m.backbone, &grads), gradient_counts(&m.target_backbone, &grads).0 + gradient_counts(&m.target_projector, &grads).0),
            Model::MocoV2(m) => (gradient_counts(&m.backbone, &grads), gradient_counts(&m.key_backbone, &grads).0 + gradient_counts(&m.key_projector, &grads).0),
            Model::MocoV3(m) => (gradient_counts(&m.backbone, &grads), gradient_counts(&m.key_backbone, &grads).0 + gradient_counts(&m.key_projector, &grads).0),
            Model::Dino(m) => (gradient_counts(&m.backbone, &grads), gradient_counts(&m.teacher_backbone, &grads).0 + gradient_counts(&m.teacher_head, &grads).0),
            _ => unreachable!(),
        };
        assert!(online.0 > 0, "{name}: the online backbone got no gradient");
        assert_eq!(target, 0, "{name}: the target network got a gradient");
    }
}

#[test]
fn swav_prototypes_are_frozen_for_the_first_epoch_and_stay_unit_norm() {
    let _serial = one_at_a_time();
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut config = jem_core::method::SwavConfig { prototypes: 12, ..Default::default() };
    config.projector = jem_core::model::MlpConfig::new(&[16, 8]);
    let model = MethodConfig::Swav(config).init(&tiny_backbone(), &device).unwrap();
    let prototypes = |m: &Model| match m {
        Model::Swav(s) => s.prototypes.val().into_data().try_to_vec::<f32>().unwrap(),
        _ => unreachable!(),
    };
    let initial = prototypes(&model);
    let optimizer = jem_core::train::OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 0.0 };
    // Two steps per epoch: steps 0 and 1 are the first epoch.
    let mut trainer = Trainer::new(model, &optimizer, Schedule { peak: 0.5, min: 0.5, warmup_steps: 0, total_steps: 6, steps_per_epoch: 2 });
    let views = random_views(16, &device);
    for _ in 0..2 {
        trainer.step(&views);
    }
    let after_first_epoch = prototypes(trainer.model());
    assert!(initial.iter().zip(&after_first_epoch).all(|(a, b)| (a - b).abs() < 1e-6), "prototypes moved in the first epoch");
    for _ in 0..2 {
        trainer.step(&views);
    }
    let later = prototypes(trainer.model());
    assert!(later.iter().zip(&initial).any(|(a, b)| (a - b).abs() > 1e-4), "prototypes never trained");
    for row in later.chunks(8) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "prototype norm {norm}");
    }
}

#[test]
fn queue_sizes_must_hold_whole_batches() {
    let _serial = one_at_a_time();
    let text = include_str!("../../recipes/shapes/moco_v2.toml").replace("queue_size = 1024", "queue_size = 1000");
    let err = Recipe::from_toml(&text).unwrap_err();
    assert!(err.contains("queue_size = 1000") && err.contains("multiple of train.batch_size = 128") && err.contains("1024"), "{err}");
}

fn knn_top1(model: &Model, train: &jem_core::data::Dataset, test: &jem_core::data::Dataset, side: usize) -> f64 {
    let backbone = model.backbone().valid();
    let eval = jem_core::augment::ViewTransform::eval(side, jem_core::augment::Normalize::CIFAR10);
    let device = Device::flex();
    let bank = extract_features(&backbone, train, &eval, 256, &device).unwrap();
    let queries = extract_features(&backbone, test, &eval, 256, &device).unwrap();
    let config = KnnConfig { k: 20, temperature: 0.1 };
    knn_accuracy(bank, train.labels.as_ref().unwrap(), queries, test.labels.as_ref().unwrap(), train.classes.len(), config).top1
}

/// Trains a shapes recipe for `epochs` epochs on 4,096 images of `side` pixels (views and local
/// crops scaled along); returns kNN top-1 before and after (1,000 test images), and the
/// embedding std of the first and the last step.
fn short_run(recipe: &str, side: usize, epochs: usize) -> (f64, f64, f32, f32) {
    let mut recipe = Recipe::from_toml(recipe).unwrap();
    recipe.data.augment.size = Some(side);
    let device = Device::flex().autodiff();
    device.seed(recipe.train.seed);
    let shapes = Shapes::new(side, recipe.train.seed);
    let (train_set, test_set) = (shapes.dataset(4096, Split::Train), shapes.dataset(1000, Split::Test));
    let augment = recipe.data.augment.build(side, side).unwrap();
    let model = recipe.method.init(&recipe.backbone, &device).unwrap();
    let before = knn_top1(&model, &train_set, &test_set, side);
    let batch = recipe.train.batch_size;
    let train = jem_core::recipe::TrainConfig { epochs, ..recipe.train.clone() };
    let mut trainer = Trainer::new(model, &recipe.optimizer, train.schedule(train_set.len() / batch));
    let mut stds = Vec::new();
    for epoch in 0..epochs as u64 {
        for indices in EpochPlan::new(train_set.len(), batch, true, true, recipe.train.seed, epoch).batches {
            let views = augment_batch(&augment, &train_set, &indices, recipe.train.seed, epoch).unwrap().to_tensors(&device).views;
            let stats = trainer.step(&views);
            assert!(stats.loss.is_finite(), "loss {} at step {}", stats.loss, stats.step);
            stds.push(stats.embedding_std);
        }
    }
    let after = knn_top1(trainer.model(), &train_set, &test_set, side);
    (before, after, stds[0], *stds.last().unwrap())
}

/// 16-pixel images keep a test near half a minute; the methods that learn more slowly (the
/// momentum-target and prototype ones) get the recipe's 32 pixels.
fn learns_without_collapse(name: &str, recipe: &str, side: usize, epochs: usize, min_gain: f64) {
    let (before, after, first_std, last_std) = short_run(recipe, side, epochs);
    eprintln!("{name} on shapes ({side} px), {epochs} epochs: kNN {before:.1}% → {after:.1}%, embedding std {first_std:.4} → {last_std:.4}");
    assert!(after > before + min_gain, "{name}: kNN {before:.1}% → {after:.1}%");
    assert!(last_std > 0.25 * first_std, "{name} collapsed: embedding std {first_std} → {last_std}");
}

#[test]
fn moco_v2_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("MoCo v2", include_str!("../../recipes/shapes/moco_v2.toml"), 32, 10, 1.0);
}

#[test]
fn moco_v3_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("MoCo v3", include_str!("../../recipes/shapes/moco_v3.toml"), 32, 10, 1.0);
}

#[test]
fn byol_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("BYOL", include_str!("../../recipes/shapes/byol.toml"), 32, 10, 1.0);
}

#[test]
fn swav_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("SwAV", include_str!("../../recipes/shapes/swav.toml"), 32, 10, 1.0);
}

#[test]
fn dino_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("DINO", include_str!("../../recipes/shapes/dino.toml"), 16, 10, 1.0);
}

#[test]
fn nnclr_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("NNCLR", include_str!("../../recipes/shapes/nnclr.toml"), 16, 10, 1.0);
}

#[test]
fn the_queue_survives_a_checkpoint_round_trip_and_the_target_stays_untrained() {
    let _serial = one_at_a_time();
    let device = Device::flex().autodiff();
    device.seed(5);
    let config = MethodConfig::MocoV2(jem_core::method::MocoV2Config { queue_size: 16, ..Default::default() });
    let optimizer = jem_core::train::OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 0.0 };
    let model = config.init(&tiny_backbone(), &device).unwrap();
    let mut trainer = Trainer::new(model, &optimizer, Schedule { peak: 0.1, min: 0.1, warmup_steps: 0, total_steps: 4, steps_per_epoch: 2 });
    trainer.step(&random_views(8, &device));
    let saved = trainer.model().clone().into_record().into_bytes().unwrap();
    let fresh = config.init(&tiny_backbone(), &device).unwrap();
    let loaded = fresh.try_load_record(burn::store::ModuleRecord::from_bytes(saved).unwrap()).unwrap();
    let queue = |m: &Model| match m {
        Model::MocoV2(m) => m.queue.entries().into_data(),
        _ => unreachable!(),
    };
    assert_eq!(queue(trainer.model()), queue(&loaded), "the queue is part of the checkpoint");
    // Still no gradient into the loaded key encoder.
    let grads = loaded.step(&random_views(8, &device), &AT_START).loss.backward();
    if let Model::MocoV2(m) = &loaded {
        assert_eq!(gradient_counts(&m.key_backbone, &grads).0, 0);
        assert!(gradient_counts(&m.backbone, &grads).0 > 0);
    }
}
