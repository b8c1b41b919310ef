//! # jem-core
//!
//! Joint-embedding self-supervised learning: the parts shared by the native trainer and the
//! browser demo. Nothing here touches files or spawns threads: datasets parse from bytes, batches
//! are filled on the calling thread (the native crate parallelises), and tensors live on whatever
//! burn `Device` the caller passes. Compute kernels use rayon's pool where one exists (native), as
//! burn's CPU backend does.
//!
//! - [`data`]: CIFAR-10/100, STL-10, ImageFolder (from bytes) and the procedural shapes dataset;
//!   multi-view batches.
//! - [`augment`]: torchvision-compatible augmentations, per-view pipelines, multi-crop, masking,
//!   and the papers' presets.
//! - [`rng`]: the platform-independent random streams that make views reproducible.
//! - [`kernel`]: the CPU backend's convolution as im2col + GEMM in all three passes, with its
//!   own backward (through burn's backend-extension API).

pub mod augment;
pub mod data;
pub mod encoder_file;
pub mod eval;
pub mod image;
pub mod kernel;
pub mod loss;
pub mod method;
pub mod model;
pub mod recipe;
pub mod rng;
pub mod train;

pub use image::Image;

/// jem's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
