use std::time::{Duration, Instant};

use anyhow::Result;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use jem_core::augment::{Preset, Resolution};
use jem_core::data::Split;
use jem_core::data::batch::TensorBatch;
use jem_core::data::shapes::Shapes;
use jem_core::method::MethodConfig;
use jem_core::model::{Backbone, BackboneConfig, Stem};
use jem_core::train::{OptimizerConfig, Precision, Schedule, Trainer};

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
        println!(
            "{} augmentation, {} views per image, batches of {}",
            preset.name(),
            preset.build(Resolution::Cifar).views.len(),
            args.batch
        );
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
                augment_parallel(&augment, &dataset, &indices, 0, 0).expect("shapes are in memory"); // warm-up
                let start = Instant::now();
                let mut images = 0;
                let mut epoch = 1;
                while start.elapsed() < Duration::from_secs_f64(args.seconds) {
                    std::hint::black_box(augment_parallel(&augment, &dataset, &indices, 0, epoch).expect("shapes are in memory"));
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
    /// ImageFolder: `never` decodes every image first, `always` per batch (streaming from disk).
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    stream: String,
}

/// Runs one epoch of the native loader (shuffle, parallel augmentation, prefetch) and uploads
/// each batch to the CPU device: the data pipeline a training step waits on.
pub fn loader(args: LoaderArgs) -> Result<()> {
    use std::sync::Arc;

    use jem_core::recipe::StreamMode;

    use crate::datasets::{OpenOptions, Source};
    use crate::loader::{EpochLoader, LoaderConfig};

    let stream = match args.stream.as_str() {
        "always" => StreamMode::Always,
        "never" => StreamMode::Never,
        _ => StreamMode::Auto,
    };
    let options = OpenOptions { stream, ..Default::default() };
    let open_start = Instant::now();
    let dataset = Arc::new(Source::detect(&args.data, options)?.open(Split::Train, options)?);
    println!("opened {} ({}) in {:.2} s", args.data, dataset.format, open_start.elapsed().as_secs_f64());
    anyhow::ensure!(!dataset.is_empty(), "{}: the train split is empty", args.data);
    let (width, height) = dataset.image_size(0);
    let resolution = Resolution::resolve(&args.variant, width, height).map_err(anyhow::Error::msg)?;
    let augment = Arc::new(Preset::from_name(&args.preset).map_err(anyhow::Error::msg)?.build(resolution));
    let config = LoaderConfig { batch_size: args.batch, shuffle: true, drop_last: true, seed: 0, prefetch: args.prefetch };
    let device = burn::tensor::Device::flex();
    let start = Instant::now();
    let mut images = 0;
    let loader = EpochLoader::new(dataset.clone(), augment.clone(), config, 0);
    let batches = loader.len();
    for batch in loader {
        let tensors = batch?.to_tensors(&device);
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

#[derive(clap::Args)]
#[command(after_help = "The reference model is the one of bench/torch_train_step.py: ResNet-18 with the CIFAR\n\
    stem at base width W, a linear head to 128, loss = mean of squares, SGD (lr 0.01, momentum 0.9),\n\
    one random [B, 3, 32, 32] batch. Compare: python3 bench/torch_train_step.py --batch 64 --width 64 --threads 2\n\
    (setup once: bash bench/setup-torch.sh; docs/performance.md has the full protocol)")]
pub struct TrainArgs {
    /// Backbone: resnet18, resnet34, resnet50, convnet, or vit_tiny, vit_small, vit_base
    /// (position embeddings for `--size`).
    #[arg(long, default_value = "resnet18")]
    model: String,
    /// ResNet stem: `cifar` (3×3 convolution, no max-pool: 32-px images) or `imagenet` (7×7/2
    /// convolution and max-pool: 224-px images).
    #[arg(long, default_value = "cifar")]
    stem: String,
    /// ViT patch side in pixels.
    #[arg(long, default_value_t = 4)]
    patch: usize,
    /// Channels of the first stage (64 is the standard ResNet).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// `reference` (PyTorch's reference step) or a method: simclr, simsiam, vicreg, barlow_twins,
    /// moco_v2, moco_v3, byol, swav, dino, nnclr (with their default heads).
    #[arg(long, default_value = "reference")]
    method: String,
    /// Views per image for a method (the reference takes one).
    #[arg(long, default_value_t = 2)]
    views: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Timed steps, after two untimed warm-up steps.
    #[arg(long, default_value_t = 6)]
    steps: usize,
    /// Compute threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Type the forward and backward passes compute in (a method's step, as `train.precision`):
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The PyTorch reference's network: backbone, then a linear head to 128.
#[derive(Module, Debug)]
struct ReferenceNet {
    backbone: Backbone,
    head: Linear,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let threads = use_threads(args.threads)?;
    let device = crate::device::parse(&args.device)?.autodiff();
    device.seed(0);
    let precision: Precision = recipe_value("--precision", &args.precision, "f32, bf16 or f16")?;
    precision.check(&device)?;
    let stem: Stem = recipe_value("--stem", &args.stem, "cifar or imagenet")?;
    let backbone = BackboneConfig {
        arch: args.model.clone(),
        width: args.width,
        stem,
        patch_size: args.patch,
        image_size: args.size,
        ..Default::default()
    };
    let random = || Tensor::<4>::random([args.batch, 3, args.size, args.size], Distribution::Normal(0.0, 1.0), &device);
    let (views, mut step): (usize, Box<dyn FnMut() -> f32>) = if args.method == "reference" {
        anyhow::ensure!(precision == Precision::F32, "--precision {}: the reference step runs in f32; name a --method", precision.name());
        let backbone = backbone.init(&device).map_err(anyhow::Error::msg)?;
        let head = LinearConfig::new(backbone.feature_dim(), 128).init(&device);
        let mut net = Some(ReferenceNet { backbone, head });
        let mut optimizer = OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 0.0 }.init();
        let x = random();
        (
            1,
            Box::new(move || {
                let model = net.take().expect("the model is only taken during a step");
                let loss = model.head.forward(model.backbone.forward(x.clone())).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                net = Some(optimizer.step(0.01, model, grads));
                loss.into_scalar::<f32>()
            }),
        )
    } else {
        let method = MethodConfig::default_for(&args.method).map_err(anyhow::Error::msg)?;
        let model = method.init(&backbone, &device).map_err(anyhow::Error::msg)?;
        let mut trainer = Trainer::new(
            model,
            &OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 0.0 },
            Schedule { peak: 0.01, min: 0.01, warmup_steps: 0, total_steps: 1, steps_per_epoch: 1 },
        )
        .precision(precision);
        let batch = TensorBatch::from_views((0..args.views).map(|_| random()).collect());
        (args.views, Box::new(move || trainer.step(&batch).loss))
    };
    let median = median_seconds(args.steps, || {
        let loss = step();
        anyhow::ensure!(loss.is_finite(), "the loss is {loss}");
        Ok(())
    })?;
    let images_per_s = args.batch as f64 / median;
    if args.json {
        let record = serde_json::json!({
            "impl": "jem", "model": args.model, "stem": args.stem, "precision": precision.name(), "width": args.width, "batch": args.batch, "method": args.method,
            "views": views, "size": args.size, "threads": threads, "device": args.device,
            "step_s_median": (median * 1e6).round() / 1e6, "images_per_s": (images_per_s * 10.0).round() / 10.0,
        });
        println!("{record}");
    } else {
        println!(
            "{} width {} ({}, {}), batch {} × {views} view(s) of {} px, {threads} threads on {}: median step {:.3} s over {} steps, {images_per_s:.1} images/s",
            args.model,
            args.width,
            args.method,
            precision.name(),
            args.batch,
            args.size,
            args.device,
            median,
            args.steps
        );
    }
    Ok(())
}

/// A command-line value read as the recipe field of the same name is (its serde name).
fn recipe_value<T: serde::de::DeserializeOwned>(flag: &str, value: &str, choices: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| anyhow::anyhow!("{flag} {value}: choose {choices}"))
}

/// Sets the size of rayon's global pool, on which burn's CPU backend runs; returns it.
fn use_threads(threads: Option<usize>) -> Result<usize> {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    Ok(threads)
}

/// Median wall time of `runs` calls of `f`, after two untimed warm-up calls.
fn median_seconds(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let start = Instant::now();
        f()?;
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[derive(clap::Args)]
pub struct ConvArgs {
    /// Channels of the first stage.
    #[arg(long, default_value_t = 64)]
    width: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed runs per shape, after two warm-up runs.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object per shape.
    #[arg(long)]
    json: bool,
}

/// One convolution shape of ResNet-18 with the CIFAR stem on 32×32 inputs, and how many of the
/// network's convolutions have it.
struct ConvShape {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    size: usize,
    count: usize,
}

fn resnet18_cifar_convs(width: usize) -> Vec<ConvShape> {
    let mut shapes = vec![ConvShape { c_in: 3, c_out: width, kernel: 3, stride: 1, size: 32, count: 1 }];
    shapes.push(ConvShape { c_in: width, c_out: width, kernel: 3, stride: 1, size: 32, count: 4 });
    for stage in 1..4 {
        let (c_in, c_out, size) = (width << (stage - 1), width << stage, 32 >> (stage - 1));
        shapes.push(ConvShape { c_in, c_out, kernel: 3, stride: 2, size, count: 1 });
        shapes.push(ConvShape { c_in: c_out, c_out, kernel: 3, stride: 1, size: size / 2, count: 3 });
        shapes.push(ConvShape { c_in, c_out, kernel: 1, stride: 2, size, count: 1 });
    }
    shapes
}

/// Times each convolution shape of ResNet-18 alone, forward and forward + backward (gradients
/// of input and weight), with burn's `conv2d` and with jem's kernels (`jem_kernels::conv2d`), so
/// the step time of `jem bench train` can be split by layer and the two compared.
pub fn conv(args: ConvArgs) -> Result<()> {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};

    let threads = use_threads(args.threads)?;
    let device = burn::tensor::Device::flex().autodiff();
    type Kernel = fn(&Conv2d, Tensor<4>) -> Tensor<4>;
    let kernels: [(&str, Kernel); 2] = [("burn", |conv, x| conv.forward(x)), ("jem", |conv, x| jem_kernels::conv2d(conv, x))];
    let mut totals = [[0.0; 2]; 2];
    if !args.json {
        println!(
            "ResNet-18 (CIFAR stem) convolutions, width {}, batch {}, {threads} threads; times in ms (GFLOP/s)",
            args.width, args.batch
        );
        println!(
            "{:>5} {:>5} {:>2} {:>2} {:>4} {:>3} {:>16} {:>16} {:>16} {:>16}",
            "c_in", "c_out", "k", "s", "size", "n", "burn fwd", "burn fwd+bwd", "jem fwd", "jem fwd+bwd"
        );
    }
    for shape in resnet18_cifar_convs(args.width) {
        let pad = shape.kernel / 2;
        let layer = Conv2dConfig::new([shape.c_in, shape.c_out], [shape.kernel; 2])
            .with_stride([shape.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([args.batch, shape.c_in, shape.size, shape.size], Distribution::Normal(0.0, 1.0), &device);
        let out = shape.size / shape.stride;
        let flops = 2.0 * (args.batch * out * out * shape.c_out * shape.c_in * shape.kernel * shape.kernel) as f64;
        let mut cells = Vec::new();
        let mut record = serde_json::json!({
            "c_in": shape.c_in, "c_out": shape.c_out, "kernel": shape.kernel, "stride": shape.stride, "size": shape.size,
            "count": shape.count, "batch": args.batch, "threads": threads,
        });
        for (k, (name, apply)) in kernels.iter().enumerate() {
            let forward = median_seconds(args.steps, || {
                apply(&layer, x.clone()).into_data();
                Ok(())
            })?;
            let both = median_seconds(args.steps, || {
                let input = x.clone().require_grad();
                let grads = apply(&layer, input.clone()).sum().backward();
                let input_grad = input.grad(&grads).expect("the input requires a gradient");
                let weight_grad = layer.weight.grad(&grads).expect("the weight is trainable");
                input_grad.into_data();
                weight_grad.into_data();
                Ok(())
            })?;
            totals[k][0] += forward * shape.count as f64;
            totals[k][1] += both * shape.count as f64;
            record[*name] = serde_json::json!({ "forward_s": forward, "forward_backward_s": both });
            cells.push(format!("{:>8.1} ({:>4.0})", forward * 1e3, flops / forward / 1e9));
            cells.push(format!("{:>8.1} ({:>4.0})", both * 1e3, 3.0 * flops / both / 1e9));
        }
        if args.json {
            println!("{record}");
        } else {
            let ConvShape { c_in, c_out, kernel, stride, size, count } = shape;
            println!("{c_in:>5} {c_out:>5} {kernel:>2} {stride:>2} {size:>4} {count:>3} {}", cells.join(" "));
        }
    }
    if !args.json {
        for (k, (name, _)) in kernels.iter().enumerate() {
            println!("{name}: all 20 convolutions, forward {:.3} s, forward + backward {:.3} s", totals[k][0], totals[k][1]);
        }
    }
    Ok(())
}
