//! # rbprop — random backpropagation and the deep learning channel
//!
//! Everything around the learning channels of [`rbprop_core`] (re-exported here, so
//! `rbprop::channel`, `rbprop::model`, `rbprop::train` … are the core's modules):
//! - [`data`] — dataset files: the MNIST-family IDX reader, CIFAR-10, the embedded
//!   Fashion-MNIST subset, verified downloads;
//! - [`config`] — validated run settings; [`run`] — a run directory and its result files;
//!   [`checkpoint`] — resumable state;
//! - [`experiment`] — grids of runs, reading results back, tables, figures, exports, clusters;
//! - [`dynamics`] and [`complexity`] — the theory of paper §3 and §4 made executable;
//! - [`plot`] — figures; [`report`] — what the text reports of [`dynamics`] and [`complexity`]
//!   share.

pub use rbprop_core::{
    Error, Result, backend, channel, error, kernels, model, quantize, rng, train,
};

pub mod checkpoint;
pub mod complexity;
pub mod config;
pub mod data;
pub mod dynamics;
pub mod experiment;
pub mod plot;
pub mod report;
pub mod run;
