//! When a run writes a checkpoint, and how a resumed run restores one. Checkpoints are written
//! every `train.checkpoint_every` epochs and after the last; on an interruption (a signal, or an
//! unreadable streamed image) mid-epoch, before the next batch, so that `--resume` continues with
//! exactly the batches a straight run would have seen. `RunDir::checkpoint` writes them atomically
//! and keeps the newest `train.keep_checkpoints`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::Device;
use indicatif::ProgressBar;
use jem_core::recipe::Recipe;
use jem_core::train::Trainer;

use crate::run::{self, Position, RunDir};

/// Whether the end of epoch `epoch` (0-based) gets a checkpoint: every `checkpoint_every`
/// epochs, after the last, and before stopping early.
pub fn due_after_epoch(recipe: &Recipe, epoch: usize, stopping: bool) -> bool {
    (epoch + 1).is_multiple_of(recipe.train.checkpoint_every.max(1)) || epoch + 1 == recipe.train.epochs || stopping
}

/// Writes a checkpoint in the middle of epoch `epoch`, before batch `next_batch`.
pub fn mid_epoch(
    run_dir: &mut RunDir,
    trainer: &Trainer,
    bar: &ProgressBar,
    epoch: usize,
    next_batch: usize,
    keep: usize,
) -> Result<PathBuf> {
    bar.finish_and_clear();
    run_dir.flush()?;
    let position = Position { epoch, step: trainer.step, batch: next_batch };
    run_dir.checkpoint(trainer.model(), trainer.optimizer(), position, keep)
}

/// Loads the newest intact checkpoint of the run at `run_path` into `trainer` (model, optimiser
/// state, step): the run's folder, the checkpoint's and where training stood.
pub fn restore(trainer: &mut Trainer, recipe: &Recipe, run_path: &Path, device: &Device) -> Result<(PathBuf, PathBuf, Position)> {
    let (run_dir, checkpoint) = run::find_checkpoint(run_path)?;
    let position = run::load_progress(&checkpoint)?;
    let model = run::load_model(recipe.method.init(&recipe.backbone, device)?, &checkpoint)?;
    let optimizer = recipe
        .optimizer
        .init()
        .load(checkpoint.join("optimizer.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: cannot load the optimizer: {e:?}", checkpoint.display()))?;
    trainer.restore(model, optimizer, position.step);
    Ok((run_dir, checkpoint, position))
}
