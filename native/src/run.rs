//! A run folder: the recipe, metrics, checkpoints, plot and summary of one pretraining run.
//!
//! ```text
//! runs/simclr-shapes-20261130-021500/
//!   config.toml          the full recipe, as run
//!   metrics.jsonl        one JSON object per step ("step") and per epoch ("epoch"), and the
//!                        kNN baseline at random init ("knn_top1_random_init")
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

/// Where a run stands in its epochs and steps: enough to continue after a checkpoint (the
/// schedule-facing counterpart is `jem_core::method::Progress`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: usize,
    /// Batches done in the epoch after `epoch` (non-zero for a checkpoint written part-way
    /// through an epoch, when training was interrupted).
    #[serde(default)]
    pub batch: usize,
}

impl Position {
    /// The checkpoint folder's name; names sort in training order.
    fn checkpoint_name(&self) -> String {
        match self.batch {
            0 => format!("epoch-{:04}", self.epoch),
            _ => format!("epoch-{:04}-step-{:07}", self.epoch, self.step),
        }
    }
}

impl RunDir {
    /// Creates (or, when resuming, reopens) a run folder and writes the recipe into it.
    pub fn open(path: &Path, recipe: &Recipe, resume: bool) -> Result<Self> {
        fs::create_dir_all(path.join("checkpoints")).with_context(|| format!("{}: cannot create the run folder", path.display()))?;
        if !resume {
            fs::write(path.join("config.toml"), recipe.to_toml())
                .with_context(|| format!("{}: cannot write config.toml", path.display()))?;
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

    /// Writes a checkpoint for the state at `progress`, atomically: everything
    /// goes into a hidden folder, is flushed to disk, and only then renamed into place and named
    /// in `latest`. A crash or a full disk part-way leaves the previous checkpoints as they were.
    /// Keeps the newest `keep` checkpoints (0: all).
    pub fn checkpoint(&self, model: &Model, optimizer: &ModuleOptimizer, position: Position, keep: usize) -> Result<PathBuf> {
        let checkpoints = self.path.join("checkpoints");
        let name = position.checkpoint_name();
        let partial = checkpoints.join(format!(".{name}.partial"));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial)?;
        let failed = |what: &str, e: &dyn std::fmt::Debug| {
            anyhow::anyhow!("{}: cannot save the {what}: {e:?}; the previous checkpoints are intact", partial.display())
        };
        let write = || -> Result<()> {
            model.clone().save_file(partial.join("model.bpk")).map_err(|e| failed("model", &e))?;
            optimizer.save(partial.join("optimizer.bpk")).map_err(|e| failed("optimizer", &e))?;
            let mut state = CheckpointState { progress: position, files: Default::default() };
            for file in CHECKPOINT_FILES {
                let bytes = fs::read(partial.join(file))?;
                state.files.insert(file.to_string(), FileSum::of(&bytes));
            }
            fs::write(partial.join("state.json"), serde_json::to_string_pretty(&state)?).map_err(|e| failed("state", &e))?;
            for file in CHECKPOINT_FILES.iter().chain(&["state.json"]) {
                File::open(partial.join(file))?.sync_all()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            // Free the space of the half-written copy (a full disk is the likely cause).
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        let dir = checkpoints.join(&name);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::rename(&partial, &dir)?;
        write_atomically(&checkpoints.join("latest"), name.as_bytes())?;
        File::open(&checkpoints)?.sync_all()?;
        if keep > 0 {
            for old in checkpoint_dirs(&self.path)?.into_iter().skip(keep) {
                fs::remove_dir_all(old)?;
            }
        }
        Ok(dir)
    }
}

/// The files of a checkpoint that `state.json` holds checksums for.
const CHECKPOINT_FILES: [&str; 2] = ["model.bpk", "optimizer.bpk"];

/// A checkpoint's `state.json`: where training stands, and the size and checksum of each file,
/// so that a truncated or damaged checkpoint is recognised before it is loaded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckpointState {
    #[serde(flatten)]
    pub progress: Position,
    /// Absent in checkpoints written before checksums existed; those load unchecked.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, FileSum>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    /// FNV-1a, 64 bit, in hex: catches truncation and corruption, not tampering.
    pub fnv1a64: String,
}

impl FileSum {
    pub fn of(data: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in data {
            hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self { bytes: data.len() as u64, fnv1a64: format!("{hash:016x}") }
    }
}

/// Writes `path` through a temporary file and a rename, so that readers see the old or the
/// new content, never a part.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    let mut file = File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// A run's checkpoint folders, newest first.
fn checkpoint_dirs(run: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = match fs::read_dir(run.join("checkpoints")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("epoch-")) && p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    dirs.reverse();
    Ok(dirs)
}

/// Checks a checkpoint folder against its `state.json`; says what is wrong if anything is.
pub fn verify_checkpoint(dir: &Path) -> Result<CheckpointState> {
    let text = fs::read_to_string(dir.join("state.json")).with_context(|| format!("{}: missing state.json", dir.display()))?;
    let state: CheckpointState = serde_json::from_str(&text).with_context(|| format!("{}: state.json is damaged", dir.display()))?;
    anyhow::ensure!(dir.join("model.bpk").is_file(), "{}: missing model.bpk", dir.display());
    for (file, expected) in &state.files {
        let data = fs::read(dir.join(file)).with_context(|| format!("{}: missing {file}", dir.display()))?;
        let found = FileSum::of(&data);
        anyhow::ensure!(
            found == *expected,
            "{}: {file} is damaged ({} bytes, checksum {}; state.json says {} bytes, checksum {})",
            dir.display(),
            found.bytes,
            found.fnv1a64,
            expected.bytes,
            expected.fnv1a64
        );
    }
    Ok(state)
}

/// The last value logged under `key` in a run's metrics.jsonl (for a resumed run, what its first
/// part measured).
pub fn logged_value(run: &Path, key: &str) -> Option<f64> {
    let metrics = fs::read_to_string(run.join("metrics.jsonl")).ok()?;
    metrics
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|record| record.get(key)?.as_f64())
}

/// A recipe file.
pub fn read_recipe_file(path: &Path) -> Result<Recipe> {
    let text = fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Recipe::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The recipe a run folder was made with.
pub fn read_recipe(run: &Path) -> Result<Recipe> {
    let path = run.join("config.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("{}: cannot read; is this a jem run folder?", path.display()))?;
    Recipe::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Resolves `path` — a run folder, a run's `checkpoints/` or one checkpoint folder — to
/// `(run folder, checkpoint folder)`. For a run, that is the newest intact checkpoint: a damaged
/// one (truncated, say, by a full disk) is skipped with a warning.
pub fn find_checkpoint(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if path.join("model.bpk").is_file() || path.join("state.json").is_file() {
        let run = path.parent().and_then(Path::parent).context("a checkpoint folder lives in RUN/checkpoints/")?;
        verify_checkpoint(path)?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    let run = if path.join("config.toml").is_file() { path.to_path_buf() } else { path.parent().unwrap_or(path).to_path_buf() };
    let latest = fs::read_to_string(run.join("checkpoints").join("latest")).ok().map(|name| run.join("checkpoints").join(name.trim()));
    let older = checkpoint_dirs(&run)?.into_iter().filter(|d| Some(d) != latest.as_ref());
    let candidates: Vec<PathBuf> = latest.clone().into_iter().chain(older).collect();
    anyhow::ensure!(!candidates.is_empty(), "{}: no checkpoint in this run (nothing in {}/checkpoints)", run.display(), run.display());
    for dir in &candidates {
        match verify_checkpoint(dir) {
            Ok(_) => return Ok((run.clone(), dir.clone())),
            Err(e) => eprintln!("warning: {e:#}; trying an older checkpoint"),
        }
    }
    anyhow::bail!("{}: no intact checkpoint left (all {} are damaged)", run.display(), candidates.len())
}

/// Loads a checkpoint's model into `model` (built from the run's recipe).
pub fn load_model(model: Model, checkpoint: &Path) -> Result<Model> {
    model.try_load_file(checkpoint.join("model.bpk")).map_err(|e| anyhow::anyhow!("{}: cannot load the model: {e:?}", checkpoint.display()))
}

/// Where training stood at a checkpoint that [`find_checkpoint`] has already verified.
pub fn load_progress(checkpoint: &Path) -> Result<Position> {
    let text =
        fs::read_to_string(checkpoint.join("state.json")).with_context(|| format!("{}: missing state.json", checkpoint.display()))?;
    let state: CheckpointState = serde_json::from_str(&text).with_context(|| format!("{}: state.json is damaged", checkpoint.display()))?;
    Ok(state.progress)
}
