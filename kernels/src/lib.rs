//! # jem-kernels
//!
//! jem's CPU kernels for burn's CPU backend (burn-flex), plugged in through burn's backend
//! extension API, each with its backward pass written by hand:
//!
//! - [`conv`]: 2-D convolution by direct kernels (x86-64 with AVX2 + FMA or AVX-512, one file per
//!   instruction set), an implicit GEMM or im2col + GEMM, chosen per shape and CPU;
//! - [`norm`]: BatchNorm in training (with the ReLU and residual addition after it in one pass)
//!   and LayerNorm;
//! - [`activation`]: softmax and GELU.
//!
//! The public functions take burn modules and tensors and fall back to burn's own operations on
//! other backends (WebGPU, CUDA), in other dtypes and where a kernel does not cover a layer, so a
//! model calls them unconditionally. The slice kernels run on rayon's pool natively and on one
//! thread in wasm32. kernels/README.md says which path each layer shape takes.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub mod conv;
mod flex;
pub mod norm;
mod parallel;
mod scratch;
#[cfg(test)]
mod testing;
mod vector_math;

pub use activation::{gelu, softmax};
pub use conv::{ConvGeometry, conv2d};
pub use norm::{NormShape, batch_norm, batch_norm_relu, layer_norm};
