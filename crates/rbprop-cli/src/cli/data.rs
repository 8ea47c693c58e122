//! `rbp data fetch`: download and verify a dataset.

use super::sayln;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rbprop::data::fetch::{self, Fetched};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download cifar10, mnist or fashion-mnist into DIR, verify the publishers' MD5 checksums and
    /// unpack; files already present and correct are kept. A server that stalls for 30 s (or
    /// RBP_FETCH_TIMEOUT_SECS), trickles below 10 kB/s over such a window (RBP_FETCH_MIN_RATE,
    /// bytes/s), takes more than 2 hours for a file (RBP_FETCH_DEADLINE_SECS) or sends more than
    /// the official file's size is given up on; a DIR this command created is removed again if
    /// it fails.
    Fetch(FetchArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// cifar10, mnist or fashion-mnist.
    pub dataset: String,
    /// Target directory (then use it as `rbp train --data DIR`).
    pub dir: PathBuf,
    /// Download from this base URL instead of the official one.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Verify against these checksums instead (md5sum format: `MD5  NAME` per line).
    #[arg(long, value_name = "FILE")]
    pub checksums: Option<PathBuf>,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    let DataCommand::Fetch(a) = cmd;
    let mut src = fetch::source(&a.dataset)?;
    if let Some(m) = &a.mirror {
        src = src.with_mirror(m);
    }
    if let Some(c) = &a.checksums {
        src = src.with_checksums(c)?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let results = fetch::fetch(&src, &a.dir, |name, done, total| {
        bar.set_message(name.to_string());
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    for r in results {
        match r {
            Fetched::Downloaded(p) => sayln!("downloaded and verified {}", p.display()),
            Fetched::AlreadyPresent(p) => sayln!("already present and verified {}", p.display()),
        }
    }
    sayln!(
        "{} is ready: rbp train --data {}",
        src.dataset,
        a.dir.display()
    );
    Ok(())
}
