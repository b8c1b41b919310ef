//! Kernels of our own for the CPU backend (burn-flex), plugged in through burn's backend
//! extension API, with their backward passes written by hand. Other backends (WebGPU, CUDA)
//! keep burn's operations.

mod gemm_conv;

pub use gemm_conv::ConvGeometry;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

/// `conv.forward(x)`, through [`gemm_conv`] on the CPU backend when the layer is a plain one
/// (no bias, no groups or dilation, explicit symmetric padding) and burn's `conv2d` otherwise.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => Some([top, left]),
        _ => None,
    };
    let plain = conv.bias.is_none() && conv.groups == 1 && conv.dilation == [1, 1];
    match padding {
        Some([pad_h, pad_w]) if plain && x.dtype() == DType::F32 && x.device().inner() == Device::flex() => {
            let [stride_h, stride_w] = conv.stride;
            let weight = conv.weight.val().into_dispatch();
            Tensor::from_dispatch(Dispatch::gemm_conv2d(x.into_dispatch(), weight, stride_h, stride_w, pad_h, pad_w))
        }
        _ => conv.forward(x),
    }
}

/// A 2-D convolution (groups 1, dilation 1, no bias) as im2col + GEMM in all three passes.
#[backend_extension(Flex, Autodiff)]
pub trait GemmConv: Backend {
    fn gemm_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride_h: usize, stride_w: usize, pad_h: usize, pad_w: usize) -> FloatTensor<Self>;
}

/// The geometry of `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]`.
fn geometry(x: &Shape, weight: &Shape, stride: [usize; 2], padding: [usize; 2]) -> ConvGeometry {
    let ([batch, c_in, height, width], [c_out, weight_c_in, kh, kw]) = (x.dims(), weight.dims());
    assert_eq!(c_in, weight_c_in, "conv2d: the input has {c_in} channels, the weight expects {weight_c_in}");
    ConvGeometry { batch, c_in, height, width, c_out, kernel: [kh, kw], stride, padding }
}

/// The tensor's values in row-major order (copied only when its layout is strided).
fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() { tensor } else { tensor.to_contiguous() }
}

fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("contiguous f32 (see `contiguous`)")
}

fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

impl GemmConv for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, stride_h: usize, stride_w: usize, pad_h: usize, pad_w: usize) -> FlexTensor {
        let g = geometry(&x.shape(), &weight.shape(), [stride_h, stride_w], [pad_h, pad_w]);
        let (x, weight) = (contiguous(x), contiguous(weight));
        let y = gemm_conv::forward(&g, values(&x), values(&weight));
        flex_tensor(y, [g.batch, g.c_out, g.out_height(), g.out_width()])
    }
}

/// The backward step: the gradients of the input and of the weight, each only when needed.
#[derive(Debug)]
struct GemmConvBackward;

impl Backward<Flex, 2> for GemmConvBackward {
    type State = (NodeId, NodeId, [usize; 2], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, stride, padding) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
        let g = geometry(&x.shape(), &weight.shape(), stride, padding);
        if let Some(node) = node_x {
            let dx = gemm_conv::input_grad(&g, values(&weight), values(&dy));
            grads.register::<Flex>(node.id, flex_tensor(dx, x.shape()));
        }
        if let Some(node) = node_weight {
            let dw = gemm_conv::weight_grad(&g, values(&x), values(&dy));
            grads.register::<Flex>(node.id, flex_tensor(dw, weight.shape()));
        }
    }
}

impl<C: CheckpointStrategy> GemmConv for Autodiff<Flex, C> {
    fn gemm_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride_h: usize, stride_w: usize, pad_h: usize, pad_w: usize) -> FloatTensor<Self> {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        match GemmConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), stride, padding);
                prep.finish(state, Flex::gemm_conv2d(x.into_primitive(), weight.into_primitive(), stride_h, stride_w, pad_h, pad_w))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::gemm_conv2d(x.into_primitive(), weight.into_primitive(), stride_h, stride_w, pad_h, pad_w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn assert_close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f32::max);
        assert!(worst < 1e-4, "{what}: relative error {worst}");
    }

    /// The layer's output and both gradients equal burn's `conv2d` (forward and autodiff) on the
    /// CPU backend, for ResNet's kinds of convolution and a strided (non-contiguous) input.
    #[test]
    fn matches_burn_conv2d_with_gradients() {
        let device = Device::flex().autodiff();
        for (c_in, c_out, kernel, stride, size) in [(3, 8, 3, 1, 9), (8, 16, 3, 2, 10), (8, 16, 1, 2, 10), (3, 4, 7, 2, 13)] {
            let pad = kernel / 2;
            let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(&device);
            // Channels-last storage seen through a permutation: a strided input.
            let x = Tensor::<4>::random([3, size, size, c_in], Distribution::Normal(0.0, 1.0), &device).permute([0, 3, 1, 2]);
            let what = format!("{c_in}→{c_out}, k {kernel}, s {stride}, {size} px");
            let weight_of = |y: Tensor<4>| y.clone() * y.clone().sin();
            let (ours, theirs) = (x.clone().require_grad(), x.require_grad());
            let (y_ours, y_theirs) = (conv2d(&conv, ours.clone()), conv.forward(theirs.clone()));
            assert_close(y_ours.clone(), y_theirs.clone(), &format!("{what}: output"));
            let grads_ours = weight_of(y_ours).sum().backward();
            let grads_theirs = weight_of(y_theirs).sum().backward();
            assert_close(ours.grad(&grads_ours).unwrap(), theirs.grad(&grads_theirs).unwrap(), &format!("{what}: input gradient"));
            let (dw_ours, dw_theirs) = (conv.weight.grad(&grads_ours).unwrap(), conv.weight.grad(&grads_theirs).unwrap());
            assert_close(dw_ours, dw_theirs, &format!("{what}: weight gradient"));
        }
    }

    /// Layers the kernel does not cover (a bias here) and inference without autodiff still work.
    #[test]
    fn falls_back_to_burn_and_runs_without_autodiff() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
        let x = Tensor::<4>::random([2, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        assert_close(conv2d(&conv, x.clone()), conv.forward(x.clone()), "with bias");
        let conv = Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(&device);
        assert_close(conv2d(&conv, x.clone()), conv.forward(x), "no autodiff");
    }
}
