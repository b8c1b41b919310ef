//! `jem export features`: a frozen encoder's features as NumPy files, for analysis elsewhere.
//! `jem export web`: a checkpoint as one encoder file for the browser demo's Inference tab.
//! `jem export torch`: the backbone for PyTorch, as .safetensors with torchvision's or timm's names.

use std::path::PathBuf;

use anyhow::{Context, Result};
use jem_core::data::Dataset;

use super::eval::{Checkpoint, CheckpointArgs, Frozen};
use crate::{npy, run};

#[derive(clap::Args)]
#[command(after_help = "Writes <out>/{train,test}_features.npy (float32 [N, D]) and, where the split has labels,\n\
    <out>/{train,test}_labels.npy (int64 [N]), in dataset order. In Python:\n  \
    x = numpy.load('features/train_features.npy')")]
pub struct FeaturesArgs {
    #[command(flatten)]
    encoder: CheckpointArgs,
    /// Instead of the datasets: the images of this .safetensors file's tensor `input`
    /// (float32 [N, 3, H, W], already normalised), written as <out>/input_features.npy; for
    /// checks against another framework (bench/torch_check.py).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long, default_value = "features")]
    out: PathBuf,
}

pub fn features(args: FeaturesArgs) -> Result<()> {
    if let Some(input) = &args.input {
        return input_features(&args.encoder, input, &args.out);
    }
    let frozen = Frozen::load(&args.encoder)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    for (name, dataset) in [("train", &frozen.train), ("test", &frozen.test)] {
        write_split(&frozen, name, dataset, &args.out)?;
    }
    Ok(())
}

fn input_features(encoder: &CheckpointArgs, input: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let dict = jem_core::torch_file::read(input)?;
    let images = dict.get("input").with_context(|| format!("{}: has no tensor named 'input'", input.display()))?;
    let [n, c, h, w] = images.shape[..] else { anyhow::bail!("{}: 'input' must be [N, 3, H, W], is {:?}", input.display(), images.shape) };
    let Checkpoint { backbone, device, .. } = encoder.load()?;
    let x = burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(images.values.clone(), [n, c, h, w]), &device);
    let features = backbone.forward(x);
    let [rows, cols] = features.dims();
    let values: Vec<f32> = features.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading features: {e:?}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let path = out.join("input_features.npy");
    npy::write_f32_matrix(&path, &values, rows)?;
    println!("{}: {rows} x {cols} float32", path.display());
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

#[derive(clap::Args)]
#[command(after_help = "A ResNet gets torchvision's names, a ViT timm's (DINO's). In Python:\n  \
    import torch, torchvision, safetensors.torch\n  \
    m = torchvision.models.resnet18(); m.fc = torch.nn.Identity()\n  \
    # CIFAR stem: m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False); m.maxpool = torch.nn.Identity()\n  \
    m.load_state_dict(safetensors.torch.load_file('encoder.safetensors'), strict=True)\n\n\
    bench/torch_check.py runs an image through both and prints the largest difference.")]
pub struct TorchArgs {
    /// A run folder (its latest checkpoint) or one checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The .safetensors file to write.
    #[arg(long, default_value = "encoder.safetensors")]
    out: PathBuf,
}

pub fn torch(args: TorchArgs) -> Result<()> {
    let Checkpoint { recipe, backbone, .. } = Checkpoint::load(&args.checkpoint, "cpu")?;
    let dict = jem_core::model::torch_layout::to_torch(&backbone)?;
    // torchvision's BatchNorms carry a step counter that strict loading asks for.
    let counters: Vec<String> =
        dict.keys().filter_map(|k| k.strip_suffix(".running_mean")).map(|m| format!("{m}.num_batches_tracked")).collect();
    let bytes = jem_core::torch_file::to_safetensors(&dict, &counters);
    let partial = args.out.with_extension("partial");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, &args.out))
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "{}: {} {} backbone ({} names), {} tensors, {:.1} MB",
        args.out.display(),
        recipe.method.name(),
        recipe.backbone.arch,
        if recipe.backbone.arch.starts_with("vit") { "timm's" } else { "torchvision's" },
        dict.len() + counters.len(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
