"""Writes tests/fixtures/torch/: small PyTorch checkpoints in the layouts people publish, each with
an input and the features PyTorch computes for it, so that jem's import tests run without PyTorch.

  .torch-venv/bin/pip install timm safetensors   # after setup-torch.sh
  .torch-venv/bin/python bench/make_torch_fixtures.py

Models are reduced in width (the key names and layouts are the full models'): torchvision's own
BasicBlock and Bottleneck classes under torchvision's module names, and timm's VisionTransformer
(DINO's checkpoints use the same names). BatchNorm running statistics and affine parameters are
drawn at random so that an import that drops them fails. Every model is in eval mode.
"""

import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, Bottleneck

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/torch"


class ResNet(nn.Module):
    """torchvision.models.ResNet with a width multiplier (torchvision fixes 64) and the CIFAR stem
    as people build it: conv1 3×3 stride 1, maxpool = Identity."""

    def __init__(self, block, layers, width, stem):
        super().__init__()
        self.inplanes = width
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, 10)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def randomise_batch_norms(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(7)


def save_io(name, x, features):
    save_file({"input": x.contiguous(), "features": features.contiguous()}, os.path.join(OUT, f"{name}.io.safetensors"))
    print(f"{name}: features {tuple(features.shape)}")


def resnet(name, block, layers, width, stem, size):
    model = ResNet(block, layers, width, stem)
    randomise_batch_norms(model)
    model.eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        features = model.features(x)
    save_io(name, x, features)
    return model


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    r18 = resnet("resnet18_imagenet", BasicBlock, [2, 2, 2, 2], 4, "imagenet", 32)
    torch.save(r18.state_dict(), os.path.join(OUT, "resnet18_imagenet.pth"))
    r50 = resnet("resnet50_imagenet", Bottleneck, [3, 4, 6, 3], 2, "imagenet", 32)
    torch.save(r50.state_dict(), os.path.join(OUT, "resnet50_imagenet.pth"))
    cifar = resnet("resnet18_cifar", BasicBlock, [2, 2, 2, 2], 4, "cifar", 32)
    torch.save(cifar.state_dict(), os.path.join(OUT, "resnet18_cifar.pth"))

    # solo-learn's Lightning checkpoint: the model's state dict under "state_dict", the online
    # backbone under "backbone.", its momentum copy (different weights) and heads beside it.
    online = resnet("solo_learn", BasicBlock, [2, 2, 2, 2], 4, "cifar", 32)
    momentum = ResNet(BasicBlock, [2, 2, 2, 2], 4, "cifar")
    state = {f"backbone.{k}": v for k, v in online.state_dict().items() if not k.startswith("fc.")}
    state.update({f"momentum_backbone.{k}": v for k, v in momentum.state_dict().items() if not k.startswith("fc.")})
    state["projector.0.weight"] = torch.randn(16, 32)
    state["projector.0.bias"] = torch.zeros(16)
    checkpoint = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                  "hyper_parameters": {"method": "byol", "lr": 0.4}}
    torch.save(checkpoint, os.path.join(OUT, "solo_learn.ckpt"))

    # DINO's ViT (timm's names): 32×32 images, 8×8 patches, width 24, 2 blocks, 2 heads.
    import timm

    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=24, depth=2, num_heads=2, num_classes=0, qkv_bias=True)
    vit.eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(0.05 * torch.randn_like(p))  # timm zero-initialises the biases; DINO's are trained
        x = torch.rand(2, 3, 32, 32)
        features = vit(x)
    save_io("dino_vit", x, features)
    torch.save(vit.state_dict(), os.path.join(OUT, "dino_vit.pth"))
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, os.path.join(OUT, "dino_vit.safetensors"))


if __name__ == "__main__":
    main()
