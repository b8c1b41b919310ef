use std::path::PathBuf;

use anyhow::Result;
use jem_core::eval::extract_features;
use jem_core::eval::knn::KnnConfig;
use jem_core::eval::linear::{LinearProbeConfig, linear_probe};

use super::pretrain::{eval_transform, knn_top1, open_datasets, training_views};
use crate::{device, run};

#[derive(clap::Args)]
pub struct Args {
    /// A run folder (its latest checkpoint) or one checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset with train and test splits; default: the run's.
    #[arg(long)]
    data: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
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

#[derive(Clone, Copy, PartialEq)]
pub enum Protocol {
    Knn,
    Linear,
}

pub fn run(protocol: Protocol, args: Args) -> Result<()> {
    let (run_dir, checkpoint) = run::find_checkpoint(&args.checkpoint)?;
    let mut recipe = run::read_recipe(&run_dir)?;
    if let Some(d) = &args.data {
        recipe.data.dataset = d.clone();
    }
    let device = device::parse(&args.device)?;
    let model = run::load_model(recipe.method.init(&recipe.backbone, &device).map_err(anyhow::Error::msg)?, &checkpoint)?;
    let (train, test) = open_datasets(&recipe, None)?;
    let test = test.ok_or_else(|| anyhow::anyhow!("{}: needs a test (or val) split to evaluate on", recipe.data.dataset))?;
    let transform = eval_transform(&training_views(&recipe, &train)?);
    println!("checkpoint {} ({}, {}), {} train / {} test images", checkpoint.display(), recipe.method.name(), recipe.backbone.arch, train.len(), test.len());
    match protocol {
        Protocol::Knn => {
            let config = KnnConfig { k: args.k, temperature: args.temperature };
            let top1 = knn_top1(model.backbone(), &train, &test, &transform, config, &device)?;
            println!("kNN (k={}, T={}) top-1: {top1:.2}%", args.k, args.temperature);
        }
        Protocol::Linear => {
            use burn::module::Module;
            let backbone = model.backbone().valid();
            let features = |ds| extract_features(&backbone, ds, &transform, 256, &device);
            let (train_labels, test_labels) = (train.labels.clone().unwrap_or_default(), test.labels.clone().unwrap_or_default());
            anyhow::ensure!(!train_labels.is_empty() && !test_labels.is_empty(), "the linear probe needs labels");
            let config = LinearProbeConfig { epochs: args.epochs, lr: args.lr, ..Default::default() };
            let acc = linear_probe(features(&train), &train_labels, features(&test), &test_labels, train.classes.len(), config, &device.clone().autodiff());
            println!("linear probe ({} epochs on frozen features): top-1 {:.2}%, top-5 {:.2}%", args.epochs, acc.top1, acc.top5);
        }
    }
    Ok(())
}
