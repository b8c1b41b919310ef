//! End-to-end tests of the `jem` binary. Fixtures are generated here; tests that read the real
//! data in `$JEM_DATA` (CI sets it to ../shared/data) say so when they skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jem_core::Image;
use jem_core::data::cifar;
use jem_core::data::shapes::Shapes;

fn jem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jem")).args(args).output().expect("run jem")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("JEM_DATA") {
        Some(d) if Path::new(&d).is_dir() => Some(PathBuf::from(d)),
        _ => {
            eprintln!("SKIPPED: JEM_DATA is not set to the data folder; this test needs real data");
            None
        }
    }
}

fn jpeg(img: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(&img.pixels, img.width as u32, img.height as u32, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// root/{train,val}/<class>/NNNN.{jpg,png}: 3 classes, `per_class` train and 2 val images each.
fn make_image_folder(root: &Path, per_class: usize) {
    let shapes = Shapes::new(24, 5);
    for (split, n) in [("train", per_class), ("val", 2)] {
        for class in ["circle", "ring", "star"] {
            let dir = root.join(split).join(class);
            fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let img = shapes.render(i as u64);
                if i % 2 == 0 {
                    fs::write(dir.join(format!("{i:04}.jpg")), jpeg(&img)).unwrap();
                } else {
                    fs::write(dir.join(format!("{i:04}.PNG")), img.to_png()).unwrap();
                }
            }
            fs::write(dir.join("notes.txt"), "not an image, ignored").unwrap();
        }
    }
}

#[test]
fn inspect_reports_a_generated_cifar10_folder() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Image> = (0..30).map(|i| Shapes::new(32, 1).render(i)).collect();
    let labels: Vec<u32> = (0..30).map(|i| (i % 3) as u32).collect();
    fs::write(dir.path().join("data_batch_1.bin"), cifar::encode(&images, &labels, None)).unwrap();
    fs::write(dir.path().join("test_batch.bin"), cifar::encode(&images[..12], &labels[..12], None)).unwrap();
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("CIFAR-10 binary"), "{out}");
    assert!(out.contains("[train split]") && out.contains("images   30"), "{out}");
    assert!(out.contains("[test split]") && out.contains("images   12"), "{out}");
    assert!(out.contains("airplane") && out.contains("32×32 (30)"), "{out}");
}

#[test]
fn inspect_names_a_truncated_cifar_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = cifar::encode(&[Shapes::new(32, 1).render(0)], &[0], None);
    fs::write(dir.path().join("data_batch_1.bin"), &bytes[..3000]).unwrap();
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("data_batch_1.bin") && err.contains("not a multiple of"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn inspect_image_folder_with_splits_ignoring_non_images() {
    let dir = tempfile::tempdir().unwrap();
    make_image_folder(dir.path(), 4);
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("images   12") && out.contains("images   6"), "{out}");
    assert!(out.contains("classes  3") && out.contains("skipped  0"), "{out}");
}

#[test]
fn corrupt_images_are_skipped_and_counted_or_fail_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    make_image_folder(dir.path(), 4);
    let good = fs::read(dir.path().join("train/ring/0000.jpg")).unwrap();
    fs::write(dir.path().join("train/ring/0000.jpg"), &good[..good.len() / 2]).unwrap();
    fs::write(dir.path().join("train/star/fake.jpg"), "I am text, not a JPEG").unwrap();
    let root = dir.path().to_str().unwrap();
    let o = jem(&["data", "inspect", root, "--split", "train"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("images   11") && out.contains("skipped  2 "), "{out}");
    let warnings = stderr(&o);
    assert_eq!(warnings.matches("warning: skipped").count(), 2, "{warnings}");
    assert!(warnings.contains("ring/0000.jpg") && warnings.contains("star/fake.jpg"), "{warnings}");
    let o = jem(&["data", "inspect", root, "--split", "train", "--strict"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ring/0000.jpg"), "{}", stderr(&o));
}

#[test]
fn missing_and_empty_folders_are_clear_errors() {
    let o = jem(&["data", "inspect", "/no/such/folder"]);
    assert!(!o.status.success() && stderr(&o).contains("/no/such/folder: no such file or folder"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    make_image_folder(dir.path(), 2);
    fs::create_dir_all(dir.path().join("train/empty")).unwrap();
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap(), "--split", "train"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("empty: class folder has no readable images"), "{}", stderr(&o));
}

#[test]
fn inspect_the_builtin_shapes_dataset() {
    let o = jem(&["data", "inspect", "shapes", "--split", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("images   1,000") && stdout(&o).contains("star"), "{}", stdout(&o));
}

#[test]
fn augment_writes_a_reproducible_png_grid() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run = |out: &str, seed: &str| {
        let o = jem(&["augment", "--preset", "simclr", "--views", "8", "--seed", seed, "--out", out]);
        assert!(o.status.success(), "{}", stderr(&o));
        fs::read(out).unwrap()
    };
    let a = run(&path("a.png"), "3");
    let b = run(&path("b.png"), "3");
    let c = run(&path("c.png"), "4");
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other views");
    let grid = Image::decode(&a).unwrap();
    // original + 8 views of 224 px, 5 per row, 4 px gaps
    assert_eq!((grid.width, grid.height), (5 * 224 + 6 * 4, 2 * 224 + 3 * 4));
}

#[test]
fn augment_rejects_unknown_presets_and_unreadable_images() {
    let o = jem(&["augment", "--preset", "mocov9"]);
    assert!(!o.status.success() && stderr(&o).contains("unknown augmentation preset 'mocov9'"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    fs::write(&bad, "text").unwrap();
    let o = jem(&["augment", "--image", bad.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("cannot decode"), "{}", stderr(&o));
}

// ---- real data (JEM_DATA) ----

#[test]
fn real_cifar10_has_10000_images_per_split_in_10_classes() {
    let Some(data) = data_dir() else { return };
    let o = jem(&["data", "inspect", data.join("cifar10/cifar-10-batches-bin").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("images   10,000").count(), 2, "{out}");
    assert_eq!(out.matches("classes  10").count(), 2, "{out}");
    // every class holds roughly a tenth
    for line in out.lines().filter(|l| l.starts_with("  ") && l.contains('█')) {
        let count: usize = line.split_whitespace().nth(1).unwrap().replace(',', "").parse().unwrap();
        assert!((850..=1150).contains(&count), "{line}");
    }
}

#[test]
fn real_folder_mini_has_1000_train_and_200_val_images() {
    let Some(data) = data_dir() else { return };
    let o = jem(&["data", "inspect", data.join("cifar10-folder-mini").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("images   1,000") && out.contains("images   200") && out.contains("skipped  0"), "{out}");
}

#[test]
fn real_folder_mini_corrupted_copy_reports_exactly_the_bad_files() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = data.join("cifar10-folder-mini/val");
    for class in fs::read_dir(&src).unwrap() {
        let class = class.unwrap().path();
        let dst = dir.path().join(class.file_name().unwrap());
        fs::create_dir_all(&dst).unwrap();
        for f in fs::read_dir(&class).unwrap() {
            let f = f.unwrap().path();
            fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    let victim = fs::read_dir(dir.path().join("cat")).unwrap().next().unwrap().unwrap().path();
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(dir.path().join("dog/readme.jpg"), "this is a text file").unwrap();
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("images   199") && out.contains("skipped  2 "), "{out}");
    let warnings = stderr(&o);
    assert_eq!(warnings.matches("warning: skipped").count(), 2, "{warnings}");
    assert!(warnings.contains(victim.file_name().unwrap().to_str().unwrap()) && warnings.contains("dog/readme.jpg"), "{warnings}");
    let o = jem(&["data", "inspect", dir.path().to_str().unwrap(), "--strict"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(victim.file_name().unwrap().to_str().unwrap()), "{}", stderr(&o));
}

#[test]
fn real_photo_augments_into_differing_views() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let photo = data.join("photos/astronaut.png");
    let o = jem(&["augment", "--image", photo.to_str().unwrap(), "--preset", "simclr", "--views", "8", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = Image::decode(&fs::read(&out).unwrap()).unwrap();
    // Tiles (original + 8 views) must all differ from each other.
    let tile = |k: usize| -> Vec<u8> {
        let (x0, y0) = (4 + (k % 5) * 228, 4 + (k / 5) * 228);
        (0..224).flat_map(|y| grid.pixels[((y0 + y) * grid.width + x0) * 3..][..224 * 3].to_vec()).collect()
    };
    let tiles: Vec<Vec<u8>> = (0..9).map(tile).collect();
    for a in 0..9 {
        for b in a + 1..9 {
            let diff: u64 = tiles[a].iter().zip(&tiles[b]).map(|(x, y)| x.abs_diff(*y) as u64).sum();
            assert!(diff / (224 * 224 * 3) >= 5, "tiles {a} and {b} are nearly identical");
        }
    }
}

// ---- pretraining ----

/// A tiny shapes recipe: 2 epochs of 4 steps with a narrow ConvNet.
fn tiny_recipe(dir: &Path, method: &str) -> PathBuf {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../recipes/shapes/{method}.toml"))).unwrap();
    let text = text
        .replace("width = 16", "width = 4")
        .replace("epochs = 30", "epochs = 2")
        .replace("batch_size = 128", "batch_size = 32")
        .replace("shapes_count = 4096", "shapes_count = 128")
        .replace("checkpoint_every = 10", "checkpoint_every = 1");
    let path = dir.join(format!("{method}.toml"));
    fs::write(&path, text).unwrap();
    path
}

/// A tiny run of `method` after its first epoch, with its config rewritten to last two epochs
/// and then by `edit`: a run to `--resume`. Returns the run folder.
fn first_epoch_of_two(dir: &Path, method: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let run = dir.join("run");
    let recipe = tiny_recipe(dir, method);
    let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = fs::read_to_string(run.join("config.toml")).unwrap().replace("epochs = 1", "epochs = 2");
    fs::write(run.join("config.toml"), edit(config)).unwrap();
    run
}

#[test]
fn pretrain_writes_a_complete_run_folder_and_eval_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let recipe = tiny_recipe(dir.path(), "vicreg");
    let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("kNN top-1 at random init") && out.contains("random init") && out.contains("trained"), "{out}");
    assert!(out.contains("2 views of 32 px, batch 32, 2 epochs of 4 steps"), "{out}");
    for file in ["config.toml", "metrics.jsonl", "plot.png", "summary.json", "checkpoints/latest", "checkpoints/epoch-0002/model.bpk"] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let metrics = fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps = metrics.lines().filter(|l| l.contains("\"step\"")).count();
    assert_eq!(steps, 2 * (128 / 32));
    assert!(metrics.contains("\"invariance\"") && metrics.contains("\"effective_rank\"") && metrics.contains("\"grad_norm\""), "{metrics}");
    Image::decode(&fs::read(run.join("plot.png")).unwrap()).unwrap();

    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("kNN (k=10, T=0.1) top-1:"), "{}", stdout(&o));
    let o = jem(&["eval", "linear", "--checkpoint", run.to_str().unwrap(), "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("top-5"), "{}", stdout(&o));
    let o = jem(&["eval", "finetune", "--checkpoint", run.to_str().unwrap(), "--epochs", "2", "--batch-size", "32"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("fine-tuned (2 epochs): top-1") && stdout(&o).contains("training loss per epoch"), "{}", stdout(&o));

    let features = dir.path().join("features");
    let o = jem(&["export", "features", "--checkpoint", run.to_str().unwrap(), "--out", features.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The shapes test split has 1000 images; the ConvNet at width 4 gives 8 * 4 = 32 features.
    let npy = fs::read(features.join("test_features.npy")).unwrap();
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    assert_eq!(dims, [1000, 32], "{header}");
    assert_eq!(npy.len(), 10 + header_len + 4 * dims[0] * dims[1], "{header}");
    let labels = fs::read(features.join("train_labels.npy")).unwrap();
    assert!(labels.len() >= 128 * 8);
}

#[test]
fn resume_continues_from_the_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Pretend the run was meant to last 2 epochs and was stopped after the first.
    let run = first_epoch_of_two(dir.path(), "simsiam", |config| config);
    let baseline = |run: &Path| {
        let summary: serde_json::Value = serde_json::from_str(&fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        summary["knn_top1_random_init"].as_f64()
    };
    let first_part = baseline(&run).expect("the first part measured the random-init kNN");
    let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("resuming") && out.contains("at epoch 1 (step 4)") && out.contains("epoch 2/2"), "{out}");
    assert!(!out.contains("epoch 1/2"), "the finished epoch is not repeated: {out}");
    let metrics = fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<&str> = metrics.lines().filter(|l| l.contains("\"step\"")).collect();
    assert_eq!(steps.len(), 8, "4 steps before and 4 after the resume");
    assert!(steps[4].contains("\"step\":4"), "{}", steps[4]);
    assert_eq!(baseline(&run), Some(first_part), "the resumed run's summary keeps the first part's baseline");
}

/// The run folder names its data by the absolute path, so a run started on a relative `--data`
/// resumes from any working directory.
#[test]
fn a_run_on_a_relative_data_path_resumes_from_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    fs::create_dir(&data).unwrap();
    let images: Vec<Image> = (0..64).map(|i| Shapes::new(32, 1).render(i)).collect();
    let labels: Vec<u32> = (0..64).map(|i| (i % 3) as u32).collect();
    fs::write(data.join("data_batch_1.bin"), cifar::encode(&images, &labels, None)).unwrap();
    let recipe = tiny_recipe(dir.path(), "simsiam");
    let jem_in = |cwd: &Path, args: &[&str]| Command::new(env!("CARGO_BIN_EXE_jem")).current_dir(cwd).args(args).output().expect("run jem");
    let o = jem_in(
        dir.path(),
        &["pretrain", "--recipe", recipe.to_str().unwrap(), "--data", "cifar", "--out", "run", "--epochs", "1", "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = dir.path().join("run");
    let config = fs::read_to_string(run.join("config.toml")).unwrap();
    let absolute = fs::canonicalize(&data).unwrap();
    assert!(config.contains(&format!("dataset = \"{}\"", absolute.display())), "{config}");
    fs::write(run.join("config.toml"), config.replace("epochs = 1", "epochs = 2")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let o = jem_in(elsewhere.path(), &["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success() && stdout(&o).contains("epoch 2/2"), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn the_random_init_baseline_is_the_backbone_training_starts_from() {
    // SimCLR draws a projector after its backbone, BYOL a projector, a predictor and copies for
    // its target: a baseline drawn as a second model after them differed between the two
    // (11.9 % vs 12.2 % here). The backbone a run starts from depends only on seed and config.
    let dir = tempfile::tempdir().unwrap();
    let random_init = |method: &str| {
        let run = dir.path().join(method);
        let recipe = tiny_recipe(dir.path(), method);
        let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet", "--epochs", "1"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(&fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        summary["knn_top1_random_init"].as_f64().unwrap()
    };
    assert_eq!(random_init("simclr"), random_init("byol"));
}

/// `--epochs 0` saves the initial weights: the random-init row of every evaluation.
#[test]
fn zero_epochs_save_the_initial_weights_for_the_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let recipe = tiny_recipe(dir.path(), "simclr");
    let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet", "--epochs", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("0 epochs: no training") && !out.contains("epoch 1/"), "{out}");
    assert!(run.join("checkpoints/epoch-0000/model.bpk").is_file());
    assert!(!fs::read_to_string(run.join("metrics.jsonl")).unwrap().contains("\"step\""), "no training step was taken");
    let percent_after = |text: &str, label: &str| -> f64 {
        let rest = &text[text.find(label).unwrap_or_else(|| panic!("no '{label}' in {text}")) + label.len()..];
        rest.trim_start().split('%').next().unwrap().parse().unwrap()
    };
    let at_init = percent_after(&out, "kNN top-1 at random init:");
    // The checkpoint is the backbone the baseline was measured on: the same kNN from `jem eval`.
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "20", "--temperature", "0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let from_checkpoint = percent_after(&stdout(&o), "top-1:");
    assert!((at_init - from_checkpoint).abs() < 0.051, "{at_init} vs {from_checkpoint}");
    let o = jem(&["eval", "linear", "--checkpoint", run.to_str().unwrap(), "--epochs", "2"]);
    assert!(o.status.success() && stdout(&o).contains("linear probe"), "{}", stderr(&o));
}

#[test]
fn pretrain_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, fs::read_to_string(tiny_recipe(dir.path(), "simclr")).unwrap().replace("batch_size = 32", "batch_size = 1")).unwrap();
    let o = jem(&["pretrain", "--recipe", bad.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("at least 2 samples"), "{}", stderr(&o));
    let o = jem(&["pretrain", "--device", "cuda", "--epochs", "1"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("built without the 'cuda' backend") || cfg!(feature = "cuda"), "{}", stderr(&o));
    for (devices, message) in
        [(["cpu", "0,1"], "use it with --device wgpu or --device cuda"), (["wgpu", "x,0"], "'x' is not a device number")]
    {
        let o = jem(&["pretrain", "--epochs", "1", "--device", devices[0], "--devices", devices[1]]);
        assert!(!o.status.success() && stderr(&o).contains(message), "{devices:?}: {}", stderr(&o));
    }
    let half_mae = dir.path().join("mae-f16.toml");
    fs::write(&half_mae, fs::read_to_string(tiny_recipe(dir.path(), "mae")).unwrap().replace("seed = 0", "seed = 0\nprecision = \"f16\""))
        .unwrap();
    let o = jem(&["pretrain", "--recipe", half_mae.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("mae computes in f32 only"), "{}", stderr(&o));
    let o = jem(&["pretrain", "--data", "/no/such/dataset"]);
    assert!(!o.status.success() && stderr(&o).contains("/no/such/dataset"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    // Views larger than the images: the ImageNet variant on 32-pixel shapes.
    let big = dir.path().join("big.toml");
    fs::write(
        &big,
        fs::read_to_string(tiny_recipe(dir.path(), "simclr")).unwrap().replace("variant = \"cifar\"", "variant = \"imagenet\""),
    )
    .unwrap();
    let o = jem(&["pretrain", "--recipe", big.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("views of 224 px are larger than the images (32×32)") && stderr(&o).contains("variant"),
        "{}",
        stderr(&o)
    );
    // An unknown method names the choices; a queue that does not hold whole batches says what would.
    let unknown = dir.path().join("unknown.toml");
    fs::write(&unknown, fs::read_to_string(tiny_recipe(dir.path(), "simclr")).unwrap().replace("name = \"simclr\"", "name = \"mocov9\""))
        .unwrap();
    let o = jem(&["pretrain", "--recipe", unknown.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("mocov9") && stderr(&o).contains("moco_v2"), "{}", stderr(&o));
    let queue = dir.path().join("queue.toml");
    fs::write(&queue, fs::read_to_string(tiny_recipe(dir.path(), "moco_v2")).unwrap().replace("queue_size = 1024", "queue_size = 1000"))
        .unwrap();
    let o = jem(&["pretrain", "--recipe", queue.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("queue_size = 1000 is not a multiple of train.batch_size = 32"), "{}", stderr(&o));
}

#[test]
fn bench_train_reports_the_median_step_as_json() {
    for method in ["reference", "simsiam"] {
        let o = jem(&[
            "bench",
            "train",
            "--model",
            "convnet",
            "--width",
            "4",
            "--batch",
            "8",
            "--steps",
            "1",
            "--threads",
            "1",
            "--method",
            method,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let record: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let median = record["step_s_median"].as_f64().unwrap();
        assert!(median > 0.0, "{record}");
        assert_eq!(record["views"], if method == "reference" { 1 } else { 2 });
        assert!((record["images_per_s"].as_f64().unwrap() - 8.0 / median).abs() < 0.01 * 8.0 / median + 0.1, "{record}");
    }
    let o = jem(&["bench", "train", "--method", "mae", "--steps", "1"]);
    assert!(!o.status.success() && stderr(&o).contains("mae"), "{}", stderr(&o));
    // A method's step in bf16 with the ImageNet stem (the GPU check's ResNet-50 step, small).
    let args = ["bench", "train", "--model", "resnet18", "--width", "4", "--batch", "4", "--size", "64", "--steps", "1"];
    let o = jem(&[&args[..], &["--threads", "1", "--method", "simclr", "--stem", "imagenet", "--precision", "bf16", "--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let record: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!((record["precision"].as_str(), record["stem"].as_str()), (Some("bf16"), Some("imagenet")), "{record}");
    for (extra, message) in [
        (&["--precision", "f8"][..], "--precision f8: choose f32, bf16 or f16"),
        (&["--stem", "tiny"], "--stem tiny: choose cifar or imagenet"),
        (&["--precision", "bf16"], "the reference step runs in f32"),
    ] {
        let o = jem(&[&args[..], extra].concat());
        assert!(!o.status.success() && stderr(&o).contains(message), "{extra:?}: {}", stderr(&o));
    }
}

#[test]
fn bench_conv_covers_every_resnet18_convolution() {
    let o = jem(&["bench", "conv", "--width", "4", "--batch", "2", "--steps", "1", "--threads", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let records: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Stem, 4 convs of stage 1, then per later stage: the strided 3×3, three 3×3s and the 1×1 shortcut.
    assert_eq!(records.iter().map(|r| r["count"].as_u64().unwrap()).sum::<u64>(), 20);
    assert_eq!(records.last().unwrap()["c_out"], 32);
    for r in &records {
        for kernel in ["burn", "jem"] {
            let (forward, both) = (r[kernel]["forward_s"].as_f64().unwrap(), r[kernel]["forward_backward_s"].as_f64().unwrap());
            assert!(forward > 0.0 && both > 0.0, "{kernel}: {r}");
        }
    }
}

#[test]
fn a_damaged_checkpoint_is_detected_and_the_previous_one_used() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let recipe = tiny_recipe(dir.path(), "simclr");
    let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoints = run.join("checkpoints");
    assert!(checkpoints.join("epoch-0001").is_dir() && checkpoints.join("epoch-0002").is_dir());
    assert!(
        !fs::read_dir(&checkpoints).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("partial")),
        "no temporary left behind"
    );
    // Truncate the newest model, as a full disk would.
    let model = checkpoints.join("epoch-0002/model.bpk");
    let bytes = fs::read(&model).unwrap();
    fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning") && err.contains("epoch-0002") && err.contains("model.bpk is damaged"), "{err}");
    // Resuming starts again from the intact first epoch.
    let config = fs::read_to_string(run.join("config.toml")).unwrap().replace("epochs = 2", "epochs = 3");
    fs::write(run.join("config.toml"), config).unwrap();
    let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("at epoch 1 (step 4)"), "{}", stdout(&o));
    // The default keeps 3 checkpoints: epochs 1, 2 (rewritten) and 3.
    assert!(checkpoints.join("epoch-0003").is_dir() && checkpoints.join("epoch-0001").is_dir());
    // With every checkpoint damaged, a clear error instead of a panic.
    for epoch in 1..=3 {
        fs::write(checkpoints.join(format!("epoch-{epoch:04}/optimizer.bpk")), b"garbage").unwrap();
    }
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("no intact checkpoint"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[cfg(unix)]
#[test]
fn a_full_disk_while_checkpointing_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = first_epoch_of_two(dir.path(), "vicreg", |config| config);
    let checkpoints = run.join("checkpoints");
    let model_kib = fs::metadata(checkpoints.join("epoch-0001/model.bpk")).unwrap().len() / 1024;
    assert!(model_kib >= 8, "the model file ({model_kib} KiB) must outgrow the limit below");
    // The disk "fills up" at half the model's size: files may not grow past it (RLIMIT_FSIZE;
    // with SIGXFSZ ignored, the write fails with EFBIG as it would with ENOSPC). That is true
    // for root too, unlike a read-only folder.
    let limited = format!("ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"", model_kib / 2);
    let o = Command::new("bash")
        .args(["-c", &limited, env!("CARGO_BIN_EXE_jem"), "pretrain", "--resume", run.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("cannot save the model") && err.contains("previous checkpoints are intact"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(fs::read_to_string(checkpoints.join("latest")).unwrap().trim(), "epoch-0001");
    assert!(
        !fs::read_dir(&checkpoints).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("partial")),
        "the half-written copy is removed"
    );
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "5"]);
    assert!(o.status.success() && !stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_term_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Continue with an absurd learning rate: the weights blow up after the first step.
    let run = first_epoch_of_two(dir.path(), "vicreg", |config| config.replace("base_lr = 0.006", "base_lr = 1e30"));
    let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("training diverged") && err.contains("at step 5"), "{err}");
    assert!(err.contains("invariance") || err.contains("variance") || err.contains("covariance"), "names the term: {err}");
    assert!(err.contains("epoch-0001") && err.contains("--lr"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The checkpoint of epoch 1 is intact and still loads.
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "5"]);
    assert!(o.status.success() && !stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// `(step, loss)` of every step line of a run's metrics.
fn step_losses(run: &Path) -> Vec<(u64, f64)> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r.get("step").is_some())
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn an_interrupted_run_resumes_to_the_same_loss_curve() {
    // MoCo v2: a momentum encoder and a queue must come back exactly, as must the optimiser,
    // the schedule and the position in the epoch's data order.
    let dir = tempfile::tempdir().unwrap();
    let recipe = tiny_recipe(dir.path(), "moco_v2");
    let straight = dir.path().join("straight");
    let o = jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", straight.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for stop_after in ["3", "4"] {
        // Part-way through the first epoch, and at its end.
        let run = dir.path().join(format!("stopped-{stop_after}"));
        let o =
            jem(&["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet", "--stop-after", stop_after]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&format!("interrupted after step {stop_after}")) && stdout(&o).contains("--resume"), "{}", stdout(&o));
        assert_eq!(step_losses(&run).len(), stop_after.parse::<usize>().unwrap());
        let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(step_losses(&run), step_losses(&straight), "stopped after {stop_after} steps, then resumed");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_the_step_writes_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let recipe = tiny_recipe(dir.path(), "simclr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jem"))
        .args(["pretrain", "--recipe", recipe.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet", "--epochs", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (metrics are flushed at the end of each epoch).
    let started = std::time::Instant::now();
    while !fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|m| m.contains("\"epoch\":1")) {
        assert!(started.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "exit status {status}: {out}");
    assert!(out.contains("interrupted after step") && out.contains("--resume"), "{out}");
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "5"]);
    assert!(o.status.success() && !stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn a_streamed_image_folder_trains_like_one_in_memory_and_a_broken_file_stops_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    make_image_folder(dir.path(), 16);
    // `root/train` alone is an ImageFolder without a test split: no kNN, only training reads it.
    let data = dir.path().join("train");
    let recipe = |stream: &str| {
        let text = fs::read_to_string(tiny_recipe(dir.path(), "simclr"))
            .unwrap()
            .replace("dataset = \"shapes\"", &format!("dataset = {:?}\nstream = \"{stream}\"", data.to_str().unwrap()))
            .replace("variant = \"cifar\"", "variant = \"cifar\", size = 16")
            .replace("batch_size = 32", "batch_size = 16");
        let path = dir.path().join(format!("simclr-{stream}.toml"));
        fs::write(&path, text).unwrap();
        path
    };
    let pretrain = |stream: &str, out: &str| {
        let run = dir.path().join(out);
        let o = jem(&["pretrain", "--recipe", recipe(stream).to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"]);
        (o, run)
    };
    let (o, streamed) = pretrain("always", "streamed");
    assert!(o.status.success(), "{}", stderr(&o));
    let (o, in_memory) = pretrain("never", "in-memory");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(step_losses(&streamed).len(), 2 * 3, "48 images in batches of 16, 2 epochs");
    assert_eq!(step_losses(&streamed), step_losses(&in_memory), "streaming changes where pixels come from, not what is trained");

    // A file whose header reads but whose data is cut off: found when a batch needs it.
    let broken = data.join("ring").join("0004.jpg");
    let original = fs::read(&broken).unwrap();
    fs::write(&broken, &original[..original.len() * 2 / 3]).unwrap();
    let (o, run) = pretrain("always", "broken");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("0004.jpg") && err.contains("truncated JPEG") && err.contains("--resume"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Replacing the file and resuming continues where the run stopped, to the same curve.
    fs::write(&broken, &original).unwrap();
    let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(step_losses(&run), step_losses(&streamed));
}

/// A backbone imported from PyTorch continues training with `--resume` under the recipe given
/// at import; BYOL's momentum target starts from the imported weights too.
#[test]
fn an_imported_backbone_fine_tunes_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = tiny_recipe(dir.path(), "byol");
    let run = dir.path().join("imported");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/torch/resnet18_cifar.pth");
    let o = jem(&[
        "import",
        "--from",
        fixture.to_str().unwrap(),
        "--arch",
        "resnet18",
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("resnet18 (width 4, cifar stem)") && stdout(&o).contains("byol head"), "{}", stdout(&o));
    let o = jem(&["pretrain", "--resume", run.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("resuming") && run.join("checkpoints/epoch-0002/model.bpk").is_file(), "{}", stdout(&o));
}
