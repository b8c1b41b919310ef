use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use jem_core::augment::{MultiViewAugment, ViewTransform};
use jem_core::data::{Dataset, Split};
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::eval::monitor::effective_rank;
use jem_core::model::Backbone;
use jem_core::recipe::Recipe;
use jem_core::train::Trainer;
use serde_json::json;

use crate::datasets::{OpenOptions, Source};
use crate::loader::{EpochLoader, LoaderConfig};
use crate::run::{self, Progress, RunDir};
use crate::{device, plot};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  jem pretrain                                         # SimCLR on built-in shapes, a few minutes\n  \
    jem pretrain --recipe recipes/shapes/vicreg.toml\n  \
    jem pretrain --recipe recipes/cifar10/simclr.toml --data ~/data/cifar-10-batches-bin\n  \
    jem pretrain --resume runs/simclr-shapes-20261130-021500\n  \
    jem pretrain --recipe recipes/cifar10/mae.toml --epochs 0 --out runs/mae-init   # random-init baseline")]
pub struct Args {
    /// Recipe TOML (see recipes/). Default: SimCLR on the built-in shapes dataset.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Dataset, overriding the recipe's: a CIFAR/STL-10 folder, an ImageFolder root, or shapes.
    #[arg(long)]
    data: Option<String>,
    /// Epochs to train; 0 saves the initial weights (the random-init baseline for `jem eval`).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate (at batch size 256).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Train on only the first N training images (quick trials).
    #[arg(long)]
    limit: Option<usize>,
    /// cpu, wgpu or cuda (GPU backends need the matching cargo feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Run folder. Default: runs/<method>-<dataset>-<time>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue a run from its latest checkpoint (a run folder).
    #[arg(long, conflicts_with_all = ["recipe", "out"])]
    resume: Option<PathBuf>,
    /// No progress bar (logs one line per epoch instead).
    #[arg(long)]
    quiet: bool,
    /// Act as if interrupted (Ctrl-C) after this many steps: for testing resume.
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

/// Set by Ctrl-C or SIGTERM: training stops after the current step, writes a checkpoint and
/// exits cleanly. A second signal ends the process at once.
static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_stop_signal(_: libc::c_int) {
    if STOP_REQUESTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Only async-signal-safe calls here.
        unsafe { libc::_exit(130) };
    }
}

fn catch_stop_signals() {
    #[cfg(unix)]
    unsafe {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Resolves a dataset name: an existing path, `shapes[:RES]`, or a folder of that name in
/// `$JEM_DATA` (e.g. `cifar10`).
pub fn resolve_source(name: &str, options: OpenOptions) -> Result<Source> {
    if name.starts_with("shapes") || Path::new(name).exists() {
        return Source::detect(name, options);
    }
    match std::env::var_os("JEM_DATA").map(PathBuf::from) {
        Some(root) if root.join(name).exists() => Source::detect(&root.join(name).to_string_lossy(), options),
        _ => anyhow::bail!("dataset '{name}' is neither a path nor in $JEM_DATA; pass --data PATH (e.g. the folder with data_batch_1.bin)"),
    }
}

/// Train and test splits of the recipe's dataset (test may be absent).
pub fn open_datasets(recipe: &Recipe, limit: Option<usize>) -> Result<(Dataset, Option<Dataset>)> {
    let options = OpenOptions { shapes_count: recipe.data.shapes_count, stream: recipe.data.stream, ..Default::default() };
    let source = resolve_source(&recipe.data.dataset, options)?;
    let mut train = source.open(Split::Train, options)?;
    if let Some(n) = limit {
        train = train.truncated(n);
    }
    anyhow::ensure!(
        train.len() >= recipe.train.batch_size,
        "the train split has {} images, fewer than one batch of {}",
        train.len(),
        recipe.train.batch_size
    );
    if let Some(classes) = recipe.method.label_classes() {
        anyhow::ensure!(train.labels.is_some(), "{} trains with labels, and this train split has none", recipe.method.name());
        anyhow::ensure!(
            classes == train.classes.len(),
            "method.classes = {classes}, but the dataset has {} classes; set method.classes = {}",
            train.classes.len(),
            train.classes.len()
        );
    }
    let test = if source.splits().contains(&Split::Test) { Some(source.open(Split::Test, options)?) } else { None };
    Ok((train, test))
}

/// The recipe's training views for the images of `train`.
pub fn training_views(recipe: &Recipe, train: &Dataset) -> Result<MultiViewAugment> {
    let (width, height) = train.image_size(0);
    let augment = recipe.data.augment.build(width, height).map_err(anyhow::Error::msg)?;
    recipe.check_views(&augment).map_err(anyhow::Error::msg)?;
    // Crops are resized up, but views larger than the images themselves only blur them (and
    // cost time): most likely the ImageNet variant on small images.
    let (view, side) = (augment.views[0].size, width.min(height));
    anyhow::ensure!(
        view <= side,
        "augment: views of {view} px are larger than the images ({width}×{height}); set data.augment.variant = \"cifar\" or data.augment.size ≤ {side}"
    );
    Ok(augment)
}

/// kNN top-1 of a backbone: bank = train images, queries = test images, both unaugmented.
pub fn knn_top1(
    backbone: &Backbone,
    train: &Dataset,
    test: &Dataset,
    transform: &ViewTransform,
    config: KnnConfig,
    device: &Device,
) -> Result<f64> {
    let (Some(train_labels), Some(test_labels)) = (&train.labels, &test.labels) else {
        anyhow::bail!("kNN needs labels in both splits");
    };
    let backbone = backbone.valid();
    let bank = extract_features(&backbone, train, transform, 256, device)?;
    let queries = extract_features(&backbone, test, transform, 256, device)?;
    Ok(knn_accuracy(bank, train_labels, queries, test_labels, train.classes.len(), config).top1)
}

fn build_recipe(args: &Args) -> Result<Recipe> {
    let mut recipe = match (&args.resume, &args.recipe) {
        (Some(run), _) => run::read_recipe(run)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
            Recipe::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        (None, None) => Recipe::default_shapes(),
    };
    if args.resume.is_none() {
        if let Some(d) = &args.data {
            recipe.data.dataset = d.clone();
        }
        if let Some(e) = args.epochs {
            recipe.train.epochs = e;
        }
        if let Some(b) = args.batch_size {
            recipe.train.batch_size = b;
        }
        if let Some(lr) = args.lr {
            recipe.train.base_lr = lr;
        }
        if let Some(s) = args.seed {
            recipe.train.seed = s;
        }
        // The run folder's config.toml names the data; absolute, `--resume` finds it from any
        // working directory. (Names that are not paths, such as `shapes`, stay as they are.)
        if let Some(absolute) = std::fs::canonicalize(&recipe.data.dataset).ok().and_then(|p| p.to_str().map(str::to_owned)) {
            recipe.data.dataset = absolute;
        }
    }
    recipe.validate().map_err(anyhow::Error::msg)?;
    Ok(recipe)
}

fn default_run_dir(recipe: &Recipe) -> PathBuf {
    let dataset: String = Path::new(&recipe.data.dataset).file_name().map_or("data".into(), |n| n.to_string_lossy().into_owned());
    let dataset: String = dataset.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{}-{}-{}", recipe.method.name(), dataset, timestamp(secs)))
}

/// `YYYYmmdd-HHMMSS` (UTC) from Unix seconds.
fn timestamp(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
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

/// "1 view of 32 px", "6 views (2 of 32 px + 4 of 16 px)" (multi-crop).
fn describe_views(augment: &MultiViewAugment) -> String {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for view in &augment.views {
        match groups.last_mut() {
            Some((count, size)) if *size == view.size => *count += 1,
            _ => groups.push((1, view.size)),
        }
    }
    let total = augment.views.len();
    let views = format!("{total} view{}", if total == 1 { "" } else { "s" });
    match groups.as_slice() {
        [(_, size)] => format!("{views} of {size} px"),
        _ => format!("{views} ({})", groups.iter().map(|&(count, size)| format!("{count} of {size} px")).collect::<Vec<_>>().join(" + ")),
    }
}

/// Writes a checkpoint in the middle of an epoch, before `next_batch` (stopped or interrupted
/// runs), so that `--resume` continues with exactly the batches a straight run would have seen.
fn checkpoint_mid_epoch(
    run_dir: &mut RunDir,
    trainer: &Trainer,
    bar: &ProgressBar,
    epoch: usize,
    next_batch: usize,
    keep: usize,
) -> Result<PathBuf> {
    bar.finish_and_clear();
    run_dir.flush()?;
    let progress = Progress { epoch, step: trainer.step, batch: next_batch };
    run_dir.checkpoint(trainer.model(), trainer.optimizer(), progress, keep)
}

pub fn run(args: Args) -> Result<()> {
    let recipe = build_recipe(&args)?;
    let device = device::parse(&args.device)?;
    let train_device = device.clone().autodiff();
    train_device.seed(recipe.train.seed);
    let (train, test) = open_datasets(&recipe, args.limit)?;
    let augment = Arc::new(training_views(&recipe, &train)?);
    let transform = augment.eval_transform();
    let knn = KnnConfig { k: recipe.eval.knn_k, temperature: recipe.eval.knn_temperature };
    let model = recipe.method.init(&recipe.backbone, &train_device).map_err(anyhow::Error::msg)?;

    let steps_per_epoch = train.len() / recipe.train.batch_size;
    let schedule = recipe.train.schedule(steps_per_epoch);
    let mut trainer = Trainer::new(model, &recipe.optimizer, schedule);
    let (mut start_epoch, mut first_batch) = (0, 0);
    // The newest checkpoint on disk, named if training diverges.
    let mut last_checkpoint = None;
    let dir = match &args.resume {
        Some(run_path) => {
            let (run_dir, checkpoint) = run::find_checkpoint(run_path)?;
            let progress = run::load_progress(&checkpoint)?;
            let model = run::load_model(recipe.method.init(&recipe.backbone, &train_device).map_err(anyhow::Error::msg)?, &checkpoint)?;
            let optimizer = recipe
                .optimizer
                .init()
                .load(checkpoint.join("optimizer.bpk"))
                .map_err(|e| anyhow::anyhow!("{}: cannot load the optimizer: {e:?}", checkpoint.display()))?;
            trainer.restore(model, optimizer, progress.step);
            (start_epoch, first_batch) = (progress.epoch, progress.batch);
            println!("resuming {} at epoch {} (step {})", run_dir.display(), progress.epoch, progress.step);
            last_checkpoint = Some(checkpoint);
            run_dir
        }
        None => args.out.clone().unwrap_or_else(|| default_run_dir(&recipe)),
    };
    let mut run_dir = RunDir::open(&dir, &recipe, args.resume.is_some())?;

    println!(
        "jem pretrain: {} on {} ({} train images{}), {}, {}, batch {}, {} epoch{} of {} steps, {} on {}",
        recipe.method.name(),
        recipe.data.dataset,
        train.len(),
        test.as_ref().map_or(String::new(), |t| format!(", {} test", t.len())),
        recipe.backbone.arch,
        describe_views(&augment),
        recipe.train.batch_size,
        recipe.train.epochs,
        if recipe.train.epochs == 1 { "" } else { "s" },
        steps_per_epoch,
        recipe.optimizer.name(),
        args.device,
    );
    println!("run folder: {}", dir.display());

    // The baseline is the backbone this run starts from, not a second random draw: a second
    // model would come after the method's heads in the random stream, so its backbone would
    // differ from one method to the next even with the same seed. A resumed run reports the
    // baseline its first part measured (logged in metrics.jsonl).
    let random_init_knn = match (&test, &args.resume) {
        (Some(test), None) => {
            let k = knn_top1(trainer.model().backbone(), &train, test, &transform, knn, &device)?;
            println!("kNN top-1 at random init: {k:.1}%");
            run_dir.log(json!({ "knn_top1_random_init": k }))?;
            Some(k)
        }
        (_, Some(run)) => run::logged_value(run, "knn_top1_random_init"),
        _ => None,
    };

    if recipe.train.epochs == 0 {
        // No training: the initial weights are the run's checkpoint, so that every `jem eval`
        // (kNN, linear probe, fine-tuning from scratch) measures its random-init baseline.
        let checkpoint = run_dir.checkpoint(
            trainer.model(),
            trainer.optimizer(),
            Progress { epoch: 0, step: 0, batch: 0 },
            recipe.train.keep_checkpoints,
        )?;
        run_dir.flush()?;
        println!("0 epochs: no training; wrote the initial weights to {}", checkpoint.display());
        println!("evaluate them with: jem eval linear --checkpoint {0}  (or: jem eval finetune --checkpoint {0})", dir.display());
        return Ok(());
    }

    let train = Arc::new(train);
    let loader_config =
        LoaderConfig { batch_size: recipe.train.batch_size, shuffle: true, drop_last: true, seed: recipe.train.seed, prefetch: 2 };
    let mut losses = Vec::new();
    let mut stds = Vec::new();
    let mut trained_images = 0usize;
    let started = Instant::now();
    catch_stop_signals();
    let stop_requested =
        |step: usize| STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst) || args.stop_after.is_some_and(|n| step >= n);
    let interrupted = |step: usize, checkpoint: &Path| {
        println!("interrupted after step {step}: wrote {}; continue with: jem pretrain --resume {}", checkpoint.display(), dir.display());
    };
    for epoch in start_epoch..recipe.train.epochs {
        let epoch_start = Instant::now();
        let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(steps_per_epoch as u64) };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, recipe.train.epochs));
        let (mut epoch_loss, mut epoch_std, mut images, mut steps) = (0.0f64, 0.0f64, 0usize, 0usize);
        let first = if epoch == start_epoch { first_batch } else { 0 };
        bar.set_position(first as u64);
        for (batch_index, batch) in
            (first..).zip(EpochLoader::starting_at(train.clone(), augment.clone(), loader_config, epoch as u64, first))
        {
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    // A streamed image that became unreadable: keep the position, so that
                    // replacing the file and resuming continues exactly here.
                    let kept = checkpoint_mid_epoch(&mut run_dir, &trainer, &bar, epoch, batch_index, recipe.train.keep_checkpoints)?;
                    anyhow::bail!(
                        "{error}\ntraining stopped at step {}; checkpoint {} written (continue with --resume)",
                        trainer.step,
                        kept.display()
                    );
                }
            };
            let stats = trainer.step(&batch.to_tensors(&train_device));
            images += batch.len();
            let rate = images as f64 / epoch_start.elapsed().as_secs_f64();
            let mut record = json!({"step": stats.step, "epoch": epoch, "loss": stats.loss, "lr": stats.lr, "embedding_std": stats.embedding_std, "grad_norm": stats.grad_norm, "images_per_s": rate});
            for (name, value) in &stats.terms {
                record[*name] = json!(value);
            }
            run_dir.log(record)?;
            if !stats.loss.is_finite() || !stats.grad_norm.is_finite() {
                run_dir.flush()?;
                return Err(diverged(&stats, last_checkpoint.as_deref()));
            }
            epoch_loss += stats.loss as f64;
            epoch_std += stats.embedding_std as f64;
            steps += 1;
            losses.push(stats.loss);
            stds.push(stats.embedding_std);
            bar.set_message(format!("loss {:.4} lr {:.4} {:.0} img/s", stats.loss, stats.lr, rate));
            bar.inc(1);
            if stop_requested(trainer.step) && batch_index + 1 < steps_per_epoch {
                interrupted(
                    trainer.step,
                    &checkpoint_mid_epoch(&mut run_dir, &trainer, &bar, epoch, batch_index + 1, recipe.train.keep_checkpoints)?,
                );
                return Ok(());
            }
        }
        bar.finish_and_clear();
        trained_images += images;
        let n = steps.max(1) as f64;
        let mut record = json!({"epoch": epoch + 1, "loss": epoch_loss / n, "embedding_std": epoch_std / n, "seconds": epoch_start.elapsed().as_secs_f64(),
            "images_per_s": images as f64 / epoch_start.elapsed().as_secs_f64()});
        if let Some(test) = &test {
            let sample = test.clone().truncated(256);
            let features = extract_features(&trainer.model().backbone().valid(), &sample, &transform, 256, &device)?;
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
        let last_epoch = epoch + 1 == recipe.train.epochs;
        let stopping = stop_requested(trainer.step) && !last_epoch;
        if (epoch + 1) % recipe.train.checkpoint_every.max(1) == 0 || last_epoch || stopping {
            last_checkpoint = Some(run_dir.checkpoint(
                trainer.model(),
                trainer.optimizer(),
                Progress { epoch: epoch + 1, step: trainer.step, batch: 0 },
                recipe.train.keep_checkpoints,
            )?);
        }
        if let (true, Some(checkpoint)) = (stopping, &last_checkpoint) {
            interrupted(trainer.step, checkpoint);
            return Ok(());
        }
    }
    let train_seconds = started.elapsed().as_secs_f64();

    let trained_knn = match &test {
        Some(test) => Some(knn_top1(trainer.model().backbone(), &train, test, &transform, knn, &device)?),
        None => None,
    };
    let plot = plot::stack(&[plot::panel(&losses, [200, 60, 40]), plot::panel(&stds, [40, 90, 200])]);
    std::fs::write(dir.join("plot.png"), plot.to_png())?;
    let summary = json!({"method": recipe.method.name(), "dataset": recipe.data.dataset, "epochs": recipe.train.epochs,
        "train_seconds": train_seconds, "images_per_s": trained_images as f64 / train_seconds, "views": augment.views.len(),
        "knn_k": knn.k, "knn_temperature": knn.temperature, "knn_top1_random_init": random_init_knn, "knn_top1": trained_knn});
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    match (random_init_knn, trained_knn) {
        (Some(before), Some(after)) => println!(
            "kNN top-1 (k={}, T={}): random init {before:.1}% → trained {after:.1}% ({:+.1} points) after {:.0} s of training",
            knn.k,
            knn.temperature,
            after - before,
            train_seconds
        ),
        (None, Some(after)) => println!("kNN top-1: trained {after:.1}%"),
        _ => println!("no test split: kNN skipped"),
    }
    println!("wrote {}/{{config.toml, metrics.jsonl, plot.png, summary.json, checkpoints/}}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::timestamp;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "19700101-000000");
        assert_eq!(timestamp(1_796_000_000), "20261130-005320");
        assert_eq!(timestamp(951_782_400), "20000229-000000");
    }
}
