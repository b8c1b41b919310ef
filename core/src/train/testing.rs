//! Helpers of the training tests.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor};

/// Every trainable parameter's values (or gradients, empty where there is none) and types.
pub(crate) fn values<M: Module>(module: &M, grads: Option<&GradientsParams>) -> (Vec<f32>, Vec<DType>) {
    struct Collect<'a>(Option<&'a GradientsParams>, Vec<f32>, Vec<DType>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = match self.0 {
                // Trainable weights only: the clones share BatchNorm's running statistics.
                None => Some(param.val()).filter(|v| v.is_require_grad()).map(|v| v.inner()),
                Some(grads) => grads.get::<D>(param.id),
            };
            if let Some(value) = value {
                self.2.push(value.dtype());
                self.1.extend(value.cast(DType::F32).into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut collect = Collect(grads, Vec::new(), Vec::new());
    module.visit(&mut collect);
    (collect.1, collect.2)
}

/// `‖a − b‖ / ‖b‖`.
pub(crate) fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm).sqrt()
}
