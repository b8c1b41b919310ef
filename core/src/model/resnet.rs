//! ResNet-18/34/50 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
//! CVPR 2016), torchvision's layout (v1.5: a bottleneck's stride sits on its 3×3 conv), with a
//! width multiplier and the choice of an ImageNet or a CIFAR stem. The classifier is left out:
//! the output is the globally average-pooled feature vector.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use jem_kernels::{batch_norm, batch_norm_relu, conv2d};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 3×3 conv, stride 1, no max-pool: keeps 32×32 inputs at full resolution.
    Cifar,
    /// 7×7 conv, stride 2, then 3×3 max-pool, stride 2.
    #[serde(rename = "imagenet")]
    ImageNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    R18,
    R34,
    R50,
}

impl ResNetDepth {
    fn blocks(self) -> [usize; 4] {
        match self {
            ResNetDepth::R18 => [2, 2, 2, 2],
            ResNetDepth::R34 | ResNetDepth::R50 => [3, 4, 6, 3],
        }
    }

    fn bottleneck(self) -> bool {
        self == ResNetDepth::R50
    }
}

/// Conv without bias (BatchNorm follows), He-normal initialised over fan-out as torchvision does.
fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true })
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// 1×1 conv + BN on the shortcut when the shape changes.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

impl Downsample {
    fn needed(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Option<Self> {
        (stride != 1 || c_in != c_out).then(|| Self { conv: conv(c_in, c_out, 1, stride, device), bn: bn(c_out, device) })
    }

    fn shortcut(this: &Option<Self>, x: Tensor<4>) -> Tensor<4> {
        match this {
            Some(d) => batch_norm(&d.bn, conv2d(&d.conv, x)),
            None => x,
        }
    }
}

/// Two 3×3 convs (ResNet-18/34).
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<Downsample>,
}

/// 1×1 reduce, 3×3, 1×1 expand ×4 (ResNet-50).
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    downsample: Option<Downsample>,
}

/// A residual block. The bottleneck is the larger variant; a network holds a few dozen blocks,
/// built once, so boxing it would save nothing that matters.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::Basic(b) => {
                let y = batch_norm_relu(&b.bn1, conv2d(&b.conv1, x.clone()), None);
                batch_norm_relu(&b.bn2, conv2d(&b.conv2, y), Some(Downsample::shortcut(&b.downsample, x)))
            }
            Block::Bottleneck(b) => {
                let y = batch_norm_relu(&b.bn1, conv2d(&b.conv1, x.clone()), None);
                let y = batch_norm_relu(&b.bn2, conv2d(&b.conv2, y), None);
                batch_norm_relu(&b.bn3, conv2d(&b.conv3, y), Some(Downsample::shortcut(&b.downsample, x)))
            }
        }
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    stem_pool: Option<MaxPool2d>,
    blocks: Vec<Block>,
    pool: AdaptiveAvgPool2d,
    pub feature_dim: usize,
    #[module(skip)]
    depth: ResNetDepth,
}

impl ResNet {
    pub fn new(depth: ResNetDepth, width: usize, stem: Stem, device: &Device) -> Self {
        let (stem_conv, stem_pool) = match stem {
            Stem::Cifar => (conv(3, width, 3, 1, device), None),
            Stem::ImageNet => (
                conv(3, width, 7, 2, device),
                Some(MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init()),
            ),
        };
        let expansion = if depth.bottleneck() { 4 } else { 1 };
        let mut blocks = Vec::new();
        let mut c_in = width;
        for (stage, &count) in depth.blocks().iter().enumerate() {
            let planes = width << stage;
            let c_out = planes * expansion;
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let downsample = Downsample::needed(c_in, c_out, stride, device);
                blocks.push(if depth.bottleneck() {
                    Block::Bottleneck(Bottleneck {
                        conv1: conv(c_in, planes, 1, 1, device),
                        bn1: bn(planes, device),
                        conv2: conv(planes, planes, 3, stride, device),
                        bn2: bn(planes, device),
                        conv3: conv(planes, c_out, 1, 1, device),
                        bn3: bn(c_out, device),
                        downsample,
                    })
                } else {
                    Block::Basic(BasicBlock {
                        conv1: conv(c_in, planes, 3, stride, device),
                        bn1: bn(planes, device),
                        conv2: conv(planes, planes, 3, 1, device),
                        bn2: bn(planes, device),
                        downsample,
                    })
                });
                c_in = c_out;
            }
        }
        Self {
            stem_conv,
            stem_bn: bn(width, device),
            stem_pool,
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            feature_dim: c_in,
            depth,
        }
    }

    /// torchvision's name of block `index` (counted over all stages): `layer{stage}.{i}`.
    pub fn torchvision_block_name(&self, index: usize) -> String {
        let mut first = 0;
        for (stage, count) in self.depth.blocks().into_iter().enumerate() {
            if index < first + count {
                return format!("layer{}.{}", stage + 1, index - first);
            }
            first += count;
        }
        panic!("block {index} of a ResNet with {first} blocks")
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = batch_norm_relu(&self.stem_bn, conv2d(&self.stem_conv, images), None);
        if let Some(pool) = &self.stem_pool {
            x = pool.forward(x);
        }
        for block in &self.blocks {
            x = block.forward(x);
        }
        let n = x.dims()[0];
        self.pool.forward(x).reshape([n, self.feature_dim])
    }
}
