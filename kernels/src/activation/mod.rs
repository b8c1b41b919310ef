//! The transformer's activations on the CPU backend: softmax and GELU as burn operations with
//! handwritten backward passes over the slice kernels of [`softmax`](mod@softmax) and [`gelu`](mod@gelu). burn 0.22
//! builds softmax from a chain of tensor operations (each a pass over the activation, forward
//! and backward) and computes GELU with a scalar `erf` call per element; a ViT step spent more
//! time in these passes than in its matrix products. Other backends keep burn's operations.

mod gelu;
mod softmax;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;

use crate::flex::{contiguous, flex_tensor, last_dim, on_flex_f32, values};

/// Softmax along `dim`: along the last axis in training on the CPU backend through
/// [`softmax`](mod@softmax); otherwise burn's.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if let Some(dtype) = crate::norm::half(&x) {
        return softmax(x.cast(burn::tensor::DType::F32), dim).cast(dtype);
    }
    if dim + 1 == D && x.device().is_autodiff() && on_flex_f32(&x) {
        Tensor::from_dispatch(Dispatch::fused_softmax(x.into_dispatch()))
    } else {
        burn::tensor::activation::softmax(x, dim)
    }
}

/// GELU (exact, `x·Φ(x)`): on the CPU backend through [`gelu`](mod@gelu), with or without
/// autodiff; otherwise burn's.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex_f32(&x) { Tensor::from_dispatch(Dispatch::fused_gelu(x.into_dispatch())) } else { burn::tensor::activation::gelu(x) }
}

/// Softmax over the last axis.
#[backend_extension(Flex, Autodiff)]
pub trait FusedSoftmax: Backend {
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// GELU, exact.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGelu: Backend {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedSoftmax for Flex {
    fn fused_softmax(x: FlexTensor) -> FlexTensor {
        let (shape, x) = (x.shape(), contiguous(x));
        flex_tensor(softmax::forward(last_dim(&shape), values(&x)), shape)
    }
}

impl FusedGelu for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        let (shape, x) = (x.shape(), contiguous(x));
        flex_tensor(gelu::forward(values(&x)), shape)
    }
}

/// Softmax's backward step, from its output.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let y = ops.state;
        if let Some(node) = node_x {
            let dx = softmax::backward(last_dim(&y.shape()), values(&y), values(&dy));
            grads.register::<Flex>(node.id, flex_tensor(dx, y.shape()));
        }
    }
}

impl<C: CheckpointStrategy> FusedSoftmax for Autodiff<Flex, C> {
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SoftmaxBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::fused_softmax(x.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_softmax(x.into_primitive())),
        }
    }
}

/// GELU's backward step, from its input.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(gelu::backward(values(&x), values(&dy)), x.shape()));
        }
    }
}

impl<C: CheckpointStrategy> FusedGelu for Autodiff<Flex, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, Flex::fused_gelu(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_gelu(x.into_primitive())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_tensors_close as assert_close, strided_input, weight_of};
    use burn::tensor::Device;

    /// Along the last axis in training the kernel computes softmax and its gradient as burn
    /// does; along another axis, burn's own runs.
    #[test]
    fn softmax_matches_burn_with_gradients() {
        let device = Device::flex().autodiff();
        for dim in [2, 1] {
            let x = strided_input(&device, 4.0);
            let (ours, theirs) = (x.clone().require_grad(), x.require_grad());
            let (y_ours, y_theirs) = (softmax(ours.clone(), dim), burn::tensor::activation::softmax(theirs.clone(), dim));
            assert_close(y_ours.clone(), y_theirs.clone(), &format!("output, dim {dim}"));
            let (g_ours, g_theirs) = (weight_of(y_ours).backward(), weight_of(y_theirs).backward());
            assert_close(ours.grad(&g_ours).unwrap(), theirs.grad(&g_theirs).unwrap(), &format!("gradient, dim {dim}"));
        }
    }

    /// GELU and its gradient equal burn's (libm's erf), in training and without autodiff.
    #[test]
    fn gelu_matches_burn_with_gradients() {
        let device = Device::flex().autodiff();
        let x = strided_input(&device, 3.0);
        let (ours, theirs) = (x.clone().require_grad(), x.require_grad());
        let (y_ours, y_theirs) = (gelu(ours.clone()), burn::tensor::activation::gelu(theirs.clone()));
        assert_close(y_ours.clone(), y_theirs.clone(), "output");
        let (g_ours, g_theirs) = (weight_of(y_ours).backward(), weight_of(y_theirs).backward());
        assert_close(ours.grad(&g_ours).unwrap(), theirs.grad(&g_theirs).unwrap(), "gradient");
        let x = strided_input(&Device::flex(), 3.0);
        assert_close(gelu(x.clone()), burn::tensor::activation::gelu(x), "without autodiff");
    }
}
