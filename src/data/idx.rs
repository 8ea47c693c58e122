//! The IDX format of the MNIST family (MNIST, Fashion-MNIST, KMNIST, …), raw or gzip-compressed.
//!
//! Layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte, the only type these
//! datasets use), the number of dimensions d, then d u32 sizes, then the data, row-major. Images
//! are `idx3` (count × rows × cols), labels `idx1` (count). Every check below fails with an error
//! naming the file; nothing here panics on any input.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest payload accepted (bytes): far above any dataset of this family, below absurd headers.
const MAX_PAYLOAD: u64 = 1 << 32;

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of each dimension; `dims[0]` is the number of items.
    pub dims: Vec<usize>,
    /// Row-major payload, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

fn bad(path: &Path, problem: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        problem: problem.into(),
        hint: hint.into(),
    }
}

/// Finds `dir/name` or `dir/name.gz`.
pub fn locate(dir: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(bad(
        &dir.join(name),
        format!("file not found (looked for `{name}` and `{name}.gz`)"),
        format!(
            "--data must be a directory holding the four MNIST-format files; `rbp data fetch` can download them (dir: {})",
            dir.display()
        ),
    ))
}

/// Reads and validates an IDX file of unsigned bytes with `ndim` dimensions.
pub fn read_file(path: &Path, ndim: usize) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes, ndim)
}

/// Parses IDX bytes (gzip-compressed if they start with the gzip magic). `path` names the source
/// in error messages.
pub fn parse(path: &Path, bytes: &[u8], ndim: usize) -> Result<IdxArray> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = GzDecoder::new(bytes);
        let mut header = [0u8; 4];
        read_exact(path, &mut decoder, &mut header, "the 4-byte magic number")?;
        let dims = read_header(path, &mut decoder, header, ndim)?;
        let total = payload_len(path, &dims)?;
        let mut data = Vec::with_capacity(total);
        (&mut decoder)
            .take(total as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| gz_error(path, e))?;
        finish(path, dims, data, total)
    } else {
        let mut reader = bytes;
        let mut header = [0u8; 4];
        read_exact(path, &mut reader, &mut header, "the 4-byte magic number")?;
        let dims = read_header(path, &mut reader, header, ndim)?;
        let total = payload_len(path, &dims)?;
        finish(path, dims, reader.to_vec(), total)
    }
}

fn gz_error(path: &Path, e: std::io::Error) -> Error {
    bad(
        path,
        format!("corrupt or truncated gzip stream: {e}"),
        "re-download the file, or decompress it with `gunzip -t` to check it",
    )
}

fn read_exact(path: &Path, r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(
                path,
                format!("file ends inside the header (while reading {what})"),
                "the file is truncated; re-download it",
            )
        } else {
            gz_error(path, e)
        }
    })
}

fn read_header(path: &Path, r: &mut impl Read, magic: [u8; 4], ndim: usize) -> Result<Vec<usize>> {
    let kind = if ndim == 1 { "labels" } else { "images" };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(
            path,
            format!(
                "not an IDX file: magic number is 0x{:02x}{:02x}{:02x}{:02x}, expected 0x0000080{ndim}",
                magic[0], magic[1], magic[2], magic[3]
            ),
            format!("expected an IDX {kind} file of the MNIST family"),
        ));
    }
    if magic[2] != 0x08 {
        return Err(bad(
            path,
            format!(
                "IDX element type is 0x{:02x}, expected 0x08 (unsigned byte)",
                magic[2]
            ),
            "only the unsigned-byte IDX files of the MNIST family are supported",
        ));
    }
    if magic[3] as usize != ndim {
        return Err(bad(
            path,
            format!(
                "IDX file has {} dimension(s), expected {ndim} for {kind}",
                magic[3]
            ),
            "were the images and labels files swapped?",
        ));
    }
    let mut dims = Vec::with_capacity(ndim);
    for i in 0..ndim {
        let mut b = [0u8; 4];
        read_exact(path, r, &mut b, &format!("the size of dimension {i}"))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    if let Some(i) = dims.iter().skip(1).position(|&d| d == 0) {
        return Err(bad(
            path,
            format!("dimension {} has size 0", i + 1),
            "the header is corrupt",
        ));
    }
    Ok(dims)
}

fn payload_len(path: &Path, dims: &[usize]) -> Result<usize> {
    let total = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&t| t <= MAX_PAYLOAD)
        .ok_or_else(|| {
            bad(
                path,
                format!("header declares an absurd size {dims:?}"),
                "the header is corrupt",
            )
        })?;
    Ok(total as usize)
}

fn finish(path: &Path, dims: Vec<usize>, data: Vec<u8>, total: usize) -> Result<IdxArray> {
    if data.len() < total {
        return Err(bad(
            path,
            format!(
                "truncated: header declares {dims:?} = {total} data bytes, file holds {}",
                data.len()
            ),
            "the file is incomplete; re-download it",
        ));
    }
    if data.len() > total {
        return Err(bad(
            path,
            format!("file holds more than the {total} data bytes declared by the header {dims:?}"),
            "the header does not match the content; the file is corrupt",
        ));
    }
    Ok(IdxArray { dims, data })
}
