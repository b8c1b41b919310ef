#!/usr/bin/env python3
"""PyTorch CPU reference for training-step throughput, to compare jem against on the same machine.

Model: ResNet-18 with the CIFAR stem (3x3/1, no max-pool), base width W (64 = standard), a linear
head to 128, loss = mean of squares, SGD. Input: random [B, 3, 32, 32]. Prints one JSON line with
the median step time over the timed steps and images/s.

Usage: python3 bench/torch_train_step.py --batch 64 --width 64 --steps 6 --threads 2
Setup (once): bash bench/setup-torch.sh  (makes ./.torch-venv with torch from PyPI)
"""
import argparse, json, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=64)
p.add_argument("--width", type=int, default=64)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.sc = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o)) if st != 1 or i != o else nn.Identity()
    def forward(s, x):
        return F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + s.sc(x))

class Net(nn.Module):
    def __init__(s, w):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        layers, i = [], w
        for k, o in enumerate([w, 2 * w, 4 * w, 8 * w]):
            layers += [Block(i, o, 1 if k == 0 else 2), Block(o, o, 1)]; i = o
        s.layers = nn.Sequential(*layers); s.fc = nn.Linear(8 * w, 128)
    def forward(s, x):
        return s.fc(s.layers(s.stem(x)).mean((2, 3)))

net = Net(a.width); opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(a.batch, 3, 32, 32)
times = []
for it in range(a.steps + 2):
    t = time.perf_counter()
    loss = net(x).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
    if it >= 2: times.append(time.perf_counter() - t)
med = statistics.median(times)
print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": a.threads, "batch": a.batch,
                  "width": a.width, "step_s_median": round(med, 4), "images_per_s": round(a.batch / med, 1)}))
