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
    let text = match &e {
        // the key and the flags as Python's keyword arguments
        Error::Config { key, problem } => format!(
            "invalid value for `{}`: {}",
            key.trim_start_matches('-').replace('-', "_"),
            python_words(problem)
        ),
        _ => python_words(&e.to_string()),
    };
    let text = rbprop::error::bounded(&text);
    match e {
        Error::Io { .. } | Error::Data { .. } | Error::Locked { .. } => PyOSError::new_err(text),
        Error::Config { .. } => PyValueError::new_err(text),
        Error::Diverged { .. } => DivergedError::new_err(text),
        Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(text),
        Error::Integration { .. } => PyArithmeticError::new_err(text),
    }
}

/// The command line's words in a message as Python's: `--name VALUE` (a number) becomes
/// `name=VALUE`, `--overwrite` `overwrite=True`, any other `--name` the keyword `name`.
fn python_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        let (before, flag) = rest.split_at(at);
        let boundary = before
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || "(`'\"".contains(c));
        let name: String = flag[2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        out.push_str(before);
        if !boundary || name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push_str("--");
            rest = &flag[2..];
            continue;
        }
        let keyword = name.replace('-', "_");
        let after = &flag[2 + name.len()..];
        let value: String = after
            .strip_prefix(' ')
            .map(|v| {
                v.chars()
                    .take_while(|c| c.is_ascii_digit() || ".eE+-".contains(*c))
                    .collect()
            })
            .unwrap_or_default();
        let is_number = !value.is_empty()
            && value.parse::<f64>().is_ok()
            && after[1 + value.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
        if is_number {
            out.push_str(&format!("{keyword}={value}"));
            rest = &after[1 + value.len()..];
        } else if keyword == "overwrite" {
            out.push_str("overwrite=True");
            rest = after;
        } else {
            out.push_str(&keyword);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::python_words;

    #[test]
    fn flags_become_keyword_arguments() {
        assert_eq!(
            python_words("set --decay 0 --momentum 0 (got decay 0.000001, momentum 0.5)"),
            "set decay=0 momentum=0 (got decay 0.000001, momentum 0.5)"
        );
        assert_eq!(
            python_words("choose another --out, or pass --overwrite to start again"),
            "choose another out, or pass overwrite=True to start again"
        );
        assert_eq!(
            python_words("use --lr 1e-3 or --cpus-per-task"),
            "use lr=1e-3 or cpus_per_task"
        );
        assert_eq!(python_words("a--b -- c x--y"), "a--b -- c x--y");
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
