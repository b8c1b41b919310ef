//! Data-parallel training steps on the devices of one machine, the way PyTorch's
//! `nn.DataParallel` splits a batch: the model lives on the first device; for each backbone
//! forward pass the images are cut into one shard per device, the backbone is copied to every
//! other device (broadcast), each copy encodes its shard, and the features are moved back and
//! concatenated (gather). The heads and the loss then run on the first device over the whole
//! batch, so contrastive negatives and VICReg's or Barlow Twins' batch statistics are always
//! the global ones.
//!
//! Both moves are differentiable: backpropagation carries each shard's feature gradient back to
//! its device, and each copy's parameter gradient back to the first device, where autodiff adds
//! them. With one loss over the gathered batch that sum *is* the full-batch gradient, so there is
//! no separate reduction step to get wrong (DDP's per-device losses are averaged instead, with
//! the gather's backward summing feature gradients across devices: the same gradient, and the
//! 1/world-size bug of lightly #1018 where that backward sum is missing).
//!
//! What differs from one device with the whole batch: BatchNorm layers in the backbone normalise
//! each shard with its own statistics (DDP without SyncBN does too), and their running
//! statistics take one momentum update per shard. Backbones without BatchNorm (the ViTs) give the
//! single-device step exactly, up to float rounding. Masked methods (MAE, data2vec) encode tokens
//! through the ViT's parts rather than [`Backbone::forward`], so they run on the first device.
//!
//! The split is scoped to a closure ([`over`]) that [`super::Trainer`] wraps around the method's
//! step; everything else (evaluation, monitors) runs on the first device.
//!
//! [`Backbone::forward`]: crate::model::Backbone::forward

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

thread_local! {
    static DEVICES: RefCell<Vec<Device>> = const { RefCell::new(Vec::new()) };
}

/// Runs `step` with backbone forward passes split over `devices` (the first holds the model;
/// none or one device: no split).
pub fn over<R>(devices: &[Device], step: impl FnOnce() -> R) -> R {
    struct Restore(Vec<Device>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEVICES.with(|d| *d.borrow_mut() = std::mem::take(&mut self.0));
        }
    }
    let _restore = Restore(DEVICES.with(|d| d.replace(devices.to_vec())));
    step()
}

/// The first `n` sizes of a batch of `batch` split as evenly as possible, larger shards first
/// (as `torch.chunk` does).
pub fn shard_sizes(batch: usize, n: usize) -> Vec<usize> {
    (0..n).map(|k| batch / n + usize::from(k < batch % n)).collect()
}

/// `forward(module, images)`, split over the devices of the enclosing [`over`] when there are
/// at least two and at least one image per device.
pub(crate) fn split_forward<M: Module>(module: &M, images: Tensor<4>, forward: impl Fn(&M, Tensor<4>) -> Tensor<2>) -> Tensor<2> {
    let devices = DEVICES.with(|d| d.borrow().clone());
    let batch = images.dims()[0];
    if devices.len() < 2 || batch < devices.len() {
        return forward(module, images);
    }
    let first = images.device();
    assert!(first == devices[0], "the model must live on the first data-parallel device ({:?}), not {first:?}", devices[0]);
    let sizes = shard_sizes(batch, devices.len());
    let starts: Vec<usize> = sizes.iter().scan(0, |start, size| Some(std::mem::replace(start, *start + size))).collect();
    // The other devices' shards first: copies share BatchNorm's running statistics with the
    // model, and the shard that updates them last leaves them on the first device.
    let mut features: Vec<Option<Tensor<2>>> = vec![None; devices.len()];
    for k in (0..devices.len()).rev() {
        let shard = images.clone().narrow(0, starts[k], sizes[k]);
        features[k] = Some(if k == 0 {
            forward(module, shard)
        } else {
            let copy = module.clone().to_device(&devices[k]);
            forward(&copy, shard.to_device(&devices[k])).to_device(&first)
        });
    }
    Tensor::cat(features.into_iter().map(|f| f.expect("every shard was encoded")).collect(), 0)
}

#[cfg(test)]
mod tests {
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;

    use super::*;
    use crate::data::batch::TensorBatch;
    use crate::method::{MethodConfig, Model, Progress};
    use crate::model::BackboneConfig;
    use crate::rng::Rng;
    use crate::train::testing::{relative_error, values};
    use crate::train::{OptimizerConfig, Schedule, Trainer};

    #[test]
    fn shards_cover_the_batch_larger_first() {
        assert_eq!(shard_sizes(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(shard_sizes(8, 2), vec![4, 4]);
        assert_eq!(shard_sizes(3, 3), vec![1, 1, 1]);
    }

    /// The scope ends with `over`, also when its step panics.
    #[test]
    fn the_devices_apply_inside_the_scope_only() {
        let device = Device::flex();
        let inside = over(&[device.clone(), device.clone()], || DEVICES.with(|d| d.borrow().len()));
        assert_eq!(inside, 2);
        assert!(DEVICES.with(|d| d.borrow().is_empty()));
        let panicked = std::panic::catch_unwind(|| over(&[device.clone(), device.clone()], || panic!("a failing step")));
        assert!(panicked.is_err());
        assert!(DEVICES.with(|d| d.borrow().is_empty()));
    }

    /// A two-block ViT with `method` (TOML), its parameters drawn.
    fn model(method: &str, device: &Device) -> Model {
        let method: MethodConfig = toml::from_str(method).unwrap();
        let vit = BackboneConfig { arch: "vit".into(), width: 32, depth: 2, heads: 2, patch_size: 4, image_size: 16, ..Default::default() };
        let model = method.init(&vit, device).unwrap();
        values(&model, None);
        model
    }

    /// The first step's loss and gradients, and the weights after two optimiser steps, of `model`
    /// trained on one batch split over `devices`. (Each run gets a clone of one model rather
    /// than a model from one seed: tests running beside this one draw from the same generator.)
    fn two_steps(model: Model, devices: &[Device]) -> (f32, Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(3);
        let mut view = || {
            let pixels: Vec<f32> = (0..8 * 3 * 16 * 16).map(|_| rng.range(-1.0, 1.0)).collect();
            Tensor::<4>::from_data(TensorData::new(pixels, [8, 3, 16, 16]), &device)
        };
        let batch = TensorBatch::from_views(vec![view(), view()]);
        let progress = Progress { step: 0, total_steps: 10, steps_per_epoch: 5 };
        let out = over(devices, || model.step(&batch, &progress));
        let loss = out.loss.clone().into_scalar::<f32>();
        let gradients = values(&model, Some(&GradientsParams::from_grads(out.loss.backward(), &model))).0;
        let optimizer = OptimizerConfig::AdamW { weight_decay: 1e-4, beta1: 0.9, beta2: 0.999 };
        let schedule = Schedule { peak: 1e-3, min: 0.0, warmup_steps: 0, total_steps: 10, steps_per_epoch: 5 };
        let mut trainer = Trainer::new(model, &optimizer, schedule).data_parallel(devices.to_vec());
        trainer.step(&batch);
        trainer.step(&batch);
        (loss, gradients, values(trainer.model(), None).0)
    }

    /// Two shards of 4 images give the step of one batch of 8: contrastive negatives and VICReg's
    /// batch statistics come from the gathered batch, and the copies' gradients add up to the
    /// full-batch gradient. (Both shards run on the CPU here; `tests/gpu.rs` puts them on two
    /// GPU devices.)
    #[test]
    fn two_shards_give_the_step_of_the_whole_batch() {
        let device = Device::flex().autodiff();
        for method in [
            "name = 'simclr'\nprojector = { dims = [32, 16] }",
            "name = 'vicreg'\nexpander = { dims = [32, 32] }",
            "name = 'byol'\nprojector = { dims = [32, 16] }\npredictor = { dims = [32, 16] }",
        ] {
            let model = model(method, &device);
            let (loss, gradients, weights) = two_steps(model.clone(), &[]);
            let (split_loss, split_gradients, split_weights) = two_steps(model, &[device.clone(), device.clone()]);
            let what = method.lines().next().unwrap();
            assert!((split_loss - loss).abs() <= 1e-5 * loss.abs().max(1.0), "{what}: loss {split_loss} split, {loss} whole");
            let gradient_error = relative_error(&split_gradients, &gradients);
            assert!(gradient_error < 1e-5, "{what}: gradients differ by {gradient_error:.1e}");
            let weight_error = relative_error(&split_weights, &weights);
            assert!(weight_error < 1e-5, "{what}: weights after two steps differ by {weight_error:.1e}");
        }
    }
}
