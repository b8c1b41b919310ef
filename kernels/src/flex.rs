//! What the burn operations share: whether a tensor is one the kernels take, and moving values
//! between burn-flex tensors and the plain slices the kernels work on.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

/// Whether `x` runs on the CPU backend in `f32`, where the kernels apply.
pub fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// The tensor's values in row-major order (copied only when its layout is strided).
pub fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() { tensor } else { tensor.to_contiguous() }
}

/// The values of a tensor made [`contiguous`].
pub fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("contiguous f32 (see `contiguous`)")
}

pub fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// The length of the last axis.
pub fn last_dim(shape: &Shape) -> usize {
    shape[shape.num_dims() - 1]
}
