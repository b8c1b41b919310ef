#!/usr/bin/env bash
# CPU-mini benchmark (docs/benchmarks.md): pretrain each method on CIFAR-10's data_batch_1.bin
# (10,000 images), kNN on test_batch.bin, and print one table row per method.
#
#   bash bench/cpu-mini.sh [method ...]        # default: every ResNet recipe in recipes/cifar10/
#
# Needs JEM_DATA (the folder holding cifar10/cifar-10-batches-bin). Each two-view method takes
# about 30 minutes on 2 cores, multi-crop ones (SwAV, DINO) longer; the ViT recipes (data2vec, mae,
# dino_vit, moco_v3_vit) cost about 10× more per image and must be named. Run folders go to
# runs/cpu-mini/<method>.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${JEM_DATA:?set JEM_DATA to the data folder}/cifar10/cifar-10-batches-bin"
methods=("$@")
if [ ${#methods[@]} -eq 0 ]; then
  for recipe in $(grep -l '^arch = "resnet' recipes/cifar10/*.toml); do methods+=("$(basename "$recipe" .toml)"); done
fi
cargo build --release -p jem
for m in "${methods[@]}"; do
  out="runs/cpu-mini/$m"
  rm -rf "$out"
  ./target/release/jem pretrain --recipe "recipes/cifar10/$m.toml" --data "$data" --out "$out" --quiet
done
echo
echo "| method | kNN top-1 (random init) | kNN top-1 | training img/s | views per image | training time |"
echo "|---|---|---|---|---|---|"
for m in "${methods[@]}"; do
  python3 - "runs/cpu-mini/$m/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"| {s['method']} | {s['knn_top1_random_init']:.1f} % | {s['knn_top1']:.1f} % | {s['images_per_s']:.0f} | {s['views']} | {s['train_seconds']/60:.1f} min |")
PY
done
