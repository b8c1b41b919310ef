//! Projector / expander and predictor MLPs: hidden layers `Linear → BatchNorm → ReLU`, a final
//! `Linear`, optionally followed by a BatchNorm (SimSiam's projector ends in a non-affine one).

use crate::config::ConfigError;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::train::precision::at_edges;

/// BatchNorm over `[N, D]`, in f32 when `x` is in a half type (its statistics need the range).
fn batch_norm(norm: &BatchNorm, x: Tensor<2>) -> Tensor<2> {
    match jem_kernels::norm::half(&x) {
        Some(dtype) => jem_kernels::norm::in_f32(norm).forward(x.cast(burn::tensor::DType::F32)).cast(dtype),
        None => norm.forward(x),
    }
}

/// Normalisation after the last layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastNorm {
    #[default]
    None,
    /// BatchNorm with learned scale and shift.
    Affine,
    /// BatchNorm without affine parameters (pure standardisation).
    NonAffine,
}

/// Layer widths after the input: `[hidden…, output]`, e.g. SimCLR's `[512, 128]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    pub dims: Vec<usize>,
    #[serde(default)]
    pub last_norm: LastNorm,
}

impl MlpConfig {
    pub fn new(dims: &[usize]) -> Self {
        Self { dims: dims.to_vec(), last_norm: LastNorm::None }
    }

    pub fn with_last_norm(mut self, last_norm: LastNorm) -> Self {
        self.last_norm = last_norm;
        self
    }

    /// Layers and widths that can be built: at least one layer, none empty.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.dims.is_empty() || self.dims.contains(&0) {
            return Err(ConfigError::Value(format!(
                "method.{name}.dims = {:?}: needs at least one layer, each at least 1 wide",
                self.dims
            )));
        }
        Ok(())
    }

    pub fn output_dim(&self) -> usize {
        *self.dims.last().expect("an MLP has at least one layer")
    }

    pub fn init(&self, input: usize, device: &Device) -> Mlp {
        assert!(!self.dims.is_empty(), "an MLP needs at least one layer");
        let mut widths = vec![input];
        widths.extend(&self.dims);
        let hidden = widths.len() - 2;
        // Hidden layers feed a BatchNorm, so their bias would be cancelled: leave it out.
        let layers =
            widths.windows(2).enumerate().map(|(i, w)| LinearConfig::new(w[0], w[1]).with_bias(i == hidden).init(device)).collect();
        let norms = widths[1..=hidden].iter().map(|&w| BatchNormConfig::new(w).init(device)).collect();
        let last_norm = match self.last_norm {
            LastNorm::None => None,
            LastNorm::Affine => Some(BatchNormConfig::new(self.output_dim()).init(device)),
            LastNorm::NonAffine => {
                let mut bn = BatchNormConfig::new(self.output_dim()).init(device);
                bn.gamma = bn.gamma.set_require_grad(false);
                bn.beta = bn.beta.set_require_grad(false);
                Some(bn)
            }
        };
        Mlp { layers, norms, last_norm }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    norms: Vec<BatchNorm>,
    last_norm: Option<BatchNorm>,
}

impl Mlp {
    /// `[N, in] → [N, out]`, in the parameters' type inside and f32 out (see
    /// [`crate::train::precision`]).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        at_edges(self, x, |mut x| {
            for (layer, norm) in self.layers.iter().zip(&self.norms) {
                x = relu(batch_norm(norm, layer.forward(x)));
            }
            x = self.layers.last().expect("at least one layer").forward(x);
            match &self.last_norm {
                Some(norm) => batch_norm(norm, x),
                None => x,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_parameter_counts() {
        let device = Device::flex().autodiff();
        // 128 → 512 (no bias) → BN(512) → 128 (bias): 128·512 + 2·512 + 512·128 + 128, plus the
        // BatchNorm's running mean and variance (2·512), which burn counts too.
        let mlp = MlpConfig::new(&[512, 128]).init(128, &device);
        assert_eq!(mlp.num_params(), 128 * 512 + 2 * 512 + 512 * 128 + 128 + 2 * 512);
        assert_eq!(mlp.forward(Tensor::ones([4, 128], &device)).dims(), [4, 128]);
    }

    #[test]
    fn non_affine_last_norm_standardises_and_is_not_trained() {
        let device = Device::flex().autodiff();
        let mlp = MlpConfig::new(&[8]).with_last_norm(LastNorm::NonAffine).init(4, &device);
        let x = Tensor::<2>::random([16, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let y = mlp.forward(x);
        let mean: Vec<f32> = y.clone().mean_dim(0).into_data().try_to_vec().unwrap();
        let var: Vec<f32> = y.clone().var_bias(0).into_data().try_to_vec().unwrap();
        assert!(mean.iter().all(|m| m.abs() < 1e-4) && var.iter().all(|v| (v - 1.0).abs() < 1e-2), "{mean:?} {var:?}");
        let grads = y.sum().backward();
        let norm = mlp.last_norm.as_ref().unwrap();
        assert!(norm.gamma.val().grad(&grads).is_none() && norm.beta.val().grad(&grads).is_none());
    }
}
