//! Datasets: images held as `u8` RGB, optional labels, parsed from bytes.
//!
//! Formats parse from byte slices here, so the same code runs natively and in the browser; the
//! native crate does the file and folder access. Bad input is an error naming the file and the
//! problem, never a panic.

pub mod batch;
pub mod cifar;
pub mod image_folder;
pub mod shapes;
pub mod stl10;

use std::borrow::Cow;
use std::sync::Arc;

use crate::image::Image;

/// An error in a dataset file, for the user: which file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct DataError {
    pub file: String,
    pub problem: String,
}

impl DataError {
    pub fn new(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { file: file.into(), problem: problem.into() }
    }
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
    /// Images without labels (STL-10's `unlabeled_X.bin`).
    Unlabeled,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
            Split::Unlabeled => "unlabeled",
        }
    }
}

/// A file that was left out of a dataset, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// Decodes one image at a time, for datasets too large to hold decoded in memory. Core never
/// touches files: the native crate's reader opens them.
pub trait ImageReader: Send + Sync + std::fmt::Debug {
    /// Decodes image `index` of the reader's own list (an [`OnDemand`] entry's `file`).
    fn read(&self, index: usize) -> Result<Image, DataError>;
}

/// Images decoded when a batch needs them rather than at load time.
#[derive(Debug, Clone)]
pub struct OnDemand {
    pub reader: Arc<dyn ImageReader>,
    /// One entry per dataset image, in dataset order.
    pub entries: Vec<OnDemandEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDemandEntry {
    /// Index in the reader's list.
    pub file: usize,
    /// `(width, height)`, read from the file's header.
    pub size: (usize, usize),
}

/// Images with optional labels, decoded in memory (`images`) or read on demand (`on_demand`).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Format, e.g. `CIFAR-10 binary`.
    pub format: String,
    /// The decoded images; empty when `on_demand` is set.
    pub images: Vec<Image>,
    /// Set for datasets streamed from disk: images are decoded per batch.
    pub on_demand: Option<OnDemand>,
    /// One label per image, indexing `classes`; `None` for unlabeled data.
    pub labels: Option<Vec<u32>>,
    pub classes: Vec<String>,
    /// Files left out while loading (ImageFolder only).
    pub skipped: Vec<SkippedFile>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.on_demand {
            Some(d) => d.entries.len(),
            None => self.images.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `index`: borrowed from memory, or decoded now for an on-demand dataset (which is
    /// where a file that became unreadable after loading shows up as an error).
    pub fn image(&self, index: usize) -> Result<Cow<'_, Image>, DataError> {
        match &self.on_demand {
            Some(d) => d.reader.read(d.entries[index].file).map(Cow::Owned),
            None => Ok(Cow::Borrowed(&self.images[index])),
        }
    }

    /// `(width, height)` of image `index`, without decoding it.
    pub fn image_size(&self, index: usize) -> (usize, usize) {
        match &self.on_demand {
            Some(d) => d.entries[index].size,
            None => (self.images[index].width, self.images[index].height),
        }
    }

    pub fn label(&self, index: usize) -> Option<u32> {
        self.labels.as_ref().map(|l| l[index])
    }

    /// Number of images per class (empty for unlabeled data).
    pub fn class_histogram(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in self.labels.iter().flatten() {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Distinct image sizes `(width, height)` with their counts, most frequent first.
    pub fn image_sizes(&self) -> Vec<((usize, usize), usize)> {
        let mut sizes = std::collections::BTreeMap::new();
        for index in 0..self.len() {
            *sizes.entry(self.image_size(index)).or_insert(0) += 1;
        }
        let mut sizes: Vec<_> = sizes.into_iter().collect();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sizes
    }

    /// Splits off the last `n` images as a held-out set: `(first len − n, last n)`. Used where
    /// a source has one split only (an uploaded CIFAR batch in the browser).
    pub fn hold_out(mut self, n: usize) -> (Dataset, Dataset) {
        let at = self.len().saturating_sub(n);
        let held = Dataset {
            format: self.format.clone(),
            images: if self.on_demand.is_some() { Vec::new() } else { self.images.split_off(at) },
            on_demand: self.on_demand.as_mut().map(|d| OnDemand { reader: d.reader.clone(), entries: d.entries.split_off(at) }),
            labels: self.labels.as_mut().map(|l| l.split_off(at)),
            classes: self.classes.clone(),
            skipped: Vec::new(),
        };
        (self, held)
    }

    /// The first `n` images (with their labels): a quick subset for smoke runs.
    pub fn truncated(mut self, n: usize) -> Self {
        self.images.truncate(n);
        if let Some(d) = &mut self.on_demand {
            d.entries.truncate(n);
        }
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
        self
    }
}

/// Appends `other` to `into` (e.g. CIFAR-10's five training batches). Classes must agree; both
/// are in memory.
pub fn concat(into: &mut Dataset, other: Dataset) {
    assert!(into.on_demand.is_none() && other.on_demand.is_none(), "concat joins in-memory datasets");
    into.images.extend(other.images);
    match (&mut into.labels, other.labels) {
        (Some(a), Some(b)) => a.extend(b),
        (a, _) => *a = None,
    }
    into.skipped.extend(other.skipped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_out_keeps_images_and_labels_aligned() {
        let images: Vec<Image> = (0..5).map(|i| Image::filled(1, 1, [i, 0, 0])).collect();
        let ds =
            Dataset { format: "t".into(), images, labels: Some(vec![0, 1, 2, 3, 4]), classes: vec!["c".into(); 5], ..Default::default() };
        let (train, test) = ds.hold_out(2);
        assert_eq!((train.len(), test.labels.as_deref()), (3, Some(&[3u32, 4][..])));
        assert_eq!(test.images[0].pixels[0], 3);
        assert_eq!(train.clone().hold_out(10).0.len(), 0);
    }

    #[test]
    fn histogram_and_sizes() {
        let ds = Dataset {
            format: "test".into(),
            images: vec![Image::filled(2, 2, [0; 3]), Image::filled(3, 2, [0; 3]), Image::filled(2, 2, [0; 3])],
            labels: Some(vec![1, 0, 1]),
            classes: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(ds.class_histogram(), vec![1, 2]);
        assert_eq!(ds.image_sizes(), vec![((2, 2), 2), ((3, 2), 1)]);
        assert_eq!(ds.truncated(1).labels, Some(vec![1]));
    }
}
