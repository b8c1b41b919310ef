//! `jem pretrain`: [`run()`] reads as the four steps of a run. Setting up (recipe, data, model,
//! resume) is [`Session::set_up`]; the epochs are in [`epochs`]; when to write a checkpoint and
//! how to restore one is [`checkpoints`]; Ctrl-C and SIGTERM are `crate::signals`.

mod checkpoints;
mod epochs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use jem_core::augment::{MultiViewAugment, ViewTransform};
use jem_core::data::{Dataset, Split};
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::model::Backbone;
use jem_core::recipe::Recipe;
use jem_core::train::Trainer;
use serde_json::json;

use crate::datasets::{OpenOptions, Source};
use crate::run::{self, Position, RunDir};
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
    /// Split every batch over these devices of --device's backend (data parallelism on one
    /// machine; the model lives on the first): CUDA ordinals `0,1,2,3`; for wgpu discrete GPU
    /// indices, `default` or `cpu` (a software adapter).
    #[arg(long, value_name = "LIST")]
    devices: Option<String>,
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
    let augment = recipe.data.augment.build(width, height)?;
    recipe.check_views(&augment)?;
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
        (None, Some(path)) => run::read_recipe_file(path)?,
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
    recipe.validate()?;
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

/// `jem pretrain`: set up, train the epochs (done, or interrupted with a checkpoint), evaluate
/// the trained encoder, write the summary.
pub fn run(args: Args) -> Result<()> {
    let mut session = Session::set_up(&args)?;
    if session.recipe.train.epochs == 0 {
        return session.save_initial_weights();
    }
    let trained = match epochs::train(&mut session, &args)? {
        Training::Done(trained) => trained,
        Training::Interrupted { step, checkpoint } => {
            let dir = session.run_dir.path.display();
            println!("interrupted after step {step}: wrote {}; continue with: jem pretrain --resume {dir}", checkpoint.display());
            return Ok(());
        }
    };
    let trained_knn = session.evaluate()?;
    session.write_summary(&trained, trained_knn)
}

/// Everything a run needs once it is set up.
pub(crate) struct Session {
    recipe: Recipe,
    /// Where the model trains (autodiff) and where features are extracted.
    train_device: Device,
    device: Device,
    train: Arc<Dataset>,
    test: Option<Dataset>,
    augment: Arc<MultiViewAugment>,
    transform: ViewTransform,
    knn: KnnConfig,
    trainer: Trainer,
    run_dir: RunDir,
    /// Where training continues: epoch, and batch within it.
    start: Position,
    /// The newest checkpoint on disk, named if training diverges.
    last_checkpoint: Option<PathBuf>,
    random_init_knn: Option<f64>,
}

/// How the epochs ended.
pub(crate) enum Training {
    Done(Trained),
    /// Stopped by a signal (or `--stop-after`) after `step`, with the checkpoint written then.
    Interrupted {
        step: usize,
        checkpoint: PathBuf,
    },
}

/// What the epochs of this invocation recorded.
pub(crate) struct Trained {
    losses: Vec<f32>,
    stds: Vec<f32>,
    /// The step before the first of `losses`.
    first_step: usize,
    images: usize,
    seconds: f64,
}

impl Session {
    /// The recipe (from `--recipe`, flags, or the run being resumed), devices, data, model and
    /// trainer (restored from the newest checkpoint with `--resume`), the run folder, and the kNN
    /// baseline at random init.
    fn set_up(args: &Args) -> Result<Self> {
        let recipe = build_recipe(args)?;
        let devices = match &args.devices {
            Some(list) => device::parse_list(&args.device, list)?,
            None => vec![device::parse(&args.device)?],
        };
        let device = devices[0].clone();
        let train_device = device.clone().autodiff();
        train_device.seed(recipe.train.seed);
        let (train, test) = open_datasets(&recipe, args.limit)?;
        let augment = Arc::new(training_views(&recipe, &train)?);
        let transform = augment.eval_transform();
        let knn = KnnConfig { k: recipe.eval.knn_k, temperature: recipe.eval.knn_temperature };
        let model = recipe.method.init(&recipe.backbone, &train_device)?;
        let steps_per_epoch = train.len() / recipe.train.batch_size;
        recipe.train.precision.check(&device)?;
        let mut trainer = Trainer::new(model, &recipe.optimizer, recipe.train.schedule(steps_per_epoch)).precision(recipe.train.precision);
        if devices.len() > 1 {
            trainer = trainer.data_parallel(devices.iter().map(|d| d.clone().autodiff()).collect());
        }
        let (dir, start, last_checkpoint) = match &args.resume {
            Some(run_path) => {
                let (run_dir, checkpoint, position) = checkpoints::restore(&mut trainer, &recipe, run_path, &train_device)?;
                println!("resuming {} at epoch {} (step {})", run_dir.display(), position.epoch, position.step);
                (run_dir, position, Some(checkpoint))
            }
            None => (args.out.clone().unwrap_or_else(|| default_run_dir(&recipe)), Position { epoch: 0, step: 0, batch: 0 }, None),
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
            match recipe.train.precision {
                jem_core::train::Precision::F32 => recipe.optimizer.name().to_string(),
                precision => format!("{} in {}", recipe.optimizer.name(), precision.name()),
            },
            match &args.devices {
                Some(list) => format!("{} devices {list}", args.device),
                None => args.device.clone(),
            },
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
        Ok(Session {
            recipe,
            train_device,
            device,
            train: Arc::new(train),
            test,
            augment,
            transform,
            knn,
            trainer,
            run_dir,
            start,
            last_checkpoint,
            random_init_knn,
        })
    }

    /// No training (`--epochs 0`): the initial weights are the run's checkpoint, so that every
    /// `jem eval` (kNN, linear probe, fine-tuning from scratch) measures its random-init baseline.
    fn save_initial_weights(mut self) -> Result<()> {
        let checkpoint = self.run_dir.checkpoint(
            self.trainer.model(),
            self.trainer.optimizer(),
            Position { epoch: 0, step: 0, batch: 0 },
            self.recipe.train.keep_checkpoints,
        )?;
        self.run_dir.flush()?;
        println!("0 epochs: no training; wrote the initial weights to {}", checkpoint.display());
        println!(
            "evaluate them with: jem eval linear --checkpoint {0}  (or: jem eval finetune --checkpoint {0})",
            self.run_dir.path.display()
        );
        Ok(())
    }

    /// kNN top-1 of the trained backbone, where the dataset has a test split.
    fn evaluate(&self) -> Result<Option<f64>> {
        match &self.test {
            Some(test) => Ok(Some(knn_top1(self.trainer.model().backbone(), &self.train, test, &self.transform, self.knn, &self.device)?)),
            None => Ok(None),
        }
    }

    /// `plot.png`, `summary.json` and the closing lines.
    fn write_summary(&self, trained: &Trained, trained_knn: Option<f64>) -> Result<()> {
        let (knn, dir) = (self.knn, &self.run_dir.path);
        let knn_line = match (self.random_init_knn, trained_knn) {
            (Some(before), Some(after)) => format!(
                "kNN top-1 (k={}, T={}): random init {before:.1}% → trained {after:.1}% ({:+.1} points)",
                knn.k,
                knn.temperature,
                after - before
            ),
            (None, Some(after)) => format!("kNN top-1: trained {after:.1}%"),
            _ => "no test split: kNN skipped".to_string(),
        };
        let caption = format!("{} on {}: {knn_line}", self.recipe.method.name(), self.recipe.data.dataset);
        let panels = [
            plot::Panel {
                title: "Training loss",
                y_label: "loss",
                values: &trained.losses,
                first_step: trained.first_step + 1,
                colour: plotters::style::RGBColor(200, 60, 40),
            },
            plot::Panel {
                title: "Embedding std (first view, mean over dimensions; 0 = collapsed)",
                y_label: "std",
                values: &trained.stds,
                first_step: trained.first_step + 1,
                colour: plotters::style::RGBColor(40, 90, 200),
            },
        ];
        std::fs::write(dir.join("plot.png"), plot::draw(&caption, &panels)?.to_png())?;
        let summary = json!({"method": self.recipe.method.name(), "dataset": self.recipe.data.dataset, "epochs": self.recipe.train.epochs,
            "train_seconds": trained.seconds, "images_per_s": trained.images as f64 / trained.seconds, "views": self.augment.views.len(),
            "knn_k": knn.k, "knn_temperature": knn.temperature, "knn_top1_random_init": self.random_init_knn, "knn_top1": trained_knn});
        std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
        match (self.random_init_knn, trained_knn) {
            (Some(_), Some(_)) => println!("{knn_line} after {:.0} s of training", trained.seconds),
            _ => println!("{knn_line}"),
        }
        println!("wrote {}/{{config.toml, metrics.jsonl, plot.png, summary.json, checkpoints/}}", dir.display());
        Ok(())
    }
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
