use std::time::{Duration, Instant};

use anyhow::Result;
use jem_core::augment::{Preset, Resolution};
use jem_core::data::Split;
use jem_core::data::shapes::Shapes;

use crate::loader::augment_parallel;

#[derive(clap::Args)]
pub struct AugmentArgs {
    /// View sizes to measure; 32 uses the CIFAR recipe on 32×32 sources, larger sizes the
    /// ImageNet recipe (with blur) on sources of `--source` pixels.
    #[arg(long, value_delimiter = ',', default_value = "32,224")]
    sizes: Vec<usize>,
    /// Source image side for view sizes above 32 (ImageNet images average ~400×350).
    #[arg(long, default_value_t = 320)]
    source: usize,
    /// Augmentation preset.
    #[arg(long, default_value = "simclr")]
    preset: String,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Minimum measuring time per configuration, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Print one JSON object per configuration instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn augment(args: AugmentArgs) -> Result<()> {
    let preset = Preset::from_name(&args.preset).map_err(anyhow::Error::msg)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts: Vec<usize> = if cores > 1 { vec![1, cores] } else { vec![1] };
    if !args.json {
        println!("{} augmentation, {} views per image, batches of {}", preset.name(), preset.build(Resolution::Cifar).views.len(), args.batch);
        println!("{:>6} {:>8} {:>8} {:>14} {:>18}", "size", "source", "threads", "images/s", "images/s/thread");
    }
    for &size in &args.sizes {
        let (resolution, source) = if size <= 32 { (Resolution::Cifar, 32) } else { (Resolution::ImageNet, args.source) };
        let augment = preset.build(resolution).resized(size);
        let dataset = Shapes::new(source, 0).dataset(args.batch, Split::Train);
        let indices: Vec<usize> = (0..args.batch).collect();
        for &threads in &thread_counts {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let (images, elapsed) = pool.install(|| {
                augment_parallel(&augment, &dataset, &indices, 0, 0); // warm-up
                let start = Instant::now();
                let mut images = 0;
                let mut epoch = 1;
                while start.elapsed() < Duration::from_secs_f64(args.seconds) {
                    std::hint::black_box(augment_parallel(&augment, &dataset, &indices, 0, epoch));
                    images += args.batch;
                    epoch += 1;
                }
                (images, start.elapsed().as_secs_f64())
            });
            let rate = images as f64 / elapsed;
            if args.json {
                println!(
                    "{{\"preset\":\"{}\",\"size\":{size},\"source\":{source},\"threads\":{threads},\"images_per_s\":{rate:.1},\"images_per_s_per_thread\":{:.1}}}",
                    preset.name(),
                    rate / threads as f64
                );
            } else {
                println!("{size:>6} {source:>8} {threads:>8} {rate:>14.0} {:>18.0}", rate / threads as f64);
            }
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct LoaderArgs {
    /// Dataset (see `jem data inspect --help`); its train split is loaded.
    #[arg(long, default_value = "shapes")]
    data: String,
    /// Augmentation preset and variant.
    #[arg(long, default_value = "simclr")]
    preset: String,
    #[arg(long, default_value = "auto")]
    variant: String,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Batches prepared ahead of the consumer.
    #[arg(long, default_value_t = 2)]
    prefetch: usize,
}

/// Runs one epoch of the native loader (shuffle, parallel augmentation, prefetch) and uploads
/// each batch to the CPU device: the data pipeline a training step waits on.
pub fn loader(args: LoaderArgs) -> Result<()> {
    use std::sync::Arc;

    use crate::datasets::{OpenOptions, Source};
    use crate::loader::{EpochLoader, LoaderConfig};

    let options = OpenOptions::default();
    let dataset = Arc::new(Source::detect(&args.data, options)?.open(Split::Train, options)?);
    anyhow::ensure!(!dataset.is_empty(), "{}: the train split is empty", args.data);
    let first = &dataset.images[0];
    let resolution = Resolution::resolve(&args.variant, first.width, first.height).map_err(anyhow::Error::msg)?;
    let augment = Arc::new(Preset::from_name(&args.preset).map_err(anyhow::Error::msg)?.build(resolution));
    let config = LoaderConfig { batch_size: args.batch, shuffle: true, drop_last: true, seed: 0, prefetch: args.prefetch };
    let device = burn::tensor::Device::flex();
    let start = Instant::now();
    let mut images = 0;
    let loader = EpochLoader::new(dataset.clone(), augment.clone(), config, 0);
    let batches = loader.len();
    for batch in loader {
        let tensors = batch.to_tensors(&device);
        images += tensors.views[0].dims()[0];
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{batches} batches, {images} images × {} views ({} px) in {elapsed:.2} s: {:.0} images/s on {} threads",
        augment.views.len(),
        augment.views[0].size,
        images as f64 / elapsed,
        rayon::current_num_threads()
    );
    Ok(())
}
