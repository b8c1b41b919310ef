//! Opening datasets from disk: format detection, file access and parallel image decoding.
//! Parsing itself is `jem_core::data`'s.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use jem_core::Image;
use jem_core::data::cifar::{self, CifarKind};
use jem_core::data::image_folder::ImageFolderBuilder;
use jem_core::data::shapes::Shapes;
use jem_core::data::{DataError, Dataset, ImageReader, Split, concat, stl10};
use jem_core::recipe::StreamMode;
use rayon::prelude::*;

/// Where a dataset comes from and which of its files make each split.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Built-in procedural shapes: `shapes` or `shapes:RESOLUTION`.
    Shapes {
        resolution: usize,
        seed: u64,
    },
    Cifar {
        dir: PathBuf,
        kind: CifarKind,
    },
    Stl10 {
        dir: PathBuf,
    },
    /// `root/<class>/<image>`, or `root/{train,val}/<class>/<image>`.
    ImageFolder {
        root: PathBuf,
    },
}

/// Options that change how a dataset is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// An undecodable image is an error instead of a skipped file.
    pub strict: bool,
    /// For CIFAR-100: use the 20 coarse labels instead of the 100 fine ones.
    pub coarse_labels: bool,
    /// Number of images for the built-in shapes dataset (0 = 5,000 train / 1,000 test).
    pub shapes_count: usize,
    /// ImageFolder: decode at load time or per batch.
    pub stream: StreamMode,
}

impl Source {
    /// Recognises a dataset path. `shapes[:RES]` needs no files.
    pub fn detect(spec: &str, options: OpenOptions) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("shapes") {
            let resolution = match rest.strip_prefix(':') {
                Some(r) => r.parse().with_context(|| format!("'{spec}': expected shapes:RESOLUTION, e.g. shapes:32"))?,
                None if rest.is_empty() => 32,
                None => bail!("unknown dataset '{spec}'; the built-in dataset is 'shapes' or 'shapes:RESOLUTION'"),
            };
            return Ok(Source::Shapes { resolution, seed: 0 });
        }
        let path = Path::new(spec);
        if !path.exists() {
            bail!("{spec}: no such file or folder. Give a CIFAR/STL-10 folder, an ImageFolder root, or 'shapes'");
        }
        let dir = if path.is_file() { path.parent().unwrap_or(Path::new(".")).to_path_buf() } else { path.to_path_buf() };
        let has = |name: &str| dir.join(name).is_file();
        if has("data_batch_1.bin") || has("test_batch.bin") {
            return Ok(Source::Cifar { dir, kind: CifarKind::Cifar10 });
        }
        if has("train.bin") || has("test.bin") {
            let kind = if options.coarse_labels { CifarKind::Cifar100Coarse } else { CifarKind::Cifar100Fine };
            return Ok(Source::Cifar { dir, kind });
        }
        if has("train_X.bin") || has("test_X.bin") || has("unlabeled_X.bin") {
            return Ok(Source::Stl10 { dir });
        }
        if path.is_file() {
            bail!("{spec}: not a dataset file jem knows (CIFAR data_batch_*.bin/test_batch.bin/train.bin/test.bin, STL-10 *_X.bin)");
        }
        // The official archives unpack into a subfolder.
        for sub in ["cifar-10-batches-bin", "cifar-100-binary", "stl10_binary"] {
            if dir.join(sub).is_dir() {
                return Self::detect(&dir.join(sub).to_string_lossy(), options);
            }
        }
        Ok(Source::ImageFolder { root: dir })
    }

    /// The splits this source has.
    pub fn splits(&self) -> Vec<Split> {
        match self {
            Source::Shapes { .. } => vec![Split::Train, Split::Test],
            Source::Cifar { dir, kind } => {
                let (train, test) = match kind {
                    CifarKind::Cifar10 => (dir.join("data_batch_1.bin"), dir.join("test_batch.bin")),
                    _ => (dir.join("train.bin"), dir.join("test.bin")),
                };
                [(train, Split::Train), (test, Split::Test)].into_iter().filter(|(f, _)| f.is_file()).map(|(_, s)| s).collect()
            }
            Source::Stl10 { dir } => [("train_X.bin", Split::Train), ("test_X.bin", Split::Test), ("unlabeled_X.bin", Split::Unlabeled)]
                .into_iter()
                .filter(|(f, _)| dir.join(f).is_file())
                .map(|(_, s)| s)
                .collect(),
            Source::ImageFolder { root } => match split_folders(root) {
                Some(splits) => splits.into_iter().map(|(s, _)| s).collect(),
                None => vec![Split::Train],
            },
        }
    }

    /// The files a split is read from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Shapes { resolution, seed } => format!("built-in shapes, {resolution}×{resolution}, seed {seed}"),
            Source::Cifar { dir, kind } => format!("{} in {}", kind_name(*kind), dir.display()),
            Source::Stl10 { dir } => format!("STL-10 in {}", dir.display()),
            Source::ImageFolder { root } => format!("ImageFolder at {}", root.display()),
        }
    }

    /// Reads one split into memory.
    pub fn open(&self, split: Split, options: OpenOptions) -> Result<Dataset> {
        let ds = match self {
            Source::Shapes { resolution, seed } => {
                // `shapes_count` sizes the training split; the test split stays at 1,000.
                let n = match split {
                    Split::Test => 1_000,
                    _ if options.shapes_count > 0 => options.shapes_count,
                    _ => 5_000,
                };
                Shapes::new(*resolution, *seed).dataset(n, split)
            }
            Source::Cifar { dir, kind } => open_cifar(dir, *kind, split)?,
            Source::Stl10 { dir } => open_stl10(dir, split)?,
            Source::ImageFolder { root } => {
                let folder = match split_folders(root) {
                    Some(splits) => match splits.into_iter().find(|(s, _)| *s == split) {
                        Some((_, folder)) => folder,
                        None => bail!("{}: has no {} folder", root.display(), split.name()),
                    },
                    None if split == Split::Train => root.clone(),
                    None => bail!("{}: is a single ImageFolder without train/val subfolders; it has only a train split", root.display()),
                };
                open_image_folder(&folder, options)?
            }
        };
        Ok(ds)
    }
}

fn kind_name(kind: CifarKind) -> &'static str {
    match kind {
        CifarKind::Cifar10 => "CIFAR-10",
        CifarKind::Cifar100Fine => "CIFAR-100 (fine labels)",
        CifarKind::Cifar100Coarse => "CIFAR-100 (coarse labels)",
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn open_cifar(dir: &Path, kind: CifarKind, split: Split) -> Result<Dataset> {
    let files: Vec<PathBuf> = match (kind, split) {
        (CifarKind::Cifar10, Split::Train) => (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).filter(|f| f.is_file()).collect(),
        (CifarKind::Cifar10, Split::Test) => vec![dir.join("test_batch.bin")],
        (_, Split::Train) => vec![dir.join("train.bin")],
        (_, Split::Test) => vec![dir.join("test.bin")],
        (_, Split::Unlabeled) => bail!("{}: CIFAR has no unlabeled split", dir.display()),
    };
    let mut out: Option<Dataset> = None;
    for file in files {
        if !file.is_file() {
            bail!("{}: missing; {} has no {} split here", file.display(), kind_name(kind), split.name());
        }
        let part = cifar::parse(&read(&file)?, kind, &file.display().to_string())?;
        match &mut out {
            None => out = Some(part),
            Some(ds) => concat(ds, part),
        }
    }
    let mut ds = out.with_context(|| format!("{}: no CIFAR files for the {} split", dir.display(), split.name()))?;
    let names_file = match kind {
        CifarKind::Cifar10 => "batches.meta.txt",
        CifarKind::Cifar100Fine => "fine_label_names.txt",
        CifarKind::Cifar100Coarse => "coarse_label_names.txt",
    };
    if let Ok(text) = fs::read_to_string(dir.join(names_file)) {
        let names = cifar::parse_class_names(&text);
        if names.len() == ds.classes.len() {
            ds.classes = names;
        }
    }
    Ok(ds)
}

fn open_stl10(dir: &Path, split: Split) -> Result<Dataset> {
    let (x, y) = match split {
        Split::Train => ("train_X.bin", Some("train_y.bin")),
        Split::Test => ("test_X.bin", Some("test_y.bin")),
        Split::Unlabeled => ("unlabeled_X.bin", None),
    };
    let x_path = dir.join(x);
    let images = read(&x_path)?;
    let labels = match y {
        Some(y) => Some((read(&dir.join(y))?, dir.join(y).display().to_string())),
        None => None,
    };
    let labels_ref = labels.as_ref().map(|(bytes, name)| (bytes.as_slice(), name.as_str()));
    let mut ds = stl10::parse(&images, &x_path.display().to_string(), labels_ref)?;
    if let Ok(text) = fs::read_to_string(dir.join("class_names.txt")) {
        let names = cifar::parse_class_names(&text);
        if names.len() == ds.classes.len() {
            ds.classes = names;
        }
    }
    Ok(ds)
}

/// `train`/`val`/`test` subfolders of an ImageFolder root, if it is split that way.
fn split_folders(root: &Path) -> Option<Vec<(Split, PathBuf)>> {
    let mut splits = Vec::new();
    if root.join("train").is_dir() {
        splits.push((Split::Train, root.join("train")));
    }
    for name in ["val", "test"] {
        if root.join(name).is_dir() {
            splits.push((Split::Test, root.join(name)));
            break;
        }
    }
    (!splits.is_empty()).then_some(splits)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Image files below `dir`, recursively, in sorted order.
fn image_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            image_files(&path, out)?;
        } else if jem_core::data::image_folder::is_image_file(&path.to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}

fn open_image_folder(root: &Path, options: OpenOptions) -> Result<Dataset> {
    let class_dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
    let classes: Vec<String> = class_dirs.iter().map(|d| d.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    let mut files = Vec::new();
    for (class, dir) in classes.iter().zip(&class_dirs) {
        let mut found = Vec::new();
        image_files(dir, &mut found)?;
        files.extend(found.into_iter().map(|f| (class.clone(), f)));
    }
    let mut builder = ImageFolderBuilder::new(classes, options.strict);
    let ds = if options.stream == StreamMode::Never {
        decode_all(&mut builder, &files, options.strict)?;
        builder.finish(&root.display().to_string())?
    } else {
        // Headers only: enough to size the dataset and to leave out files that are no images.
        let sizes: Vec<Result<(usize, usize), String>> = files.par_iter().map(|(_, path)| header_size(path)).collect();
        let decoded_bytes: u64 = sizes.iter().flatten().map(|(w, h)| (w * h * 3) as u64).sum();
        let budget = memory_budget();
        if options.stream == StreamMode::Auto && decoded_bytes <= budget {
            decode_all(&mut builder, &files, options.strict)?;
            builder.finish(&root.display().to_string())?
        } else {
            if options.stream == StreamMode::Auto {
                eprintln!(
                    "note: {}: decoded, the images would take {}, more than half the available memory ({} allowed); \
                     they are read from disk per batch (data.stream = \"never\" to load them anyway)",
                    root.display(),
                    gigabytes(decoded_bytes),
                    gigabytes(budget)
                );
            }
            for (file, ((class, path), size)) in files.iter().zip(sizes).enumerate() {
                builder.add_on_demand(class, &path.display().to_string(), file, size).map_err(with_hint(options.strict))?;
            }
            let reader = ImageFiles(files.into_iter().map(|(_, path)| path).collect());
            builder.finish_on_demand(&root.display().to_string(), Arc::new(reader))?
        }
    };
    for skipped in &ds.skipped {
        eprintln!("warning: skipped {}: {}", skipped.path, skipped.reason);
    }
    Ok(ds)
}

/// Decodes every file into `builder`, on all cores, adding them in sorted order for a stable
/// dataset.
fn decode_all(builder: &mut ImageFolderBuilder, files: &[(String, PathBuf)], strict: bool) -> Result<()> {
    let decoded: Vec<Result<Image, String>> = files
        .par_iter()
        .map(|(_, path)| fs::read(path).map_err(|e| format!("cannot read: {e}")).and_then(|b| Image::decode(&b).map_err(|e| e.to_string())))
        .collect();
    for ((class, path), image) in files.iter().zip(decoded) {
        builder.add_decoded(class, &path.display().to_string(), image).map_err(with_hint(strict))?;
    }
    Ok(())
}

/// `(width, height)` from a file's first 64 KiB, or from the whole file when its header is
/// longer (a JPEG with a large embedded thumbnail).
fn header_size(path: &Path) -> Result<(usize, usize), String> {
    const PREFIX: u64 = 64 * 1024;
    let mut file = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut prefix = Vec::new();
    file.by_ref().take(PREFIX).read_to_end(&mut prefix).map_err(|e| format!("cannot read: {e}"))?;
    match Image::header_size(&prefix) {
        Err(_) if prefix.len() as u64 == PREFIX => {
            file.read_to_end(&mut prefix).map_err(|e| format!("cannot read: {e}"))?;
            Image::header_size(&prefix).map_err(|e| e.to_string())
        }
        size => size.map_err(|e| e.to_string()),
    }
}

/// Reads and decodes ImageFolder files when a batch needs them.
#[derive(Debug)]
struct ImageFiles(Vec<PathBuf>);

impl ImageReader for ImageFiles {
    fn read(&self, index: usize) -> Result<Image, DataError> {
        let path = &self.0[index];
        let problem = |what: String| {
            DataError::new(
                path.display().to_string(),
                format!(
                    "{what} (only its header was checked when the dataset was opened; replace the file and resume, or remove it and start a new run)"
                ),
            )
        };
        let bytes = fs::read(path).map_err(|e| problem(format!("cannot read: {e}")))?;
        Image::decode(&bytes).map_err(|e| problem(format!("cannot decode: {e}")))
    }
}

/// Bytes a dataset may take decoded in memory: half of the available memory (Linux's
/// `MemAvailable`), or 4 GiB where that is unknown.
fn memory_budget() -> u64 {
    let available = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    available.map_or(4 << 30, |bytes| bytes / 2)
}

fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

fn with_hint(strict: bool) -> impl Fn(DataError) -> anyhow::Error {
    move |e| if strict { anyhow::anyhow!("{e} (--strict: without it, unreadable images are skipped with a warning)") } else { e.into() }
}
