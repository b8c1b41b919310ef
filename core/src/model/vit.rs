//! Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
//! Recognition at Scale", ICLR 2021), the backbone of DINO, MoCo v3, MAE and Data2Vec:
//!
//! ```text
//! image [N, 3, H, W] → patches of p×p → linear embedding [N, T, D]    (T = H/p · W/p)
//!   → (masked patches replaced by a learned mask token)
//!   → [class token; patch tokens] + position embeddings               [N, 1 + T, D]
//!   → depth × pre-norm block: x + Attention(LN(x)); x + MLP(LN(x))    (MLP: D → 4D → GELU → D)
//!   → LayerNorm; the image's feature is the class token               [N, D]
//! ```
//!
//! Features: the class token (DINO, MoCo v3), or the mean of the patch tokens (`pool = "mean"`:
//! Data2Vec and MAE train the patch tokens, not the class token).
//!
//! Masking: the mask acts on the patch embeddings before position embeddings and attention, so
//! nothing computed from a masked patch's pixels reaches any output (Data2Vec's and iBOT's
//! students); MAE's encoder instead drops the masked patches (`forward_visible`). Position embeddings are learned for `image_size` and resized bilinearly for other
//! sizes (multi-crop's local views).
//!
//! In training on the CPU backend, LayerNorm, softmax and GELU run as kernels of their own
//! (`jem-kernels`) and the linear layers as one product over all tokens
//! ([`token_linear`]); other backends run burn's operations.

use burn::module::{Module, Param};
use burn::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use jem_kernels as kernel;

/// Which tokens make an image's feature vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VitPool {
    /// The class token.
    #[default]
    Cls,
    /// The mean of the patch tokens.
    Mean,
}

/// The sizes of the DeiT/ViT papers: `(width D, depth, heads)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitSize {
    /// 192 wide, 12 blocks, 3 heads: 5.5 M parameters.
    Tiny,
    /// 384 wide, 12 blocks, 6 heads: 21.7 M parameters.
    Small,
    /// 768 wide, 12 blocks, 12 heads: 85.8 M parameters.
    Base,
}

impl VitSize {
    pub fn dims(self) -> (usize, usize, usize) {
        match self {
            VitSize::Tiny => (192, 12, 3),
            VitSize::Small => (384, 12, 6),
            VitSize::Base => (768, 12, 12),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitConfig {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    /// Patch side in pixels: 4 for 32×32 images, 16 for 224×224.
    pub patch: usize,
    /// Image side the position embeddings are learned for.
    pub image_size: usize,
    pub pool: VitPool,
}

impl VitConfig {
    pub fn new(size: VitSize, patch: usize, image_size: usize, pool: VitPool) -> Self {
        let (width, depth, heads) = size.dims();
        Self { width, depth, heads, patch, image_size, pool }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.patch == 0 || !self.image_size.is_multiple_of(self.patch) {
            return Err(ConfigError::Value(format!(
                "ViT: image_size {} must be a positive multiple of patch_size {}",
                self.image_size, self.patch
            )));
        }
        if self.depth == 0 {
            return Err(ConfigError::Value("ViT: depth must be at least 1".into()));
        }
        if self.heads == 0 || !self.width.is_multiple_of(self.heads) {
            return Err(ConfigError::Value(format!("ViT: width {} must be a multiple of the {} heads", self.width, self.heads)));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Vit {
        let (d, grid) = (self.width, self.image_size / self.patch);
        // The papers' truncated normal with std 0.02 for the tokens and position embeddings.
        let normal = |shape: [usize; 3]| Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, 0.02), device));
        Vit {
            patch_embed: Conv2dConfig::new([3, d], [self.patch, self.patch]).with_stride([self.patch, self.patch]).init(device),
            cls_token: normal([1, 1, d]),
            mask_token: normal([1, 1, d]),
            pos_embed: normal([1, 1 + grid * grid, d]),
            blocks: (0..self.depth).map(|_| TransformerBlock::new(d, self.heads, device)).collect(),
            norm: layer_norm(d, device),
            feature_dim: d,
            patch: self.patch,
            grid,
            pool: self.pool,
        }
    }
}

/// ViT's LayerNorm ε.
const LAYER_NORM_EPSILON: f64 = 1e-6;

/// LayerNorm with ViT's ε = 1e-6; apply it with [`normalize`].
pub fn layer_norm(d: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(LAYER_NORM_EPSILON).init(device)
}

/// `norm.forward(x)` for a LayerNorm made by [`layer_norm`], through the CPU kernel in training
/// (which needs the ε that burn keeps private).
pub fn normalize(norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
    kernel::layer_norm(norm, x, LAYER_NORM_EPSILON)
}

/// `linear.forward(x)` for tokens `[N, T, D]`, as one product of `N·T` rows. burn multiplies
/// `[N, T, D]` by the weight image by image when `T` is not a multiple of its row tile (65 or 17
/// tokens are not), which packs the weight again for every image and leaves the GEMM a one-row
/// remainder per image (on the CPU a ViT-Tiny DINO step took 8.3 s that way, 7.2–7.7 s with this).
pub fn token_linear(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [n, t, d] = x.dims();
    let y = linear.forward(x.reshape([n * t, d]));
    let d_out = y.dims()[1];
    y.reshape([n, t, d_out])
}

/// Multi-head self-attention with the layers of burn's `MultiHeadAttention` (its forward
/// without masks or dropout), with softmax through the CPU kernel in training:
/// `softmax(Q·Kᵀ/√d_k)·V` per head, then the output projection.
fn self_attention(attention: &MultiHeadAttention, x: Tensor<3>) -> Tensor<3> {
    let [n, t, d] = x.dims();
    let heads = |linear: &Linear| token_linear(linear, x.clone()).reshape([n, t, attention.n_heads, attention.d_k]).swap_dims(1, 2);
    let (query, key, value) = (heads(&attention.query), heads(&attention.key), heads(&attention.value));
    let scores = query.matmul(key.transpose()).div_scalar((attention.d_k as f32).sqrt());
    let context = kernel::softmax(scores, 3).matmul(value).swap_dims(1, 2).reshape([n, t, d]);
    token_linear(&attention.output, context)
}

/// One pre-norm transformer block: `x + Attention(LN(x))`, then `x + MLP(LN(x))`.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    norm1: LayerNorm,
    attention: MultiHeadAttention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl TransformerBlock {
    pub fn new(d: usize, heads: usize, device: &Device) -> Self {
        Self {
            norm1: layer_norm(d, device),
            attention: MultiHeadAttentionConfig::new(d, heads).with_dropout(0.0).init(device),
            norm2: layer_norm(d, device),
            fc1: LinearConfig::new(d, 4 * d).init(device),
            fc2: LinearConfig::new(4 * d, d).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self_attention(&self.attention, normalize(&self.norm1, x));
        x.clone() + token_linear(&self.fc2, kernel::gelu(token_linear(&self.fc1, normalize(&self.norm2, x))))
    }
}

/// The tokens of a forward pass.
pub struct VitTokens {
    /// After the final LayerNorm, class token first: `[N, 1 + T, D]`.
    pub tokens: Tensor<3>,
    /// Each block's output (before the final LayerNorm), first block first, when asked for:
    /// Data2Vec's targets average the top K of them.
    pub blocks: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct Vit {
    patch_embed: Conv2d,
    cls_token: Param<Tensor<3>>,
    mask_token: Param<Tensor<3>>,
    /// `[1, 1 + grid², D]`: the class token's, then the patches' in row-major order.
    pos_embed: Param<Tensor<3>>,
    blocks: Vec<TransformerBlock>,
    norm: LayerNorm,
    pub feature_dim: usize,
    pub patch: usize,
    /// Patches per side at the configured image size.
    grid: usize,
    #[module(skip)]
    pool: VitPool,
}

impl Vit {
    /// Features `[N, D]`: the class token or the mean patch token.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let tokens = self.forward_tokens(images, None, false).tokens;
        let [n, t, d] = tokens.dims();
        match self.pool {
            VitPool::Cls => tokens.slice([0..n, 0..1, 0..d]).reshape([n, d]),
            VitPool::Mean => tokens.slice([0..n, 1..t, 0..d]).mean_dim(1).reshape([n, d]),
        }
    }

    /// Number of transformer blocks.
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// Patches per side at the configured image size.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// All tokens, with the patches of `mask` (`[N, T]`, `true` = masked) replaced by the mask
    /// token, and with every block's output if `keep_blocks`.
    pub fn forward_tokens(&self, images: Tensor<4>, mask: Option<Tensor<2, Bool>>, keep_blocks: bool) -> VitTokens {
        let mut x = self.embed(images, mask);
        let mut blocks = Vec::new();
        for block in &self.blocks {
            x = block.forward(x);
            if keep_blocks {
                blocks.push(x.clone());
            }
        }
        VitTokens { tokens: normalize(&self.norm, x), blocks }
    }

    /// MAE's encoder: only the visible patches (and the class token) go through the blocks.
    /// Every image must have `visible` unmasked patches. Returns the tokens after the final
    /// LayerNorm, `[N, 1 + visible, D]` (class token, then the visible patches in position
    /// order), and the patch positions `[N, T]` with the visible ones first, each group in
    /// position order.
    pub fn forward_visible(&self, images: Tensor<4>, mask: Tensor<2, Bool>, visible: usize) -> (Tensor<3>, Tensor<2, Int>) {
        let (patches, h, w) = self.patch_embeddings(images);
        let [n, t, d] = patches.dims();
        assert_eq!(mask.dims(), [n, t], "ViT: the mask must have one entry per {0}×{0} patch", self.patch);
        let pos = self.position_embeddings(h, w);
        let patches = patches + pos.clone().slice([0..1, 1..1 + t, 0..d]);
        // Sort keys masked·T + position: unique, so the order is the same on every backend.
        let positions = Tensor::<1, Int>::arange(0..t as i64, &patches.device()).unsqueeze_dim::<2>(0);
        let order = (mask.int().mul_scalar(t as i64) + positions).argsort(1);
        let kept = order.clone().narrow(1, 0, visible);
        let visible_patches = patches.gather(1, kept.unsqueeze_dim::<3>(2).expand([n, visible, d]));
        let cls = (self.cls_token.val() + pos.slice([0..1, 0..1, 0..d])).expand([n, 1, d]);
        let mut x = Tensor::cat(vec![cls, visible_patches], 1);
        for block in &self.blocks {
            x = block.forward(x);
        }
        (normalize(&self.norm, x), order)
    }

    /// Patch embeddings `[N, T, D]` and the patch grid `h × w`.
    fn patch_embeddings(&self, images: Tensor<4>) -> (Tensor<3>, usize, usize) {
        let [n, _, height, width] = images.dims();
        assert!(
            height % self.patch == 0 && width % self.patch == 0,
            "ViT: a {height}×{width} image is not made of {0}×{0} patches",
            self.patch
        );
        let patches = self.patch_embed.forward(images); // [N, D, h, w]
        let [_, d, h, w] = patches.dims();
        (patches.reshape([n, d, h * w]).swap_dims(1, 2), h, w)
    }

    /// `[class; patches] + position embeddings`, `[N, 1 + T, D]`.
    fn embed(&self, images: Tensor<4>, mask: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let (mut x, h, w) = self.patch_embeddings(images);
        let [n, _, d] = x.dims();
        if let Some(mask) = mask {
            assert_eq!(mask.dims(), [n, h * w], "ViT: the mask must have one entry per {0}×{0} patch", self.patch);
            let mask = mask.unsqueeze_dim::<3>(2).expand([n, h * w, d]);
            x = x.mask_where(mask, self.mask_token.val().expand([n, h * w, d]));
        }
        let cls = self.cls_token.val().expand([n, 1, d]);
        Tensor::cat(vec![cls, x], 1) + self.position_embeddings(h, w)
    }

    /// The learned position embeddings for an `h × w` patch grid.
    fn position_embeddings(&self, h: usize, w: usize) -> Tensor<3> {
        resize_position_embeddings(self.pos_embed.val(), self.grid, h, w)
    }
}

/// Position embeddings `[1, 1 + g², D]` learned for a `g × g` grid (class token first), resized
/// bilinearly to an `h × w` grid; the class token's stays.
///
/// The resize is a matrix product with fixed interpolation weights, `[h·w, g²] × [g², D]`, equal
/// to `interpolate(.., Bilinear, align_corners = false)`: burn's GPU backends have no backward
/// pass for bilinear interpolation, and multi-crop trains on smaller grids than the learned one.
pub fn resize_position_embeddings(pos: Tensor<3>, g: usize, h: usize, w: usize) -> Tensor<3> {
    if (h, w) == (g, g) {
        return pos;
    }
    let d = pos.dims()[2];
    let cls = pos.clone().slice([0..1, 0..1, 0..d]);
    let grid = pos.slice([0..1, 1..1 + g * g, 0..d]).reshape([g * g, d]);
    let (rows, columns) = (bilinear_weights(g, h), bilinear_weights(g, w));
    // Output patch (i, j) mixes input patch (a, b) with weight rows[i][a] · columns[j][b].
    let mut weights = vec![0.0f32; h * w * g * g];
    for (i, row) in rows.iter().enumerate() {
        for (j, column) in columns.iter().enumerate() {
            for (a, &ra) in row.iter().enumerate() {
                for (b, &cb) in column.iter().enumerate() {
                    weights[(i * w + j) * g * g + a * g + b] = ra * cb;
                }
            }
        }
    }
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [h * w, g * g]), &grid.device()).cast(grid.dtype());
    Tensor::cat(vec![cls, weights.matmul(grid).reshape([1, h * w, d])], 1)
}

/// One axis of bilinear resizing from `from` to `to` samples with half-pixel centres
/// (`align_corners = false`, as PyTorch and burn): `to` rows of `from` weights, each row two
/// neighbours' weights summing to 1.
fn bilinear_weights(from: usize, to: usize) -> Vec<Vec<f32>> {
    let scale = from as f64 / to as f64;
    (0..to)
        .map(|i| {
            let source = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let low = (source.floor() as usize).min(from - 1);
            let high = (low + 1).min(from - 1);
            let fraction = (source - low as f64) as f32;
            let mut row = vec![0.0f32; from];
            row[low] += 1.0 - fraction;
            row[high] += fraction;
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    use super::*;

    fn tiny(device: &Device) -> Vit {
        VitConfig { width: 16, depth: 2, heads: 2, patch: 4, image_size: 16, pool: VitPool::Cls }.init(device)
    }

    fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// A block (our attention, LayerNorm, GELU and token-wise linear layers) computes what burn's
    /// modules compute, `x + MHA(LN(x))` then `x + fc2(GELU(fc1(LN(x))))`, and so does its input
    /// gradient, in training on the CPU backend.
    #[test]
    fn a_block_equals_burns_modules_with_gradients() {
        use burn::nn::attention::MhaInput;
        let device = Device::flex().autodiff();
        let block = TransformerBlock::new(16, 2, &device);
        let reference = |x: Tensor<3>| {
            let x = x.clone() + block.attention.forward(MhaInput::self_attn(block.norm1.forward(x))).context;
            x.clone() + block.fc2.forward(burn::tensor::activation::gelu(block.fc1.forward(block.norm2.forward(x))))
        };
        let x = Tensor::<3>::random([3, 5, 16], Distribution::Normal(0.0, 1.0), &device);
        let (ours, theirs) = (x.clone().require_grad(), x.require_grad());
        let (y_ours, y_theirs) = (block.forward(ours.clone()), reference(theirs.clone()));
        assert!(max_abs_diff(y_ours.clone(), y_theirs.clone()) < 1e-5);
        let weight_of = |y: Tensor<3>| (y.clone() * y.sin()).sum();
        let (g_ours, g_theirs) = (weight_of(y_ours).backward(), weight_of(y_theirs).backward());
        assert!(max_abs_diff(ours.grad(&g_ours).unwrap(), theirs.grad(&g_theirs).unwrap()) < 1e-4);
        let (w_ours, w_theirs) =
            (block.attention.query.weight.grad(&g_ours).unwrap(), block.attention.query.weight.grad(&g_theirs).unwrap());
        assert!(max_abs_diff(w_ours, w_theirs) < 1e-4);
    }

    #[test]
    fn shapes_and_parameter_count() {
        let device = Device::flex();
        let vit = tiny(&device);
        let images = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        assert_eq!(vit.forward(images.clone()).dims(), [2, 16]);
        let out = vit.forward_tokens(images, None, true);
        assert_eq!(out.tokens.dims(), [2, 1 + 16, 16]);
        assert_eq!(out.blocks.len(), 2);
        // ViT-Tiny/16 at 224 px: timm's vit_tiny_patch16_224 without its head has 5,524,416
        // parameters (5,717,416 minus the 1000-way classifier's 193,000)…
        let t = VitConfig::new(VitSize::Tiny, 16, 224, VitPool::Cls).init(&device);
        // …plus the mask token (192) that timm's classifier model does not have.
        assert_eq!(t.num_params(), 5_524_416 + 192);
    }

    #[test]
    fn masked_patches_leave_no_trace_in_any_output() {
        let device = Device::flex();
        let vit = tiny(&device);
        let images = Tensor::<4>::random([1, 3, 16, 16], Distribution::Default, &device);
        // Mask patch 5 (row 1, column 1: pixels 4..8 × 4..8) and patch 15 (the last).
        let mut mask = vec![false; 16];
        mask[5] = true;
        mask[15] = true;
        let mask = || Tensor::<2, Bool>::from_data(TensorData::new(mask.clone(), [1, 16]), &device);
        let noise = Tensor::<4>::random([1, 3, 4, 4], Distribution::Normal(0.0, 10.0), &device);
        let perturbed =
            images.clone().slice_assign([0..1, 0..3, 4..8, 4..8], noise.clone()).slice_assign([0..1, 0..3, 12..16, 12..16], noise);
        let a = vit.forward_tokens(images.clone(), Some(mask()), true);
        let b = vit.forward_tokens(perturbed.clone(), Some(mask()), true);
        assert_eq!(max_abs_diff(a.tokens, b.tokens), 0.0, "masked pixels changed an output");
        for (x, y) in a.blocks.into_iter().zip(b.blocks) {
            assert_eq!(max_abs_diff(x, y), 0.0);
        }
        // Without the mask the same perturbation does change the features.
        assert!(max_abs_diff(vit.forward(images), vit.forward(perturbed)) > 1e-3);
    }

    #[test]
    fn the_mae_encoder_sees_only_the_visible_patches() {
        let device = Device::flex();
        let vit = tiny(&device);
        let images = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        // Image 0 hides patches 0..12, image 1 patches 4..16: 4 visible each.
        let mask: Vec<bool> = (0..16).map(|t| t < 12).chain((0..16).map(|t| t >= 4)).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [2, 16]), &device);
        let (tokens, order) = vit.forward_visible(images.clone(), mask.clone(), 4);
        assert_eq!(tokens.dims(), [2, 5, 16]);
        let order: Vec<i64> = order.into_data().iter::<i64>().collect();
        assert_eq!(&order[..4], &[12, 13, 14, 15], "image 0 keeps its last four patches, in order");
        assert_eq!(&order[16..20], &[0, 1, 2, 3]);
        assert_eq!(&order[4..8], &[0, 1, 2, 3], "then the masked ones, in order");
        // Hidden pixels do not matter: image 1's patches 4..16 are rows 4..16.
        let noise = Tensor::<4>::random([1, 3, 12, 16], Distribution::Normal(0.0, 10.0), &device);
        let perturbed = images.slice_assign([1..2, 0..3, 4..16, 0..16], noise);
        let (again, _) = vit.forward_visible(perturbed, mask, 4);
        assert_eq!(max_abs_diff(tokens, again), 0.0);
    }

    #[test]
    fn position_embedding_resize_equals_bilinear_interpolation() {
        let device = Device::flex();
        let (g, d) = (4, 3);
        let pos = Tensor::<3>::random([1, 1 + g * g, d], Distribution::Normal(0.0, 1.0), &device);
        for (h, w) in [(2, 2), (3, 3), (2, 5), (7, 7), (1, 1)] {
            let grid = pos.clone().slice([0..1, 1..1 + g * g, 0..d]).reshape([1, g, g, d]).permute([0, 3, 1, 2]);
            let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size([h, w]);
            let expected = interpolate(grid, options).permute([0, 2, 3, 1]).reshape([1, h * w, d]);
            let resized = resize_position_embeddings(pos.clone(), g, h, w);
            assert_eq!(resized.dims(), [1, 1 + h * w, d]);
            let error = max_abs_diff(resized.slice([0..1, 1..1 + h * w, 0..d]), expected);
            assert!(error < 1e-6, "{g}×{g} → {h}×{w}: {error}");
        }
    }

    #[test]
    fn position_embeddings_are_resized_for_other_image_sizes() {
        let device = Device::flex();
        let vit = tiny(&device);
        // At the configured size the embeddings are used as learned.
        assert_eq!(max_abs_diff(vit.position_embeddings(4, 4), vit.pos_embed.val()), 0.0);
        // An 8×8 local crop has a 2×2 patch grid: each resized embedding averages a 2×2 block
        // of the 4×4 grid (bilinear, half-pixel centres), the class token's stays.
        let small = vit.position_embeddings(2, 2);
        assert_eq!(small.dims(), [1, 5, 16]);
        let pos = vit.pos_embed.val();
        let at = |i: usize| pos.clone().slice([0..1, i..i + 1, 0..16]);
        let block = (at(1) + at(2) + at(5) + at(6)) / 4.0;
        assert!(max_abs_diff(small.clone().slice([0..1, 1..2, 0..16]), block) < 1e-6);
        assert_eq!(max_abs_diff(small.slice([0..1, 0..1, 0..16]), at(0)), 0.0);
        assert_eq!(vit.forward(Tensor::<4>::zeros([3, 3, 8, 8], &device)).dims(), [3, 16]);
    }
}
