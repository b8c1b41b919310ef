//! The methods with target networks, queues, prototypes and masks: what the papers require of
//! their parts (no gradient into targets, unit prototypes), and a short run of each shapes
//! recipe (`recipes/shapes/*.toml`) that must learn without collapsing.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};
use jem_core::data::Split;
use jem_core::data::batch::{EpochPlan, TensorBatch, augment_batch};
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
    BackboneConfig { arch: "convnet".into(), width: 4, stem: Stem::Cifar, ..Default::default() }
}

fn random_views(n: usize, device: &Device) -> TensorBatch {
    TensorBatch::from_views((0..2).map(|_| Tensor::random([n, 3, 16, 16], Distribution::Normal(0.0, 1.0), device)).collect())
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
            Model::Byol(m) => (
                gradient_counts(&m.backbone, &grads),
                gradient_counts(&m.target_backbone, &grads).0 + gradient_counts(&m.target_projector, &grads).0,
            ),
            Model::MocoV2(m) => (
                gradient_counts(&m.backbone, &grads),
                gradient_counts(&m.key_backbone, &grads).0 + gradient_counts(&m.key_projector, &grads).0,
            ),
            Model::MocoV3(m) => (
                gradient_counts(&m.backbone, &grads),
                gradient_counts(&m.key_backbone, &grads).0 + gradient_counts(&m.key_projector, &grads).0,
            ),
            Model::Dino(m) => (
                gradient_counts(&m.backbone, &grads),
                gradient_counts(&m.teacher_backbone, &grads).0 + gradient_counts(&m.teacher_head, &grads).0,
            ),
            _ => unreachable!(),
        };
        assert!(online.0 > 0, "{name}: the online backbone got no gradient");
        assert_eq!(target, 0, "{name}: the target network got a gradient");
    }
}

/// A batch of one masked view, as the data2vec recipes make it.
fn masked_batch(recipe: &Recipe, n: usize, device: &Device) -> TensorBatch {
    let shapes = Shapes::new(32, 1).dataset(n, Split::Train);
    let augment = recipe.data.augment.build(32, 32).unwrap();
    recipe.check_views(&augment).unwrap();
    let indices: Vec<usize> = (0..n).collect();
    augment_batch(&augment, &shapes, &indices, 0, 0).unwrap().to_tensors(device)
}

#[test]
fn data2vec_teacher_gets_no_gradient_and_the_loss_sees_only_masked_patches() {
    let _serial = one_at_a_time();
    let device = Device::flex().autodiff();
    let mut recipe = Recipe::from_toml(include_str!("../../recipes/shapes/data2vec.toml")).unwrap();
    recipe.backbone.depth = 2;
    recipe.method = MethodConfig::Data2Vec(jem_core::method::Data2VecConfig { top_k: 2, ..Default::default() });
    let model = recipe.method.init(&recipe.backbone, &device).unwrap();
    let batch = masked_batch(&recipe, 4, &device);
    let mask = batch.masks[0].clone().unwrap();
    let masked = mask.clone().int().sum().into_data().iter::<i64>().next().unwrap() as f64 / (4.0 * 64.0);
    assert!((0.45..=0.6).contains(&masked), "masked fraction {masked}");
    let out = model.step(&batch, &AT_START);
    assert!(out.loss.clone().into_scalar::<f32>() > 0.0);
    let grads = out.loss.backward();
    let Model::Data2Vec(m) = &model else { unreachable!() };
    assert!(gradient_counts(&m.backbone, &grads).0 > 0 && gradient_counts(&m.regression, &grads).0 > 0);
    assert_eq!(gradient_counts(&m.teacher, &grads).0, 0, "the teacher got a gradient");
    // Recipes are checked: no mask, or masks that do not fit the ViT's patches, are errors.
    let unmasked = jem_core::recipe::AugmentConfig { mask_ratio: None, ..recipe.data.augment.clone() };
    let err = recipe.check_views(&unmasked.build(32, 32).unwrap()).unwrap_err().to_string();
    assert!(err.contains("mask_ratio"), "{err}");
    let coarse = jem_core::recipe::AugmentConfig { mask_patch: Some(8), ..recipe.data.augment.clone() };
    let err = recipe.check_views(&coarse.build(32, 32).unwrap()).unwrap_err().to_string();
    assert!(err.contains("mask_patch = 4"), "{err}");
    let resnet = MethodConfig::default_for("data2vec").unwrap().init(&tiny_backbone(), &device).unwrap_err().to_string();
    assert!(resnet.contains("ViT backbone"), "{resnet}");
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
    let mut trainer =
        Trainer::new(model, &optimizer, Schedule { peak: 0.5, min: 0.5, warmup_steps: 0, total_steps: 6, steps_per_epoch: 2 });
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
    let err = Recipe::from_toml(&text).unwrap_err().to_string();
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

/// What a short run measured: kNN top-1 before and after, and every step's loss and embedding std.
struct ShortRun {
    before: f64,
    after: f64,
    losses: Vec<f32>,
    stds: Vec<f32>,
}

impl ShortRun {
    /// Mean loss of the first and of the last `n` steps.
    fn loss_start_end(&self, n: usize) -> (f32, f32) {
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
        (mean(&self.losses[..n]), mean(&self.losses[self.losses.len() - n..]))
    }
}

/// Trains a shapes recipe for `epochs` epochs on 4,096 images of `side` pixels (views and local
/// crops scaled along), with kNN on 1,000 test images before and after.
fn short_run(recipe: &str, side: usize, epochs: usize) -> ShortRun {
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
    let (mut stds, mut losses) = (Vec::new(), Vec::new());
    for epoch in 0..epochs as u64 {
        for indices in EpochPlan::new(train_set.len(), batch, true, true, recipe.train.seed, epoch).batches {
            let views = augment_batch(&augment, &train_set, &indices, recipe.train.seed, epoch).unwrap().to_tensors(&device);
            let stats = trainer.step(&views);
            assert!(stats.loss.is_finite(), "loss {} at step {}", stats.loss, stats.step);
            stds.push(stats.embedding_std);
            losses.push(stats.loss);
        }
    }
    let after = knn_top1(trainer.model(), &train_set, &test_set, side);
    ShortRun { before, after, losses, stds }
}

/// 16-pixel images keep a test near half a minute; the methods that learn more slowly (the
/// momentum-target and prototype ones) get the recipe's 32 pixels.
fn learns_without_collapse(name: &str, recipe: &str, side: usize, epochs: usize, min_gain: f64) {
    let run = short_run(recipe, side, epochs);
    let (before, after, first_std, last_std) = (run.before, run.after, run.stds[0], *run.stds.last().unwrap());
    eprintln!(
        "{name} on shapes ({side} px), {epochs} epochs: kNN {before:.1}% → {after:.1}%, embedding std {first_std:.4} → {last_std:.4}"
    );
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
    // 20 epochs: in 10, kNN ended below random init for seeds 1 and 2 with either convolution
    // kernel (21.5–23.7 %); in 20 it gained 7.2 and 3.6 points at seeds 0 and 1.
    learns_without_collapse("BYOL", include_str!("../../recipes/shapes/byol.toml"), 32, 20, 1.0);
}

#[test]
fn swav_learns_shapes() {
    let _serial = one_at_a_time();
    // SwAV's kNN gain after 10 epochs on shapes is a draw that each float summation order redraws
    // (seed 0 on one machine: +0.9 and +4.7 points with the GEMM convolution paths, +0.4 and +0.6
    // with the AVX2 direct kernels; at 20 epochs +1.8 and −0.7; docs/benchmarks.md), so this test
    // asserts what the objective promises instead: the swapped-prediction loss falls below its
    // start (≈ ln 30, uniform predictions over 30 prototypes; measured 3.44 → 3.08), and the
    // embeddings do not collapse.
    let run = short_run(include_str!("../../recipes/shapes/swav.toml"), 32, 10);
    let (start, end) = run.loss_start_end(20);
    let (first_std, last_std) = (run.stds[0], *run.stds.last().unwrap());
    eprintln!(
        "SwAV on shapes (32 px), 10 epochs: loss {start:.4} → {end:.4}, kNN {:.1}% → {:.1}%, embedding std {first_std:.4} → {last_std:.4}",
        run.before, run.after
    );
    assert!(end < start - 0.15, "SwAV: loss {start} → {end}");
    assert!(last_std > 0.25 * first_std, "SwAV collapsed: embedding std {first_std} → {last_std}");
}

#[test]
fn dino_learns_shapes() {
    let _serial = one_at_a_time();
    // 32 px, as the recipe. At 16 px (local crops of 8 px) 20 epochs gained −0.1 and −2.3 points
    // at seeds 0 and 1, and −2.4 to +2.4 (mean −0.1) over 13 runs with seeds 0–2 and variants of
    // the teacher's temperature, momentum and centring: a pass there was luck, and a change of
    // the float summation order decided it. At 32 px 10 epochs gained 3.2, 3.0 and 1.2 points at
    // seeds 0, 1 and 2 (with the direct convolution kernel).
    learns_without_collapse("DINO", include_str!("../../recipes/shapes/dino.toml"), 32, 10, 1.0);
}

/// Masked prediction and reconstruction learn slowly, and their features are not what kNN reads
/// best (MAE's above all); in a short run on 16 px images (a 4×4 patch grid) their losses must
/// fall.
fn masked_run_learns(name: &str, recipe: &str, max_ratio: f32) {
    let run = short_run(recipe, 16, 5);
    let (start, end) = run.loss_start_end(10);
    eprintln!("{name} on shapes (16 px), 5 epochs: loss {start:.4} → {end:.4}, kNN {:.1}% → {:.1}%", run.before, run.after);
    assert!(end < max_ratio * start, "{name}: loss {start} → {end}");
}

#[test]
fn data2vec_learns_shapes() {
    let _serial = one_at_a_time();
    masked_run_learns("Data2Vec", include_str!("../../recipes/shapes/data2vec.toml"), 0.9);
}

#[test]
fn mae_learns_shapes() {
    let _serial = one_at_a_time();
    masked_run_learns("MAE", include_str!("../../recipes/shapes/mae.toml"), 0.9);
}

#[test]
fn rotnet_trains_on_shapes() {
    let _serial = one_at_a_time();
    // Shapes lie at random angles: RotNet learns little here, but it must train without collapse.
    learns_without_collapse("RotNet", include_str!("../../recipes/shapes/rotnet.toml"), 16, 3, -100.0);
}

#[test]
fn supervised_baseline_learns_shapes() {
    let _serial = one_at_a_time();
    learns_without_collapse("supervised", include_str!("../../recipes/shapes/supervised.toml"), 16, 5, 10.0);
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
    let mut trainer =
        Trainer::new(model, &optimizer, Schedule { peak: 0.1, min: 0.1, warmup_steps: 0, total_steps: 4, steps_per_epoch: 2 });
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
