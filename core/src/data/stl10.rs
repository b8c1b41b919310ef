//! STL-10 binary format (Coates, Ng & Lee, 2011): 96×96 RGB images.
//!
//! `*_X.bin` holds `N × 3 × 96 × 96` bytes; each channel plane is stored **column-major** (as
//! MATLAB wrote it), so pixel (row y, column x) of channel c is at `c·9216 + x·96 + y`.
//! `*_y.bin` holds `N` label bytes in `1..=10`. `unlabeled_X.bin` has no label file.

use super::{DataError, Dataset};
use crate::image::Image;

pub const SIDE: usize = 96;
const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
pub const STL10_CLASSES: [&str; 10] = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"];

/// Parses an `*_X.bin` image file and, if given, its `*_y.bin` label file.
pub fn parse(images: &[u8], images_file: &str, labels: Option<(&[u8], &str)>) -> Result<Dataset, DataError> {
    if images.is_empty() || !images.len().is_multiple_of(IMAGE_BYTES) {
        return Err(DataError::new(
            images_file,
            format!("size {} bytes is not a positive multiple of the STL-10 image size {IMAGE_BYTES} bytes (3×96×96)", images.len()),
        ));
    }
    let n = images.len() / IMAGE_BYTES;
    let labels = match labels {
        None => None,
        Some((bytes, file)) => {
            if bytes.len() != n {
                return Err(DataError::new(file, format!("has {} labels but {images_file} has {n} images", bytes.len())));
            }
            if let Some((i, &l)) = bytes.iter().enumerate().find(|&(_, &l)| !(1..=10).contains(&l)) {
                return Err(DataError::new(file, format!("label {i} is {l}; STL-10 labels are 1 to 10")));
            }
            Some(bytes.iter().map(|&l| l as u32 - 1).collect())
        }
    };
    let images = images
        .chunks_exact(IMAGE_BYTES)
        .map(|planes| Image::from_planes(SIDE, SIDE, planes, |c, y, x| c * SIDE * SIDE + x * SIDE + y))
        .collect();
    Ok(Dataset {
        format: "STL-10 binary".into(),
        images,
        labels,
        classes: STL10_CLASSES.iter().map(|s| s.to_string()).collect(),
        skipped: vec![],
        on_demand: None,
    })
}

/// Encodes images in the STL-10 `*_X.bin` layout (test fixtures).
pub fn encode_images(images: &[Image]) -> Vec<u8> {
    let mut out = vec![0u8; images.len() * IMAGE_BYTES];
    for (img, dst) in images.iter().zip(out.chunks_exact_mut(IMAGE_BYTES)) {
        for y in 0..SIDE {
            for x in 0..SIDE {
                for c in 0..3 {
                    dst[c * SIDE * SIDE + x * SIDE + y] = img.pixels[(y * SIDE + x) * 3 + c];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_major_planes_are_transposed_back() {
        // Red = row index, green = column index: after parsing, red must grow down the image.
        let mut px = Vec::new();
        for y in 0..SIDE {
            for x in 0..SIDE {
                px.extend_from_slice(&[y as u8, x as u8, 50]);
            }
        }
        let img = Image::new(SIDE, SIDE, px);
        let bytes = encode_images(std::slice::from_ref(&img));
        assert_eq!(bytes[1], 1, "second byte of the red plane is row 1, column 0");
        let ds = parse(&bytes, "train_X.bin", Some((&[10], "train_y.bin"))).unwrap();
        assert_eq!(ds.images[0], img);
        assert_eq!(ds.labels, Some(vec![9]));
        assert_eq!(ds.classes[9], "truck");
    }

    #[test]
    fn bad_sizes_and_labels_name_the_file() {
        let err = parse(&[0; 100], "train_X.bin", None).unwrap_err();
        assert_eq!(err.file, "train_X.bin");
        let img = vec![0u8; IMAGE_BYTES];
        assert!(parse(&img, "x", Some((&[1, 2], "train_y.bin"))).unwrap_err().problem.contains("2 labels"));
        assert!(parse(&img, "x", Some((&[0], "train_y.bin"))).unwrap_err().problem.contains("1 to 10"));
        assert!(parse(&img, "unlabeled_X.bin", None).unwrap().labels.is_none());
    }
}
