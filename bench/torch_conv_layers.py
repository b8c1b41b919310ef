#!/usr/bin/env python3
"""PyTorch CPU reference for `jem bench conv`: forward and forward + backward time of each of
ResNet-18's convolution shapes (CIFAR stem), medians of 5 runs after 2 warm-up runs, 2 threads.

Usage: python3 bench/torch_conv_layers.py WIDTH BATCH   (e.g. 64 64; setup: bash bench/setup-torch.sh)
"""
import sys, time, torch

torch.set_num_threads(2)
W, B = int(sys.argv[1]), int(sys.argv[2])
# (c_in, c_out, kernel, stride, input size, layers of this shape), as `jem bench conv` lists them
shapes = [(3, W, 3, 1, 32, 1), (W, W, 3, 1, 32, 4), (W, 2*W, 3, 2, 32, 1), (2*W, 2*W, 3, 1, 16, 3),
          (W, 2*W, 1, 2, 32, 1), (2*W, 4*W, 3, 2, 16, 1), (4*W, 4*W, 3, 1, 8, 3), (2*W, 4*W, 1, 2, 16, 1),
          (4*W, 8*W, 3, 2, 8, 1), (8*W, 8*W, 3, 1, 4, 3), (4*W, 8*W, 1, 2, 8, 1)]
for c_in, c_out, k, s, size, n in shapes:
    conv = torch.nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
    x = torch.randn(B, c_in, size, size, requires_grad=c_in != 3)

    def forward():
        with torch.no_grad():
            conv(x)

    def forward_backward():
        y = conv(x)
        y.backward(torch.ones_like(y))

    medians = []
    for f in (forward, forward_backward):
        f(); f()  # warm-up
        runs = []
        for _ in range(5):
            t = time.perf_counter(); f(); runs.append(time.perf_counter() - t)
        medians.append(sorted(runs)[2] * 1e3)
    print(f"{c_in:5} {c_out:5} {k} {s} {size:3} {n}  fwd {medians[0]:7.1f} ms  fwd+bwd {medians[1]:7.1f} ms")
