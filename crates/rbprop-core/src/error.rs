//! The crate's one error type. Every variant names what it is about (a file, a config key, a step)
//! and, where it helps, carries a `HINT` for the fix.

use std::path::PathBuf;

/// Everything that can go wrong in `rbp`, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the OS level.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        /// Not a `#[source]`: the message already holds it, and a chain would repeat it.
        cause: std::io::Error,
    },
    /// A data file exists but its content is not what its format promises.
    #[error("{}: {problem}\nHINT: {hint}", path.display())]
    Data {
        path: PathBuf,
        problem: String,
        hint: String,
    },
    /// A configuration value (CLI flag or config key) is invalid.
    #[error("invalid value for `{key}`: {problem}")]
    Config { key: String, problem: String },
    /// Another process holds the write lock of a run directory.
    #[error(
        "{}: another rbp process{} is writing this run directory\nHINT: wait for it to finish (or stop it) and run again; two writers would corrupt the run",
        path.display(),
        holder.map_or(String::new(), |p| format!(" (pid {p})"))
    )]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, update {step}: loss is {loss}\nHINT: lower the learning rate (--lr) or check the input scaling; metrics of finished epochs are kept"
    )]
    Diverged { epoch: usize, step: u64, loss: f64 },
    /// Training was stopped on request (Ctrl-C) between two updates.
    #[error(
        "training interrupted during epoch {epoch}, after update {step}\nHINT: the finished epochs are kept; run the same command again to continue"
    )]
    Interrupted { epoch: usize, step: u64 },
    /// A numerical integration (`rbp dynamics`) did not finish: its trajectory blew up, or its
    /// method could not reach the end time.
    #[error("{problem}\nHINT: {hint}")]
    Integration { problem: String, hint: String },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// `text` with every line longer than [`LINE_LIMIT`] characters cut to its first
/// [`LINE_KEEP`] and a note of how many were left out: an error that quotes a user's input (a
/// 10 MB key of a TOML file) stays readable and small.
pub fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let n = line.chars().count();
        if n > LINE_LIMIT {
            out.extend(line.chars().take(LINE_KEEP));
            out.push_str(&format!("… [{} more characters]", n - LINE_KEEP));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Lines of an error longer than this many characters are cut ([`bounded`]).
pub const LINE_LIMIT: usize = 1000;
/// How many characters of a cut line are kept.
pub const LINE_KEEP: usize = 300;

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_short_ones_kept() {
        assert_eq!(bounded("short\nlines"), "short\nlines");
        let key = "k".repeat(10_000_000);
        let text = format!("error: unknown key `{key}`\nHINT: check the spelling");
        let b = bounded(&text);
        assert!(b.len() < 400, "{}", b.len());
        assert!(b.contains("more characters]") && b.ends_with("HINT: check the spelling"));
        let exact = "é".repeat(LINE_LIMIT);
        assert_eq!(bounded(&exact), exact);
    }
}
