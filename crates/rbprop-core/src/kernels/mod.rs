//! Pure math on slices: matrix products, activations, the softmax/cross-entropy loss.
//! Nothing here knows about layers, nets or learning channels.

pub mod activation;
pub mod conv;
pub mod direct;
pub mod loss;
pub mod matmul;
pub mod pool;
pub mod simd;

pub use activation::Activation;
pub use matmul::{Mat, gemm};
