//! Choosing the compute device: `--device cpu|wgpu|cuda`.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The device named on the command line (without autodiff).
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::flex()),
        "wgpu" => wgpu(),
        "cuda" => cuda(),
        other => bail!("unknown --device '{other}'; choose cpu, wgpu or cuda"),
    }
}

fn not_compiled(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--device {name}: this jem was built without the '{name}' backend; rebuild with `cargo build --release -p jem --features {name}`"
    )
}

/// burn's wgpu device, once it has run a kernel: without any adapter wgpu panics at the first
/// operation, deep inside the training loop; here that becomes a message saying what to install.
#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device> {
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    let probe = device.clone();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let works =
        std::panic::catch_unwind(move || burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &probe).sum().into_scalar::<f32>() == 3.0);
    std::panic::set_hook(report);
    match works {
        Ok(true) => Ok(device),
        _ => bail!(
            "--device wgpu: no GPU adapter works here (wgpu needs Vulkan, Metal, DX12 or OpenGL); \
             on Linux without a GPU, Mesa's software Vulkan driver runs it slowly (Debian: apt-get install mesa-vulkan-drivers)"
        ),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device> {
    Err(not_compiled("wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(not_compiled("cuda"))
}
