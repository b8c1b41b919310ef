//! `jem export features`: a frozen encoder's features as NumPy files, for analysis elsewhere.
//! `jem export web`: a checkpoint as one encoder file for the browser demo's Inference tab.

use std::path::PathBuf;

use anyhow::{Context, Result};
use jem_core::data::Dataset;

use super::eval::{CheckpointArgs, Frozen};
use crate::{npy, run};

#[derive(clap::Args)]
#[command(after_help = "Writes <out>/{train,test}_features.npy (float32 [N, D]) and, where the split has labels,\n\
    <out>/{train,test}_labels.npy (int64 [N]), in dataset order. In Python:\n  \
    x = numpy.load('features/train_features.npy')")]
pub struct FeaturesArgs {
    #[command(flatten)]
    encoder: CheckpointArgs,
    /// Output folder (created if missing).
    #[arg(long, default_value = "features")]
    out: PathBuf,
}

pub fn features(args: FeaturesArgs) -> Result<()> {
    let frozen = Frozen::load(&args.encoder)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    for (name, dataset) in [("train", &frozen.train), ("test", &frozen.test)] {
        write_split(&frozen, name, dataset, &args.out)?;
    }
    Ok(())
}

fn write_split(frozen: &Frozen, name: &str, dataset: &Dataset, out: &std::path::Path) -> Result<()> {
    let features = frozen.features(dataset)?;
    let [rows, cols] = features.dims();
    let values: Vec<f32> = features.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading features: {e:?}"))?;
    let path = out.join(format!("{name}_features.npy"));
    npy::write_f32_matrix(&path, &values, rows)?;
    println!("{}: {rows} x {cols} float32", path.display());
    if let Some(labels) = &dataset.labels {
        let path = out.join(format!("{name}_labels.npy"));
        npy::write_labels(&path, labels)?;
        println!("{}: {} int64", path.display(), labels.len());
    }
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "The file holds the run's recipe and the checkpoint's weights; open it in the demo's Inference\n\
    tab (cargo xtask web && cargo xtask serve).")]
pub struct WebArgs {
    /// A run folder (its latest checkpoint) or one checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Encoder file to write.
    #[arg(long, default_value = "encoder.jem")]
    out: PathBuf,
}

pub fn web(args: WebArgs) -> Result<()> {
    let (run_dir, checkpoint) = run::find_checkpoint(&args.checkpoint)?;
    let recipe = run::read_recipe(&run_dir)?;
    let weights_path = checkpoint.join("model.bpk");
    let weights = std::fs::read(&weights_path).with_context(|| format!("{}: cannot read", weights_path.display()))?;
    let file = jem_core::encoder_file::encode(&recipe, &weights);
    std::fs::write(&args.out, &file).with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "{}: {} encoder ({} {}), {:.1} MB",
        args.out.display(),
        recipe.method.name(),
        recipe.backbone.arch,
        recipe.backbone.width,
        file.len() as f64 / 1e6
    );
    Ok(())
}
