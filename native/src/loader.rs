//! The native multi-view batch loader: shuffles, augments on all cores, and prefetches on a
//! background thread so that augmentation overlaps the training step.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use jem_core::augment::MultiViewAugment;
use jem_core::data::batch::{EpochPlan, MultiViewBatch, augment_sample};
use jem_core::data::{DataError, Dataset};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
}

/// One epoch of batches, produced on a background thread. A batch is an error when an image of
/// an on-demand dataset cannot be read; the epoch ends there.
pub struct EpochLoader {
    batches: Receiver<Result<MultiViewBatch, DataError>>,
    worker: Option<JoinHandle<()>>,
    len: usize,
}

/// Augments `indices` of `dataset` on the rayon pool (decoding them there too when the dataset
/// is read on demand).
pub fn augment_parallel(
    augment: &MultiViewAugment,
    dataset: &Dataset,
    indices: &[usize],
    seed: u64,
    epoch: u64,
) -> Result<MultiViewBatch, DataError> {
    let mut batch = MultiViewBatch::allocate(augment, dataset, indices);
    batch.sample_slots().into_par_iter().zip(indices.par_iter()).try_for_each(|(slots, &index)| {
        augment_sample(augment, &*dataset.image(index)?, seed, epoch, index, slots);
        Ok(())
    })?;
    Ok(batch)
}

impl EpochLoader {
    pub fn new(dataset: Arc<Dataset>, augment: Arc<MultiViewAugment>, config: LoaderConfig, epoch: u64) -> Self {
        Self::starting_at(dataset, augment, config, epoch, 0)
    }

    /// The epoch's batches from batch `first` on (resuming part-way through an epoch): the same
    /// batches, with the same augmentations, as the full epoch has at those positions.
    pub fn starting_at(dataset: Arc<Dataset>, augment: Arc<MultiViewAugment>, config: LoaderConfig, epoch: u64, first: usize) -> Self {
        let mut plan = EpochPlan::new(dataset.len(), config.batch_size, config.shuffle, config.drop_last, config.seed, epoch);
        plan.batches.drain(..first.min(plan.batches.len()));
        let len = plan.batches.len();
        let (sender, batches) = sync_channel(config.prefetch.max(1));
        let worker = std::thread::Builder::new()
            .name("jem-loader".into())
            .spawn(move || {
                for indices in plan.batches {
                    let batch = augment_parallel(&augment, &dataset, &indices, config.seed, epoch);
                    let failed = batch.is_err();
                    if sender.send(batch).is_err() || failed {
                        return; // the consumer stopped early, or the epoch cannot go on
                    }
                }
            })
            .expect("cannot spawn the loader thread");
        Self { batches, worker: Some(worker), len }
    }

    /// Number of batches in the epoch.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Iterator for EpochLoader {
    type Item = Result<MultiViewBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.batches.recv().ok()
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        // Unblock a worker waiting to send, then wait for it.
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jem_core::augment::{Preset, Resolution};
    use jem_core::data::Split;
    use jem_core::data::batch::augment_batch;
    use jem_core::data::shapes::Shapes;

    #[test]
    fn parallel_loader_equals_the_sequential_pipeline() {
        let ds = Arc::new(Shapes::new(32, 4).dataset(50, Split::Train));
        let aug = Arc::new(Preset::SimClr.build(Resolution::Cifar));
        let config = LoaderConfig { batch_size: 16, shuffle: true, drop_last: true, seed: 9, prefetch: 2 };
        let loader = EpochLoader::new(ds.clone(), aug.clone(), config, 3);
        assert_eq!(loader.len(), 3);
        let batches: Vec<MultiViewBatch> = loader.map(Result::unwrap).collect();
        assert_eq!(batches.len(), 3);
        let plan = EpochPlan::new(50, 16, true, true, 9, 3);
        for (batch, indices) in batches.iter().zip(&plan.batches) {
            assert_eq!(batch, &augment_batch(&aug, &ds, indices, 9, 3).unwrap());
        }
    }

    #[test]
    fn dropping_a_loader_early_stops_its_worker() {
        let ds = Arc::new(Shapes::new(32, 4).dataset(64, Split::Train));
        let aug = Arc::new(Preset::SimClr.build(Resolution::Cifar));
        let config = LoaderConfig { batch_size: 4, shuffle: false, drop_last: false, seed: 0, prefetch: 1 };
        let mut loader = EpochLoader::new(ds, aug, config, 0);
        assert!(loader.next().is_some());
        drop(loader); // must not hang
    }
}
