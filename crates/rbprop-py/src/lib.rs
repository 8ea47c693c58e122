//! `rbprop._rbprop`: the Python face of rbp's engine. The classes and functions here are thin:
//! settings go through the same [`TrainConfig`] as the command line's flags, training through the
//! same [`Trainer`](rbprop::train::Trainer) and run directory, so a seed gives the same numbers
//! from Python and from `rbp`. The Python package (`python/rbprop`) adds the pandas views.

mod convert;
mod functions;
mod net;

use pyo3::create_exception;
use pyo3::exceptions::{PyArithmeticError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use rbprop::Error;

create_exception!(
    _rbprop,
    DivergedError,
    PyArithmeticError,
    "Training diverged: the loss became NaN or infinite (the finished epochs are kept)."
);

/// The Python exception for an engine error: file problems are `OSError`, settings
/// `ValueError`, a divergence `DivergedError`, an interruption `KeyboardInterrupt`; the message
/// is the command line's.
pub(crate) fn py_err(e: Error) -> PyErr {
    let text = rbprop::error::bounded(&e.to_string());
    match e {
        Error::Io { .. } | Error::Data { .. } | Error::Locked { .. } => PyOSError::new_err(text),
        Error::Config { .. } => PyValueError::new_err(text),
        Error::Diverged { .. } => DivergedError::new_err(text),
        Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(text),
        Error::Integration { .. } => PyArithmeticError::new_err(text),
    }
}

#[pymodule]
fn _rbprop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DivergedError", m.py().get_type::<DivergedError>())?;
    m.add_class::<net::Net>()?;
    m.add_class::<net::FitIter>()?;
    m.add_function(pyo3::wrap_pyfunction!(net::fit_together, m)?)?;
    m.add_function(pyo3::wrap_pyfunction!(net::_restore, m)?)?;
    functions::register(m)?;
    Ok(())
}
