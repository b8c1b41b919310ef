use std::path::PathBuf;

use anyhow::{Context, Result};
use jem_core::Image;
use jem_core::augment::{Preset, Resolution};
use jem_core::data::shapes::Shapes;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  jem augment                                   # a built-in shapes image, SimCLR views\n  \
    jem augment --image photo.jpg --preset byol --views 8 --out byol.png\n  \
    jem augment --image photo.jpg --preset dino --views 10   # 2 global + 8 local crops")]
pub struct Args {
    /// Image to augment (PNG, JPEG, WebP, BMP). Without it, a built-in shapes image.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Augmentation recipe: simclr, byol, swav, dino, vicreg, barlow.
    #[arg(long, default_value = "simclr")]
    preset: String,
    /// Number of random views to draw (cycling through the preset's per-view pipelines).
    #[arg(long, default_value_t = 8)]
    views: usize,
    /// Output PNG: the original (top left), then the views.
    #[arg(long, default_value = "augment.png")]
    out: PathBuf,
    /// Random seed; the same seed gives the same file, byte for byte.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Recipe variant: cifar (32 px), imagenet (224 px), or auto (cifar for images under 64 px).
    #[arg(long, default_value = "auto")]
    variant: String,
    /// Override the global view size in pixels (local crops scale along).
    #[arg(long)]
    size: Option<usize>,
    /// Tiles per row.
    #[arg(long, default_value_t = 5)]
    columns: usize,
}

pub fn run(args: Args) -> Result<()> {
    let image = match &args.image {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
            Image::decode(&bytes).with_context(|| format!("{}: cannot decode", path.display()))?
        }
        None => Shapes::preview_image(),
    };
    let preset = Preset::from_name(&args.preset).map_err(anyhow::Error::msg)?;
    let resolution = Resolution::resolve(&args.variant, image.width, image.height).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(args.views > 0 && args.columns > 0, "--views and --columns must be at least 1");
    let mut augment = preset.build(resolution);
    if let Some(size) = args.size {
        anyhow::ensure!(size >= 8, "--size must be at least 8 pixels");
        augment = augment.resized(size);
    }
    let grid = augment.preview_grid(&image, args.views, args.seed as u64, args.columns);
    std::fs::write(&args.out, grid.to_png()).with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "wrote {} ({}×{}): original + {} {} views ({} px), seed {}",
        args.out.display(),
        grid.width,
        grid.height,
        args.views,
        preset.name(),
        augment.views[0].size,
        args.seed
    );
    Ok(())
}
