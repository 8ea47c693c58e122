//! # rbp — random backpropagation and the deep learning channel
//!
//! Train layered nets with every learning channel of Baldi, Sadowski & Lu, "Learning in the
//! Machine: Random Backpropagation and the Deep Learning Channel" (Artificial Intelligence 260,
//! 2018): backpropagation (BP), random backpropagation (RBP, a.k.a. feedback alignment), skipped
//! random backpropagation (SRBP, a.k.a. direct feedback alignment), skipped BP, their
//! no-derivative versions and top-layer-only learning.
//!
//! Where things live (see `docs/architecture.md`):
//! - [`channel`] — **the learning channel**: how error reaches each hidden layer, and the registry
//!   of named algorithms;
//! - [`kernels`] — pure math on slices (GEMM, activations, softmax loss);
//! - [`model`] — dense layers and nets; [`train`] — the minibatch loop; [`run`] — a run with
//!   its result files; [`data`] — datasets; [`config`] — validated run settings.

pub mod channel;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dynamics;
pub mod error;
pub mod experiment;
pub mod kernels;
pub mod model;
pub mod plot;
pub mod rng;
pub mod run;
pub mod train;

pub use error::{Error, Result};
