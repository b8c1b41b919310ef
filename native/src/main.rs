//! `jem`: joint-embedding self-supervised learning from the command line.

mod commands;
mod datasets;
mod loader;

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
        Start with `jem augment` to see what the views look like, and `jem data inspect shapes`\n\
        to see the built-in dataset."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preview augmentations: writes a PNG grid of an image and its random views.
    Augment(commands::augment::Args),
    /// Look at datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
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
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`jem … | head`)
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Augment(args) => commands::augment::run(args),
        Command::Data(DataCommand::Inspect(args)) => commands::inspect::run(args),
        Command::Bench(BenchCommand::Augment(args)) => commands::bench::augment(args),
        Command::Bench(BenchCommand::Loader(args)) => commands::bench::loader(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
