//! The transformer's memory-bound operations on the CPU backend: LayerNorm, softmax and GELU as
//! kernels of our own ([`super::layer_norm`], [`super::softmax`], [`super::gelu`]) with
//! handwritten backward passes, through burn's backend-extension API. In training burn 0.22
//! builds LayerNorm and softmax from chains of tensor operations (each a pass over the
//! activation, forward and backward) and computes GELU with a scalar `erf` call per element; a
//! ViT step spent more time in these passes than in its matrix products. Other backends, and
//! the cases these kernels do not cover, keep burn's operations.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::tensor::Tensor;

use super::{contiguous, flex_tensor, on_flex_f32, values};
use super::{gelu as gelu_kernel, layer_norm as layer_norm_kernel, softmax as softmax_kernel};

/// `norm.forward(x)` for a LayerNorm built with `epsilon` (burn keeps its ε private, so the
/// caller passes the one it configured): in training on the CPU backend through
/// [`super::layer_norm`]; otherwise burn's (whose CPU inference path is already one pass).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    match &norm.beta {
        Some(beta) if x.device().is_autodiff() && on_flex_f32(&x) => {
            let (y, _, _) =
                Dispatch::fused_layer_norm(x.into_dispatch(), norm.gamma.val().into_dispatch(), beta.val().into_dispatch(), epsilon);
            Tensor::from_dispatch(y)
        }
        _ => norm.forward(x),
    }
}

/// Softmax along `dim`: along the last axis in training on the CPU backend through
/// [`super::softmax`]; otherwise burn's.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if dim + 1 == D && x.device().is_autodiff() && on_flex_f32(&x) {
        Tensor::from_dispatch(Dispatch::fused_softmax(x.into_dispatch()))
    } else {
        burn::tensor::activation::softmax(x, dim)
    }
}

/// GELU (exact, `x·Φ(x)`): on the CPU backend through [`super::gelu`], with or without
/// autodiff; otherwise burn's.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex_f32(&x) { Tensor::from_dispatch(Dispatch::fused_gelu(x.into_dispatch())) } else { burn::tensor::activation::gelu(x) }
}

/// LayerNorm over the last axis (training): the output, each row's mean and `1/√(σ² + ε)`.
#[backend_extension(Flex, Autodiff)]
pub trait FusedLayerNorm: Backend {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
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

fn last_dim(shape: &burn::tensor::Shape) -> usize {
    shape[shape.num_dims() - 1]
}

impl FusedLayerNorm for Flex {
    fn fused_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (shape, x, gamma, beta) = (x.shape(), contiguous(x), contiguous(gamma), contiguous(beta));
        let (y, mean, inv_std) = layer_norm_kernel::forward(last_dim(&shape), values(&x), values(&gamma), values(&beta), epsilon);
        let rows = mean.len();
        (flex_tensor(y, shape), flex_tensor(mean, [rows]), flex_tensor(inv_std, [rows]))
    }
}

impl FusedSoftmax for Flex {
    fn fused_softmax(x: FlexTensor) -> FlexTensor {
        let (shape, x) = (x.shape(), contiguous(x));
        flex_tensor(softmax_kernel::forward(last_dim(&shape), values(&x)), shape)
    }
}

impl FusedGelu for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        let (shape, x) = (x.shape(), contiguous(x));
        flex_tensor(gelu_kernel::forward(values(&x)), shape)
    }
}

/// LayerNorm's backward step: the gradients of the input, γ and β (one pass gives all three).
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = (NodeId, NodeId, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, gamma_state, mean, inv_std) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let gamma = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(gamma_state));
        let (dx, d_gamma, d_beta) =
            layer_norm_kernel::backward(last_dim(&x.shape()), values(&x), values(&dy), values(&gamma), values(&mean), values(&inv_std));
        for (node, grad, shape) in [(node_x, dx, x.shape()), (node_gamma, d_gamma, gamma.shape()), (node_beta, d_beta, gamma.shape())] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex_tensor(grad, shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedLayerNorm for Autodiff<Flex, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match LayerNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (y, mean, inv_std) = Flex::fused_layer_norm(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                let state = (x_state, gamma_state, mean.clone(), inv_std.clone());
                (prep.finish(state, y), <FloatTensor<Self>>::new(mean), <FloatTensor<Self>>::new(inv_std))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, inv_std) = Flex::fused_layer_norm(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                (prep.finish(y), <FloatTensor<Self>>::new(mean), <FloatTensor<Self>>::new(inv_std))
            }
        }
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
            let dx = softmax_kernel::backward(last_dim(&y.shape()), values(&y), values(&dy));
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
            grads.register::<Flex>(node.id, flex_tensor(gelu_kernel::backward(values(&x), values(&dy)), x.shape()));
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
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution};

    use super::super::assert_slices_close;

    fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
        assert_slices_close(&a.into_data().try_to_vec::<f32>().unwrap(), &b.into_data().try_to_vec::<f32>().unwrap(), what);
    }

    /// A loss whose gradient differs at every entry, so that no gradient term can hide.
    fn weight_of<const D: usize>(y: Tensor<D>) -> Tensor<1> {
        (y.clone() * y.sin()).sum()
    }

    /// Channels-last storage seen through a permutation: a strided input `[2, 7, 24]`.
    fn strided_input(device: &Device, scale: f32) -> Tensor<3> {
        Tensor::<3>::random([2, 24, 7], Distribution::Normal(0.5, scale as f64), device).swap_dims(1, 2)
    }

    /// In training, the output and the gradients of the input, γ and β equal burn's LayerNorm.
    #[test]
    fn layer_norm_matches_burn_with_gradients() {
        let device = Device::flex().autodiff();
        let mut norm = LayerNormConfig::new(24).with_epsilon(1e-6).init(&device);
        norm.gamma = burn::module::Param::from_tensor(Tensor::<1>::random([24], Distribution::Normal(1.0, 0.5), &device));
        norm.beta = Some(burn::module::Param::from_tensor(Tensor::<1>::random([24], Distribution::Normal(0.0, 0.5), &device)));
        let x = strided_input(&device, 3.0);
        let (ours, theirs) = (x.clone().require_grad(), x.require_grad());
        let (y_ours, y_theirs) = (layer_norm(&norm, ours.clone(), 1e-6), norm.forward(theirs.clone()));
        assert_close(y_ours.clone(), y_theirs.clone(), "output");
        let (g_ours, g_theirs) = (weight_of(y_ours).backward(), weight_of(y_theirs).backward());
        assert_close(ours.grad(&g_ours).unwrap(), theirs.grad(&g_theirs).unwrap(), "input gradient");
        assert_close(norm.gamma.grad(&g_ours).unwrap(), norm.gamma.grad(&g_theirs).unwrap(), "γ gradient");
        let beta = norm.beta.as_ref().unwrap();
        assert_close(beta.grad(&g_ours).unwrap(), beta.grad(&g_theirs).unwrap(), "β gradient");
    }

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
