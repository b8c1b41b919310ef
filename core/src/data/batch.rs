//! Multi-view batches: the epoch's sample order, and the augmented views of a batch.
//!
//! Augmentation writes each view straight into its slot of a contiguous `[B, 3, S, S]` buffer.
//! [`augment_batch`] fills a batch on the calling thread (the browser); the native loader hands
//! the per-sample slots from [`MultiViewBatch::sample_slots`] to a thread pool instead. Both use
//! [`augment_sample`], and since each view's random stream is keyed by `(seed, epoch, index,
//! view)`, both produce identical batches.

use burn::tensor::{Bool, Device, Tensor, TensorData};

use super::{DataError, Dataset};
use crate::augment::MultiViewAugment;
use crate::image::Image;
use crate::rng::Rng;

/// One view of every sample in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewBatch {
    pub size: usize,
    /// `[B, 3, size, size]`, normalised.
    pub pixels: Vec<f32>,
    /// `[B, tokens]`, `true` = masked; present when the view's transform masks.
    pub mask: Option<Vec<bool>>,
}

/// All views of a batch of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiViewBatch {
    pub views: Vec<ViewBatch>,
    /// Dataset indices of the samples.
    pub indices: Vec<usize>,
    pub labels: Option<Vec<u32>>,
}

/// The writable slots of one sample: per view, its pixels and (optional) mask.
pub type SampleSlots<'a> = Vec<(&'a mut [f32], Option<&'a mut [bool]>)>;

/// A batch on a device.
pub struct TensorBatch {
    /// One `[B, 3, S, S]` tensor per view.
    pub views: Vec<Tensor<4>>,
    /// One `[B, tokens]` mask per view that masks.
    pub masks: Vec<Option<Tensor<2, Bool>>>,
    pub labels: Option<Vec<u32>>,
}

impl TensorBatch {
    /// Views without masks or labels (benchmarks, tests).
    pub fn from_views(views: Vec<Tensor<4>>) -> Self {
        Self { masks: vec![None; views.len()], views, labels: None }
    }
}

impl MultiViewBatch {
    /// A zeroed batch for `indices` of `dataset` with the views of `augment`.
    pub fn allocate(augment: &MultiViewAugment, dataset: &Dataset, indices: &[usize]) -> Self {
        let b = indices.len();
        let views = augment
            .views
            .iter()
            .map(|v| ViewBatch {
                size: v.size,
                pixels: vec![0.0; b * v.values_per_view()],
                mask: v.masking.map(|_| vec![false; b * v.mask_tokens()]),
            })
            .collect();
        let labels = dataset.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        Self { views, indices: indices.to_vec(), labels }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Splits the buffers into one [`SampleSlots`] per sample, in batch order.
    pub fn sample_slots(&mut self) -> Vec<SampleSlots<'_>> {
        let b = self.indices.len();
        if b == 0 {
            return Vec::new();
        }
        let mut slots: Vec<SampleSlots<'_>> = (0..b).map(|_| Vec::with_capacity(self.views.len())).collect();
        for view in &mut self.views {
            let per_sample = view.pixels.len() / b;
            let masks: Box<dyn Iterator<Item = Option<&mut [bool]>>> = match &mut view.mask {
                Some(m) => {
                    let tokens = m.len() / b;
                    Box::new(m.chunks_mut(tokens).map(Some))
                }
                None => Box::new(std::iter::repeat_with(|| None)),
            };
            for ((slot, pixels), mask) in slots.iter_mut().zip(view.pixels.chunks_mut(per_sample)).zip(masks) {
                slot.push((pixels, mask));
            }
        }
        slots
    }

    /// Uploads the batch to `device`.
    pub fn to_tensors(&self, device: &Device) -> TensorBatch {
        let b = self.len();
        let views =
            self.views.iter().map(|v| Tensor::<4>::from_data(TensorData::new(v.pixels.clone(), [b, 3, v.size, v.size]), device)).collect();
        let masks = self
            .views
            .iter()
            .map(|v| v.mask.as_ref().map(|m| Tensor::<2, Bool>::from_data(TensorData::new(m.clone(), [b, m.len() / b]), device)))
            .collect();
        TensorBatch { views, masks, labels: self.labels.clone() }
    }
}

/// Writes all views of one sample into its slots.
pub fn augment_sample(augment: &MultiViewAugment, image: &Image, seed: u64, epoch: u64, index: usize, slots: SampleSlots<'_>) {
    for (v, (transform, (pixels, mask))) in augment.views.iter().zip(slots).enumerate() {
        let mut rng = Rng::for_view(seed, epoch, index as u64, v as u64);
        transform.apply(image, &mut rng, pixels, mask);
    }
}

/// Augments a batch on the calling thread. Fails only for an on-demand dataset whose image
/// cannot be read.
pub fn augment_batch(
    augment: &MultiViewAugment,
    dataset: &Dataset,
    indices: &[usize],
    seed: u64,
    epoch: u64,
) -> Result<MultiViewBatch, DataError> {
    let mut batch = MultiViewBatch::allocate(augment, dataset, indices);
    for (slots, &index) in batch.sample_slots().into_iter().zip(indices) {
        augment_sample(augment, &*dataset.image(index)?, seed, epoch, index, slots);
    }
    Ok(batch)
}

/// The order in which an epoch visits a dataset, cut into batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochPlan {
    pub batches: Vec<Vec<usize>>,
}

impl EpochPlan {
    /// Samples `0..len` in a random order keyed by `(seed, epoch)` (or in order without
    /// `shuffle`), cut into batches of `batch_size`; with `drop_last` a final short batch is
    /// dropped (batch-statistics losses need full batches).
    pub fn new(len: usize, batch_size: usize, shuffle: bool, drop_last: bool, seed: u64, epoch: u64) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        let order = if shuffle { Rng::from_key(&[seed, epoch, 0x0DE2]).permutation(len) } else { (0..len).collect() };
        let batches = order.chunks(batch_size).filter(|c| !drop_last || c.len() == batch_size).map(<[usize]>::to_vec).collect();
        Self { batches }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::{Masking, Preset, Resolution};
    use crate::data::Split;
    use crate::data::shapes::Shapes;

    #[test]
    fn epoch_plan_shuffles_per_epoch_and_drops_the_last_batch() {
        let a = EpochPlan::new(10, 4, true, true, 1, 0);
        assert_eq!(a.batches.len(), 2);
        let mut seen: Vec<usize> = a.batches.concat();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 8);
        assert_ne!(a, EpochPlan::new(10, 4, true, true, 1, 1), "each epoch has its own order");
        assert_eq!(a, EpochPlan::new(10, 4, true, true, 1, 0));
        let b = EpochPlan::new(10, 4, false, false, 1, 0);
        assert_eq!(b.batches, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    }

    #[test]
    fn batch_layout_matches_single_view_previews() {
        let ds = Shapes::new(40, 3).dataset(6, Split::Train);
        let mut aug = Preset::Byol.build(Resolution::Cifar);
        aug.views[1].masking = Some(Masking::block(4, 0.5));
        let batch = augment_batch(&aug, &ds, &[4, 1, 2], 11, 2).unwrap();
        assert_eq!(batch.labels, Some(vec![4, 1, 2]));
        assert_eq!(batch.views[0].pixels.len(), 3 * 3 * 32 * 32);
        assert!(batch.views[0].mask.is_none());
        assert_eq!(batch.views[1].mask.as_ref().unwrap().len(), 3 * 64);
        // Sample 1 of view 1 equals the preview of dataset index 1, view 1, after normalisation.
        let mut expected = vec![0.0; 3 * 32 * 32];
        aug.views[1].apply(&ds.images[1], &mut Rng::for_view(11, 2, 1, 1), &mut expected, Some(&mut [false; 64]));
        assert_eq!(&batch.views[1].pixels[3 * 32 * 32..2 * 3 * 32 * 32], &expected[..]);
    }

    /// Serves a shapes dataset's images one at a time, as a file reader would; file 3 is broken.
    #[derive(Debug)]
    struct Reader(Vec<Image>);

    impl crate::data::ImageReader for Reader {
        fn read(&self, index: usize) -> Result<Image, DataError> {
            if index == 3 { Err(DataError::new("img3.jpg", "truncated JPEG")) } else { Ok(self.0[index].clone()) }
        }
    }

    #[test]
    fn an_on_demand_dataset_gives_the_in_memory_batches() {
        use crate::data::{OnDemand, OnDemandEntry};
        let ds = Shapes::new(40, 3).dataset(6, Split::Train);
        let entries = ds.images.iter().enumerate().map(|(file, img)| OnDemandEntry { file, size: (img.width, img.height) }).collect();
        let streamed = Dataset {
            images: vec![],
            on_demand: Some(OnDemand { reader: std::sync::Arc::new(Reader(ds.images.clone())), entries }),
            ..ds.clone()
        };
        assert_eq!((streamed.len(), streamed.image_sizes()), (6, vec![((40, 40), 6)]));
        let aug = Preset::Byol.build(Resolution::Cifar);
        assert_eq!(augment_batch(&aug, &streamed, &[5, 0, 2], 7, 1).unwrap(), augment_batch(&aug, &ds, &[5, 0, 2], 7, 1).unwrap());
        let err = augment_batch(&aug, &streamed, &[1, 3], 7, 1).unwrap_err();
        assert_eq!(err.to_string(), "img3.jpg: truncated JPEG");
        // Subsets keep images and labels aligned.
        let (head, tail) = streamed.hold_out(2);
        assert_eq!((head.len(), tail.len(), tail.label(0)), (4, 2, ds.label(4)));
        assert_eq!(*tail.image(1).unwrap(), ds.images[5]);
        assert_eq!(head.truncated(2).len(), 2);
    }

    #[test]
    fn tensors_have_the_batch_shapes() {
        let ds = Shapes::new(32, 3).dataset(4, Split::Train);
        let mut aug = Preset::SimClr.build(Resolution::Cifar);
        aug.views[0].masking = Some(Masking::random(8, 0.25));
        let t = augment_batch(&aug, &ds, &[0, 1, 2, 3], 0, 0).unwrap().to_tensors(&Device::flex());
        assert_eq!(t.views[1].dims(), [4, 3, 32, 32]);
        assert_eq!(t.masks[0].as_ref().unwrap().dims(), [4, 16]);
        assert!(t.masks[1].is_none());
    }
}
