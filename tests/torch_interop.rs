//! Weights in and out of PyTorch. The fixtures in `tests/fixtures/torch/` were written by
//! PyTorch (`bench/make_torch_fixtures.py`): reduced-width models in torchvision's and timm's
//! layouts, each with an input and the features PyTorch computed for it, so these tests check
//! equivalence without PyTorch installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::{Device, Tensor, TensorData};
use jem_core::model::torch_layout::{self, Family, StateDict, TorchTensor};
use jem_core::torch_file;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/torch").join(name)
}

fn jem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jem")).args(args).output().expect("run jem")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The fixture's input through its backbone imported into jem, through the same backbone
/// without the import (random weights), and the features PyTorch computed.
fn jem_and_torch_features(file: &str, io: &str, arch: &str, heads: Option<usize>) -> [Vec<f32>; 3] {
    let dict = torch_file::read(&fixture(file)).unwrap();
    let family = Family::of_arch(arch).unwrap();
    let (prefix, _) = torch_layout::choose_prefix(family, &dict, None).unwrap();
    let config = torch_layout::backbone_config(arch, &dict, &prefix, heads).unwrap();
    let device = Device::flex();
    let random = config.init(&device).unwrap();
    let backbone = torch_layout::from_torch(config.init(&device).unwrap(), &dict, &prefix, &device).unwrap();
    let io = torch_file::read(&fixture(&format!("{io}.io.safetensors"))).unwrap();
    let input = &io["input"];
    let x = Tensor::<4>::from_data(TensorData::new(input.values.clone(), input.shape.clone()), &device);
    let values = |features: Tensor<2>| features.into_data().try_to_vec::<f32>().unwrap();
    let features = backbone.forward(x.clone());
    assert_eq!(features.dims().to_vec(), io["features"].shape, "{file}");
    [values(features), values(random.forward(x)), io["features"].values.clone()]
}

/// max |jem − torch| / max |torch|.
fn relative_difference(ours: &[f32], theirs: &[f32]) -> f32 {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
    ours.iter().zip(theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn imported_backbones_compute_pytorchs_features() {
    for (file, io, arch, heads) in [
        ("resnet18_imagenet.pth", "resnet18_imagenet", "resnet18", None),
        ("resnet50_imagenet.pth", "resnet50_imagenet", "resnet50", None),
        ("resnet18_cifar.pth", "resnet18_cifar", "resnet18", None),
        ("solo_learn.ckpt", "solo_learn", "resnet18", None),
        ("dino_vit.pth", "dino_vit", "vit", Some(2)),
        ("dino_vit.safetensors", "dino_vit", "vit", Some(2)),
    ] {
        let [ours, random, theirs] = jem_and_torch_features(file, io, arch, heads);
        let difference = relative_difference(&ours, &theirs);
        eprintln!("{file}: relative difference {difference:.1e}");
        assert!(difference < 1e-4, "{file}: relative difference {difference}");
        // The check has teeth: the same model without the import is far off.
        assert!(relative_difference(&random, &theirs) > 0.1, "{file}");
    }
}

/// solo-learn's checkpoint holds the online backbone under `backbone.` and a different momentum
/// copy: the default prefix is the online one, and choosing the other gives other features.
#[test]
fn lightning_checkpoints_take_the_online_backbone_by_default() {
    let dict = torch_file::read(&fixture("solo_learn.ckpt")).unwrap();
    let (prefix, others) = torch_layout::choose_prefix(Family::ResNet, &dict, None).unwrap();
    assert_eq!((prefix.as_str(), others), ("state_dict.backbone.", vec!["state_dict.momentum_backbone.".to_string()]));
}

fn import(from: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--from", from.to_str().unwrap(), "--arch", "resnet18", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    jem(&args)
}

/// import → export → the file holds the original tensors bit for bit, under the original names,
/// with the BatchNorm counters strict loading asks for; importing the export gives the same run.
#[test]
fn export_after_import_gives_back_the_original_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = import(&fixture("resnet18_cifar.pth"), &run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exported = dir.path().join("encoder.safetensors");
    let o = jem(&["export", "torch", "--checkpoint", run.to_str().unwrap(), "--out", exported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let original = torch_file::read(&fixture("resnet18_cifar.pth")).unwrap();
    let back = torch_file::read(&exported).unwrap();
    let without_fc: StateDict = original.into_iter().filter(|(k, _)| !k.starts_with("fc.")).collect();
    assert_eq!(back.keys().collect::<Vec<_>>(), without_fc.keys().collect::<Vec<_>>());
    for (name, tensor) in &without_fc {
        if name.ends_with("num_batches_tracked") {
            assert_eq!(back[name].shape, Vec::<usize>::new(), "{name}");
        } else {
            assert_eq!(&back[name], tensor, "{name}");
        }
    }
    let again = dir.path().join("again");
    let o = import(&exported, &again, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = |run: &Path| fs::read(run.join("checkpoints/epoch-0000/model.bpk")).unwrap();
    let (first, second) = (model(&run), model(&again));
    assert_eq!(first.len(), second.len());
    // Same weights; the heads were drawn at random, so compare the backbone's export instead.
    let exported_again = dir.path().join("again.safetensors");
    let o = jem(&["export", "torch", "--checkpoint", again.to_str().unwrap(), "--out", exported_again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&exported).unwrap(), fs::read(&exported_again).unwrap(), "export → import → export is bit-exact");
}

/// A checkpoint with a missing key, an extra key or a wrong shape fails in one message naming
/// it, and no run folder appears.
#[test]
fn checkpoints_that_do_not_fit_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let original = torch_file::read(&fixture("resnet18_cifar.pth")).unwrap();
    type Edit = fn(&mut StateDict);
    let edits: [(&str, Edit, &str); 3] = [
        ("missing", |d| drop(d.remove("layer2.1.bn1.running_var")), "missing 1: layer2.1.bn1.running_var"),
        (
            "extra",
            |d| drop(d.insert("layer2.1.conv3.weight".into(), TorchTensor { shape: vec![1], values: vec![0.0] })),
            "unexpected 1: layer2.1.conv3.weight",
        ),
        (
            "shape",
            |d| d.get_mut("layer1.0.conv1.weight").unwrap().shape = vec![4, 4, 9, 1],
            "wrong shape 1: layer1.0.conv1.weight is [4, 4, 9, 1], the model's is [4, 4, 3, 3]",
        ),
    ];
    for (name, edit, expected) in edits {
        let mut dict = original.clone();
        edit(&mut dict);
        let file = dir.path().join(format!("{name}.safetensors"));
        fs::write(&file, torch_file::to_safetensors(&dict, &[])).unwrap();
        let out = dir.path().join(format!("{name}-run"));
        let o = import(&file, &out, &[]);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(expected), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one message: {err}");
        assert!(!out.exists(), "{name}: nothing written");
    }
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(fixture("resnet18_cifar.pth")).unwrap();
    let truncated = dir.path().join("truncated.pth");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let png = dir.path().join("photo.pth");
    fs::write(&png, b"\x89PNG\r\n\x1a\n not a checkpoint").unwrap();
    for file in [&truncated, &png] {
        let out = dir.path().join("run");
        let o = import(file, &out, &[]);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains("not a PyTorch") && err.contains(file.to_str().unwrap()), "{err}");
        assert!(!out.exists());
    }
    let o = import(&fixture("dino_vit.pth"), &dir.path().join("run"), &[]);
    assert!(stderr(&o).contains("no tensor named 'conv1.weight'"), "{}", stderr(&o));
    let o = import(&fixture("solo_learn.ckpt"), &dir.path().join("run"), &["--prefix", "encoder."]);
    assert!(stderr(&o).contains("state_dict.backbone., state_dict.momentum_backbone."), "{}", stderr(&o));
}

/// `jem eval knn` works on an imported model as on a jem run.
#[test]
fn eval_knn_reads_an_imported_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = import(&fixture("resnet18_cifar.pth"), &run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = jem(&["eval", "knn", "--checkpoint", run.to_str().unwrap(), "--k", "5"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("kNN (k=5, T=0.1) top-1:"), "{out}{}", stderr(&o));
}
