#!/usr/bin/env bash
# Builds `jem` with burn's CUDA backend, on any Debian 12 x86-64 machine (no GPU, no CUDA toolkit,
# nothing downloaded but Debian and crates.io packages), and with `--pack` packs it for a GPU
# machine (bench/gpu.sh runs it there).
#
#   bash bench/build-cuda.sh           # target/release/jem with --device cuda
#   bash bench/build-cuda.sh --pack    # also the GPU tests, both stripped, in .gpu/binaries.tar.xz
#
# Why this script: CubeCL's CUDA runtime (cubecl-cuda 0.11) depends, without a feature to leave
# it out, on cubecl-llvm, whose build script (tracel-llvm-bundler) downloads a prebuilt LLVM
# from GitHub. The bundler skips the download when its cache folder is already filled, so this
# script fills it with Debian's LLVM 22 (llvm-22-dev, libpolly-22-dev, libzstd-dev). jem switches cubecl-cuda's
# `cpp` feature on (native/Cargo.toml), so kernels are compiled by the driver's NVRTC and LLVM
# only has to link. cudarc loads NVIDIA's libraries at run time; CUDARC_CUDA_VERSION picks the
# API version its bindings expect (default 13000 = CUDA 13.0; 12080 for a CUDA 12.8 driver).
set -euo pipefail
cd "$(dirname "$0")/.."

llvm=/usr/lib/llvm-22
if [ ! -e "$llvm/lib/libPolly.a" ] || [ ! -e /usr/lib/x86_64-linux-gnu/libzstd.so ]; then
  echo "installing Debian's LLVM 22 (llvm-22-dev, libpolly-22-dev, libzstd-dev)"
  apt-get update -qq
  apt-get install -y -qq llvm-22-dev libpolly-22-dev libzstd-dev >/dev/null
fi

# The bundler's cache: $XDG_DATA_HOME/tracel/tracel-llvm-<its version>, marked as installed.
bundler=$(grep -A1 '^name = "tracel-llvm-bundler"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
data="$PWD/target/llvm-for-cuda"
prefix="$data/tracel/tracel-llvm-$bundler"
[ -L "$prefix/bin" ] && rm "$prefix/bin"
mkdir -p "$prefix/bin"
for dir in lib include; do ln -sfn "$llvm/$dir" "$prefix/$dir"; done
# Debian's llvm-config names some system libraries by path (/usr/lib/…/libz3.so), which the
# bundler would turn into `-llibz3`: name them `-lz3` instead.
cat >"$prefix/bin/llvm-config" <<EOF
#!/bin/sh
$llvm/bin/llvm-config "\$@" | sed 's#/[^ ]*/lib\([A-Za-z0-9_+-]*\)\.so#-l\1#g'
EOF
chmod +x "$prefix/bin/llvm-config"
# Touched only once: the bundler rebuilds (and CubeCL with it) when this file changes.
[ -e "$prefix/.tracel-llvm-installed" ] || touch "$prefix/.tracel-llvm-installed"
export XDG_DATA_HOME="$data" CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"

cargo build --release -p jem --features cuda
echo "built target/release/jem with the CUDA backend (CUDA API $CUDARC_CUDA_VERSION)"
[ "${1:-}" = "--pack" ] || exit 0

tests=$(cargo test --release -p jem --features cuda --test gpu --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')
rm -rf .gpu target/gpu-pack
mkdir -p .gpu target/gpu-pack
objcopy --strip-all target/release/jem target/gpu-pack/jem
objcopy --strip-all "$tests" target/gpu-pack/gpu-test
# One archive with a dictionary larger than either binary: they share most of their code, so
# the pair packs to about 38 MB (as two .xz files, 62 MB).
tar -C target/gpu-pack -cf - jem gpu-test | xz --lzma2=preset=9e,dict=320MiB -T1 >.gpu/binaries.tar.xz
# The tests read recipes and run jem from the checkout they were compiled in: gpu.sh puts the
# checkout there.
pwd >.gpu/root
ls -l .gpu
