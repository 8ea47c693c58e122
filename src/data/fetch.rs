//! `rbp data fetch`: download a dataset's official files, verify their MD5 checksums, unpack.
//!
//! Checksums are the ones the publishers list (CIFAR-10: the dataset's page,
//! www.cs.toronto.edu/~kriz/cifar.html) or that the widely used torchvision loaders carry
//! (`torchvision.datasets.MNIST.resources`, `torchvision.datasets.FashionMNIST.resources`). A file
//! already present with the right checksum is not downloaded again; a download goes to
//! `NAME.part` and is renamed only once its checksum matches, so an interrupted or corrupt
//! download never looks like a finished one. `--mirror` and `--checksums` point the command at
//! another server (a mirror, or a local test server) with its own list of checksums.

use crate::error::{Error, Result};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One file of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub md5: String,
}

/// A dataset's download.
#[derive(Clone, Debug)]
pub struct Source {
    pub dataset: &'static str,
    pub base: String,
    pub files: Vec<Resource>,
    /// The files are `.tar.gz` archives to unpack into the target directory.
    pub unpack: bool,
}

fn res(name: &str, md5: &str) -> Resource {
    Resource {
        name: name.into(),
        md5: md5.into(),
    }
}

/// The official sources of `dataset` (`cifar10`, `mnist`, `fashion-mnist`).
pub fn source(dataset: &str) -> Result<Source> {
    Ok(match dataset {
        "cifar10" | "cifar-10" => Source {
            dataset: "cifar10",
            base: "https://www.cs.toronto.edu/~kriz/".into(),
            files: vec![res(
                "cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            )],
            unpack: true,
        },
        "mnist" => Source {
            dataset: "mnist",
            base: "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
            files: vec![
                res(
                    "train-images-idx3-ubyte.gz",
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                ),
                res(
                    "train-labels-idx1-ubyte.gz",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                ),
                res(
                    "t10k-images-idx3-ubyte.gz",
                    "9fb629c4189551a2d022fa330f9573f3",
                ),
                res(
                    "t10k-labels-idx1-ubyte.gz",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
            ],
            unpack: false,
        },
        "fashion-mnist" | "fashion" => Source {
            dataset: "fashion-mnist",
            base: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into(),
            files: vec![
                res(
                    "train-images-idx3-ubyte.gz",
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                ),
                res(
                    "train-labels-idx1-ubyte.gz",
                    "25c81989df183df01b3e8a0aad5dffbe",
                ),
                res(
                    "t10k-images-idx3-ubyte.gz",
                    "bef4ecab320f06d8554ea6380940ec79",
                ),
                res(
                    "t10k-labels-idx1-ubyte.gz",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
            ],
            unpack: false,
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

    /// Replaces the checksums by those of a file in `md5sum` format (`HASH  NAME` per line); every
    /// file of the dataset must be listed.
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
/// `progress(name, bytes_so_far, total)` is called while downloading.
pub fn fetch(
    src: &Source,
    dir: &Path,
    mut progress: impl FnMut(&str, u64, Option<u64>),
) -> Result<Vec<Fetched>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for f in &src.files {
        let path = dir.join(&f.name);
        if path.is_file() && md5_file(&path)? == f.md5 {
            out.push(Fetched::AlreadyPresent(path.clone()));
        } else {
            let url = format!("{}{}", src.base, f.name);
            download(&url, &path, &f.md5, |done, total| {
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

fn download(
    url: &str,
    path: &Path,
    md5: &str,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<()> {
    let fail = |problem: String, hint: &str| Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: hint.into(),
    };
    let mut response = ureq::get(url).call().map_err(|e| {
        fail(
            format!("download of {url} failed: {e}"),
            "check the network, or use --mirror with a reachable copy",
        )
    })?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let part = path.with_extension(format!(
        "{}.part",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut file = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut reader = response.body_mut().as_reader();
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            fail(
                format!("download of {url} broke off after {done} bytes: {e}"),
                "run the command again",
            )
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        done += n as u64;
        progress(done, total);
    }
    file.sync_all().map_err(|e| Error::io(&part, e))?;
    let got = hex(&h.finalize());
    if got != md5 {
        let _ = std::fs::remove_file(&part);
        return Err(fail(
            format!(
                "checksum mismatch for {url}: MD5 {got}, expected {md5} ({done} bytes received)"
            ),
            "the download is corrupt or the server holds another version; try again or another --mirror",
        ));
    }
    std::fs::rename(&part, path).map_err(|e| Error::io(path, e))
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
