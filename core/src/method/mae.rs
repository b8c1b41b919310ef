//! MAE (He, Chen, Xie, Li, Dollár & Girshick, "Masked Autoencoders Are Scalable Vision
//! Learners", CVPR 2022), the lecture's generative baseline: an autoencoder that reconstructs
//! pixels. 75 % of the patches are masked at random; the ViT encoder sees only the visible 25 %
//! (so it is 4× cheaper than a full pass); a lightweight decoder gets the encoded patches back
//! in place, a shared learned mask token at every masked position, its own position
//! embeddings, and predicts each patch's pixels. The loss is the mean squared error of the
//! (per-patch normalised) pixels on the masked patches only ([`crate::loss::mae_targets`]).
//!
//! ```text
//! encoder: visible patches → [N, 1 + V, D]   decoder: Linear D → D', unshuffle with mask tokens,
//!   + positions, blocks, LayerNorm, Linear D' → p·p·3 → [N, T, p·p·3]
//! ```

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::{Method, MethodSettings, Progress, StepOutput};
use crate::config::{ConfigError, at_least_one};
use crate::data::batch::TensorBatch;
use crate::loss::{mae_targets, masked_regression};
use crate::model::{Backbone, TransformerBlock, layer_norm, normalize, resize_position_embeddings, token_linear};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaeConfig {
    /// Decoder token width (the paper: 512 for ImageNet).
    pub decoder_width: usize,
    /// Decoder blocks (the paper: 8).
    pub decoder_depth: usize,
    pub decoder_heads: usize,
    /// Standardise each target patch by its own mean and variance.
    pub norm_pix_loss: bool,
}

impl Default for MaeConfig {
    fn default() -> Self {
        Self { decoder_width: 128, decoder_depth: 2, decoder_heads: 4, norm_pix_loss: true }
    }
}

impl MethodSettings for MaeConfig {
    type Method = Mae;

    fn validate(&self, _batch_size: usize) -> Result<(), ConfigError> {
        at_least_one("method.decoder_width", self.decoder_width)?;
        at_least_one("method.decoder_depth", self.decoder_depth)?;
        at_least_one("method.decoder_heads", self.decoder_heads)?;
        if !self.decoder_width.is_multiple_of(self.decoder_heads) {
            return Err(ConfigError::Value(format!(
                "method.decoder_width = {} must be a multiple of decoder_heads = {}",
                self.decoder_width, self.decoder_heads
            )));
        }
        Ok(())
    }

    fn init(&self, backbone: Backbone, device: &Device) -> Result<Mae, ConfigError> {
        let Some(vit) = backbone.as_vit() else {
            return Err(ConfigError::Mismatch(
                "mae reconstructs masked patches: it needs a ViT backbone (backbone.arch = \"vit_tiny\", \"vit_small\" or \"vit_base\")"
                    .into(),
            ));
        };
        let (d, w) = (vit.feature_dim, self.decoder_width);
        let g = vit.grid();
        let decoder = MaeDecoder {
            embed: LinearConfig::new(d, w).init(device),
            mask_token: Param::from_tensor(Tensor::random([1, 1, w], Distribution::Normal(0.0, 0.02), device)),
            pos_embed: Param::from_tensor(Tensor::random([1, 1 + g * g, w], Distribution::Normal(0.0, 0.02), device)),
            blocks: (0..self.decoder_depth).map(|_| TransformerBlock::new(w, self.decoder_heads, device)).collect(),
            norm: layer_norm(w, device),
            predict: LinearConfig::new(w, vit.patch * vit.patch * 3).init(device),
            grid: g,
        };
        Ok(Mae { backbone, decoder, config: self.clone() })
    }

    fn needs_masks(&self) -> bool {
        true
    }
}

#[derive(Module, Debug)]
pub struct MaeDecoder {
    embed: Linear,
    mask_token: Param<Tensor<3>>,
    pos_embed: Param<Tensor<3>>,
    blocks: Vec<TransformerBlock>,
    norm: LayerNorm,
    predict: Linear,
    grid: usize,
}

impl MaeDecoder {
    /// Pixel predictions `[N, T, p·p·3]` from the encoded visible patches `[N, 1 + V, D]`,
    /// `order` (the encoder's: visible positions first) and the `h × w` patch grid.
    fn forward(&self, encoded: Tensor<3>, order: Tensor<2, Int>, h: usize, w: usize) -> Tensor<3> {
        let x = token_linear(&self.embed, encoded);
        let [n, kept, width] = x.dims();
        let (visible, t) = (kept - 1, h * w);
        let cls = x.clone().slice([0..n, 0..1, 0..width]);
        let shuffled = Tensor::cat(vec![x.slice([0..n, 1..kept, 0..width]), self.mask_token.val().expand([n, t - visible, width])], 1);
        // Token j of `shuffled` belongs at position order[j]; order's inverse puts it there.
        let restore = order.argsort(1);
        let patches = shuffled.gather(1, restore.unsqueeze_dim::<3>(2).expand([n, t, width]));
        let mut x = Tensor::cat(vec![cls, patches], 1) + resize_position_embeddings(self.pos_embed.val(), self.grid, h, w);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = normalize(&self.norm, x);
        token_linear(&self.predict, x.slice([0..n, 1..1 + t, 0..width]))
    }
}

#[derive(Module, Debug)]
pub struct Mae {
    /// The encoder.
    pub backbone: Backbone,
    pub decoder: MaeDecoder,
    #[module(skip)]
    pub config: MaeConfig,
}

impl Method for Mae {
    fn step(&self, batch: &TensorBatch, _progress: &Progress) -> StepOutput {
        let view = batch.views[0].clone();
        let mask: Tensor<2, Bool> = batch.masks[0].clone().expect("the recipe check requires a masked first view for mae");
        let [n, tokens] = mask.dims();
        let masked: Vec<i64> = mask.clone().int().sum_dim(1).into_data().iter::<i64>().collect();
        assert!(masked.iter().all(|&m| m == masked[0]), "MAE needs the same number of masked patches in every image (random masking)");
        let visible = tokens - masked[0] as usize;
        let vit = self.backbone.as_vit().expect("checked at init");
        let [_, _, height, width] = view.dims();
        let (h, w) = (height / vit.patch, width / vit.patch);
        let (encoded, order) = vit.forward_visible(view.clone(), mask.clone(), visible);
        let d = encoded.dims()[2];
        let class_token = encoded.clone().slice([0..n, 0..1, 0..d]).reshape([n, d]);
        let predictions = self.decoder.forward(encoded, order, h, w);
        let targets = mae_targets(view, vit.patch, self.config.norm_pix_loss);
        let loss = masked_regression(predictions, targets, mask, 0.0);
        StepOutput { terms: vec![("reconstruction", loss.clone())], loss, embedding: class_token }
    }

    fn backbone(&self) -> &Backbone {
        &self.backbone
    }
}
