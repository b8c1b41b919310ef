//! A run folder: the recipe, metrics, checkpoints, plot and summary of one pretraining run.
//!
//! ```text
//! runs/simclr-shapes-20261130-021500/
//!   config.toml          the full recipe, as run
//!   metrics.jsonl        one JSON object per step ("step") and per epoch ("epoch")
//!   checkpoints/epoch-0010/{model.bpk, optimizer.bpk, state.json}
//!   checkpoints/latest   name of the newest checkpoint folder
//!   plot.png             loss (top) and embedding std (bottom) per step
//!   summary.json         kNN top-1 at random init and after training, timings
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use jem_core::method::Model;
use jem_core::recipe::Recipe;

pub struct RunDir {
    pub path: PathBuf,
    metrics: BufWriter<File>,
}

/// Where training stands: enough to continue after a checkpoint.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: usize,
}

impl RunDir {
    /// Creates (or, when resuming, reopens) a run folder and writes the recipe into it.
    pub fn open(path: &Path, recipe: &Recipe, resume: bool) -> Result<Self> {
        fs::create_dir_all(path.join("checkpoints")).with_context(|| format!("{}: cannot create the run folder", path.display()))?;
        if !resume {
            fs::write(path.join("config.toml"), recipe.to_toml()).with_context(|| format!("{}: cannot write config.toml", path.display()))?;
        }
        let metrics = fs::OpenOptions::new().create(true).append(resume).write(true).truncate(!resume).open(path.join("metrics.jsonl"))?;
        Ok(Self { path: path.to_path_buf(), metrics: BufWriter::new(metrics) })
    }

    pub fn log(&mut self, record: serde_json::Value) -> Result<()> {
        writeln!(self.metrics, "{record}")?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.metrics.flush()?)
    }

    /// Writes a checkpoint for the state after `progress.epoch` epochs.
    pub fn checkpoint(&self, model: &Model, optimizer: &ModuleOptimizer, progress: Progress) -> Result<PathBuf> {
        let name = format!("epoch-{:04}", progress.epoch);
        let dir = self.path.join("checkpoints").join(&name);
        fs::create_dir_all(&dir)?;
        model.clone().save_file(dir.join("model.bpk")).map_err(|e| anyhow::anyhow!("{}: cannot save the model: {e:?}", dir.display()))?;
        optimizer.save(dir.join("optimizer.bpk")).map_err(|e| anyhow::anyhow!("{}: cannot save the optimizer: {e:?}", dir.display()))?;
        fs::write(dir.join("state.json"), serde_json::to_string(&progress)?)?;
        fs::write(self.path.join("checkpoints").join("latest"), &name)?;
        Ok(dir)
    }
}

/// The recipe a run folder was made with.
pub fn read_recipe(run: &Path) -> Result<Recipe> {
    let path = run.join("config.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("{}: cannot read; is this a jem run folder?", path.display()))?;
    Recipe::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Resolves `path` — a run folder, a run's `checkpoints/` or one checkpoint folder — to
/// `(run folder, checkpoint folder)`.
pub fn find_checkpoint(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if path.join("model.bpk").is_file() {
        let run = path.parent().and_then(Path::parent).context("a checkpoint folder lives in RUN/checkpoints/")?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    let run = if path.join("config.toml").is_file() { path.to_path_buf() } else { path.parent().unwrap_or(path).to_path_buf() };
    let latest = run.join("checkpoints").join("latest");
    let name = fs::read_to_string(&latest).with_context(|| format!("{}: no checkpoint in this run (missing {})", run.display(), latest.display()))?;
    Ok((run.clone(), run.join("checkpoints").join(name.trim())))
}

/// Loads a checkpoint's model into `model` (built from the run's recipe).
pub fn load_model(model: Model, checkpoint: &Path) -> Result<Model> {
    model.try_load_file(checkpoint.join("model.bpk")).map_err(|e| anyhow::anyhow!("{}: cannot load the model: {e:?}", checkpoint.display()))
}

pub fn load_progress(checkpoint: &Path) -> Result<Progress> {
    let text = fs::read_to_string(checkpoint.join("state.json")).with_context(|| format!("{}: missing state.json", checkpoint.display()))?;
    Ok(serde_json::from_str(&text)?)
}
