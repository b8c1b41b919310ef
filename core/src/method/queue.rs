//! A first-in, first-out memory bank of embeddings: MoCo's negatives, NNCLR's support set and
//! SwAV's queue of past features. The queue holds more samples than a batch, so a method
//! sees many negatives (or candidates) without a large batch.
//!
//! Entries are stored newest first, `[size, D]`. Pushing a batch of `B` rows puts them at the top
//! and drops the `B` oldest. The queue starts filled with random unit vectors, as MoCo's does;
//! a method that must wait for real samples (SwAV) counts its pushes by the step number, which
//! needs no read from the device.
//!
//! The contents are module state (a [`RunningState`]), so checkpoints carry them.

use burn::module::{Module, RunningState};
use burn::tensor::{Device, Distribution, Tensor};

use crate::loss::l2_normalize;

#[derive(Module, Debug)]
pub struct Queue {
    entries: RunningState<Tensor<2>>,
}

impl Queue {
    /// A queue of `size` entries of dimension `dim`.
    pub fn new(size: usize, dim: usize, device: &Device) -> Self {
        assert!(size > 0 && dim > 0, "a queue needs at least one entry of at least one dimension");
        let random = Tensor::<2>::random([size, dim], Distribution::Normal(0.0, 1.0), device);
        Self { entries: RunningState::new(l2_normalize(random).detach()) }
    }

    pub fn size(&self) -> usize {
        self.entries.value().dims()[0]
    }

    /// The entries, newest first, `[size, D]` (no gradient).
    pub fn entries(&self) -> Tensor<2> {
        self.entries.value_sync()
    }

    /// Puts `rows` (`[B, D]`, B ≤ size) at the top and drops the B oldest entries.
    pub fn push(&self, rows: Tensor<2>) {
        let [b, d] = rows.dims();
        let [size, dim] = self.entries.value().dims();
        assert!(b <= size && d == dim, "pushing [{b}, {d}] into a queue of [{size}, {dim}]");
        let kept = self.entries.value_sync().slice(0..size - b);
        self.entries.update(Tensor::cat(vec![rows.detach(), kept], 0));
        // `update` parks the value per thread until the next read; settle it now so that a
        // checkpoint written right after this step holds it.
        self.entries.value_sync();
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    fn rows(values: &[f32], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
    }

    #[test]
    fn first_in_first_out_newest_first() {
        let device = Device::flex().autodiff();
        let queue = Queue::new(6, 1, &device);
        let first: Vec<f32> = queue.entries().into_data().try_to_vec().unwrap();
        assert!(first.iter().all(|v| (v.abs() - 1.0).abs() < 1e-6), "unit vectors at the start: {first:?}");
        queue.push(rows(&[1.0, 2.0], &device));
        queue.push(rows(&[3.0, 4.0], &device));
        let got: Vec<f32> = queue.entries().into_data().try_to_vec().unwrap();
        assert_eq!(&got[..4], &[3.0, 4.0, 1.0, 2.0]);
        assert_eq!(&got[4..], &first[..2], "the two oldest initial entries are left");
        // Two more pushes wrap past the size: the oldest batch (1, 2) and the initial entries go.
        queue.push(rows(&[5.0, 6.0], &device));
        queue.push(rows(&[7.0, 8.0], &device));
        let got: Vec<f32> = queue.entries().into_data().try_to_vec().unwrap();
        assert_eq!(got, [7.0, 8.0, 5.0, 6.0, 3.0, 4.0]);
    }
}
