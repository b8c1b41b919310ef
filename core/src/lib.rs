//! # jem-core
//!
//! Joint-embedding self-supervised learning: the parts shared by the native trainer and the
//! browser demo. Nothing here touches files or spawns threads: datasets parse from bytes, batches
//! are filled on the calling thread (the native crate parallelises), and tensors live on whatever
//! burn `Device` the caller passes. The CPU kernels that models call live in `jem-kernels`; this
//! crate has no `unsafe` code.
//!
//! From data to evaluation:
//!
//! - [`data`]: CIFAR-10/100, STL-10, ImageFolder (from bytes) and the procedural shapes dataset;
//!   multi-view batches. [`image`]: the decoded image type.
//! - [`augment`]: torchvision-compatible augmentations, per-view pipelines, multi-crop, masking,
//!   and the papers' presets. [`rng`]: the platform-independent random streams that make views
//!   reproducible.
//! - [`model`]: backbones (ResNet, the browser's ConvNet, ViT) and MLP heads.
//! - [`loss`]: one file per loss functional, each with its paper, formula and shapes.
//! - [`method`]: one file per method (views → embeddings → loss, momentum encoders, queues),
//!   listed once in its registry.
//! - [`recipe`]: the TOML recipe of a run, validated into typed settings ([`config`]: its errors).
//! - [`train`]: optimisers, learning-rate and momentum schedules, the training step.
//! - [`eval`]: kNN, linear probe, fine-tuning, PCA and the collapse monitors.
//! - [`encoder_file`]: the trained encoder as one file for the browser demo.

#![forbid(unsafe_code)]

pub mod augment;
pub mod config;
pub mod data;
pub mod encoder_file;
pub mod eval;
pub mod image;
pub mod loss;
pub mod method;
pub mod model;
pub mod recipe;
pub mod rng;
#[cfg(feature = "torch")]
pub mod torch_file;
pub mod train;

pub use config::ConfigError;
pub use image::Image;

/// jem's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
