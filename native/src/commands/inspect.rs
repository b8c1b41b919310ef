use anyhow::Result;
use jem_core::data::{Dataset, Split};

use crate::datasets::{OpenOptions, Source};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  jem data inspect shapes\n  jem data inspect ~/data/cifar-10-batches-bin --split test\n  \
    jem data inspect ~/data/imagenette --strict")]
pub struct Args {
    /// Dataset: a CIFAR-10/100 or STL-10 binary folder, an ImageFolder root
    /// (root/<class>/<image> or root/{train,val}/<class>/<image>), or `shapes[:RESOLUTION]`.
    path: String,
    /// Only this split: train, test (ImageFolder: val or test folder), unlabeled (STL-10).
    #[arg(long)]
    split: Option<String>,
    /// Fail on the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// CIFAR-100: report the 20 coarse labels instead of the 100 fine ones.
    #[arg(long)]
    coarse: bool,
}

pub fn parse_split(name: &str) -> Result<Split> {
    Ok(match name {
        "train" => Split::Train,
        "test" | "val" => Split::Test,
        "unlabeled" => Split::Unlabeled,
        _ => anyhow::bail!("unknown split '{name}'; choose train, test (or val) or unlabeled"),
    })
}

pub fn run(args: Args) -> Result<()> {
    let options = OpenOptions { strict: args.strict, coarse_labels: args.coarse, ..Default::default() };
    let source = Source::detect(&args.path, options)?;
    let splits = match &args.split {
        Some(s) => vec![parse_split(s)?],
        None => source.splits(),
    };
    anyhow::ensure!(!splits.is_empty(), "{}: found no dataset files", args.path);
    println!("dataset  {}", source.describe());
    for split in splits {
        let ds = source.open(split, options)?;
        print_summary(split, &ds);
    }
    Ok(())
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_summary(split: Split, ds: &Dataset) {
    println!("\n[{} split]", split.name());
    println!("format   {}", ds.format);
    println!("images   {}", thousands(ds.len()));
    if ds.labels.is_some() {
        let hist = ds.class_histogram();
        println!("classes  {}", ds.classes.len());
        let max = hist.iter().copied().max().unwrap_or(1).max(1);
        let width = ds.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).min(24);
        for (name, &count) in ds.classes.iter().zip(&hist) {
            let bar = "█".repeat((count * 30).div_ceil(max));
            println!("  {name:<width$}  {:>7}  {bar}", thousands(count));
        }
    } else {
        println!("classes  none (unlabeled)");
    }
    let sizes = ds.image_sizes();
    let shown: Vec<String> = sizes.iter().take(5).map(|((w, h), n)| format!("{w}×{h} ({})", thousands(*n))).collect();
    let more = if sizes.len() > 5 { format!(" and {} more sizes", sizes.len() - 5) } else { String::new() };
    println!("sizes    {}{more}", shown.join(", "));
    match ds.skipped.len() {
        0 => println!("skipped  0"),
        n => println!("skipped  {n} unreadable image files (listed in the warnings above)"),
    }
}
