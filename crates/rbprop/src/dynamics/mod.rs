//! # The theory, executable (paper §3; section 7 of the paper)
//!
//! The expected learning dynamics of BP, RBP and SRBP in small linear and non-linear networks as
//! ODE systems ([`systems`]), integrated by fixed-step RK4, adaptive Dormand-Prince or, once
//! the system turns stiff, an implicit Rosenbrock method ([`integrate`]), with the fixed point predicted from the conserved quantities ([`predict`],
//! using the real-root solver of [`poly`]), the stochastic per-example rule to compare with
//! ([`sgd`]), and the vector-field figure ([`field`]).
//!
//! [`report`] puts these together as the reports of `rbp dynamics …`: options checked
//! ([`input`]), a system set up and integrated ([`solve`]), its end compared with the theory.

pub mod field;
pub mod input;
pub mod integrate;
pub mod poly;
pub mod predict;
pub mod report;
pub mod sgd;
pub mod solve;
pub mod systems;
