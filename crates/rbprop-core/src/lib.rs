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
//!
//! One step of random backpropagation on a small net, on the CPU backend:
//!
//! ```
//! use rbprop_core::channel::{Channel, ChannelOptions, ChannelSpec};
//! use rbprop_core::kernels::Activation;
//! use rbprop_core::model::Net;
//! use rbprop_core::rng;
//! use rbprop_core::train::{Sgd, Trainer};
//!
//! let seed = 1;
//! let net = Net::new(&[4, 8, 8, 3], Activation::Tanh, &mut rng::stream(seed, "init"));
//! let spec = ChannelSpec::parse("rbp", false)?;
//! let channel = Channel::new(
//!     &spec,
//!     &ChannelOptions::default(),
//!     &net,
//!     &mut rng::stream(seed, "feedback"),
//!     rng::stream(seed, "channel-noise"),
//! )?;
//! let sgd = Sgd { lr: 0.1, decay: 0.0, momentum: 0.0, weight_decay: 0.0 };
//! // `Trainer<Cpu>`; another backend: `Trainer::<B>::new(net.to_backend(), channel.to_backend(), sgd)`
//! let mut trainer = Trainer::new(net, channel, sgd);
//! let x = [0.1, -0.2, 0.3, 0.5, 0.0, 0.4, -0.1, 0.2]; // two examples of 4 inputs
//! let loss = trainer.step(&x, &[0, 2]);
//! assert!(loss.loss_sum.is_finite());
//! # Ok::<(), rbprop_core::Error>(())
//! ```

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
