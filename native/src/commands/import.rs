//! `jem import`: a backbone published for PyTorch (torchvision, timm, DINO, solo-learn, lightly)
//! into a run folder that `jem eval`, `jem export` and `jem pretrain --resume` accept.
//!
//! Everything is checked before anything is written: a file whose tensors do not fit the model
//! says which are missing, unexpected or of the wrong shape, in one message, and leaves no folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use jem_core::model::Stem;
use jem_core::model::torch_layout::{self, Family};
use jem_core::recipe::Recipe;
use jem_core::torch_file;

use crate::run::{Position, RunDir};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    jem import --from resnet18-f37072fd.pth --arch resnet18 --out runs/torchvision-r18\n  \
    jem import --from solo-learn-byol.ckpt --arch resnet18 --prefix backbone. --out runs/byol\n  \
    jem import --from dino_deitsmall16_pretrain.pth --arch vit_small --image-size 224 --out runs/dino\n  \
    jem eval knn --checkpoint runs/torchvision-r18 --data ../data/cifar10\n\n\
    Reads .pth/.pt (torch.save), Lightning .ckpt and .safetensors. Tensors outside the backbone\n\
    (torchvision's fc, timm's head, BatchNorm's num_batches_tracked, other prefixes) are ignored.")]
pub struct Args {
    /// The weight file.
    #[arg(long)]
    from: PathBuf,
    /// resnet18, resnet34, resnet50, vit_tiny, vit_small, vit_base, or vit (with --heads).
    #[arg(long)]
    arch: String,
    /// ResNet stem, imagenet or cifar; default: read off conv1 (7×7: imagenet, 3×3: cifar).
    #[arg(long)]
    stem: Option<String>,
    /// Take the backbone's tensors under this prefix (`backbone.`, `module.`,
    /// `momentum_backbone.`, …); default: the most likely of those found, which are listed.
    #[arg(long)]
    prefix: Option<String>,
    /// ViT: attention heads (needed for a plain `vit`; named sizes know theirs).
    #[arg(long)]
    heads: Option<usize>,
    /// ViT: the image side to resize the position embeddings to; default: the file's.
    #[arg(long)]
    image_size: Option<usize>,
    /// Recipe for the run (method, data, training; its backbone section is replaced by the
    /// file's); default: the shapes recipe.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Dataset of the run, as for `jem pretrain --data`.
    #[arg(long)]
    data: Option<String>,
    /// Run folder to create (it must not exist yet).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let dict = torch_file::read(&args.from)?;
    let family = Family::of_arch(&args.arch)
        .with_context(|| format!("--arch {}: PyTorch weights exist for resnet18/34/50 and the ViTs", args.arch))?;
    let (prefix, others) = torch_layout::choose_prefix(family, &dict, args.prefix.as_deref())?;
    let mut backbone = torch_layout::backbone_config(&args.arch, &dict, &prefix, args.heads)?;
    if let Some(stem) = &args.stem {
        backbone.stem = match stem.as_str() {
            "imagenet" => Stem::ImageNet,
            "cifar" => Stem::Cifar,
            other => anyhow::bail!("--stem {other}: imagenet or cifar"),
        };
    }
    if let Some(side) = args.image_size {
        backbone.image_size = side;
    }
    let mut recipe = match &args.recipe {
        Some(path) => crate::run::read_recipe_file(path)?,
        None => Recipe::default_shapes(),
    };
    recipe.backbone = backbone;
    if let Some(data) = &args.data {
        recipe.data.dataset = std::fs::canonicalize(data).ok().and_then(|p| p.to_str().map(str::to_owned)).unwrap_or_else(|| data.clone());
    }
    recipe.validate()?;
    let device = Device::flex();
    let backbone = recipe.backbone.init(&device).map_err(anyhow::Error::msg)?;
    let backbone = torch_layout::from_torch(backbone, &dict, &prefix, &device).with_context(|| format!("{}", args.from.display()))?;
    let parameters = backbone.num_params();
    let model = recipe.method.init_with(backbone, &device).map_err(anyhow::Error::msg)?;
    write_run(&args.out, &recipe, &model)?;

    let b = &recipe.backbone;
    let shape = match family {
        Family::ResNet => format!("width {}, {} stem", b.width, if b.stem == Stem::ImageNet { "imagenet" } else { "cifar" }),
        Family::Vit => format!("width {}, depth {}, patch {}, image {}", b.width, b.depth, b.patch_size, b.image_size),
    };
    let shown_prefix = if prefix.is_empty() { "no prefix".to_string() } else { format!("prefix '{prefix}'") };
    let also = if others.is_empty() { String::new() } else { format!("; also found: {} (choose with --prefix)", others.join(", ")) };
    let parameters = if parameters >= 1_000_000 { format!("{:.1} M", parameters as f64 / 1e6) } else { parameters.to_string() };
    println!("{}: {} ({shape}), {parameters} parameters, {shown_prefix}{also}", args.from.display(), b.arch);
    println!(
        "wrote {} ({} head, untrained); evaluate with: jem eval knn --checkpoint {}",
        args.out.display(),
        recipe.method.name(),
        args.out.display()
    );
    Ok(())
}

/// The run folder with its recipe and an epoch-0 checkpoint (fresh optimiser state), so that
/// `jem pretrain --resume` fine-tunes from the imported weights.
fn write_run(out: &Path, recipe: &Recipe, model: &jem_core::method::Model) -> Result<()> {
    let occupied = out.read_dir().map(|mut entries| entries.next().is_some()).unwrap_or(false);
    anyhow::ensure!(!occupied, "{}: exists and is not empty; choose another --out", out.display());
    let written = (|| -> Result<()> {
        let run_dir = RunDir::open(out, recipe, false)?;
        run_dir.checkpoint(model, &recipe.optimizer.init(), Position { epoch: 0, step: 0, batch: 0 }, 0)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(out);
    }
    written
}
