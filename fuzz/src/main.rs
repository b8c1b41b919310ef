//! Mutation fuzzing of every parser that reads user files: `cargo run --release -p jem-fuzz --
//! <target> --seconds 600`. Each run starts from small seed inputs built here (a two-image
//! CIFAR-10 file, one STL-10 image, PNG and JPEG files, the repository's recipes, an encoder
//! file of a tiny model, a PyTorch and a safetensors weight file), mutates them (bit flips, byte changes, cuts, repeats, splices) and
//! feeds them to the parser. A parser may reject an input with an error; a panic is a bug. Inputs
//! that panic are written to `fuzz/crashes/` to be replayed with `--replay FILE`; once fixed, a
//! representative goes to `fuzz/regressions/`, which `cargo test -p jem-fuzz` replays.
//!
//! This is a plain mutation fuzzer, without coverage guidance (cargo-fuzz needs libFuzzer and a
//! nightly compiler); it is deterministic for a given `--seed`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use jem_core::Image;
use jem_core::data::image_folder::ImageFolderBuilder;
use jem_core::data::shapes::Shapes;
use jem_core::data::{cifar, stl10};
use jem_core::encoder_file;
use jem_core::model::torch_layout;
use jem_core::recipe::Recipe;
use jem_core::torch_file;

#[derive(Parser)]
struct Args {
    /// cifar, stl10, image, recipe, checkpoint or torch.
    target: String,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run the target once on this file (a saved crash) instead of fuzzing.
    #[arg(long)]
    replay: Option<PathBuf>,
}

/// The function under test: it must not panic on any input.
type Run = Box<dyn Fn(&[u8])>;

/// A target: its seed inputs and the function under test.
struct Target {
    seeds: Vec<Vec<u8>>,
    run: Run,
}

fn shapes_images(n: u64, side: usize) -> Vec<Image> {
    let shapes = Shapes::new(side, 1);
    (0..n).map(|i| shapes.render(i)).collect()
}

fn target(name: &str) -> Result<Target, String> {
    Ok(match name {
        "cifar" => Target {
            seeds: vec![cifar::encode(&shapes_images(2, 32), &[3, 7], None), cifar::encode(&shapes_images(1, 32), &[1], Some(&[0]))],
            run: Box::new(|bytes| {
                for kind in [cifar::CifarKind::Cifar10, cifar::CifarKind::Cifar100Fine, cifar::CifarKind::Cifar100Coarse] {
                    let _ = cifar::parse(bytes, kind, "fuzz.bin");
                }
                let _ = cifar::parse_class_names(&String::from_utf8_lossy(bytes));
            }),
        },
        "stl10" => Target {
            // Images file, then labels file; the first byte says where to split.
            seeds: vec![{
                let images = stl10::encode_images(&shapes_images(1, 96));
                let mut input = vec![0u8];
                input.extend(images);
                input.push(3);
                input
            }],
            run: Box::new(|bytes| {
                let Some((&split, rest)) = bytes.split_first() else { return };
                let cut = rest.len().saturating_sub(split as usize);
                let (images, labels) = rest.split_at(cut);
                let _ = stl10::parse(images, "x.bin", Some((labels, "y.bin")));
                let _ = stl10::parse(rest, "x.bin", None);
            }),
        },
        "image" => Target {
            seeds: {
                let img = &shapes_images(1, 12)[0];
                let mut jpeg = Vec::new();
                image_jpeg(img, &mut jpeg);
                vec![img.to_png(), jpeg]
            },
            run: Box::new(|bytes| {
                // The ImageFolder path: builder.add decodes by content.
                let mut builder = ImageFolderBuilder::new(vec!["a".into()], false);
                let _ = builder.add("a", "a/0.png", bytes);
                let _ = builder.finish("root");
            }),
        },
        "recipe" => Target {
            seeds: [
                include_str!("../../recipes/shapes/simclr.toml"),
                include_str!("../../recipes/shapes/swav.toml"),
                include_str!("../../recipes/shapes/dino.toml"),
                include_str!("../../recipes/cifar10/moco_v2.toml"),
                include_str!("../../recipes/browser/vicreg.toml"),
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
            run: Box::new(|bytes| {
                if let Ok(recipe) = Recipe::from_toml(&String::from_utf8_lossy(bytes)) {
                    let _ = recipe.data.augment.build(32, 32);
                    let _ = recipe.to_toml();
                }
            }),
        },
        "checkpoint" => {
            let mut recipe = Recipe::default_shapes();
            recipe.backbone.width = 2;
            recipe.method = jem_core::method::MethodConfig::SimClr(jem_core::method::SimClrConfig {
                temperature: 0.2,
                projector: jem_core::model::MlpConfig::new(&[8, 4]),
            });
            let device = burn::tensor::Device::flex();
            let model = recipe.method.init(&recipe.backbone, &device).map_err(|e| e.to_string())?;
            let weights = burn::module::Module::into_record(model).into_bytes().map_err(|e| format!("{e:?}"))?.to_vec();
            Target {
                seeds: vec![encoder_file::encode(&recipe, &weights)],
                run: Box::new(move |bytes| {
                    if let Ok((recipe, weights)) = encoder_file::decode(bytes) {
                        // Only small models: a fuzzed width of a billion is a valid recipe that
                        // would just run out of memory.
                        if recipe.backbone.width <= 8
                            && recipe.backbone.arch == "convnet"
                            && let Ok(model) = recipe.method.init(&recipe.backbone, &device)
                        {
                            let _ = encoder_file::load_weights(model, weights);
                        }
                    }
                }),
            }
        }
        "torch" => Target {
            // A PyTorch zip-pickle file (DINO's ViT layout, written by PyTorch) and a safetensors file.
            seeds: vec![
                include_bytes!("../../tests/fixtures/torch/dino_vit.pth").to_vec(),
                torch_file::to_safetensors(
                    &torch_layout::StateDict::from([(
                        "conv1.weight".to_string(),
                        torch_layout::TorchTensor { shape: vec![1, 3, 1, 1], values: vec![0.5, -1.0, 2.0] },
                    )]),
                    &["bn1.num_batches_tracked".to_string()],
                ),
            ],
            run: Box::new(|bytes| {
                // burn's PyTorch reader takes a path.
                let path = std::env::temp_dir().join(format!("jem-fuzz-torch-{}.pth", std::process::id()));
                std::fs::write(&path, bytes).expect("write the input");
                if let Ok(dict) = torch_file::read(&path) {
                    let _ = torch_file::from_safetensors(bytes, "fuzz");
                    import_small_backbones(&dict);
                }
            }),
        },
        other => return Err(format!("unknown target '{other}'; choose cifar, stl10, image, recipe, checkpoint or torch")),
    })
}

/// Every import step on a fuzzed state dict, for backbones small enough to build.
fn import_small_backbones(dict: &torch_layout::StateDict) {
    let device = burn::tensor::Device::flex();
    for (family, arch) in [(torch_layout::Family::ResNet, "resnet18"), (torch_layout::Family::Vit, "vit")] {
        let Ok((prefix, _)) = torch_layout::choose_prefix(family, dict, None) else { continue };
        let Ok(config) = torch_layout::backbone_config(arch, dict, &prefix, Some(1)) else { continue };
        if config.width <= 64
            && config.depth <= 4
            && config.image_size <= 64
            && config.patch_size <= 64
            && let Ok(backbone) = config.init(&device)
        {
            let _ = torch_layout::from_torch(backbone, dict, &prefix, &device);
        }
    }
}

fn image_jpeg(img: &Image, out: &mut Vec<u8>) {
    image::codecs::jpeg::JpegEncoder::new_with_quality(out, 80)
        .encode(&img.pixels, img.width as u32, img.height as u32, image::ExtendedColorType::Rgb8)
        .expect("encode a JPEG seed");
}

/// xorshift64*: a small, seedable generator for the mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to eight random edits of `input`.
fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'=', b'[', b'"'];
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            3 if len > 0 => input.truncate(rng.below(len)),
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                input.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let piece = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let cut = rng.below(other.len());
                    let at = rng.below(len + 1);
                    input.truncate(at);
                    input.extend_from_slice(&other[cut..]);
                }
            }
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn main() {
    let args = Args::parse();
    let target = match target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("jem-fuzz: {e}");
            std::process::exit(2);
        }
    };
    if let Some(file) = &args.replay {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        (target.run)(&bytes);
        println!("{}: no panic", file.display());
        return;
    }
    // Panics are expected findings: keep their messages short and count them.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let crashes = Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let mut rng = Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (start, limit) = (Instant::now(), Duration::from_secs_f64(args.seconds));
    let (mut executions, mut panics) = (0u64, 0u64);
    for seed in &target.seeds {
        (target.run)(seed); // the seeds themselves must parse without panicking
    }
    while start.elapsed() < limit {
        let mut input = target.seeds[rng.below(target.seeds.len())].clone();
        mutate(&mut input, &target.seeds, &mut rng);
        executions += 1;
        if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
            panics += 1;
            std::fs::create_dir_all(&crashes).expect("create fuzz/crashes");
            let path = crashes.join(format!("{}-{:016x}.bin", args.target, fnv(&input)));
            std::fs::write(&path, &input).expect("write the crashing input");
            eprintln!("saved {}", path.display());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"target\":\"{}\",\"seed\":{},\"seconds\":{seconds:.0},\"executions\":{executions},\"executions_per_s\":{:.0},\"panics\":{panics}}}",
        args.target,
        args.seed,
        executions as f64 / seconds
    );
    if panics > 0 {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_survives_a_short_run() {
        for name in ["cifar", "stl10", "image", "recipe", "checkpoint", "torch"] {
            let target = target(name).unwrap();
            let mut rng = Rng(7);
            for _ in 0..500 {
                let mut input = target.seeds[rng.below(target.seeds.len())].clone();
                mutate(&mut input, &target.seeds, &mut rng);
                (target.run)(&input);
            }
        }
        assert!(target("nonsense").is_err());
    }

    /// Inputs that once panicked (`fuzz/regressions/<target>-<hash>.bin`) must not again.
    #[test]
    fn saved_crashes_stay_fixed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        let mut replayed = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let target = target(name.split('-').next().unwrap()).unwrap();
            (target.run)(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 2);
    }

    #[test]
    fn mutations_are_deterministic_and_change_the_input() {
        let seeds = vec![b"[method]\nname = \"simclr\"\n".to_vec()];
        let run = |seed| {
            let mut rng = Rng(seed);
            let mut input = seeds[0].clone();
            mutate(&mut input, &seeds, &mut rng);
            input
        };
        assert_eq!(run(3), run(3));
        assert!((1..20).any(|s| run(s) != seeds[0]));
    }
}
