#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU, its driver, and Python with PyTorch and
# torchvision; no Rust toolchain needed. Build and pack jem beforehand on any machine:
#
#   bash bench/build-cuda.sh --pack     # here: .gpu/binaries.tar.xz (jem, the GPU tests) and .gpu/root
#   bash bench/gpu.sh                   # there, in a copy of the checkout with .gpu/ in it
#
# 1. The GPU tests of tests/gpu.rs on CUDA (JEM_TEST_BACKEND=cuda): every shapes recipe, ResNet
#    and ViT, two steps on CUDA against the CPU; evaluation; an f16 step against f32; with two
#    GPUs, the data-parallel step and its resume. Then `jem pretrain --device cuda` on shapes.
# 2. The SimCLR training step, jem (`jem bench train --device cuda`) beside PyTorch eager
#    (bench/torch_gpu_step.py): ResNet-18 (CIFAR stem, width 64, 32 px, batch 256) and ResNet-50
#    (ImageNet stem, 224 px, batch 64), in f32 and bf16. One table at the end.
#
# Logs and JSON lines go to $OUT (when set) or test-output/gpu/. Within 8 minutes: the tests get
# 150 s, the pretraining run 60 s, each jem step 45 s (kernels compile and autotune during its
# warm-up steps), each PyTorch step 20 s (7.8 minutes at most).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-test-output/gpu}"
mkdir -p "$out" target/release
[ -f .gpu/root ] || { echo "no .gpu/: run bash bench/build-cuda.sh --pack first (on any machine)"; exit 2; }
python3 -c 'import tarfile; tarfile.open(".gpu/binaries.tar.xz").extractall("target")'
mv target/jem target/release/jem && chmod +x target/release/jem target/gpu-test
# The tests were compiled in another checkout and find recipes and jem there: link it here.
root=$(cat .gpu/root)
if [ "$root" != "$PWD" ] && [ ! -e "$root" ]; then
  mkdir -p "$(dirname "$root")" && ln -s "$PWD" "$root"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

echo "== GPU tests on CUDA"
start=$SECONDS
JEM_TEST_BACKEND=cuda timeout 150 target/gpu-test --test-threads=1 --nocapture 2>&1 | tee "$out/gpu-test.log"
tests=${PIPESTATUS[0]}
echo "GPU tests: exit $tests in $((SECONDS - start)) s"

echo "== jem pretrain on CUDA: VICReg on 2,048 shapes, kNN before and after"
rm -rf target/gpu-run
timeout 60 target/release/jem pretrain --device cuda --recipe recipes/browser/vicreg.toml --limit 2048 \
  --out target/gpu-run --quiet 2>&1 | tee "$out/pretrain.txt"

echo "== SimCLR step, jem and PyTorch"
: >"$out/steps.jsonl"
for config in "resnet18 32 256 cifar" "resnet50 224 64 imagenet"; do
  read -r model size batch stem <<<"$config"
  for precision in f32 bf16; do
    timeout 45 target/release/jem bench train --device cuda --method simclr --model "$model" --stem "$stem" \
      --size "$size" --batch "$batch" --precision "$precision" --steps 10 --json | tee -a "$out/steps.jsonl"
    timeout 20 python3 bench/torch_gpu_step.py --model "$model" --size "$size" --batch "$batch" \
      --precision "$precision" --steps 10 | tee -a "$out/steps.jsonl"
  done
done

python3 - "$out/steps.jsonl" "$tests" "$out/pretrain.txt" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
def find(impl, model, precision):
    return next((r for r in runs if r["impl"] == impl and r["model"] == model and r["precision"] == precision), None)
print(f"\nGPU tests (tests/gpu.rs on CUDA): {'passed' if sys.argv[2] == '0' else 'FAILED, exit ' + sys.argv[2]}")
knn = [line for line in open(sys.argv[3]) if "→ trained" in line]
print("jem pretrain --device cuda:", knn[-1].strip() if knn else "no kNN result (see pretrain.txt)")
print("\n| step | precision | jem ms | jem img/s | PyTorch ms | PyTorch img/s | jem / PyTorch time |")
print("|---|---|---|---|---|---|---|")
for model, what in [("resnet18", "SimCLR, ResNet-18 CIFAR, 32 px, batch 256"), ("resnet50", "SimCLR, ResNet-50, 224 px, batch 64")]:
    for precision in ["f32", "bf16"]:
        j, t = find("jem", model, precision), find("pytorch", model, precision)
        cell = lambda r, key, scale=1: f"{r[key] * scale:.1f}" if r else "failed"
        ratio = f"{j['step_s_median'] / t['step_s_median']:.2f}×" if j and t else "–"
        print(f"| {what} | {precision} | {cell(j, 'step_s_median', 1e3)} | {cell(j, 'images_per_s')} | {cell(t, 'step_s_median', 1e3)} | {cell(t, 'images_per_s')} | {ratio} |")
PY
exit "$tests"
