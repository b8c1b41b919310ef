//! `jem`: joint-embedding self-supervised learning from the command line.

// clap turns the doc comments of arguments into `--help` text, where `runs/<method>-…` is meant
// literally, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod commands;
mod datasets;
mod device;
mod loader;
mod npy;
mod plot;
mod run;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "jem",
    version,
    about = "Joint-embedding self-supervised visual representation learning",
    long_about = "Joint-embedding self-supervised visual representation learning.\n\n\
        Pretrain an image encoder without labels so that two augmented views of one image get\n\
        similar embeddings, then measure it with a few labels.\n\n\
        Start with `jem pretrain` (a few minutes on the built-in shapes dataset), `jem augment`\n\
        to see what the views look like, and `jem data inspect shapes` for the dataset."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pretrain an encoder without labels (default: SimCLR on built-in shapes, a few minutes).
    Pretrain(commands::pretrain::Args),
    /// Evaluate a pretrained encoder with labels.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Preview augmentations: writes a PNG grid of an image and its random views.
    Augment(commands::augment::Args),
    /// Write a pretrained encoder's features or weights to files (NumPy, PyTorch, browser).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Bring a backbone from PyTorch (.pth, .pt, Lightning .ckpt, .safetensors) into a run folder.
    Import(commands::import::Args),
    /// Look at datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Weighted kNN (k = 200, T = 0.1) on frozen features: train images vote for test images.
    Knn(commands::eval::Args),
    /// Linear classifier trained on frozen features; top-1 and top-5 on the test split.
    Linear(commands::eval::Args),
    /// The backbone unfrozen with a new linear classifier, trained with labels (AdamW, crops
    /// and flips); top-1 and top-5 on the test split.
    Finetune(commands::eval::FinetuneArgs),
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Frozen features of the train and test splits as NumPy .npy files (with labels).
    Features(commands::export::FeaturesArgs),
    /// One encoder file (recipe + weights) for the browser demo's Inference tab.
    Web(commands::export::WebArgs),
    /// The backbone as .safetensors with torchvision's (ResNet) or timm's (ViT) names, for PyTorch.
    Torch(commands::export::TorchArgs),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print a dataset's format, size, classes, class histogram, image sizes and skipped files.
    Inspect(commands::inspect::Args),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Two-view augmentation throughput (images/s) on one core and on all cores.
    Augment(commands::bench::AugmentArgs),
    /// One epoch of the multi-view loader (shuffle, parallel augmentation, prefetch, upload).
    Loader(commands::bench::LoaderArgs),
    /// Median training-step time and images/s (random input; the PyTorch reference's model by default).
    Train(commands::bench::TrainArgs),
    /// Forward and forward+backward time and GFLOP/s of each convolution shape in ResNet-18.
    Conv(commands::bench::ConvArgs),
}

/// A training step frees and reallocates the same large activation buffers every step. glibc
/// returns blocks above its mmap threshold to the kernel on free, so each step paid for fresh,
/// zeroed pages again; keeping blocks up to 32 MiB (glibc's ceiling) in the heap made the
/// ResNet-18 width-16 step 18 % faster (docs/performance.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`jem … | head`)
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(args) => commands::pretrain::run(args),
        Command::Eval(EvalCommand::Knn(args)) => commands::eval::run(commands::eval::Protocol::Knn, args),
        Command::Eval(EvalCommand::Linear(args)) => commands::eval::run(commands::eval::Protocol::Linear, args),
        Command::Eval(EvalCommand::Finetune(args)) => commands::eval::finetune(args),
        Command::Export(ExportCommand::Features(args)) => commands::export::features(args),
        Command::Export(ExportCommand::Web(args)) => commands::export::web(args),
        Command::Export(ExportCommand::Torch(args)) => commands::export::torch(args),
        Command::Import(args) => commands::import::run(args),
        Command::Augment(args) => commands::augment::run(args),
        Command::Data(DataCommand::Inspect(args)) => commands::inspect::run(args),
        Command::Bench(BenchCommand::Augment(args)) => commands::bench::augment(args),
        Command::Bench(BenchCommand::Loader(args)) => commands::bench::loader(args),
        Command::Bench(BenchCommand::Conv(args)) => commands::bench::conv(args),
        Command::Bench(BenchCommand::Train(args)) => commands::bench::train(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
