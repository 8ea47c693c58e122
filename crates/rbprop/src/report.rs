//! What the text reports of [`crate::dynamics::report`] and [`crate::complexity`] share: their
//! error type and the line writer.
//!
//! A report is written line by line to a `&mut dyn Write` as it is computed, so that whatever
//! was found before a failure (an integration that blew up, a channel that cannot be built) is
//! shown before the error.

use crate::error::Error;
use std::io::Write;

/// Why a report stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An error of the library: an invalid value (its display names the option), an unreadable
    /// file, an integration that did not finish, a figure that could not be written. Writing
    /// the report itself fails as [`Error::Io`] on `<output>`.
    #[error(transparent)]
    Core(#[from] Error),
    /// An invalid or inconsistent option, or bad sample data; the message is complete (it names
    /// the option or the file).
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with [`ReportError`].
pub type ReportResult<T> = std::result::Result<T, ReportError>;

/// `Err(ReportError::Invalid(message))` unless `ok`.
pub(crate) fn ensure(ok: bool, message: impl FnOnce() -> String) -> ReportResult<()> {
    if ok {
        Ok(())
    } else {
        Err(ReportError::Invalid(message()))
    }
}

/// Writes `text` and a newline to `out` in one write (one line is never split).
pub(crate) fn line(out: &mut dyn Write, text: std::fmt::Arguments) -> ReportResult<()> {
    out.write_all(format!("{text}\n").as_bytes())
        .map_err(|e| Error::io("<output>", e).into())
}

/// `writeln!` through [`line`]: `outln!(out, "x = {x}")?`.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => { $crate::report::line($out, format_args!($($arg)*)) };
}
pub(crate) use outln;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_written_whole_and_an_invalid_option_displays_its_message() {
        let mut out = Vec::new();
        outln!(&mut out, "a = {}", 1.5).unwrap();
        outln!(&mut out, "").unwrap();
        assert_eq!(out, b"a = 1.5\n\n");
        let e = ensure(false, || "--n must be \u{2265} 1".into()).unwrap_err();
        assert_eq!(e.to_string(), "--n must be ≥ 1");
        let e: ReportError = Error::config("--c", "must be ≠ 0").into();
        assert_eq!(e.to_string(), "invalid value for `--c`: must be ≠ 0");
    }
}
