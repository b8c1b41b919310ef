//! ImageFolder (torchvision's layout): `root/<class>/<image>`, classes sorted by name.
//!
//! Files with the extensions `jpg`, `jpeg`, `png`, `webp` and `bmp` (any case) are images; other
//! files are ignored. An image that fails to decode is skipped and recorded in
//! [`Dataset::skipped`], or is an error in strict mode. This module assembles a dataset from
//! `(class, file name, bytes)` entries; walking the folders is the native crate's job.

use std::sync::Arc;

use super::{DataError, Dataset, ImageReader, OnDemand, OnDemandEntry, SkippedFile};
use crate::image::Image;

pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Whether a file name has an image extension.
pub fn is_image_file(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Builds an ImageFolder dataset one file at a time.
pub struct ImageFolderBuilder {
    strict: bool,
    dataset: Dataset,
    class_counts: Vec<usize>,
    /// Images added by [`Self::add_on_demand`], decoded later by a reader.
    on_demand: Vec<OnDemandEntry>,
}

impl ImageFolderBuilder {
    /// `classes` are the class folder names; they are sorted to give label indices.
    pub fn new(mut classes: Vec<String>, strict: bool) -> Self {
        classes.sort();
        let class_counts = vec![0; classes.len()];
        Self {
            strict,
            class_counts,
            on_demand: Vec::new(),
            dataset: Dataset { format: "ImageFolder".into(), classes, labels: Some(vec![]), ..Default::default() },
        }
    }

    /// Adds one file of class `class`. `path` names it in messages. Non-image names are ignored.
    pub fn add(&mut self, class: &str, path: &str, bytes: &[u8]) -> Result<(), DataError> {
        if !is_image_file(path) {
            return Ok(());
        }
        self.add_decoded(class, path, Image::decode(bytes).map_err(|e| e.to_string()))
    }

    /// Adds an image decoded elsewhere (e.g. on a thread pool), or the reason it could not be
    /// read or decoded.
    pub fn add_decoded(&mut self, class: &str, path: &str, image: Result<Image, String>) -> Result<(), DataError> {
        if let Some(img) = self.accept(class, path, image)? {
            self.dataset.images.push(img);
        }
        Ok(())
    }

    /// Adds an image to be decoded later, as file `file` of the reader given to
    /// [`Self::finish_on_demand`]: its `(width, height)` from the file header, or why the header
    /// could not be read.
    pub fn add_on_demand(&mut self, class: &str, path: &str, file: usize, size: Result<(usize, usize), String>) -> Result<(), DataError> {
        if let Some(size) = self.accept(class, path, size)? {
            self.on_demand.push(OnDemandEntry { file, size });
        }
        Ok(())
    }

    /// Labels an image that was read, or records (strict: returns) why it was not.
    fn accept<T>(&mut self, class: &str, path: &str, read: Result<T, String>) -> Result<Option<T>, DataError> {
        let label = self
            .dataset
            .classes
            .binary_search_by(|c| c.as_str().cmp(class))
            .map_err(|_| DataError::new(path, format!("class '{class}' is not one of the dataset's classes")))?;
        match read {
            Ok(value) => {
                self.dataset.labels.as_mut().expect("ImageFolder is labelled").push(label as u32);
                self.class_counts[label] += 1;
                Ok(Some(value))
            }
            Err(e) if self.strict => Err(DataError::new(path, format!("cannot read image: {e}"))),
            Err(reason) => {
                self.dataset.skipped.push(SkippedFile { path: path.into(), reason });
                Ok(None)
            }
        }
    }

    /// Finishes a dataset built with [`Self::add_on_demand`]: `reader` decodes its images.
    pub fn finish_on_demand(mut self, root: &str, reader: Arc<dyn ImageReader>) -> Result<Dataset, DataError> {
        let entries = std::mem::take(&mut self.on_demand);
        let mut dataset = self.finish(root)?;
        dataset.format = "ImageFolder (streamed from disk)".into();
        dataset.on_demand = Some(OnDemand { reader, entries });
        Ok(dataset)
    }

    /// Finishes the dataset; every class folder must hold at least one image. `root` names the
    /// dataset folder in errors.
    pub fn finish(self, root: &str) -> Result<Dataset, DataError> {
        if self.dataset.classes.is_empty() {
            return Err(DataError::new(root, "has no class folders; ImageFolder expects root/<class>/<image>"));
        }
        if let Some(empty) = self.class_counts.iter().position(|&c| c == 0) {
            return Err(DataError::new(
                format!("{root}/{}", self.dataset.classes[empty]),
                "class folder has no readable images (jpg, jpeg, png, webp, bmp)",
            ));
        }
        Ok(self.dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(rgb: [u8; 3]) -> Vec<u8> {
        Image::filled(4, 3, rgb).to_png()
    }

    #[test]
    fn extensions_any_case() {
        assert!(is_image_file("a/b.JPG") && is_image_file("x.webp") && is_image_file("y.Bmp"));
        assert!(!is_image_file("notes.txt") && !is_image_file("jpg") && !is_image_file(".DS_Store"));
    }

    #[test]
    fn classes_are_sorted_and_labels_follow() {
        let mut b = ImageFolderBuilder::new(vec!["zebra".into(), "ant".into()], false);
        b.add("zebra", "zebra/1.png", &png([1, 2, 3])).unwrap();
        b.add("ant", "ant/1.png", &png([4, 5, 6])).unwrap();
        b.add("ant", "ant/readme.txt", b"text").unwrap();
        let ds = b.finish("root").unwrap();
        assert_eq!(ds.classes, vec!["ant", "zebra"]);
        assert_eq!(ds.labels, Some(vec![1, 0]));
        assert!(ds.skipped.is_empty(), "non-image files are ignored, not skipped");
    }

    #[test]
    fn corrupt_images_are_skipped_or_strict_errors() {
        let mut b = ImageFolderBuilder::new(vec!["a".into()], false);
        b.add("a", "a/good.png", &png([1, 1, 1])).unwrap();
        b.add("a", "a/fake.jpg", b"just text").unwrap();
        let ds = b.finish("root").unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds.skipped.len(), 1);
        assert_eq!(ds.skipped[0].path, "a/fake.jpg");
        let mut strict = ImageFolderBuilder::new(vec!["a".into()], true);
        let err = strict.add("a", "a/fake.jpg", b"just text").unwrap_err();
        assert_eq!(err.file, "a/fake.jpg");
    }

    #[test]
    fn on_demand_images_keep_labels_sizes_and_skipped_files() {
        #[derive(Debug)]
        struct Unreadable;
        impl ImageReader for Unreadable {
            fn read(&self, index: usize) -> Result<Image, DataError> {
                Err(DataError::new(format!("file{index}"), "gone"))
            }
        }
        let mut b = ImageFolderBuilder::new(vec!["b".into(), "a".into()], false);
        b.add_on_demand("b", "b/1.jpg", 0, Ok((5, 4))).unwrap();
        b.add_on_demand("a", "a/1.jpg", 1, Err("not an image".into())).unwrap();
        b.add_on_demand("a", "a/2.jpg", 2, Ok((3, 3))).unwrap();
        let ds = b.finish_on_demand("root", Arc::new(Unreadable)).unwrap();
        assert_eq!((ds.len(), ds.images.len(), ds.labels.clone()), (2, 0, Some(vec![1, 0])));
        assert_eq!((ds.image_size(0), ds.image_size(1)), ((5, 4), (3, 3)));
        assert_eq!(ds.skipped[0].path, "a/1.jpg");
        assert_eq!(ds.image(1).unwrap_err().file, "file2", "entry 1 is the reader's file 2");
        let mut strict = ImageFolderBuilder::new(vec!["a".into()], true);
        assert_eq!(strict.add_on_demand("a", "a/1.jpg", 0, Err("not an image".into())).unwrap_err().file, "a/1.jpg");
    }

    #[test]
    fn empty_class_and_no_classes_are_errors() {
        let mut b = ImageFolderBuilder::new(vec!["a".into(), "b".into()], false);
        b.add("a", "a/1.png", &png([0, 0, 0])).unwrap();
        let err = b.finish("root").unwrap_err();
        assert_eq!(err.file, "root/b");
        assert!(ImageFolderBuilder::new(vec![], false).finish("root").is_err());
    }
}
