//! Inference batch norm with PyTorch's parameter names (`weight`, `bias`, `running_mean`,
//! `running_var`), shared by the ImageNet extractors.

use lantern_models::burn::module::Param;
use lantern_models::burn::prelude::*;

/// Inference batch norm with ε = 1e-3 (the TensorFlow-trained networks' value).
#[derive(Module, Debug)]
pub struct Bn {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    running_mean: Param<Tensor<1>>,
    running_var: Param<Tensor<1>>,
}

impl Bn {
    /// Identity statistics for `c` channels (a checkpoint replaces them).
    pub fn new(c: usize, device: &Device) -> Self {
        let p = |v: f32| Param::from_tensor(Tensor::<1>::ones([c], device) * v);
        Self {
            weight: p(1.0),
            bias: p(0.0),
            running_mean: p(0.0),
            running_var: p(1.0),
        }
    }

    /// `[B, C, H, W]` normalised with the running statistics (ε = 1e-3).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.weight.dims()[0];
        let scale = self.weight.val() / (self.running_var.val() + 1e-3).sqrt();
        let shift = self.bias.val() - self.running_mean.val() * scale.clone();
        x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
    }
}
