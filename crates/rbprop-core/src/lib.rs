//! # rbprop-core — the learning channels, layers, nets and the trainer
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
//! - [`kernels`] — pure math on slices (GEMM, activations, softmax loss, conv, pooling);
//! - [`model`] — layers and nets; [`train`] — the minibatch loop; [`data`] — the in-memory
//!   dataset the trainer reads; [`rng`] — named seeded streams; [`error`] — the one error type.
//!
//! This crate has no command-line, network or plotting dependency: files, runs, experiments and
//! figures live in the `rbprop` crate, the `rbp` command in `rbprop-cli`.

pub mod backend;
pub mod channel;
pub mod data;
pub mod error;
pub mod kernels;
pub mod model;
pub mod quantize;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
