//! Choosing the compute device: `--device cpu|wgpu|cuda`, and for data-parallel training
//! `--devices` (which of that backend's devices).

use anyhow::{Result, bail};
use burn::tensor::{Device, DeviceKind};

/// The device named on the command line (without autodiff).
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::flex()),
        "wgpu" => wgpu(DeviceKind::DefaultDevice),
        "cuda" => cuda(0),
        other => bail!("unknown --device '{other}'; choose cpu, wgpu or cuda"),
    }
}

/// The devices of `--devices` (a comma-separated list) on backend `name`: CUDA ordinals
/// (`0,1,2,3`); for wgpu the index of a discrete GPU, `default` (wgpu's choice) or `cpu` (a
/// software adapter such as Mesa's lavapipe, a device of its own beside `default`).
pub fn parse_list(name: &str, list: &str) -> Result<Vec<Device>> {
    let devices = list
        .split(',')
        .map(|item| {
            let item = item.trim();
            let index = || item.parse::<usize>().map_err(|_| anyhow::anyhow!("--devices: '{item}' is not a device number"));
            match name {
                "cuda" => cuda(index()?),
                "wgpu" => wgpu(match item {
                    "default" => DeviceKind::DefaultDevice,
                    "cpu" => DeviceKind::Cpu,
                    _ => DeviceKind::DiscreteGpu(index()?),
                }),
                "cpu" => bail!("--devices splits batches over GPUs: use it with --device wgpu or --device cuda"),
                other => bail!("unknown --device '{other}'; choose cpu, wgpu or cuda"),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    for (i, device) in devices.iter().enumerate() {
        anyhow::ensure!(!devices[..i].contains(device), "--devices {list}: a device is listed twice");
    }
    Ok(devices)
}

#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
fn not_compiled(name: &str) -> anyhow::Error {
    let build = match name {
        "cuda" => "bash bench/build-cuda.sh".to_string(),
        _ => format!("cargo build --release -p jem --features {name}"),
    };
    anyhow::anyhow!("--device {name}: this jem was built without the '{name}' backend; rebuild it with `{build}`")
}

/// `device`, once it has run a kernel: a missing GPU or driver makes burn panic at the first
/// operation, deep inside the training loop; here that becomes `missing`, a message saying why.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn working(device: Device, missing: impl FnOnce() -> String) -> Result<Device> {
    let probe = device.clone();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let works =
        std::panic::catch_unwind(move || burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &probe).sum().into_scalar::<f32>() == 3.0);
    std::panic::set_hook(report);
    match works {
        Ok(true) => Ok(device),
        _ => bail!(missing()),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu(kind: DeviceKind) -> Result<Device> {
    let name = match kind {
        DeviceKind::Cpu => " (the software adapter)".to_string(),
        DeviceKind::DiscreteGpu(index) => format!(" (discrete GPU {index})"),
        _ => String::new(),
    };
    working(Device::wgpu(kind), || {
        format!(
            "--device wgpu{name}: no such GPU adapter works here (wgpu needs Vulkan, Metal, DX12 or OpenGL); \
             on Linux without a GPU, Mesa's software Vulkan driver runs it slowly (Debian: apt-get install mesa-vulkan-drivers)"
        )
    })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_: DeviceKind) -> Result<Device> {
    Err(not_compiled("wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    working(Device::cuda(index), || {
        format!("--device cuda: CUDA device {index} does not work here (it needs an NVIDIA GPU, its driver and NVRTC)")
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: usize) -> Result<Device> {
    Err(not_compiled("cuda"))
}
