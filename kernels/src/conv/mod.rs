//! 2-D convolution (groups 1, dilation 1, no bias, symmetric padding) on the CPU backend: three
//! paths on plain `f32` slices, the choice between them, and the burn operation with its backward.
//!
//! | pass | x86-64 with AVX2 + FMA or AVX-512 | other CPUs, wasm32 |
//! |---|---|---|
//! | forward | [`direct`] | [`implicit_gemm`] (stride 1, ≥ 8 channels, maps ≥ 8 wide), else [`im2col`] |
//! | weight gradient | [`direct`] | as the forward |
//! | input gradient, stride 1 | a forward convolution of `dy` (below) | the same |
//! | input gradient, strided | [`im2col`] (GEMM + col2im) | [`im2col`] |
//!
//! kernels/README.md says why each shape takes its path.

mod geometry;
mod im2col;
mod implicit_gemm;
mod matmul;
#[cfg(test)]
mod testing;

#[cfg(target_arch = "x86_64")]
mod direct;

pub use geometry::ConvGeometry;

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
use burn::tensor::{Shape, Tensor};

use crate::flex::{contiguous, flex_tensor, on_flex_f32, values};
use crate::parallel::for_each_piece;

/// `y = conv2d(x, w)`, shape `[N, O, Ho, Wo]` flattened, by the fastest path for the shape.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    assert_eq!((x.len(), w.len()), (g.input_len(), g.weight_len()), "{g:?}");
    #[cfg(target_arch = "x86_64")]
    if direct::applies() {
        return direct::forward(g, x, w);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::forward(g, x, w);
    }
    im2col::forward(g, x, w)
}

/// The gradient of the loss with respect to `w`, given `dy` (the gradient with respect to `y`).
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!((x.len(), dy.len()), (g.input_len(), g.output_len()), "{g:?}");
    #[cfg(target_arch = "x86_64")]
    if direct::applies() {
        return direct::weight_grad(g, x, dy);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::weight_grad(g, x, dy);
    }
    im2col::weight_grad(g, x, dy)
}

/// The gradient of the loss with respect to `x`, given `dy`.
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!((w.len(), dy.len()), (g.weight_len(), g.output_len()), "{g:?}");
    if g.stride == [1, 1] && g.padding[0] < g.kernel[0] && g.padding[1] < g.kernel[1] {
        return input_grad_as_convolution(g, w, dy);
    }
    im2col::input_grad(g, w, dy)
}

/// With stride 1, the input gradient is itself a convolution: `dy` padded by `k − 1 − pad`,
/// convolved with the weight flipped in space and with its channel axes swapped. The forward
/// paths then replace col2im, whose scattered adds took 5× as long as the GEMM at ResNet's 32×32
/// maps.
fn input_grad_as_convolution(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    // flipped[c, o] = w[o, c] with its taps in reverse order, which flips both spatial axes.
    let taps = kh * kw;
    let mut flipped = vec![0.0; w.len()];
    for_each_piece(&mut flipped, taps, |row, out| {
        let (c, o) = (row / g.c_out, row % g.c_out);
        out.iter_mut().zip(w[(o * g.c_in + c) * taps..][..taps].iter().rev()).for_each(|(d, s)| *d = *s);
    });
    let transposed = ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        height: g.out_height(),
        width: g.out_width(),
        c_out: g.c_in,
        kernel: g.kernel,
        stride: [1, 1],
        padding: [kh - 1 - g.padding[0], kw - 1 - g.padding[1]],
    };
    debug_assert_eq!((transposed.out_height(), transposed.out_width()), (g.height, g.width));
    forward(&transposed, dy, &flipped)
}

/// `conv.forward(x)`: through this module's kernels on the CPU backend in `f32` when the layer is
/// a plain one (no bias, no groups or dilation, explicit symmetric padding), burn's `conv2d`
/// otherwise (other backends, other layers).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => Some([top, left]),
        _ => None,
    };
    let plain = conv.bias.is_none() && conv.groups == 1 && conv.dilation == [1, 1];
    match padding {
        Some([pad_h, pad_w]) if plain && on_flex_f32(&x) => {
            let [stride_h, stride_w] = conv.stride;
            let weight = conv.weight.val().into_dispatch();
            Tensor::from_dispatch(Dispatch::cpu_conv2d(x.into_dispatch(), weight, stride_h, stride_w, pad_h, pad_w))
        }
        _ => conv.forward(x),
    }
}

/// A 2-D convolution (groups 1, dilation 1, no bias) by this module's kernels in all three passes.
#[backend_extension(Flex, Autodiff)]
pub trait CpuConv2d: Backend {
    fn cpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;
}

/// The geometry of `x` `[N, C, H, W]` convolved with `weight` `[O, C, kh, kw]`.
fn geometry(x: &Shape, weight: &Shape, stride: [usize; 2], padding: [usize; 2]) -> ConvGeometry {
    let ([batch, c_in, height, width], [c_out, weight_c_in, kh, kw]) = (x.dims(), weight.dims());
    assert_eq!(c_in, weight_c_in, "conv2d: the input has {c_in} channels, the weight expects {weight_c_in}");
    ConvGeometry { batch, c_in, height, width, c_out, kernel: [kh, kw], stride, padding }
}

impl CpuConv2d for Flex {
    fn cpu_conv2d(x: FlexTensor, weight: FlexTensor, stride_h: usize, stride_w: usize, pad_h: usize, pad_w: usize) -> FlexTensor {
        let g = geometry(&x.shape(), &weight.shape(), [stride_h, stride_w], [pad_h, pad_w]);
        let (x, weight) = (contiguous(x), contiguous(weight));
        let y = forward(&g, values(&x), values(&weight));
        flex_tensor(y, [g.batch, g.c_out, g.out_height(), g.out_width()])
    }
}

/// The backward step: the gradients of the input and of the weight, each only when needed.
#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
    type State = (NodeId, NodeId, [usize; 2], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, stride, padding) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let weight = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
        let g = geometry(&x.shape(), &weight.shape(), stride, padding);
        if let Some(node) = node_x {
            let dx = input_grad(&g, values(&weight), values(&dy));
            grads.register::<Flex>(node.id, flex_tensor(dx, x.shape()));
        }
        if let Some(node) = node_weight {
            let dw = weight_grad(&g, values(&x), values(&dy));
            grads.register::<Flex>(node.id, flex_tensor(dw, weight.shape()));
        }
    }
}

impl<C: CheckpointStrategy> CpuConv2d for Autodiff<Flex, C> {
    fn cpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        match Conv2dBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), stride, padding);
                prep.finish(state, Flex::cpu_conv2d(x.into_primitive(), weight.into_primitive(), stride_h, stride_w, pad_h, pad_w))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::cpu_conv2d(x.into_primitive(), weight.into_primitive(), stride_h, stride_w, pad_h, pad_w))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_input_gradient, assert_weight_gradient, geometries, reference, test_values};
    use super::*;
    use crate::testing::{assert_slices_close, assert_tensors_close as assert_close};
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    /// Whichever path each geometry takes on this CPU, the three passes are the definition and
    /// its two adjoints.
    #[test]
    fn chosen_paths_match_the_definition() {
        for g in geometries() {
            let (x, w, dy) = (test_values(g.input_len(), 3), test_values(g.weight_len(), 4), test_values(g.output_len(), 5));
            assert_slices_close(&forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{g:?}"));
            assert_input_gradient(&g, &w, &dy, &input_grad(&g, &w, &dy));
            assert_weight_gradient(&g, &x, &dy, &weight_grad(&g, &x, &dy));
        }
    }

    /// The layer's output and both gradients equal burn's `conv2d` (forward and autodiff) on the
    /// CPU backend, for ResNet's kinds of convolution (the last through `implicit_gemm`) and a
    /// strided (non-contiguous) input.
    #[test]
    fn matches_burn_conv2d_with_gradients() {
        let device = Device::flex().autodiff();
        for (c_in, c_out, kernel, stride, size) in
            [(3, 8, 3, 1, 9), (8, 16, 3, 2, 10), (8, 16, 1, 2, 10), (3, 4, 7, 2, 13), (16, 8, 3, 1, 9)]
        {
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
