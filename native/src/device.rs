//! Choosing the compute device: `--device cpu|wgpu|cuda`.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The device named on the command line (without autodiff).
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        "wgpu" | "cuda" => bail!(
            "--device {name}: this jem was built without the '{name}' backend; rebuild with `cargo build --release -p jem --features {name}`"
        ),
        other => bail!("unknown --device '{other}'; choose cpu, wgpu or cuda"),
    }
}
