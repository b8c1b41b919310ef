//! Evaluation of an encoder: features, weighted kNN, linear probe and fine-tuning, collapse
//! monitors, PCA.

pub mod finetune;
pub mod knn;
pub mod linear;
pub mod monitor;
pub mod pca;

use burn::tensor::{Device, Tensor};

use crate::augment::ViewTransform;
use crate::data::batch::augment_batch;
use crate::data::{DataError, Dataset};
use crate::model::Backbone;

/// Backbone features of every image of `dataset` (no augmentation: `transform` should be
/// [`ViewTransform::eval`]), `[N, D]`, in dataset order. Run it on a validation copy of the
/// backbone (`backbone.valid()`) so that BatchNorm uses its running statistics.
/// Fails only for an on-demand dataset whose image cannot be read.
pub fn extract_features(
    backbone: &Backbone,
    dataset: &Dataset,
    transform: &ViewTransform,
    batch_size: usize,
    device: &Device,
) -> Result<Tensor<2>, DataError> {
    let augment = crate::augment::MultiViewAugment::symmetric(transform.clone(), 1);
    let indices: Vec<usize> = (0..dataset.len()).collect();
    let parts = indices
        .chunks(batch_size.max(1))
        .map(|chunk| {
            let batch = augment_batch(&augment, dataset, chunk, 0, 0)?.to_tensors(device);
            Ok(backbone.forward(batch.views.into_iter().next().expect("one view")))
        })
        .collect::<Result<Vec<Tensor<2>>, DataError>>()?;
    Ok(Tensor::cat(parts, 0))
}
