//! CIFAR-10 and CIFAR-100 in the official binary format (Krizhevsky, 2009).
//!
//! Each record is the label byte(s) followed by 3072 pixel bytes: the 1024 red values of the
//! 32×32 image row by row, then green, then blue.
//! - CIFAR-10 (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`): 1 label byte, 3073 bytes.
//! - CIFAR-100 (`train.bin`, `test.bin`): coarse label byte, fine label byte, 3074 bytes.

use super::{DataError, Dataset};
use crate::image::Image;

pub const CIFAR10_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const PIXELS: usize = 32 * 32 * 3;

/// Which CIFAR flavour a file holds, and for CIFAR-100 which label to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    Cifar10,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100Fine,
    /// CIFAR-100 with its 20 coarse (superclass) labels.
    Cifar100Coarse,
}

impl CifarKind {
    pub fn record_len(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1 + PIXELS,
            _ => 2 + PIXELS,
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }

    fn label_offset(self) -> usize {
        match self {
            CifarKind::Cifar10 | CifarKind::Cifar100Coarse => 0,
            CifarKind::Cifar100Fine => 1,
        }
    }

    fn format(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "CIFAR-10 binary",
            _ => "CIFAR-100 binary",
        }
    }
}

/// Parses one CIFAR binary file. `file` names it in errors.
pub fn parse(bytes: &[u8], kind: CifarKind, file: &str) -> Result<Dataset, DataError> {
    let record = kind.record_len();
    if bytes.is_empty() {
        return Err(DataError::new(file, "file is empty"));
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(DataError::new(
            file,
            format!(
                "size {} bytes is not a multiple of the {} record size {record} bytes ({} whole records and {} bytes left over); the file is truncated or not {}",
                bytes.len(),
                kind.format(),
                bytes.len() / record,
                bytes.len() % record,
                kind.format()
            ),
        ));
    }
    let n = bytes.len() / record;
    let label_bytes = record - PIXELS;
    let mut images = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[kind.label_offset()] as usize;
        if label >= kind.num_classes() {
            return Err(DataError::new(
                file,
                format!(
                    "record {i} has label {label}, but {} has {} classes; is this the right format?",
                    kind.format(),
                    kind.num_classes()
                ),
            ));
        }
        labels.push(label as u32);
        let planes = &rec[label_bytes..];
        images.push(Image::from_planes(32, 32, planes, |c, y, x| c * 1024 + y * 32 + x));
    }
    let classes = match kind {
        CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        _ => (0..kind.num_classes()).map(|c| format!("class_{c}")).collect(),
    };
    Ok(Dataset { format: kind.format().into(), images, labels: Some(labels), classes, skipped: vec![], on_demand: None })
}

/// Class names from a `batches.meta.txt`-style file (one name per line, blank lines ignored).
pub fn parse_class_names(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Writes images and labels in the CIFAR-10 (or CIFAR-100, with `coarse`) record format. Used to
/// make test fixtures and to export subsets.
pub fn encode(images: &[Image], labels: &[u32], coarse: Option<&[u32]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, img) in images.iter().enumerate() {
        assert_eq!((img.width, img.height), (32, 32), "CIFAR images are 32×32");
        if let Some(coarse) = coarse {
            out.push(coarse[i] as u8);
        }
        out.push(labels[i] as u8);
        for c in 0..3 {
            out.extend(img.pixels.iter().skip(c).step_by(3));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_images() -> Vec<Image> {
        let a = Image::new(32, 32, (0..PIXELS).map(|i| (i % 251) as u8).collect());
        let b = Image::filled(32, 32, [9, 8, 7]);
        vec![a, b]
    }

    #[test]
    fn cifar10_round_trip_and_channel_layout() {
        let imgs = two_images();
        let bytes = encode(&imgs, &[3, 9], None);
        assert_eq!(bytes.len(), 2 * 3073);
        // Record 1: label byte, then 1024 red bytes = 9, 1024 green = 8, 1024 blue = 7.
        assert_eq!(bytes[3073], 9);
        assert_eq!(bytes[3074], 9);
        assert_eq!(bytes[3074 + 1024], 8);
        assert_eq!(bytes[3074 + 2048], 7);
        let ds = parse(&bytes, CifarKind::Cifar10, "x.bin").unwrap();
        assert_eq!(ds.images, imgs);
        assert_eq!(ds.labels, Some(vec![3, 9]));
        assert_eq!(ds.classes[3], "cat");
    }

    #[test]
    fn cifar100_reads_fine_or_coarse_labels() {
        let bytes = encode(&two_images(), &[42, 99], Some(&[4, 19]));
        assert_eq!(bytes.len(), 2 * 3074);
        assert_eq!(parse(&bytes, CifarKind::Cifar100Fine, "t").unwrap().labels, Some(vec![42, 99]));
        assert_eq!(parse(&bytes, CifarKind::Cifar100Coarse, "t").unwrap().labels, Some(vec![4, 19]));
        assert_eq!(parse(&bytes, CifarKind::Cifar100Fine, "t").unwrap().images, two_images());
    }

    #[test]
    fn wrong_sizes_and_labels_are_clear_errors() {
        let bytes = encode(&two_images(), &[1, 2], None);
        let err = parse(&bytes[..bytes.len() - 5], CifarKind::Cifar10, "data_batch_1.bin").unwrap_err();
        assert_eq!(err.file, "data_batch_1.bin");
        assert!(err.problem.contains("not a multiple") && err.problem.contains("3073"), "{err}");
        assert!(parse(&[], CifarKind::Cifar10, "e.bin").unwrap_err().problem.contains("empty"));
        let mut bad = bytes.clone();
        bad[0] = 200;
        assert!(parse(&bad, CifarKind::Cifar10, "b.bin").unwrap_err().problem.contains("label 200"));
    }

    #[test]
    fn class_names_file() {
        assert_eq!(parse_class_names("airplane\n automobile \n\n"), vec!["airplane", "automobile"]);
    }
}
