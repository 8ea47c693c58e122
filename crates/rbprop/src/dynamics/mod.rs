//! # The theory, executable (paper §3; section 7 of the paper)
//!
//! The expected learning dynamics of BP, RBP and SRBP in small linear and non-linear networks as
//! ODE systems ([`systems`]), integrated by fixed-step RK4, adaptive Dormand-Prince or, once
//! the system turns stiff, an implicit Rosenbrock method ([`integrate`]), with the fixed point predicted from the conserved quantities ([`predict`],
//! using the real-root solver of [`poly`]), the stochastic per-example rule to compare with
//! ([`sgd`]), and the vector-field figure ([`field`]).

pub mod field;
pub mod integrate;
pub mod poly;
pub mod predict;
pub mod sgd;
pub mod systems;
