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

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
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
