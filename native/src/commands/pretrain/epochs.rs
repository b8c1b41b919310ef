//! The epochs of a run: batches from the loader, the training step, metrics, progress, and the
//! checks after each step (divergence, a stop request).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};
use jem_core::eval::extract_features;
use jem_core::eval::monitor::effective_rank;
use serde_json::json;

use super::{Args, Session, Trained, Training, checkpoints};
use crate::loader::{EpochLoader, LoaderConfig};
use crate::run::Position;
use crate::signals::{STOP_REQUESTED, catch_stop_signals};

/// Trains from `session.start` to the recipe's last epoch, or until a stop is requested.
pub fn train(session: &mut Session, args: &Args) -> Result<Training> {
    let Session { recipe, train_device, device, train, test, augment, transform, trainer, run_dir, start, last_checkpoint, .. } = session;
    let steps_per_epoch = train.len() / recipe.train.batch_size;
    let keep = recipe.train.keep_checkpoints;
    let loader_config =
        LoaderConfig { batch_size: recipe.train.batch_size, shuffle: true, drop_last: true, seed: recipe.train.seed, prefetch: 2 };
    let mut trained = Trained { losses: Vec::new(), stds: Vec::new(), first_step: trainer.step, images: 0, seconds: 0.0 };
    let started = Instant::now();
    catch_stop_signals();
    let stop_requested =
        |step: usize| STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst) || args.stop_after.is_some_and(|n| step >= n);
    for epoch in start.epoch..recipe.train.epochs {
        let epoch_start = Instant::now();
        let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(steps_per_epoch as u64) };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, recipe.train.epochs));
        let (mut epoch_loss, mut epoch_std, mut images, mut steps) = (0.0f64, 0.0f64, 0usize, 0usize);
        let first = if epoch == start.epoch { start.batch } else { 0 };
        bar.set_position(first as u64);
        for (batch_index, batch) in
            (first..).zip(EpochLoader::starting_at(train.clone(), augment.clone(), loader_config, epoch as u64, first))
        {
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    // A streamed image that became unreadable: keep the position, so that
                    // replacing the file and resuming continues exactly here.
                    let kept = checkpoints::mid_epoch(run_dir, trainer, &bar, epoch, batch_index, keep)?;
                    anyhow::bail!(
                        "{error}\ntraining stopped at step {}; checkpoint {} written (continue with --resume)",
                        trainer.step,
                        kept.display()
                    );
                }
            };
            let stats = trainer.step(&batch.to_tensors(train_device));
            images += batch.len();
            let rate = images as f64 / epoch_start.elapsed().as_secs_f64();
            let mut record = json!({"step": stats.step, "epoch": epoch, "loss": stats.loss, "lr": stats.lr, "embedding_std": stats.embedding_std, "grad_norm": stats.grad_norm, "images_per_s": rate});
            for (name, value) in &stats.terms {
                record[*name] = json!(value);
            }
            if stats.skipped {
                record["skipped"] = json!(true);
            }
            run_dir.log(record)?;
            if !stats.skipped && (!stats.loss.is_finite() || !stats.grad_norm.is_finite()) {
                run_dir.flush()?;
                return Err(diverged(&stats, last_checkpoint.as_deref()));
            }
            epoch_loss += stats.loss as f64;
            epoch_std += stats.embedding_std as f64;
            steps += 1;
            trained.losses.push(stats.loss);
            trained.stds.push(stats.embedding_std);
            bar.set_message(format!("loss {:.4} lr {:.4} {:.0} img/s", stats.loss, stats.lr, rate));
            bar.inc(1);
            if stop_requested(trainer.step) && batch_index + 1 < steps_per_epoch {
                let checkpoint = checkpoints::mid_epoch(run_dir, trainer, &bar, epoch, batch_index + 1, keep)?;
                return Ok(Training::Interrupted { step: trainer.step, checkpoint });
            }
        }
        bar.finish_and_clear();
        trained.images += images;
        let n = steps.max(1) as f64;
        let mut record = json!({"epoch": epoch + 1, "loss": epoch_loss / n, "embedding_std": epoch_std / n, "seconds": epoch_start.elapsed().as_secs_f64(),
            "images_per_s": images as f64 / epoch_start.elapsed().as_secs_f64()});
        if let Some(test) = test.as_ref() {
            let sample = test.clone().truncated(256);
            let features = extract_features(&trainer.model().backbone().valid(), &sample, transform, 256, device)?;
            let [rows, cols] = features.dims();
            let values: Vec<f32> = features.into_data().try_to_vec().expect("f32 features");
            record["effective_rank"] = json!(effective_rank(&values, rows, cols));
        }
        println!(
            "epoch {}/{}: loss {:.4}, embedding std {:.4}{}, {:.0} img/s",
            epoch + 1,
            recipe.train.epochs,
            epoch_loss / n,
            epoch_std / n,
            record.get("effective_rank").map_or(String::new(), |r| format!(", effective rank {:.1}", r.as_f64().unwrap_or(0.0))),
            images as f64 / epoch_start.elapsed().as_secs_f64()
        );
        run_dir.log(record)?;
        run_dir.flush()?;
        let stopping = stop_requested(trainer.step) && epoch + 1 != recipe.train.epochs;
        if checkpoints::due_after_epoch(recipe, epoch, stopping) {
            let position = Position { epoch: epoch + 1, step: trainer.step, batch: 0 };
            *last_checkpoint = Some(run_dir.checkpoint(trainer.model(), trainer.optimizer(), position, keep)?);
        }
        if let (true, Some(checkpoint)) = (stopping, last_checkpoint.as_ref()) {
            return Ok(Training::Interrupted { step: trainer.step, checkpoint: checkpoint.clone() });
        }
    }
    trained.seconds = started.elapsed().as_secs_f64();
    Ok(Training::Done(trained))
}

/// The error for a loss that became NaN or infinite: which step, which term, what is kept, and
/// what to try.
fn diverged(stats: &jem_core::train::StepStats, last_checkpoint: Option<&Path>) -> anyhow::Error {
    let culprits: Vec<String> = stats.terms.iter().filter(|(_, v)| !v.is_finite()).map(|(name, v)| format!("{name} = {v}")).collect();
    let term = if culprits.is_empty() { String::new() } else { format!(" ({})", culprits.join(", ")) };
    let kept = match last_checkpoint {
        Some(dir) => format!("the last good checkpoint, {}, is kept (resume with --resume)", dir.display()),
        None => "no checkpoint was written yet".to_string(),
    };
    let what = if stats.loss.is_finite() {
        format!("the gradient norm became {} at step {} (the loss was still {})", stats.grad_norm, stats.step, stats.loss)
    } else {
        format!("the loss became {} at step {}{term}", stats.loss, stats.step)
    };
    anyhow::anyhow!(
        "training diverged: {what} with learning rate {:.3e}; {kept}. Try a lower learning rate (--lr), a warm-up (train.warmup_epochs) or a smaller batch",
        stats.lr
    )
}
