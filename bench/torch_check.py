"""jem ⇄ PyTorch on full-size models, both ways, with the largest feature differences printed.

  bash bench/setup-torch.sh && .torch-venv/bin/pip install safetensors timm
  cargo build --release -p jem
  .torch-venv/bin/python bench/torch_check.py --arch resnet50            # torchvision, ImageNet stem
  .torch-venv/bin/python bench/torch_check.py --arch resnet18 --stem cifar
  .torch-venv/bin/python bench/torch_check.py --arch vit_small           # DINO's ViT-S/16 (timm)

PyTorch → jem: a model with weights drawn at random by torchvision (BatchNorm statistics drawn too,
so that they matter), saved with torch.save, imported with `jem import`; the same images through
both. jem → PyTorch: `jem export torch` of that run, loaded into a fresh torchvision/timm model with
load_state_dict(strict=True); the same images through both. No download is needed.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from safetensors.torch import load_file, save_file


def model(arch, stem):
    if arch.startswith("vit"):
        import timm

        m = timm.models.vision_transformer.VisionTransformer(
            img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6, num_classes=0)
    else:
        m = getattr(torchvision.models, arch)()
        if stem == "cifar":
            m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            m.maxpool = torch.nn.Identity()
        m.fc = torch.nn.Identity()
    return m


def randomise(m):
    with torch.no_grad():
        for module in m.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
        if not isinstance(m, torchvision.models.ResNet):
            for p in m.parameters():
                p.add_(0.02 * torch.randn_like(p))
    return m.eval()


def jem(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"jem {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def compare(name, ours, theirs):
    diff = np.abs(ours - theirs).max()
    print(f"{name:<28} features {tuple(theirs.shape)}  max |diff| {diff:.2e}  relative {diff / np.abs(theirs).max():.2e}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="resnet50", choices=["resnet18", "resnet34", "resnet50", "vit_small"])
    parser.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    parser.add_argument("--jem", default="target/release/jem")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    side = 32 if args.stem == "cifar" else 224
    source = randomise(model(args.arch, args.stem))
    x = torch.randn(args.batch, 3, side, side)
    with torch.no_grad():
        expected = source(x).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        path = lambda name: os.path.join(tmp, name)
        torch.save(source.state_dict(), path("source.pth"))
        save_file({"input": x}, path("input.safetensors"))
        extra = ["--heads", "6"] if args.arch.startswith("vit") else ["--stem", args.stem]
        jem(args.jem, "import", "--from", path("source.pth"), "--arch", args.arch, "--out", path("run"), *extra)
        jem(args.jem, "export", "features", "--checkpoint", path("run"), "--input", path("input.safetensors"), "--out", path("f"))
        ours = np.load(path("f/input_features.npy"))
        compare(f"{args.arch} torch -> jem", ours, expected)

        jem(args.jem, "export", "torch", "--checkpoint", path("run"), "--out", path("export.safetensors"))
        target = model(args.arch, args.stem)
        target.load_state_dict(load_file(path("export.safetensors")), strict=True)
        with torch.no_grad():
            exported = target.eval()(x).numpy()
        compare(f"{args.arch} jem -> torch", exported, ours)


if __name__ == "__main__":
    main()
