//! The GPU path against the CPU path: every method's recipe (`recipes/shapes/*.toml`) with a
//! small ResNet and a small ViT takes two training steps on burn's `wgpu` backend and on the CPU
//! backend (jem's own kernels) from the same weights and the same batch; losses, loss terms,
//! every parameter's gradient and the updated weights must agree. Evaluation (features, kNN,
//! linear probe) likewise. Data parallelism: a step split over two GPU devices against one
//! device's step, and a run on two devices resumed on one. Mixed precision: an f16 step against
//! the f32 step.
//!
//! On a machine without a GPU, a software Vulkan driver runs the shaders: Mesa's lavapipe
//! (Debian `mesa-vulkan-drivers`, which `.ci/run` installs). The tests say "skipped" when no
//! Vulkan/Metal/DX12/GL adapter exists at all. With `JEM_TEST_BACKEND=cuda` (tests built with
//! `--features cuda`) the same tests run on burn's CUDA backend instead, and fail without a GPU.

use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, DeviceKind, Tensor, TensorData};
use jem_core::augment::{Normalize, ViewTransform};
use jem_core::data::Split;
use jem_core::data::batch::augment_batch;
use jem_core::data::shapes::Shapes;
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::eval::linear::{LinearProbeConfig, linear_probe};
use jem_core::method::{Model, Progress};
use jem_core::model::{BackboneConfig, Stem};
use jem_core::recipe::Recipe;
use jem_core::rng::Rng;
use jem_core::train::{Precision, Schedule, StepStats, Trainer, data_parallel};

/// Tolerances, relative (to the larger of the CPU's value and 1 for losses; to the CPU's norm
/// over all parameters together for gradients and weights). The first step's loss is a forward
/// pass summed in another order (measured ≤ 1e-6). Gradients are looser: in a ResNet the
/// stem's gradient is BatchNorm's backward pass, a difference of large sums over the batch and
/// the image, which amplifies rounding differences (measured up to 1.6e-2 for ResNets, 1.4e-4 for ViTs). The second step
/// runs on weights that differ by that much already, and NNCLR's nearest neighbour may change.
const FIRST_LOSS_TOLERANCE: f64 = 1e-5;
const GRADIENT_TOLERANCE: f64 = 5e-2;
const SECOND_LOSS_TOLERANCE: f64 = 2e-2;
const WEIGHT_TOLERANCE: f64 = 1e-2;

/// One test at a time: each seeds the CPU device's generator, and a GPU runs one thing at once.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The GPU backend under test: burn's `wgpu` unless `JEM_TEST_BACKEND=cuda` (a jem built with
/// `--features cuda`, on an NVIDIA machine: `bench/gpu.sh`).
fn backend() -> &'static str {
    static BACKEND: OnceLock<&'static str> = OnceLock::new();
    BACKEND.get_or_init(|| match std::env::var("JEM_TEST_BACKEND").as_deref() {
        Ok("cuda") if cfg!(feature = "cuda") => "cuda",
        Ok("cuda") => panic!("JEM_TEST_BACKEND=cuda: build the tests with `--features cuda`"),
        Ok("wgpu") | Err(_) => "wgpu",
        Ok(other) => panic!("JEM_TEST_BACKEND={other}: choose wgpu or cuda"),
    })
}

/// The backend's first or second device (`second` = wgpu's software adapter, CUDA's GPU 1) as
/// the CLI's `--devices` names it.
fn device_names(second: bool) -> &'static str {
    match (backend(), second) {
        ("cuda", false) => "0",
        ("cuda", true) => "1",
        (_, false) => "default",
        (_, true) => "cpu",
    }
}

/// The backend's first or second device.
fn device(second: bool) -> Device {
    match backend() {
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(usize::from(second)),
        _ => Device::wgpu(if second { DeviceKind::Cpu } else { DeviceKind::DefaultDevice }),
    }
}

/// Whether `device` runs a kernel and reads it back (burn panics at the first operation on a
/// device that does not exist).
fn runs(device: &Device) -> bool {
    std::panic::catch_unwind(|| Tensor::<1>::from_floats([1.0, 2.0, 3.0], device).sum().into_scalar::<f32>() == 6.0).unwrap_or(false)
}

/// The backend's first device when it exists.
fn gpu() -> Option<Device> {
    static PROBE: OnceLock<bool> = OnceLock::new();
    if !*PROBE.get_or_init(|| runs(&device(false))) {
        assert_ne!(backend(), "cuda", "JEM_TEST_BACKEND=cuda, but CUDA device 0 does not run a kernel");
        eprintln!("skipped: no GPU adapter (install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers)");
        return None;
    }
    Some(device(false))
}

/// Lazily initialised parameters take their values now, so that moving a module to another
/// device moves these values instead of re-drawing them there.
fn materialise<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Every vector (biases, norms' γ and β, running statistics) moved off its initial value by the
/// same amounts on every call: at β = 0 and γ = 1 a GPU path that dropped them would go unseen.
fn perturb_vectors<M: Module>(module: M) -> M {
    struct Perturb(Rng);
    impl ModuleMapper for Perturb {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D != 1 {
                return param;
            }
            let rng = &mut self.0;
            param.map(|value| {
                let n = value.dims()[0];
                let noise: Vec<f32> = (0..n).map(|_| rng.range(-0.3, 0.3)).collect();
                let noise = Tensor::<1>::from_data(TensorData::new(noise, [n]), &value.device()).reshape(value.dims());
                let value = (value + noise).detach();
                if value.device().is_autodiff() { value.require_grad() } else { value }
            })
        }
    }
    module.map(&mut Perturb(Rng::new(7)))
}

/// Every float parameter's values, in visiting order.
fn weights<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().convert::<f32>().try_to_vec().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// Every trainable parameter's gradient (empty where it has none), in visiting order.
fn gradients<M: Module>(module: &M, grads: &GradientsParams) -> Vec<Vec<f32>> {
    struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = self.0.get::<D>(param.id).map(|g| g.into_data().convert::<f32>().try_to_vec().unwrap());
            self.1.push(grad.unwrap_or_default());
        }
    }
    let mut collect = Collect(grads, Vec::new());
    module.visit(&mut collect);
    collect.1
}

/// `‖a − b‖ / ‖b‖` over all values together (0 when both are empty).
fn relative_error(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len(), "different parameter counts");
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len(), "a parameter has a gradient on one device only, or another shape");
        for (&x, &y) in x.iter().zip(y) {
            diff += (x as f64 - y as f64).powi(2);
            norm += (y as f64).powi(2);
        }
    }
    if norm == 0.0 { diff.sqrt() } else { (diff / norm).sqrt() }
}

fn close(a: f32, b: f32, tolerance: f64) -> bool {
    (a as f64 - b as f64).abs() <= tolerance * (b.abs() as f64).max(1.0)
}

/// The two backbones every method is tried with: a ResNet-18 at width 8 with the CIFAR stem, and
/// a two-block ViT at width 32 on 4-pixel patches (masked methods need a ViT, so only that one).
fn small_backbones(recipe: &Recipe) -> Vec<BackboneConfig> {
    let resnet = BackboneConfig { arch: "resnet18".into(), width: 8, stem: Stem::Cifar, ..Default::default() };
    let vit = BackboneConfig { arch: "vit".into(), width: 32, depth: 2, heads: 2, patch_size: 4, image_size: 32, ..Default::default() };
    if recipe.method.needs_masks() { vec![vit] } else { vec![resnet, vit] }
}

fn shapes_recipes() -> Vec<(String, Recipe)> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/shapes");
    let mut recipes: Vec<(String, Recipe)> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, Recipe::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap())
        })
        .collect();
    recipes.sort_by(|a, b| a.0.cmp(&b.0));
    recipes
}

/// What one device did: the gradients at the starting weights (a pass of its own, as the trainer
/// does not hand out gradients; like a step it advances queues, centres and BatchNorm statistics,
/// alike on both devices), then two optimiser steps' numbers and the weights after them.
struct Run {
    gradients: Vec<Vec<f32>>,
    stats: Vec<StepStats>,
    weights: Vec<Vec<f32>>,
}

/// `devices`: what each step's batch is split over (none: no split); the model lives on `device`,
/// the first of them.
fn two_steps(recipe: &Recipe, model: Model, batch: &jem_core::data::batch::MultiViewBatch, device: &Device, devices: &[Device]) -> Run {
    let batch = batch.to_tensors(device);
    let schedule = Schedule { peak: 1e-3, min: 0.0, warmup_steps: 0, total_steps: 10, steps_per_epoch: 5 };
    let progress = Progress { step: 0, total_steps: 10, steps_per_epoch: 5 };
    let out = data_parallel::over(devices, || model.step(&batch, &progress));
    let gradients = gradients(&model, &GradientsParams::from_grads(out.loss.backward(), &model));
    let mut trainer = Trainer::new(model, &recipe.optimizer, schedule).data_parallel(devices.to_vec());
    let stats = vec![trainer.step(&batch), trainer.step(&batch)];
    Run { gradients, stats, weights: weights(trainer.model()) }
}

/// The recipe's model on the CPU with perturbed vectors, the same on every call: two models from
/// one seed rather than a clone, as a clone shares its running state (BatchNorm statistics,
/// queues, DINO's centre) with the original.
fn init(recipe: &Recipe, cpu: &Device) -> Model {
    cpu.seed(0);
    let model = recipe.method.init(&recipe.backbone, cpu).unwrap();
    materialise(&model);
    perturb_vectors(model)
}

/// Losses, loss terms, gradients and weights of a run on the GPU `g` against the CPU's `c`, within
/// the tolerances above; what differs goes to `failures`.
fn compare(what: &str, c: &Run, g: &Run, failures: &mut Vec<String>) {
    let gradient_error = relative_error(&g.gradients, &c.gradients);
    let weight_error = relative_error(&g.weights, &c.weights);
    eprintln!(
        "{what}: loss cpu {:.6}/{:.6} gpu {:.6}/{:.6}; gradients rel. error {gradient_error:.1e}, weights after 2 steps {weight_error:.1e}",
        c.stats[0].loss, c.stats[1].loss, g.stats[0].loss, g.stats[1].loss
    );
    for (step, (cs, gs)) in c.stats.iter().zip(&g.stats).enumerate() {
        let tolerance = if step == 0 { FIRST_LOSS_TOLERANCE } else { SECOND_LOSS_TOLERANCE };
        if !close(gs.loss, cs.loss, tolerance) {
            failures.push(format!("{what}: step {step} loss {} on the GPU, {} on the CPU", gs.loss, cs.loss));
        }
        for ((term, cv), (_, gv)) in cs.terms.iter().zip(&gs.terms) {
            if !close(*gv, *cv, tolerance) {
                failures.push(format!("{what}: step {step} term {term} {gv} on the GPU, {cv} on the CPU"));
            }
        }
    }
    if gradient_error > GRADIENT_TOLERANCE {
        failures.push(format!("{what}: gradients differ by {gradient_error:.1e} (relative)"));
    }
    if weight_error > WEIGHT_TOLERANCE {
        failures.push(format!("{what}: weights after two steps differ by {weight_error:.1e} (relative)"));
    }
}

#[test]
fn every_method_trains_the_same_on_the_gpu_as_on_the_cpu() {
    let _serial = one_at_a_time();
    let Some(gpu) = gpu() else { return };
    let (cpu, gpu) = (Device::flex().autodiff(), gpu.autodiff());
    let shapes = Shapes::new(32, 0).dataset(16, Split::Train);
    let indices: Vec<usize> = (0..16).collect();
    let mut failures = Vec::new();
    for (name, mut recipe) in shapes_recipes() {
        for backbone in small_backbones(&recipe) {
            recipe.backbone = backbone;
            let augment = recipe.data.augment.build(32, 32).unwrap();
            recipe.check_views(&augment).unwrap();
            let batch = augment_batch(&augment, &shapes, &indices, 0, 0).unwrap();
            let (model, on_gpu) = (init(&recipe, &cpu), init(&recipe, &cpu).fork(&gpu));
            assert_eq!(weights(&model), weights(&on_gpu), "{name}: the two models start from different weights");
            let (c, g) = (two_steps(&recipe, model, &batch, &cpu, &[]), two_steps(&recipe, on_gpu, &batch, &gpu, &[]));
            compare(&format!("{name} with {}", recipe.backbone.arch), &c, &g, &mut failures);
        }
    }
    assert!(failures.is_empty(), "the GPU path differs from the CPU path:\n{}", failures.join("\n"));
}

/// Data parallelism across two GPU devices (the default adapter and wgpu's CPU-type adapter, both
/// lavapipe here: two devices with their own memory and queues) against one CPU device: SimCLR
/// (global negatives), VICReg (batch statistics) and BYOL (momentum target). With the ViT the split
/// step must equal the whole batch's step; with the ResNet, whose BatchNorm normalises each shard
/// by itself, it must equal the same split on the CPU.
#[test]
fn two_gpu_devices_take_the_step_of_one_device() {
    let _serial = one_at_a_time();
    let Some(gpu) = gpu() else { return };
    let second = device(true);
    if !runs(&second) {
        eprintln!("skipped: {} has only one device here", backend());
        return;
    }
    let (cpu, gpus) = (Device::flex().autodiff(), [gpu.autodiff(), second.autodiff()]);
    let shapes = Shapes::new(32, 0).dataset(16, Split::Train);
    let indices: Vec<usize> = (0..16).collect();
    let mut failures = Vec::new();
    for (name, mut recipe) in shapes_recipes().into_iter().filter(|(name, _)| ["simclr", "vicreg", "byol"].contains(&name.as_str())) {
        for backbone in small_backbones(&recipe) {
            recipe.backbone = backbone;
            let augment = recipe.data.augment.build(32, 32).unwrap();
            let batch = augment_batch(&augment, &shapes, &indices, 0, 0).unwrap();
            let cpu_split: &[Device] = if recipe.backbone.arch == "vit" { &[] } else { &[cpu.clone(), cpu.clone()] };
            let c = two_steps(&recipe, init(&recipe, &cpu), &batch, &cpu, cpu_split);
            let g = two_steps(&recipe, init(&recipe, &cpu).fork(&gpus[0]), &batch, &gpus[0], &gpus);
            compare(&format!("{name} with {} on two GPU devices", recipe.backbone.arch), &c, &g, &mut failures);
        }
    }
    assert!(failures.is_empty(), "the data-parallel step differs from the one-device step:\n{}", failures.join("\n"));
}

/// A run split over two GPU devices, stopped after three steps, resumes on one device: the
/// checkpoint holds one model whatever the device count.
#[test]
fn a_run_on_two_devices_resumes_on_one() {
    let _serial = one_at_a_time();
    if gpu().is_none() || !runs(&device(true)) {
        eprintln!("skipped: {} needs two devices", backend());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let recipe = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/shapes/vicreg.toml"))
        .unwrap()
        .replace("width = 16", "width = 4")
        .replace("epochs = 30", "epochs = 2")
        .replace("batch_size = 128", "batch_size = 16")
        .replace("shapes_count = 4096", "shapes_count = 64")
        .replace("checkpoint_every = 10", "checkpoint_every = 1");
    std::fs::write(dir.path().join("vicreg.toml"), recipe).unwrap();
    let run = dir.path().join("run");
    let jem = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_jem")).args(args).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "jem {args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let recipe = dir.path().join("vicreg.toml");
    let (recipe, run_path) = (recipe.to_str().unwrap(), run.to_str().unwrap());
    let devices = format!("{},{}", device_names(false), device_names(true));
    let out = jem(&[
        "pretrain",
        "--recipe",
        recipe,
        "--out",
        run_path,
        "--device",
        backend(),
        "--devices",
        &devices,
        "--quiet",
        "--stop-after",
        "3",
    ]);
    assert!(out.contains(&format!("{} devices {devices}", backend())) && out.contains("interrupted after step 3"), "{out}");
    let out = jem(&["pretrain", "--resume", run_path, "--device", backend(), "--quiet"]);
    assert!(out.contains("at epoch 0 (step 3)") && out.contains("epoch 2/2"), "{out}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<&str> = metrics.lines().filter(|l| l.contains("\"step\"")).collect();
    assert_eq!(steps.len(), 8, "3 steps on two devices, 5 on one: {metrics}");
    assert!(steps[3].contains("\"step\":3"), "{}", steps[3]);
}

/// Mixed precision on the GPU: an f16 step (with its loss scale) against the f32 step on the same
/// device, from the same weights, for a contrastive and a non-contrastive method; the weights
/// stay f32. Tolerances as for bf16 on the CPU (`core/src/train/precision.rs`), where f16's 11
/// significant bits do better.
#[test]
fn an_f16_step_on_the_gpu_is_the_f32_step_to_f16_precision() {
    let _serial = one_at_a_time();
    let Some(gpu) = gpu() else { return };
    let (cpu, gpu) = (Device::flex().autodiff(), gpu.autodiff());
    if let Err(e) = Precision::F16.check(&gpu) {
        eprintln!("skipped: {e}");
        return;
    }
    let shapes = Shapes::new(32, 0).dataset(16, Split::Train);
    let indices: Vec<usize> = (0..16).collect();
    let mut failures = Vec::new();
    for (name, mut recipe) in shapes_recipes().into_iter().filter(|(name, _)| ["simclr", "vicreg"].contains(&name.as_str())) {
        for backbone in small_backbones(&recipe) {
            recipe.backbone = backbone;
            let augment = recipe.data.augment.build(32, 32).unwrap();
            let batch = augment_batch(&augment, &shapes, &indices, 0, 0).unwrap().to_tensors(&gpu);
            let step = |precision: Precision| {
                let schedule = Schedule { peak: 1e-3, min: 0.0, warmup_steps: 0, total_steps: 10, steps_per_epoch: 5 };
                let mut trainer = Trainer::new(init(&recipe, &cpu).fork(&gpu), &recipe.optimizer, schedule).precision(precision);
                // A scale at which the first step's gradients fit f16 (the default, 2¹⁶, skips
                // steps until it has halved enough: see the loss scale's own test).
                trainer.loss_scale.scale = LOSS_SCALE;
                let stats = trainer.step(&batch);
                assert_eq!(trainer.loss_scale.scale, LOSS_SCALE, "the step was applied");
                (stats, weights(trainer.model()), dtypes(trainer.model()))
            };
            let ((exact, exact_weights, _), (half, half_weights, half_dtypes)) = (step(Precision::F32), step(Precision::F16));
            let what = format!("{name} with {}", recipe.backbone.arch);
            let weight_error = relative_error(&half_weights, &exact_weights);
            eprintln!(
                "{what}: loss f32 {} f16 {}; gradient norm f32 {} f16 {}; weights after a step {weight_error:.1e}",
                exact.loss, half.loss, exact.grad_norm, half.grad_norm
            );
            if !close(half.loss, exact.loss, HALF_LOSS_TOLERANCE) {
                failures.push(format!("{what}: loss {} in f16, {} in f32", half.loss, exact.loss));
            }
            if !((half.grad_norm - exact.grad_norm) / exact.grad_norm).abs().lt(&HALF_GRADIENT_NORM_TOLERANCE) {
                failures.push(format!("{what}: gradient norm {} in f16, {} in f32", half.grad_norm, exact.grad_norm));
            }
            if weight_error > HALF_WEIGHT_TOLERANCE {
                failures.push(format!("{what}: weights after a step differ by {weight_error:.1e}"));
            }
            if half_dtypes.iter().any(|d| *d != DType::F32) {
                failures.push(format!("{what}: weights in {half_dtypes:?} after an f16 step, not f32"));
            }
        }
    }
    assert!(failures.is_empty(), "the f16 step differs from the f32 step:\n{}", failures.join("\n"));
}

const LOSS_SCALE: f32 = 256.0;
const HALF_LOSS_TOLERANCE: f64 = 1e-2;
const HALF_GRADIENT_NORM_TOLERANCE: f32 = 0.1;
const HALF_WEIGHT_TOLERANCE: f64 = 2e-2;

/// Every float parameter's type.
fn dtypes<M: Module>(module: &M) -> Vec<DType> {
    struct Collect(Vec<DType>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().dtype());
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

#[test]
fn evaluation_gives_the_same_features_and_accuracies_on_the_gpu() {
    let _serial = one_at_a_time();
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    let shapes = Shapes::new(32, 0);
    let (train, test) = (shapes.dataset(300, Split::Train), shapes.dataset(100, Split::Test));
    let eval = ViewTransform::eval(32, Normalize::CIFAR10);
    let backbone_config = BackboneConfig { arch: "resnet18".into(), width: 8, stem: Stem::Cifar, ..Default::default() };
    cpu.seed(0);
    let backbone = backbone_config.init(&cpu).unwrap();
    materialise(&backbone);
    let backbone = perturb_vectors(backbone);
    let features = |device: &Device| {
        let backbone = backbone.clone().to_device(device);
        let bank = extract_features(&backbone, &train, &eval, 128, device).unwrap();
        let queries = extract_features(&backbone, &test, &eval, 128, device).unwrap();
        (bank, queries)
    };
    let ((cpu_bank, cpu_queries), (gpu_bank, gpu_queries)) = (features(&cpu), features(&gpu));
    let values = |t: &Tensor<2>| vec![t.clone().into_data().try_to_vec::<f32>().unwrap()];
    let feature_error = relative_error(&values(&gpu_bank), &values(&cpu_bank));
    assert!(feature_error < FIRST_LOSS_TOLERANCE, "features differ by {feature_error:.1e}");

    let (train_labels, test_labels) = (train.labels.as_ref().unwrap(), test.labels.as_ref().unwrap());
    let knn = |bank: &Tensor<2>, queries: &Tensor<2>| {
        knn_accuracy(bank.clone(), train_labels, queries.clone(), test_labels, 10, KnnConfig { k: 20, temperature: 0.1 }).top1
    };
    let (cpu_knn, gpu_knn) = (knn(&cpu_bank, &cpu_queries), knn(&gpu_bank, &gpu_queries));
    let probe = LinearProbeConfig { epochs: 30, batch_size: 64, ..Default::default() };
    let linear = |bank: &Tensor<2>, queries: &Tensor<2>, device: &Device| {
        linear_probe(bank.clone(), train_labels, queries.clone(), test_labels, 10, probe, &device.clone().autodiff()).top1
    };
    let (cpu_linear, gpu_linear) = (linear(&cpu_bank, &cpu_queries, &cpu), linear(&gpu_bank, &gpu_queries, &gpu));
    eprintln!(
        "features rel. error {feature_error:.1e}; kNN {cpu_knn:.1}% cpu, {gpu_knn:.1}% gpu; linear {cpu_linear:.1}% cpu, {gpu_linear:.1}% gpu"
    );
    // One test image of 100 may flip where two classes score within rounding of each other.
    assert!((cpu_knn - gpu_knn).abs() <= 1.0, "kNN {cpu_knn}% on the CPU, {gpu_knn}% on the GPU");
    assert!((cpu_linear - gpu_linear).abs() <= 1.0, "linear probe {cpu_linear}% on the CPU, {gpu_linear}% on the GPU");
}
