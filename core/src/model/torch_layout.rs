//! PyTorch's names and layouts for jem's backbones, both ways: torchvision's ResNet (`conv1`,
//! `bn1`, `layer1.0.conv1`, …, `layer2.0.downsample.0`/`.1`) and timm's ViT, whose names DINO's
//! checkpoints share (`patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.attn.qkv`, `norm`).
//!
//! A state dict is plain data here (names, shapes, f32 values): this module reads and writes no
//! files, so the browser can use it too; `jem import` and `jem export torch` handle `.pth`,
//! `.ckpt` and `.safetensors`.
//!
//! What differs besides the names:
//! - Linear weights: PyTorch stores `[out, in]`, burn `[in, out]`.
//! - Normalisation layers: PyTorch's `weight`/`bias` are burn's `gamma`/`beta`.
//! - ViT attention: timm packs query, key and value into one linear layer `qkv` (`[3D, D]`, query
//!   rows first); jem, like burn's `MultiHeadAttention`, keeps three.
//! - BatchNorm's `num_batches_tracked` counts steps and is no parameter: an import ignores it (an
//!   exporter writes it, as an int64 that this f32-only module does not hold).
//! - jem's ViT has a mask token (Data2Vec's masked student) that timm's lacks: an import leaves
//!   it as initialised, an export leaves it out. `pos_embed` learned for another grid is resized
//!   bilinearly to the model's.
//! - Heads are not backbones: torchvision's `fc` and timm's `head` are ignored on import.

use std::collections::{BTreeMap, BTreeSet};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, Tensor, TensorData};

use super::{Backbone, BackboneConfig, Stem, resize_position_embeddings};

/// One tensor of a PyTorch state dict, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Tensors by their PyTorch names.
pub type StateDict = BTreeMap<String, TorchTensor>;

/// Why weights cannot move between jem and PyTorch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    #[error("the {0} backbone has no PyTorch counterpart; torchvision's ResNets and timm's ViTs do")]
    NoCounterpart(&'static str),
    #[error(
        "no tensor named '{anchor}' under any prefix, so this is not a {arch} state dict; the file's top-level names: {}",
        found.join(", ")
    )]
    NotThisArchitecture { arch: &'static str, anchor: &'static str, found: Vec<String> },
    #[error("nothing under the prefix '{prefix}'; prefixes that hold a {arch}: {}", if found.is_empty() { "none".to_string() } else { found.join(", ") })]
    PrefixNotFound { prefix: String, arch: &'static str, found: Vec<String> },
    #[error("the number of attention heads is not in the weights: give it (a plain `vit`), or name a size (vit_tiny, vit_small, vit_base)")]
    HeadsUnknown,
    #[error("{}", mismatch_message(missing, unexpected, wrong_shape))]
    Mismatch { missing: Vec<String>, unexpected: Vec<String>, wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)> },
}

fn mismatch_message(missing: &[String], unexpected: &[String], wrong_shape: &[(String, Vec<usize>, Vec<usize>)]) -> String {
    // The first few of each kind: a whole other architecture would list hundreds.
    const SHOWN: usize = 8;
    let list = |what: &str, items: Vec<String>| {
        let more = if items.len() > SHOWN { format!(", … ({} more)", items.len() - SHOWN) } else { String::new() };
        format!("{what} {}: {}{more}", items.len(), items[..items.len().min(SHOWN)].join(", "))
    };
    let shapes = wrong_shape.iter().map(|(k, want, got)| format!("{k} is {got:?}, the model's is {want:?}")).collect();
    let parts: Vec<String> = [("missing", missing.to_vec()), ("unexpected", unexpected.to_vec()), ("wrong shape", shapes)]
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(what, items)| list(what, items))
        .collect();
    format!("the weights do not fit the model ({})", parts.join("; "))
}

/// How a jem tensor sits in its PyTorch tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Same,
    /// A linear layer's weight: `[in, out]` in jem, `[out, in]` in PyTorch.
    Transposed,
    /// Query (0), key (1) or value (2) of timm's packed `qkv` layer; a weight is transposed too.
    QkvPart(usize),
}

/// A jem tensor and where its values live in PyTorch.
struct Correspondence {
    jem: String,
    torch: String,
    layout: Layout,
    jem_shape: Vec<usize>,
    /// The jem tensor, read from the device only when its values are asked for (an export).
    tensor: PackTensor,
}

impl Correspondence {
    fn values(&self) -> Vec<f32> {
        let data = bridge::to_data(&self.tensor).expect("a backbone's own tensor is readable");
        data.convert::<f32>().try_into_vec::<f32>().expect("f32 values")
    }
}

/// The two PyTorch layouts: torchvision's ResNet and timm's ViT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    ResNet,
    Vit,
}

impl Family {
    /// The family of a jem backbone name (`resnet50`, `vit_small`, …); `None` for `convnet`.
    pub fn of_arch(arch: &str) -> Option<Family> {
        if arch.starts_with("resnet") {
            Some(Family::ResNet)
        } else if arch.starts_with("vit") {
            Some(Family::Vit)
        } else {
            None
        }
    }

    fn of(backbone: &Backbone) -> Result<Family, LayoutError> {
        match backbone {
            Backbone::ResNet(_) => Ok(Family::ResNet),
            Backbone::Vit(_) => Ok(Family::Vit),
            Backbone::ConvNet(_) => Err(LayoutError::NoCounterpart("convnet")),
        }
    }

    /// The name in messages.
    fn name(self) -> &'static str {
        match self {
            Family::ResNet => "torchvision ResNet",
            Family::Vit => "timm/DINO ViT",
        }
    }

    /// Two tensors that the family's state dicts hold side by side (the first alone also
    /// matches inside a block: `layer1.0.conv1.weight`).
    fn anchors(self) -> [&'static str; 2] {
        match self {
            Family::ResNet => ["conv1.weight", "layer1.0.conv1.weight"],
            Family::Vit => ["patch_embed.proj.weight", "blocks.0.norm1.weight"],
        }
    }
}

/// burn's normalisation parameters under PyTorch's names.
fn norm_parameter(leaf: &str) -> &str {
    match leaf {
        "gamma" => "weight",
        "beta" => "bias",
        other => other,
    }
}

/// The PyTorch tensor holding jem's tensor `path` (`None`: jem's own, with no counterpart).
fn torch_counterpart(backbone: &Backbone, path: &str) -> Option<(String, Layout)> {
    let (module, leaf) = path.rsplit_once('.').unwrap_or(("", path));
    match backbone {
        Backbone::ResNet(resnet) => {
            let module = match module.strip_prefix("blocks.").and_then(|rest| rest.split_once('.')) {
                Some((index, rest)) => {
                    let block = resnet.torchvision_block_name(index.parse().expect("block index"));
                    format!("{block}.{}", rest.replace("downsample.conv", "downsample.0").replace("downsample.bn", "downsample.1"))
                }
                None => module.replace("stem_conv", "conv1").replace("stem_bn", "bn1"),
            };
            Some((format!("{module}.{}", norm_parameter(leaf)), Layout::Same))
        }
        Backbone::Vit(_) => {
            let weight_layout = |layout| if leaf == "weight" { layout } else { Layout::Same };
            match module {
                "" if path == "mask_token" => None,
                "" => Some((path.to_string(), Layout::Same)),
                "patch_embed" => Some((format!("patch_embed.proj.{leaf}"), Layout::Same)),
                _ => {
                    let (block, layer) = module.rsplit_once('.').unwrap_or(("", module));
                    let prefix = if block.is_empty() { String::new() } else { format!("{block}.") };
                    Some(match layer {
                        "query" | "key" | "value" => {
                            let part = ["query", "key", "value"].iter().position(|&p| p == layer).expect("listed");
                            (format!("{}attn.qkv.{leaf}", prefix.trim_end_matches("attention.")), Layout::QkvPart(part))
                        }
                        "output" => {
                            (format!("{}attn.proj.{leaf}", prefix.trim_end_matches("attention.")), weight_layout(Layout::Transposed))
                        }
                        "fc1" | "fc2" => (format!("{prefix}mlp.{layer}.{leaf}"), weight_layout(Layout::Transposed)),
                        _ => (format!("{module}.{}", norm_parameter(leaf)), Layout::Same),
                    })
                }
            }
        }
        Backbone::ConvNet(_) => None,
    }
}

/// The backbone's tensors that PyTorch has, with their PyTorch counterparts.
fn correspondences(backbone: &Backbone) -> Result<Vec<Correspondence>, LayoutError> {
    Family::of(backbone)?;
    Ok(backbone
        .collect(None, None, true)
        .into_iter()
        .filter_map(|tensor| {
            let (torch, layout) = torch_counterpart(backbone, &tensor.name)?;
            Some(Correspondence { jem: tensor.name.clone(), torch, layout, jem_shape: tensor.shape.to_vec(), tensor })
        })
        .collect())
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The shape the PyTorch tensor has for a jem tensor of `shape`.
fn torch_shape(layout: Layout, shape: &[usize]) -> Vec<usize> {
    match (layout, shape) {
        (Layout::Same, _) => shape.to_vec(),
        (Layout::Transposed, [a, b]) => vec![*b, *a],
        (Layout::QkvPart(_), [d_in, d_out]) => vec![3 * d_out, *d_in],
        (Layout::QkvPart(_), [d]) => vec![3 * d],
        _ => unreachable!("{layout:?} applies to matrices and biases"),
    }
}

/// The backbone's weights under PyTorch's names and in its layouts (without BatchNorm's
/// `num_batches_tracked`).
pub fn to_torch(backbone: &Backbone) -> Result<StateDict, LayoutError> {
    let mut dict = StateDict::new();
    for entry in correspondences(backbone)? {
        let source = entry.values();
        let shape = torch_shape(entry.layout, &entry.jem_shape);
        let target = dict.entry(entry.torch.clone()).or_insert_with(|| TorchTensor { values: vec![0.0; shape.iter().product()], shape });
        match (entry.layout, entry.jem_shape.as_slice()) {
            (Layout::Same, _) => target.values = source,
            (Layout::Transposed, &[rows, cols]) => target.values = transpose(&source, rows, cols),
            (Layout::QkvPart(part), &[rows, cols]) => {
                let rows_out = transpose(&source, rows, cols);
                target.values[part * rows_out.len()..(part + 1) * rows_out.len()].copy_from_slice(&rows_out);
            }
            (Layout::QkvPart(part), &[d]) => target.values[part * d..(part + 1) * d].copy_from_slice(&source),
            _ => unreachable!(),
        }
    }
    Ok(dict)
}

/// Names that a state dict may hold beside the backbone's: heads and step counters.
fn ignorable(backbone: &Backbone, name: &str) -> bool {
    match backbone {
        Backbone::ResNet(_) => name.starts_with("fc.") || name.ends_with("num_batches_tracked"),
        Backbone::Vit(_) => name.starts_with("head.") || name.starts_with("head_drop"),
        Backbone::ConvNet(_) => false,
    }
}

/// The prefixes under which `keys` hold this backbone's state dict (`""`: none needed), the
/// most likely first: fewer segments, and online before momentum (`momentum_backbone.`,
/// `target_…`) copies.
pub fn prefixes<'a>(family: Family, keys: impl IntoIterator<Item = &'a str> + Clone) -> Vec<String> {
    let [anchor, second] = family.anchors();
    let mut found: Vec<String> = keys
        .clone()
        .into_iter()
        .filter_map(|k| k.strip_suffix(anchor))
        .filter(|p| p.is_empty() || p.ends_with('.'))
        .filter(|p| keys.clone().into_iter().any(|k| k.strip_prefix(*p) == Some(second)))
        .map(str::to_string)
        .collect();
    let secondary = |p: &str| p.contains("momentum") || p.contains("target") || p.contains("ema");
    found.sort_by_key(|p| (secondary(p), p.matches('.').count(), p.clone()));
    found.dedup();
    found
}

/// The first segments of `keys` with their counts (`backbone. (122)`), for messages.
fn top_level_names<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut counts = BTreeMap::<&str, usize>::new();
    for key in keys {
        *counts.entry(key.split('.').next().unwrap_or(key)).or_default() += 1;
    }
    counts.into_iter().map(|(name, n)| format!("{name} ({n})")).collect()
}

/// Chooses the prefix: `requested`, or else the most likely of [`prefixes`]. Returns it with
/// the others found.
pub fn choose_prefix(family: Family, dict: &StateDict, requested: Option<&str>) -> Result<(String, Vec<String>), LayoutError> {
    let (arch, anchor) = (family.name(), family.anchors()[0]);
    let found = prefixes(family, dict.keys().map(String::as_str));
    match requested {
        Some(prefix) if dict.keys().any(|k| k.starts_with(prefix)) => {
            Ok((prefix.to_string(), found.into_iter().filter(|p| p != prefix).collect()))
        }
        Some(prefix) => Err(LayoutError::PrefixNotFound { prefix: prefix.to_string(), arch, found }),
        None => match found.split_first() {
            Some((first, others)) => Ok((first.clone(), others.to_vec())),
            None => Err(LayoutError::NotThisArchitecture { arch, anchor, found: top_level_names(dict.keys().map(String::as_str)) }),
        },
    }
}

/// The backbone settings that fit a state dict's tensors under `prefix`. ResNet (`arch` gives
/// the depth): width from `conv1`, stem from its kernel (7×7 ImageNet, 3×3 CIFAR). ViT: width,
/// patch size and depth from `patch_embed.proj` and the blocks, image size from `pos_embed`'s
/// grid; heads from the named size (`vit_small`: 6) or `heads`.
pub fn backbone_config(arch: &str, dict: &StateDict, prefix: &str, heads: Option<usize>) -> Result<BackboneConfig, LayoutError> {
    let shape = |name: &str| {
        let name = format!("{prefix}{name}");
        dict.get(&name).map(|t| t.shape.clone()).ok_or(LayoutError::Mismatch {
            missing: vec![name],
            unexpected: vec![],
            wrong_shape: vec![],
        })
    };
    let mut config = BackboneConfig { arch: arch.to_string(), ..Default::default() };
    match Family::of_arch(arch) {
        Some(Family::ResNet) => {
            let conv1 = shape("conv1.weight")?;
            config.width = conv1[0];
            config.stem = if conv1.get(2) == Some(&7) { Stem::ImageNet } else { Stem::Cifar };
        }
        Some(Family::Vit) => {
            let patch = shape("patch_embed.proj.weight")?;
            let tokens = shape("pos_embed")?.get(1).copied().unwrap_or(1);
            (config.width, config.patch_size) = (patch[0], patch.get(2).copied().unwrap_or(1));
            config.image_size = grid_side(tokens) * config.patch_size;
            config.depth = (0..).take_while(|i| dict.contains_key(&format!("{prefix}blocks.{i}.norm1.weight"))).count();
            config.heads = match (arch, heads) {
                (_, Some(h)) => h,
                ("vit", None) => return Err(LayoutError::HeadsUnknown),
                _ => config.heads,
            };
        }
        None => return Err(LayoutError::NoCounterpart("convnet")),
    }
    Ok(config)
}

/// Loads a PyTorch state dict's tensors under `prefix` into `backbone`. Every tensor of the
/// backbone must be there with its shape (ViT position embeddings may be for another grid) and
/// nothing else but heads and step counters: otherwise one error lists every missing,
/// unexpected and misshapen name, and the backbone is not changed.
pub fn from_torch(mut backbone: Backbone, dict: &StateDict, prefix: &str, device: &Device) -> Result<Backbone, LayoutError> {
    let table = correspondences(&backbone)?;
    let expected: BTreeSet<&str> = table.iter().map(|c| c.torch.as_str()).collect();
    let unexpected: Vec<String> = dict
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter(|k| !expected.contains(k) && !ignorable(&backbone, k))
        .map(|k| format!("{prefix}{k}"))
        .collect();
    let (mut missing, mut wrong_shape) = (Vec::new(), Vec::new());
    for entry in &table {
        let name = format!("{prefix}{}", entry.torch);
        let want = torch_shape(entry.layout, &entry.jem_shape);
        match dict.get(&name) {
            None if !missing.contains(&name) => missing.push(name),
            Some(t)
                if t.shape != want
                    && !(entry.jem == "pos_embed" && resizable(&t.shape, &want))
                    && !wrong_shape.iter().any(|(n, _, _)| n == &name) =>
            {
                wrong_shape.push((name, want, t.shape.clone()));
            }
            _ => {}
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && wrong_shape.is_empty()) {
        return Err(LayoutError::Mismatch { missing, unexpected, wrong_shape });
    }
    let tensors = table
        .iter()
        .map(|entry| {
            let source = &dict[&format!("{prefix}{}", entry.torch)];
            let values = match (entry.layout, entry.jem_shape.as_slice()) {
                (Layout::Same, _) if entry.jem == "pos_embed" => resized_position_embeddings(source, &entry.jem_shape, device),
                (Layout::Same, _) => source.values.clone(),
                (Layout::Transposed, &[rows, cols]) => transpose(&source.values, cols, rows),
                (Layout::QkvPart(part), &[rows, cols]) => {
                    let n = rows * cols;
                    transpose(&source.values[part * n..(part + 1) * n], cols, rows)
                }
                (Layout::QkvPart(part), &[d]) => source.values[part * d..(part + 1) * d].to_vec(),
                _ => unreachable!(),
            };
            bridge::from_data(TensorData::new(values, entry.jem_shape.clone()), entry.jem.clone(), None)
        })
        .collect();
    let result = backbone.apply(tensors, None, None, true);
    assert!(
        result.errors.is_empty() && result.unused.is_empty() && result.missing.iter().all(|(path, _)| path == "mask_token"),
        "the PyTorch correspondence table covers the backbone: {:?} {:?} {:?}",
        result.errors,
        result.unused,
        result.missing
    );
    Ok(backbone)
}

/// The side `g` of the square patch grid of `1 + g²` tokens (a class token first), rounded
/// when `tokens` is not of that form.
fn grid_side(tokens: usize) -> usize {
    (tokens.saturating_sub(1) as f64).sqrt().round() as usize
}

/// Position embeddings `[1, 1 + g², D]` for another square grid.
fn resizable(found: &[usize], want: &[usize]) -> bool {
    matches!((found, want), ([1, t, d], [1, _, d2]) if d == d2 && grid_side(*t) >= 1 && 1 + grid_side(*t).pow(2) == *t)
}

fn resized_position_embeddings(source: &TorchTensor, shape: &[usize], device: &Device) -> Vec<f32> {
    let (from, to) = (grid_side(source.shape[1]), grid_side(shape[1]));
    let pos = Tensor::<3>::from_data(TensorData::new(source.values.clone(), source.shape.clone()), device);
    resize_position_embeddings(pos, from, to, to).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackboneConfig, Stem};

    fn backbone(arch: &str, stem: Stem) -> Backbone {
        let config =
            BackboneConfig { arch: arch.into(), width: 4, depth: 2, heads: 2, patch_size: 8, image_size: 32, stem, ..Default::default() };
        config.init(&Device::flex()).unwrap()
    }

    /// torchvision's `resnet18().state_dict()` without `fc` and `num_batches_tracked`: its names,
    /// in the order of its first few and of a downsampling block.
    #[test]
    fn resnet_names_are_torchvisions() {
        let dict = to_torch(&backbone("resnet18", Stem::ImageNet)).unwrap();
        for name in [
            "conv1.weight",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "layer1.1.conv2.weight",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.running_var",
            "layer4.1.bn2.bias",
        ] {
            assert!(dict.contains_key(name), "{name} in {:?}", dict.keys().collect::<Vec<_>>());
        }
        // 20 convolutions (17 + 3 downsampling) and 20 BatchNorms of 4 tensors each.
        assert_eq!(dict.len(), 20 + 20 * 4);
        assert_eq!(dict["conv1.weight"].shape, [4, 3, 7, 7]);
        let r50 = to_torch(&backbone("resnet50", Stem::Cifar)).unwrap();
        assert!(r50.contains_key("layer3.5.conv3.weight") && r50.contains_key("layer4.0.downsample.1.weight"));
        assert_eq!(r50["conv1.weight"].shape, [4, 3, 3, 3]);
    }

    #[test]
    fn vit_names_are_timms_with_packed_attention() {
        let vit = backbone("vit", Stem::Cifar);
        let dict = to_torch(&vit).unwrap();
        let keys: Vec<&str> = dict.keys().map(String::as_str).collect();
        for name in
            ["cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias", "norm.weight"]
        {
            assert!(keys.contains(&name), "{name} in {keys:?}");
        }
        assert!(!keys.contains(&"mask_token"));
        assert_eq!(dict["blocks.0.attn.qkv.weight"].shape, [12, 4]);
        assert_eq!(dict["blocks.0.attn.qkv.bias"].shape, [12]);
        assert_eq!(dict["blocks.0.mlp.fc1.weight"].shape, [16, 4]);
        assert_eq!(dict["pos_embed"].shape, [1, 17, 4]);
        // 4 tokens/embeddings + per block 2 norms × 2, qkv 2, proj 2, fc1 2, fc2 2 + final norm 2.
        assert_eq!(dict.len(), 4 + 2 * 12 + 2);
    }

    /// jem → PyTorch → a fresh jem backbone gives the same tensors, bit for bit, and the same
    /// features; a plain PyTorch linear layer `y = x Wᵀ + b` reads the exported weight.
    #[test]
    fn round_trip_is_exact() {
        for (arch, stem) in [("resnet18", Stem::Cifar), ("resnet50", Stem::ImageNet), ("vit", Stem::Cifar)] {
            let device = Device::flex();
            device.seed(1);
            let original = backbone(arch, stem);
            let dict = to_torch(&original).unwrap();
            device.seed(2);
            let loaded = from_torch(backbone(arch, stem), &dict, "", &device).unwrap();
            assert_eq!(to_torch(&loaded).unwrap(), dict, "{arch}");
            let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
            let diff: f32 = (original.forward(x.clone()) - loaded.forward(x)).abs().max().into_scalar();
            assert_eq!(diff, 0.0, "{arch}");
        }
    }

    /// The packed `qkv` rows are query, then key, then value, each `[out, in]`, as timm's
    /// attention splits them (`qkv(x).reshape(B, N, 3, heads, d)`).
    #[test]
    fn qkv_packs_query_key_value_rows() {
        let vit = backbone("vit", Stem::Cifar);
        let table = correspondences(&vit).unwrap();
        let dict = to_torch(&vit).unwrap();
        let qkv = &dict["blocks.0.attn.qkv.weight"].values;
        for (part, name) in ["query", "key", "value"].iter().enumerate() {
            let path = format!("blocks.0.attention.{name}.weight");
            let jem = table.iter().find(|c| c.jem == path).expect("in the table").values(); // [in 4, out 4]
            for (out, input) in [(0, 0), (1, 3), (3, 2)] {
                assert_eq!(qkv[(part * 4 + out) * 4 + input], jem[input * 4 + out], "{name} [{out}, {input}]");
            }
        }
    }

    #[test]
    fn mismatches_are_listed_in_one_error() {
        let resnet = backbone("resnet18", Stem::Cifar);
        let mut dict = to_torch(&resnet).unwrap();
        dict.remove("layer3.1.conv2.weight");
        dict.insert("layer5.0.conv1.weight".into(), TorchTensor { shape: vec![1], values: vec![0.0] });
        dict.get_mut("bn1.running_mean").unwrap().shape = vec![5];
        dict.insert("fc.weight".into(), TorchTensor { shape: vec![10, 32], values: vec![0.0; 320] });
        dict.insert("bn1.num_batches_tracked".into(), TorchTensor { shape: vec![], values: vec![3.0] });
        let err = from_torch(resnet, &dict, "", &Device::flex()).unwrap_err();
        assert_eq!(
            err,
            LayoutError::Mismatch {
                missing: vec!["layer3.1.conv2.weight".into()],
                unexpected: vec!["layer5.0.conv1.weight".into()],
                wrong_shape: vec![("bn1.running_mean".into(), vec![4], vec![5])],
            }
        );
        let message = err.to_string();
        assert!(message.contains("missing 1: layer3.1.conv2.weight; unexpected 1: layer5.0.conv1.weight; wrong shape 1"), "{message}");
    }

    #[test]
    fn prefixes_are_found_and_ranked() {
        let resnet = backbone("resnet18", Stem::Cifar);
        let plain = to_torch(&resnet).unwrap();
        let mut dict = StateDict::new();
        for prefix in ["momentum_backbone.", "backbone.", "module.backbone."] {
            dict.extend(plain.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone())));
        }
        dict.insert("projector.0.weight".into(), TorchTensor { shape: vec![1], values: vec![0.0] });
        let (prefix, others) = choose_prefix(Family::ResNet, &dict, None).unwrap();
        assert_eq!((prefix.as_str(), others), ("backbone.", vec!["module.backbone.".to_string(), "momentum_backbone.".to_string()]));
        assert_eq!(choose_prefix(Family::ResNet, &dict, Some("momentum_backbone.")).unwrap().0, "momentum_backbone.");
        let err = choose_prefix(Family::ResNet, &dict, Some("encoder.")).unwrap_err().to_string();
        assert!(err.contains("'encoder.'") && err.contains("backbone., module.backbone., momentum_backbone."), "{err}");
        assert!(from_torch(resnet.clone(), &dict, "momentum_backbone.", &Device::flex()).is_ok(), "other prefixes are not unexpected");
        let err = choose_prefix(Family::Vit, &dict, None).unwrap_err().to_string();
        assert!(err.contains("patch_embed.proj.weight") && err.contains("backbone (100), module (100)"), "{err}");
        let convnet = backbone("convnet", Stem::Cifar);
        assert_eq!(backbone_config("convnet", &dict, "", None).unwrap_err(), LayoutError::NoCounterpart("convnet"));
        assert_eq!(to_torch(&convnet).unwrap_err(), LayoutError::NoCounterpart("convnet"));
    }

    /// The settings read off a state dict rebuild the backbone that wrote it.
    #[test]
    fn settings_are_read_off_the_weights() {
        for (arch, stem) in [("resnet18", Stem::ImageNet), ("resnet50", Stem::Cifar), ("vit", Stem::Cifar)] {
            let original = BackboneConfig {
                arch: arch.into(),
                width: 4,
                depth: 2,
                heads: 2,
                patch_size: 8,
                image_size: 32,
                stem,
                ..Default::default()
            };
            let dict = to_torch(&original.init(&Device::flex()).unwrap()).unwrap();
            let prefixed: StateDict = dict.iter().map(|(k, v)| (format!("m.{k}"), v.clone())).collect();
            let heads = (arch == "vit").then_some(2);
            let read = backbone_config(arch, &prefixed, "m.", heads).unwrap();
            let expected = if arch == "vit" {
                original.clone()
            } else {
                BackboneConfig {
                    depth: read.depth,
                    heads: read.heads,
                    patch_size: read.patch_size,
                    image_size: read.image_size,
                    ..original.clone()
                }
            };
            assert_eq!(read, expected, "{arch}");
        }
        let vit = to_torch(&backbone("vit", Stem::Cifar)).unwrap();
        assert_eq!(backbone_config("vit", &vit, "", None).unwrap_err(), LayoutError::HeadsUnknown);
        let small = backbone_config("vit_small", &vit, "", None).unwrap();
        assert_eq!((small.patch_size, small.image_size), (8, 32));
    }

    /// Position embeddings for a 2×2 grid load into a model for 4×4 (bilinear, class token kept).
    #[test]
    fn position_embeddings_for_another_grid_are_resized() {
        let device = Device::flex();
        let vit = backbone("vit", Stem::Cifar);
        let mut dict = to_torch(&vit).unwrap();
        let pos = TorchTensor { shape: vec![1, 5, 4], values: (0..20).map(|i| i as f32).collect() };
        dict.insert("pos_embed".into(), pos.clone());
        let loaded = to_torch(&from_torch(vit, &dict, "", &device).unwrap()).unwrap();
        let resized = &loaded["pos_embed"];
        assert_eq!(resized.shape, [1, 17, 4]);
        assert_eq!(&resized.values[..4], &pos.values[..4], "class token");
        // A constant grid stays constant; the corners of a 2×2 → 4×4 bilinear resize (no
        // aligned corners) are the original corners.
        assert_eq!(&resized.values[4..8], &pos.values[4..8]);
        assert_eq!(&resized.values[16 * 4..], &pos.values[16..]);
        dict.get_mut("pos_embed").unwrap().shape = vec![1, 6, 4];
        assert!(matches!(from_torch(backbone("vit", Stem::Cifar), &dict, "", &device), Err(LayoutError::Mismatch { .. })));
    }
}
