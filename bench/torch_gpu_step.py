#!/usr/bin/env python3
"""PyTorch eager reference for jem's GPU SimCLR step (`jem bench train --method simclr`).

The same step as jem's: both views through the backbone one after the other, jem's default
SimCLR projector (Linear → BatchNorm → ReLU → Linear to 128), NT-Xent at temperature 0.2 over
the 2B embeddings, SGD (lr 0.01, momentum 0.9), random normal views. Backbones: torchvision's
ResNet-18 with the CIFAR stem (3×3/1 convolution, no max-pool) on 32-px views, or ResNet-50 with
the ImageNet stem on 224-px views. Precision: f32 (TF32 matmuls off, as jem's f32) or bf16
(torch.autocast; f32 weights, as jem's `train.precision = "bf16"`).

Prints one JSON line per run: the median step time over the timed steps (each ends with a
device synchronisation) and images/s.

Usage: python3 bench/torch_gpu_step.py --model resnet18 --size 32 --batch 256 --precision bf16
"""
import argparse, json, statistics, time

import torch, torch.nn as nn, torch.nn.functional as F, torchvision

p = argparse.ArgumentParser()
p.add_argument("--model", choices=["resnet18", "resnet50"], default="resnet18")
p.add_argument("--size", type=int, default=32)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
p.add_argument("--steps", type=int, default=10)
p.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
a = p.parse_args()
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
device = torch.device(a.device)
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

backbone = getattr(torchvision.models, a.model)()
if a.size <= 64:
    backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    backbone.maxpool = nn.Identity()
features = backbone.fc.in_features
backbone.fc = nn.Identity()
projector = nn.Sequential(nn.Linear(features, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
net = nn.Sequential(backbone, projector).to(device)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
views = [torch.randn(a.batch, 3, a.size, a.size, device=device) for _ in range(2)]


def nt_xent(z1, z2, temperature=0.2):
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    n = z1.shape[0]
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def step():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
        loss = nt_xent(net(views[0]), net(views[1]))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


times = []
for it in range(a.steps + 3):
    sync()
    t = time.perf_counter()
    loss = step()
    sync()
    if it >= 3:
        times.append(time.perf_counter() - t)
assert torch.isfinite(loss), f"the loss is {loss.item()}"
med = statistics.median(times)
print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "model": a.model,
                  "size": a.size, "batch": a.batch, "precision": a.precision, "step_s_median": round(med, 5),
                  "images_per_s": round(a.batch / med, 1)}))
