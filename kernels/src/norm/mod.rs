//! Normalisation layers on the CPU backend in training: BatchNorm (with the ReLU and the residual
//! addition that follow it in a ResNet, in the same pass) and LayerNorm, as burn operations with
//! handwritten backward passes over the slice kernels of [`batch_norm`](mod@batch_norm) and [`layer_norm`](mod@layer_norm). Outside
//! training, and on other backends, burn's own layers run.

mod batch_norm;
mod layer_norm;

pub use batch_norm::NormShape;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::{BatchNorm, LayerNorm};
use burn::tensor::{DType, Shape, Tensor};

use crate::flex::{contiguous, flex_tensor, last_dim, on_flex_f32, values};
use batch_norm::Epilogue;

/// `bn.forward(x)`: in training (an autodiff device and a layer not frozen) on the CPU backend,
/// through [`batch_norm`](mod@batch_norm)'s kernels (two passes forward, two backward), with the running
/// statistics updated as burn's `BatchNorm` updates them; otherwise burn's own.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if let Some(dtype) = half(&x) {
        return batch_norm(&in_f32(bn), x.cast(DType::F32)).cast(dtype);
    }
    if !trains_on_flex(bn, &x) {
        return bn.forward(x);
    }
    let (output, mean, variance) =
        Dispatch::fused_batch_norm_train(x.into_dispatch(), bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch(), bn.epsilon);
    update_running_statistics(bn, mean, variance);
    Tensor::from_dispatch(output)
}

/// `relu(bn.forward(x) + residual)` (no addition without a residual): the end of a ResNet block
/// and of most convolutions in one pass, where [`batch_norm()`] applies; otherwise burn's.
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
    if let Some(dtype) = half(&x) {
        return batch_norm_relu(&in_f32(bn), x.cast(DType::F32), residual.map(|r| r.cast(DType::F32))).cast(dtype);
    }
    if !trains_on_flex(bn, &x) {
        let y = bn.forward(x);
        return burn::tensor::activation::relu(match residual {
            Some(residual) => y + residual,
            None => y,
        });
    }
    let (x, gamma, beta) = (x.into_dispatch(), bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch());
    let (output, mean, variance) = match residual {
        Some(residual) => Dispatch::fused_batch_norm_add_relu_train(x, gamma, beta, residual.into_dispatch(), bn.epsilon),
        None => Dispatch::fused_batch_norm_relu_train(x, gamma, beta, bn.epsilon),
    };
    update_running_statistics(bn, mean, variance);
    Tensor::from_dispatch(output)
}

/// The half-precision type of `x` (bf16, f16), if it has one: mixed-precision models normalise
/// in f32 (statistics of many half values lose too much), then return to the half type.
pub fn half<const D: usize>(x: &Tensor<D>) -> Option<DType> {
    matches!(x.dtype(), DType::BF16 | DType::F16).then(|| x.dtype())
}

/// `module` with every float parameter in f32, cast differentiably (a normalisation layer of a
/// half-precision model, which keeps its running statistics in f32).
pub fn in_f32<M: Module>(module: &M) -> M {
    struct ToF32;
    impl ModuleMapper for ToF32 {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|value| if value.dtype() == DType::F32 { value } else { value.cast(DType::F32) })
        }
    }
    module.clone().map(&mut ToF32)
}

/// Whether `bn` normalises `x` with the batch's statistics on the CPU backend, where the kernels
/// apply.
fn trains_on_flex(bn: &BatchNorm, x: &Tensor<4>) -> bool {
    x.device().is_autodiff() && bn.training.is_enabled() && on_flex_f32(x)
}

/// The running statistics moved towards the batch's, as burn's `BatchNorm` moves them.
fn update_running_statistics(bn: &BatchNorm, mean: FloatTensor<Dispatch>, variance: FloatTensor<Dispatch>) {
    let device = bn.gamma.device();
    let momentum = bn.momentum;
    let running = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
        state.update(state.value_sync().to_device(&device).mul_scalar(1.0 - momentum).add(batch.detach().mul_scalar(momentum)).detach());
    };
    running(&bn.running_mean, Tensor::from_dispatch(mean));
    running(&bn.running_var, Tensor::from_dispatch(variance));
}

/// BatchNorm over the batch (training mode): the output, the batch mean and the biased batch
/// variance of each channel; with ReLU after it, and before that a residual added.
#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNorm: Backend {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    fn fused_batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    fn fused_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn norm_shape(x: &Shape) -> NormShape {
    let dims = x.dims::<4>();
    NormShape { batch: dims[0], channels: dims[1], plane: dims[2] * dims[3] }
}

/// [`batch_norm::forward`] on tensors.
fn batch_norm_forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epilogue: Epilogue,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (shape, x, gamma, beta) = (x.shape(), contiguous(x), contiguous(gamma), contiguous(beta));
    let s = norm_shape(&shape);
    let (y, mean, variance) = batch_norm::forward(s, values(&x), values(&gamma), values(&beta), epsilon, epilogue);
    (flex_tensor(y, shape), flex_tensor(mean, [s.channels]), flex_tensor(variance, [s.channels]))
}

impl FusedBatchNorm for Flex {
    fn fused_batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        batch_norm_forward(x, gamma, beta, Epilogue::Identity, epsilon)
    }

    fn fused_batch_norm_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        batch_norm_forward(x, gamma, beta, Epilogue::Relu, epsilon)
    }

    fn fused_batch_norm_add_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        residual: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let residual = contiguous(residual);
        batch_norm_forward(x, gamma, beta, Epilogue::AddRelu(values(&residual)), epsilon)
    }
}

/// What BatchNorm's backward needs: its input and γ (checkpointed), and the batch statistics.
type NormState = (NodeId, NodeId, FlexTensor, FlexTensor, f64);

/// BatchNorm's backward from `dy`: the gradients of the input, γ and β (one pass gives all three;
/// each is registered only for a tracked parent, given by its node's id).
fn batch_norm_backward(
    parents: [Option<NodeId>; 3],
    dy: FlexTensor,
    state: NormState,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let [node_x, node_gamma, node_beta] = parents;
    let (x_state, gamma_state, mean, variance, epsilon) = state;
    let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
    let gamma = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(gamma_state));
    let s = norm_shape(&x.shape());
    let (dx, d_gamma, d_beta) = batch_norm::backward(s, values(&x), values(&dy), values(&gamma), values(&mean), values(&variance), epsilon);
    for (node, grad, shape) in [(node_x, dx, x.shape()), (node_gamma, d_gamma, gamma.shape()), (node_beta, d_beta, gamma.shape())] {
        if let Some(node) = node {
            grads.register::<Flex>(node, flex_tensor(grad, shape));
        }
    }
}

/// The backward of BatchNorm and of `relu(bn(x) + r)`: with ReLU, its mask from the output kept
/// in the state, then BatchNorm's. The parents are `x`, γ, β and, with `N = 4`, the residual `r`,
/// whose gradient is the masked one.
#[derive(Debug)]
struct BatchNormBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for BatchNormBackward<N> {
    /// BatchNorm's state, and the output when ReLU followed.
    type State = (NormState, Option<FlexTensor>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dz = contiguous(grads.consume::<Flex>(&ops.node));
        let (norm_state, relu_output) = ops.state;
        let dy = match relu_output {
            Some(z) => flex_tensor(batch_norm::relu_gradient(values(&z), values(&dz)), z.shape()),
            None => dz,
        };
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        if let Some(&Some(residual)) = parents.get(3) {
            grads.register::<Flex>(residual, dy.clone());
        }
        batch_norm_backward([parents[0], parents[1], parents[2]], dy, norm_state, grads, checkpointer);
    }
}

impl<C: CheckpointStrategy> FusedBatchNorm for Autodiff<Flex, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm_tracked::<C, 3>([x.node(), gamma.node(), beta.node()], x, gamma, beta, false, None, epsilon)
    }

    fn fused_batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm_tracked::<C, 3>([x.node(), gamma.node(), beta.node()], x, gamma, beta, true, None, epsilon)
    }

    fn fused_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node(), residual.node()];
        batch_norm_tracked::<C, 4>(nodes, x, gamma, beta, true, Some(residual), epsilon)
    }
}

/// A tensor on the CPU backend's autodiff graph.
type Tracked<C> = FloatTensor<Autodiff<Flex, C>>;

/// BatchNorm, then ReLU when `relu` (a residual is added before ReLU, and only then), on the
/// autodiff graph, with `nodes` the parents of [`BatchNormBackward`].
fn batch_norm_tracked<C: CheckpointStrategy, const N: usize>(
    nodes: [NodeGuard; N],
    x: Tracked<C>,
    gamma: Tracked<C>,
    beta: Tracked<C>,
    relu: bool,
    residual: Option<Tracked<C>>,
    epsilon: f64,
) -> (Tracked<C>, Tracked<C>, Tracked<C>) {
    let prep = BatchNormBackward::<N>.prepare::<C>(nodes).compute_bound().stateful();
    let residual = residual.map(|r| contiguous(r.into_primitive()));
    let epilogue = match (&residual, relu) {
        (Some(residual), _) => Epilogue::AddRelu(values(residual)),
        (None, true) => Epilogue::Relu,
        (None, false) => Epilogue::Identity,
    };
    let statistic = <Tracked<C>>::new;
    match prep {
        OpsKind::Tracked(mut prep) => {
            let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
            let (z, mean, variance) =
                batch_norm_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epilogue, epsilon);
            let state = ((x_state, gamma_state, mean.clone(), variance.clone(), epsilon), relu.then(|| z.clone()));
            (prep.finish(state, z), statistic(mean), statistic(variance))
        }
        OpsKind::UnTracked(prep) => {
            let (z, mean, variance) =
                batch_norm_forward(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epilogue, epsilon);
            (prep.finish(z), statistic(mean), statistic(variance))
        }
    }
}

/// `norm.forward(x)` for a LayerNorm built with `epsilon` (burn keeps its ε private, so the
/// caller passes the one it configured): in training on the CPU backend through
/// [`layer_norm`](mod@layer_norm); otherwise burn's (whose CPU inference path is already one pass).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    if let Some(dtype) = half(&x) {
        return layer_norm(&in_f32(norm), x.cast(DType::F32), epsilon).cast(dtype);
    }
    match &norm.beta {
        Some(beta) if x.device().is_autodiff() && on_flex_f32(&x) => {
            let (y, _, _) =
                Dispatch::fused_layer_norm(x.into_dispatch(), norm.gamma.val().into_dispatch(), beta.val().into_dispatch(), epsilon);
            Tensor::from_dispatch(y)
        }
        _ => norm.forward(x),
    }
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

impl FusedLayerNorm for Flex {
    fn fused_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (shape, x, gamma, beta) = (x.shape(), contiguous(x), contiguous(gamma), contiguous(beta));
        let (y, mean, inv_std) = layer_norm::forward(last_dim(&shape), values(&x), values(&gamma), values(&beta), epsilon);
        let rows = mean.len();
        (flex_tensor(y, shape), flex_tensor(mean, [rows]), flex_tensor(inv_std, [rows]))
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
            layer_norm::backward(last_dim(&x.shape()), values(&x), values(&dy), values(&gamma), values(&mean), values(&inv_std));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_tensors_close as assert_close, strided_input, weight_of};
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution};

    /// A BatchNorm layer of three channels with γ and β away from their initial 1 and 0.
    fn batch_norm_layer(device: &Device) -> BatchNorm {
        use burn::module::Param;
        let mut bn = burn::nn::BatchNormConfig::new(3).init(device);
        bn.gamma = Param::from_tensor(Tensor::from_floats([0.5, -1.5, 2.0], device));
        bn.beta = Param::from_tensor(Tensor::from_floats([0.1, 0.2, -0.3], device));
        bn
    }

    /// Two such layers have the same γ and β gradients (each in its own gradients) and running
    /// statistics.
    fn assert_layers_close([ours, theirs]: [&BatchNorm; 2], [grads_ours, grads_theirs]: [&burn::tensor::Gradients; 2], what: &str) {
        for (thing, a, b) in [
            ("γ gradient", ours.gamma.grad(grads_ours).unwrap(), theirs.gamma.grad(grads_theirs).unwrap()),
            ("β gradient", ours.beta.grad(grads_ours).unwrap(), theirs.beta.grad(grads_theirs).unwrap()),
            ("running mean", ours.running_mean.value_sync(), theirs.running_mean.value_sync()),
            ("running variance", ours.running_var.value_sync(), theirs.running_var.value_sync()),
        ] {
            assert_close(a.reshape([1, 1, 1, 3]), b.reshape([1, 1, 1, 3]), &format!("{thing}, {what}"));
        }
    }

    /// In training, the output, the running statistics and the gradients of the input, γ and β
    /// equal burn's `BatchNorm` (momentum 0.1), over two steps and with a strided input.
    #[test]
    fn batch_norm_matches_burn_in_training() {
        let device = Device::flex().autodiff();
        let layer = || batch_norm_layer(&device);
        let (ours, theirs) = (layer(), layer());
        for step in 0..2 {
            // Channels-last storage seen through a permutation, with an offset per channel.
            let x = Tensor::<4>::random([4, 5, 7, 3], Distribution::Normal(0.0, 2.0), &device).permute([0, 3, 1, 2]) + (step as f32 + 3.0);
            let (x_ours, x_theirs) = (x.clone().require_grad(), x.require_grad());
            let (y_ours, y_theirs) = (batch_norm(&ours, x_ours.clone()), theirs.forward(x_theirs.clone()));
            assert_close(y_ours.clone(), y_theirs.clone(), "output");
            let weight_of = |y: Tensor<4>| y.clone() * y.clone().sin();
            let (grads_ours, grads_theirs) = (weight_of(y_ours).sum().backward(), weight_of(y_theirs).sum().backward());
            assert_close(x_ours.grad(&grads_ours).unwrap(), x_theirs.grad(&grads_theirs).unwrap(), "input gradient");
            assert_layers_close([&ours, &theirs], [&grads_ours, &grads_theirs], &format!("step {step}"));
        }
    }

    /// `relu(bn(x) + r)` and `relu(bn(x))` in training: the output, the running statistics and
    /// the gradients of `x`, `r`, γ and β equal burn's operations one by one, over two steps, with
    /// a strided residual and values on both sides of ReLU's kink.
    #[test]
    fn batch_norm_relu_matches_burn_in_training() {
        let device = Device::flex().autodiff();
        let layer = || batch_norm_layer(&device);
        for with_residual in [false, true] {
            let (ours, theirs) = (layer(), layer());
            for step in 0..2 {
                let x = Tensor::<4>::random([4, 3, 5, 7], Distribution::Normal(0.0, 2.0), &device) + (step as f32 + 3.0);
                let r = Tensor::<4>::random([4, 5, 7, 3], Distribution::Normal(0.0, 1.0), &device).permute([0, 3, 1, 2]);
                let (x_ours, x_theirs, r_ours, r_theirs) =
                    (x.clone().require_grad(), x.require_grad(), r.clone().require_grad(), r.require_grad());
                let y_ours = batch_norm_relu(&ours, x_ours.clone(), with_residual.then(|| r_ours.clone() * 2.0));
                let y_theirs = theirs.forward(x_theirs.clone());
                let y_theirs = burn::tensor::activation::relu(if with_residual { y_theirs + r_theirs.clone() * 2.0 } else { y_theirs });
                let what = |thing: &str| format!("{thing}, residual {with_residual}, step {step}");
                assert_close(y_ours.clone(), y_theirs.clone(), &what("output"));
                let zeros = y_ours.clone().into_data().try_to_vec::<f32>().unwrap().iter().filter(|&&v| v == 0.0).count();
                assert!(zeros > 0 && zeros < 4 * 3 * 5 * 7, "{}: {zeros} values clipped", what("output"));
                // A loss with a gradient where ReLU clips (y·sin y has none at 0), so ReLU's mask shows.
                let weight_of = |y: Tensor<4>| (y.clone() + 1.0) * y.sin();
                let (grads_ours, grads_theirs) = (weight_of(y_ours).sum().backward(), weight_of(y_theirs).sum().backward());
                assert_close(x_ours.grad(&grads_ours).unwrap(), x_theirs.grad(&grads_theirs).unwrap(), &what("input gradient"));
                match (r_ours.grad(&grads_ours), r_theirs.grad(&grads_theirs)) {
                    (Some(a), Some(b)) => assert_close(a, b, &what("residual gradient")),
                    (None, None) => assert!(!with_residual),
                    (a, b) => panic!("{}: ours {:?}, burn's {:?}", what("residual gradient"), a.is_some(), b.is_some()),
                }
                assert_layers_close([&ours, &theirs], [&grads_ours, &grads_theirs], &what("layer"));
            }
        }
    }

    /// Without training (no autodiff here) `batch_norm_relu` is burn's `relu(bn(x) + r)`.
    #[test]
    fn batch_norm_relu_falls_back_to_burn_without_autodiff() {
        let device = Device::flex();
        let bn = burn::nn::BatchNormConfig::new(2).init(&device);
        let x = Tensor::<4>::random([2, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random([2, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let expected = burn::tensor::activation::relu(bn.forward(x.clone()) + r.clone());
        assert_close(batch_norm_relu(&bn, x, Some(r)), expected, "inference");
    }

    /// Without autodiff (evaluation) the layer normalises with its running statistics, as burn's.
    #[test]
    fn batch_norm_uses_running_statistics_without_autodiff() {
        let device = Device::flex();
        let mut bn = burn::nn::BatchNormConfig::new(2).init(&device);
        bn.running_mean = burn::module::RunningState::new(Tensor::from_floats([1.0, -2.0], &device));
        let x = Tensor::<4>::random([2, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let expected =
            (x.clone() - Tensor::<1>::from_floats([1.0, -2.0], &device).reshape([1, 2, 1, 1])).div_scalar((1.0f32 + 1e-5).sqrt());
        assert_close(batch_norm(&bn, x), expected, "inference");
    }

    /// In training, the output and the gradients of the input, γ and β equal burn's LayerNorm.
    #[test]
    fn layer_norm_matches_burn_with_gradients() {
        let device = Device::flex().autodiff();
        let mut norm = LayerNormConfig::new(24).with_epsilon(1e-6).init(&device);
        norm.gamma = Param::from_tensor(Tensor::<1>::random([24], Distribution::Normal(1.0, 0.5), &device));
        norm.beta = Some(Param::from_tensor(Tensor::<1>::random([24], Distribution::Normal(0.0, 0.5), &device)));
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
}
