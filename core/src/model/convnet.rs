//! A small ConvNet for the browser demo: four stages of 3×3 conv → BN → ReLU → 2×2 max-pool,
//! widths `w, 2w, 4w, 8w`, then global average pooling. Fast enough to train in a web page.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use jem_kernels::{batch_norm_relu, conv2d};

#[derive(Module, Debug)]
pub struct ConvNet {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    down: MaxPool2d,
    pool: AdaptiveAvgPool2d,
    pub feature_dim: usize,
}

impl ConvNet {
    pub fn new(width: usize, device: &Device) -> Self {
        let channels = [3, width, 2 * width, 4 * width, 8 * width];
        let convs = channels
            .windows(2)
            .map(|c| {
                Conv2dConfig::new([c[0], c[1]], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).with_bias(false).init(device)
            })
            .collect();
        let norms = channels[1..].iter().map(|&c| BatchNormConfig::new(c).init(device)).collect();
        Self {
            convs,
            norms,
            down: MaxPool2dConfig::new([2, 2]).init(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            feature_dim: 8 * width,
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (i, (conv, norm)) in self.convs.iter().zip(&self.norms).enumerate() {
            x = batch_norm_relu(norm, conv2d(conv, x), None);
            // No pooling after the last stage: global pooling follows.
            if i + 1 < self.convs.len() {
                x = self.down.forward(x);
            }
        }
        let n = x.dims()[0];
        self.pool.forward(x).reshape([n, self.feature_dim])
    }
}
