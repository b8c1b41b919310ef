use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use jem_core::augment::{MultiViewAugment, ViewTransform};
use jem_core::data::Dataset;
use jem_core::eval::extract_features;
use jem_core::eval::finetune::FinetuneConfig;
use jem_core::eval::knn::KnnConfig;
use jem_core::eval::linear::{LinearProbeConfig, linear_probe};
use jem_core::model::Backbone;
use jem_core::recipe::Recipe;

use super::pretrain::{knn_top1, open_datasets, training_views};
use crate::{device, run};

/// Which encoder to evaluate, on which data and device.
#[derive(clap::Args)]
pub struct CheckpointArgs {
    /// A run folder (its latest checkpoint) or one checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset with train and test splits; default: the run's.
    #[arg(long)]
    data: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    encoder: CheckpointArgs,
    /// kNN: neighbours.
    #[arg(long, default_value_t = 200)]
    k: usize,
    /// kNN: temperature of the exp(sim / T) vote weights.
    #[arg(long, default_value_t = 0.1)]
    temperature: f32,
    /// Linear probe: epochs over the precomputed features.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Linear probe: AdamW learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
}

#[derive(clap::Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    encoder: CheckpointArgs,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Peak AdamW learning rate at batch 256 (scaled by batch / 256), after one epoch of warm-up.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0.05)]
    weight_decay: f32,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Protocol {
    Knn,
    Linear,
}

/// A checkpoint's encoder with the datasets and transform it is evaluated on.
pub struct Frozen {
    pub backbone: Backbone,
    pub train: Dataset,
    pub test: Dataset,
    pub transform: ViewTransform,
    pub device: Device,
}

/// A checkpoint's backbone (inference mode) with its run's recipe, without any dataset.
pub struct Checkpoint {
    /// The checkpoint folder.
    pub dir: PathBuf,
    pub recipe: Recipe,
    pub backbone: Backbone,
    pub device: Device,
}

impl Checkpoint {
    /// Loads `path` (a run folder means its latest checkpoint) on `device`.
    pub fn load(path: &Path, device: &str) -> Result<Self> {
        let (run_dir, dir) = run::find_checkpoint(path)?;
        let recipe = run::read_recipe(&run_dir)?;
        let device = device::parse(device)?;
        let model = run::load_model(recipe.method.init(&recipe.backbone, &device).map_err(anyhow::Error::msg)?, &dir)?;
        Ok(Self { dir, recipe, backbone: model.backbone().valid(), device })
    }
}

impl CheckpointArgs {
    /// The checkpoint on the chosen device (its recipe's data, whatever `--data` says).
    pub fn load(&self) -> Result<Checkpoint> {
        Checkpoint::load(&self.checkpoint, &self.device)
    }
}

impl Frozen {
    /// Loads the checkpoint (a run folder means its latest), the run's recipe and its dataset
    /// (or `data`), and prints one line saying what is evaluated.
    pub fn load(args: &CheckpointArgs) -> Result<Self> {
        let Checkpoint { dir: checkpoint, mut recipe, backbone, device } = args.load()?;
        if let Some(d) = &args.data {
            recipe.data.dataset = d.clone();
        }
        let (train, test) = open_datasets(&recipe, None)?;
        let test = test.ok_or_else(|| anyhow::anyhow!("{}: needs a test (or val) split to evaluate on", recipe.data.dataset))?;
        let transform = training_views(&recipe, &train)?.eval_transform();
        println!(
            "checkpoint {} ({}, {}), {} train / {} test images",
            checkpoint.display(),
            recipe.method.name(),
            recipe.backbone.arch,
            train.len(),
            test.len()
        );
        Ok(Self { backbone, train, test, transform, device })
    }

    /// Features of every image of `dataset`, `[N, D]`, in dataset order.
    pub fn features(&self, dataset: &Dataset) -> Result<Tensor<2>> {
        Ok(extract_features(&self.backbone, dataset, &self.transform, 256, &self.device)?)
    }
}

pub fn run(protocol: Protocol, args: Args) -> Result<()> {
    let frozen = Frozen::load(&args.encoder)?;
    match protocol {
        Protocol::Knn => {
            let config = KnnConfig { k: args.k, temperature: args.temperature };
            let top1 = knn_top1(&frozen.backbone, &frozen.train, &frozen.test, &frozen.transform, config, &frozen.device)?;
            println!("kNN (k={}, T={}) top-1: {top1:.2}%", args.k, args.temperature);
        }
        Protocol::Linear => {
            let (Some(train_labels), Some(test_labels)) = (&frozen.train.labels, &frozen.test.labels) else {
                anyhow::bail!("the linear probe needs labels in both splits");
            };
            let config = LinearProbeConfig { epochs: args.epochs, lr: args.lr, ..Default::default() };
            let (train_features, test_features) = (frozen.features(&frozen.train)?, frozen.features(&frozen.test)?);
            let acc = linear_probe(
                train_features,
                train_labels,
                test_features,
                test_labels,
                frozen.train.classes.len(),
                config,
                &frozen.device.clone().autodiff(),
            );
            println!("linear probe ({} epochs on frozen features): top-1 {:.2}%, top-5 {:.2}%", args.epochs, acc.top1, acc.top5);
        }
    }
    Ok(())
}

/// Fine-tunes the checkpoint's backbone with a new linear classifier and reports test accuracy.
pub fn finetune(args: FinetuneArgs) -> Result<()> {
    let (run_dir, checkpoint) = run::find_checkpoint(&args.encoder.checkpoint)?;
    let mut recipe = run::read_recipe(&run_dir)?;
    if let Some(d) = &args.encoder.data {
        recipe.data.dataset = d.clone();
    }
    let device = device::parse(&args.encoder.device)?.autodiff();
    device.seed(recipe.train.seed);
    let model = run::load_model(recipe.method.init(&recipe.backbone, &device).map_err(anyhow::Error::msg)?, &checkpoint)?;
    let (train, test) = open_datasets(&recipe, None)?;
    let test = test.ok_or_else(|| anyhow::anyhow!("{}: needs a test (or val) split to evaluate on", recipe.data.dataset))?;
    let eval = training_views(&recipe, &train)?.eval_transform();
    // Supervised-style views: random resized crops (35–100 %) and flips, no colour changes.
    let views = MultiViewAugment::symmetric(ViewTransform::crop_only(eval.size, (0.35, 1.0), eval.normalize), 1);
    let config = FinetuneConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: recipe.train.seed,
    };
    anyhow::ensure!(
        train.len() >= config.batch_size,
        "the train split has {} images, fewer than one batch of {}",
        train.len(),
        config.batch_size
    );
    println!(
        "fine-tuning {} ({}, {}) on {} train images, {} epochs, then testing on {}",
        checkpoint.display(),
        recipe.method.name(),
        recipe.backbone.arch,
        train.len(),
        config.epochs,
        test.len()
    );
    let result = jem_core::eval::finetune::finetune(model.backbone().clone(), &train, &test, &views, &eval, config, &device)?;
    let losses: Vec<String> = result.epoch_losses.iter().map(|l| format!("{l:.3}")).collect();
    println!("training loss per epoch: {}", losses.join(", "));
    println!("fine-tuned ({} epochs): top-1 {:.2}%, top-5 {:.2}%", config.epochs, result.accuracy.top1, result.accuracy.top5);
    Ok(())
}
