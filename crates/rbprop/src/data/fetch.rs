//! `rbp data fetch`: download a dataset's official files, verify their MD5 checksums, unpack.
//!
//! Checksums are the ones the publishers list (CIFAR-10: the dataset's page,
//! www.cs.toronto.edu/~kriz/cifar.html) or that the widely used torchvision loaders carry
//! (`torchvision.datasets.MNIST.resources`, `torchvision.datasets.FashionMNIST.resources`). A file
//! already present with the right checksum is not downloaded again; a download goes to
//! `NAME.part` and is renamed only once its checksum matches, so an interrupted or corrupt
//! download never looks like a finished one. `--mirror` and `--checksums` point the command at
//! another server (a mirror, or a local test server) with its own list of checksums.
//!
//! A server cannot make a download hang or fill the disk: connecting, waiting for the response
//! and every read of the body time out ([`Source::timeout`], 30 s unless `RBP_FETCH_TIMEOUT_SECS`
//! says otherwise); a server that keeps sending but too slowly is given up on too ([`Pace`]: a
//! download must average at least 10 kB/s over every window of that timeout and finish within
//! 2 hours, unless `RBP_FETCH_MIN_RATE` and `RBP_FETCH_DEADLINE_SECS` say otherwise); and a response larger than the official file ([`Resource::size`]) is refused,
//! whether its `Content-Length` announces it or its body runs on. On failure nothing half-done is
//! left: the partial `NAME.part` is removed, and so is the target directory (with everything in
//! it) if this fetch created it.

use crate::error::{Error, Result};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub md5: String,
    /// Size of the official file in bytes: the most a download of it may send.
    pub size: u64,
}

/// A dataset's download.
#[derive(Clone, Debug)]
pub struct Source {
    pub dataset: &'static str,
    pub base: String,
    pub files: Vec<Resource>,
    /// The files are `.tar.gz` archives to unpack into the target directory.
    pub unpack: bool,
    /// Longest wait to connect, for the response to start, and for each read of its body.
    pub timeout: Duration,
    /// The slowest a download may go, and the longest it may take.
    pub pace: Pace,
}

/// How slow a download may be: every window of [`Source::timeout`] must bring at least
/// `min_rate` bytes per second on average, and each file must arrive within `deadline`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Bytes per second, averaged over each window (0: no minimum).
    pub min_rate: f64,
    pub deadline: Duration,
}

/// The environment variable that overrides [`DEFAULT_PACE`]'s minimum rate (bytes per second).
pub const MIN_RATE_ENV: &str = "RBP_FETCH_MIN_RATE";
/// The environment variable that overrides [`DEFAULT_PACE`]'s deadline (seconds).
pub const DEADLINE_ENV: &str = "RBP_FETCH_DEADLINE_SECS";
/// 10 kB/s at least, 2 hours at most per file.
pub const DEFAULT_PACE: Pace = Pace {
    min_rate: 10_000.0,
    deadline: Duration::from_secs(2 * 3600),
};

/// [`DEFAULT_PACE`], with `RBP_FETCH_MIN_RATE` and `RBP_FETCH_DEADLINE_SECS` where they are set.
pub fn default_pace() -> Result<Pace> {
    let read = |key: &str, zero_ok: bool| -> Result<Option<f64>> {
        let Ok(v) = std::env::var(key) else {
            return Ok(None);
        };
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && (*x > 0.0 || (zero_ok && *x == 0.0)))
            .map(Some)
            .ok_or_else(|| {
                let what = if zero_ok {
                    "a number ≥ 0"
                } else {
                    "a positive number"
                };
                let shown: String = v.chars().take(40).collect();
                Error::config(key, format!("expected {what}, got `{shown}`"))
            })
    };
    let mut pace = DEFAULT_PACE;
    if let Some(r) = read(MIN_RATE_ENV, true)? {
        pace.min_rate = r;
    }
    if let Some(d) = read(DEADLINE_ENV, false)? {
        pace.deadline = Duration::try_from_secs_f64(d)
            .map_err(|_| Error::config(DEADLINE_ENV, "too many seconds"))?;
    }
    Ok(pace)
}

fn res(name: &str, md5: &str, size: u64) -> Resource {
    Resource {
        name: name.into(),
        md5: md5.into(),
        size,
    }
}

/// The environment variable that overrides [`DEFAULT_TIMEOUT`] (seconds, fractions allowed).
pub const TIMEOUT_ENV: &str = "RBP_FETCH_TIMEOUT_SECS";
/// How long a download waits for a connection, a response or the next bytes of the body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// [`DEFAULT_TIMEOUT`], or the number of seconds in `RBP_FETCH_TIMEOUT_SECS` if it is set.
pub fn default_timeout() -> Result<Duration> {
    let Ok(v) = std::env::var(TIMEOUT_ENV) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Error::config(
                TIMEOUT_ENV,
                format!("expected a positive number of seconds, got `{v}`"),
            )
        })
}

/// The official sources of `dataset` (`cifar10`, `mnist`, `fashion-mnist`), with the default
/// timeout.
pub fn source(dataset: &str) -> Result<Source> {
    let timeout = default_timeout()?;
    let pace = default_pace()?;
    Ok(match dataset {
        "cifar10" | "cifar-10" => Source {
            dataset: "cifar10",
            base: "https://www.cs.toronto.edu/~kriz/".into(),
            files: vec![res(
                "cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
                170_052_171,
            )],
            unpack: true,
            timeout,
            pace,
        },
        "mnist" => Source {
            dataset: "mnist",
            base: "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
            files: vec![
                res(
                    "train-images-idx3-ubyte.gz",
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    9_912_422,
                ),
                res(
                    "train-labels-idx1-ubyte.gz",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    28_881,
                ),
                res(
                    "t10k-images-idx3-ubyte.gz",
                    "9fb629c4189551a2d022fa330f9573f3",
                    1_648_877,
                ),
                res(
                    "t10k-labels-idx1-ubyte.gz",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                    4_542,
                ),
            ],
            unpack: false,
            timeout,
            pace,
        },
        "fashion-mnist" | "fashion" => Source {
            dataset: "fashion-mnist",
            base: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into(),
            files: vec![
                res(
                    "train-images-idx3-ubyte.gz",
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    26_421_880,
                ),
                res(
                    "train-labels-idx1-ubyte.gz",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    29_515,
                ),
                res(
                    "t10k-images-idx3-ubyte.gz",
                    "bef4ecab320f06d8554ea6380940ec79",
                    4_422_102,
                ),
                res(
                    "t10k-labels-idx1-ubyte.gz",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                    5_148,
                ),
            ],
            unpack: false,
            timeout,
            pace,
        },
        other => {
            return Err(Error::config(
                "dataset",
                format!("unknown dataset `{other}`; known: cifar10, mnist, fashion-mnist"),
            ));
        }
    })
}

impl Source {
    /// Points the download at `base` instead (a trailing `/` is added if missing).
    pub fn with_mirror(mut self, base: &str) -> Self {
        self.base = if base.ends_with('/') {
            base.into()
        } else {
            format!("{base}/")
        };
        self
    }

    /// Sets the timeout for connecting, for the response and for each read of its body.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the checksums by those of a file in `md5sum` format (`HASH  NAME` per line); every
    /// file of the dataset must be listed. The official sizes stay the limits.
    pub fn with_checksums(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for f in &mut self.files {
            let line = text
                .lines()
                .find(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .map(|n| n.trim_start_matches('*'))
                        == Some(f.name.as_str())
                })
                .ok_or_else(|| Error::Data {
                    path: path.to_path_buf(),
                    problem: format!("no checksum for `{}`", f.name),
                    hint: "list one `MD5  NAME` line per file, as md5sum prints them".into(),
                })?;
            f.md5 = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
        }
        Ok(self)
    }
}

/// MD5 of a file, hex.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What happened to each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    Downloaded(PathBuf),
    AlreadyPresent(PathBuf),
}

/// Downloads every file of `src` into `dir` (created if needed), verifies it, unpacks archives.
/// `progress(name, bytes_so_far, total)` is called while downloading. On failure, a directory
/// this call created is removed again, with everything in it.
pub fn fetch(
    src: &Source,
    dir: &Path,
    progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<Vec<Fetched>> {
    // the outermost directory that does not exist yet: everything below it is this call's
    let created = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
        .last()
        .map(Path::to_path_buf);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let result = fetch_into(src, dir, progress);
    if let (Err(_), Some(top)) = (&result, created) {
        let _ = std::fs::remove_dir_all(top);
    }
    result
}

fn fetch_into(
    src: &Source,
    dir: &Path,
    mut progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<Vec<Fetched>> {
    let agent = agent(src.timeout);
    let mut out = Vec::new();
    for f in &src.files {
        let path = dir.join(&f.name);
        if path.is_file() && md5_file(&path)? == f.md5 {
            out.push(Fetched::AlreadyPresent(path.clone()));
        } else {
            let url = format!("{}{}", src.base, f.name);
            let limits = (src.timeout, src.pace);
            download(&agent, limits, &url, &path, f, |done, total| {
                progress(&f.name, done, total)
            })?;
            out.push(Fetched::Downloaded(path.clone()));
        }
        if src.unpack {
            unpack(&path, dir)?;
        }
    }
    Ok(out)
}

/// An HTTP client whose every wait (name lookup, connecting, sending the request, the response
/// headers, each read of the body) ends after `timeout`.
fn agent(timeout: Duration) -> ureq::Agent {
    let t = Some(timeout);
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .build(),
    )
}

/// Describes a failed request or read, saying so plainly when it timed out, with a hint.
fn describe(e: &(dyn std::error::Error + 'static), timeout: Duration) -> (String, String) {
    let ureq_error = e.downcast_ref::<ureq::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    });
    match ureq_error {
        Some(ureq::Error::Timeout(what)) => (
            format!(
                "timed out: the server sent nothing for {:.1} s ({what})",
                timeout.as_secs_f64()
            ),
            format!(
                "the server or the network stalled; run the command again, use --mirror with another copy, or on a slow connection set {TIMEOUT_ENV} to more seconds"
            ),
        ),
        _ => (
            e.to_string(),
            "check the network and run the command again, or use --mirror with a reachable copy"
                .into(),
        ),
    }
}

fn download(
    agent: &ureq::Agent,
    (timeout, pace): (Duration, Pace),
    url: &str,
    path: &Path,
    res: &Resource,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<()> {
    let fail = |problem: String, hint: &str| Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: hint.into(),
    };
    let mut response = agent.get(url).call().map_err(|e| {
        let (problem, hint) = describe(&e, timeout);
        fail(format!("download of {url} failed: {problem}"), &hint)
    })?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_big = "the server does not hold the official file; use another --mirror";
    if let Some(t) = total.filter(|&t| t > res.size) {
        return Err(fail(
            format!(
                "{url} announces {t} bytes, more than the {} bytes of the official file; not downloaded",
                res.size
            ),
            too_big,
        ));
    }
    let part = path.with_extension(format!(
        "{}.part",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut file = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut receive = || -> Result<()> {
        // one byte more than allowed is enough to tell that the server sends too much
        let mut reader = response.body_mut().as_reader().take(res.size + 1);
        let mut h = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        let start = std::time::Instant::now();
        // the window over which the rate is measured: its start and the bytes done then
        let (mut window, mut window_done) = (start, 0u64);
        loop {
            let elapsed = start.elapsed();
            if elapsed > pace.deadline {
                return Err(fail(
                    format!(
                        "download of {url} did not finish within {:.0} s ({done} of {} bytes received)",
                        pace.deadline.as_secs_f64(),
                        total.map_or_else(|| res.size.to_string(), |t| t.to_string())
                    ),
                    &format!(
                        "the server or the network is too slow; try again, use --mirror with another copy, or set {DEADLINE_ENV} to more seconds"
                    ),
                ));
            }
            let span = window.elapsed();
            if span >= timeout {
                let rate = (done - window_done) as f64 / span.as_secs_f64();
                if rate < pace.min_rate {
                    return Err(fail(
                        format!(
                            "download of {url} is too slow: {rate:.0} bytes/s over the last {:.1} s, below the minimum of {:.0} ({done} bytes received)",
                            span.as_secs_f64(),
                            pace.min_rate
                        ),
                        &format!(
                            "the server or the network is trickling; try again, use --mirror with another copy, or set {MIN_RATE_ENV} to fewer bytes per second (0: no minimum)"
                        ),
                    ));
                }
                (window, window_done) = (std::time::Instant::now(), done);
            }
            let n = reader.read(&mut buf).map_err(|e| {
                let (problem, hint) = describe(&e, timeout);
                fail(
                    format!("download of {url} broke off after {done} bytes: {problem}"),
                    &hint,
                )
            })?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > res.size {
                return Err(fail(
                    format!(
                        "{url} sends more than the {} bytes of the official file; download stopped",
                        res.size
                    ),
                    too_big,
                ));
            }
            h.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
            progress(done, total);
        }
        file.sync_all().map_err(|e| Error::io(&part, e))?;
        let got = hex(&h.finalize());
        if got != res.md5 {
            return Err(fail(
                format!(
                    "checksum mismatch for {url}: MD5 {got}, expected {} ({done} bytes received)",
                    res.md5
                ),
                "the download is corrupt or the server holds another version; try again or another --mirror",
            ));
        }
        Ok(())
    };
    let received = receive();
    drop(file);
    match received {
        Ok(()) => std::fs::rename(&part, path).map_err(|e| Error::io(path, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(dir)
        .map_err(|e| Error::Data {
            path: archive.to_path_buf(),
            problem: format!("cannot unpack: {e}"),
            hint: "delete the file and fetch it again".into(),
        })
}
