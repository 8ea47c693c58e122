//! The IDX format of the MNIST family (MNIST, Fashion-MNIST, KMNIST, …), raw or gzip-compressed.
//!
//! Layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte, the only type these
//! datasets use), the number of dimensions d, then d u32 sizes, then the data, row-major. Images
//! are `idx3` (count × rows × cols), labels `idx1` (count). Every check below fails with an error
//! naming the file; nothing here panics on any input.

use crate::error::{Error, Result};
use flate2::bufread::GzDecoder;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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

/// Finds `dir/name` or `dir/name.gz`; both at once is an error, since they may differ.
pub fn locate(dir: &Path, name: &str) -> Result<PathBuf> {
    let (raw, gz) = (dir.join(name), dir.join(format!("{name}.gz")));
    match (raw.is_file(), gz.is_file()) {
        (true, true) => {
            return Err(bad(
                &raw,
                format!(
                    "both `{name}` and `{name}.gz` exist ({} and {}); it is ambiguous which one to read",
                    raw.display(),
                    gz.display()
                ),
                "keep only one of the two files (delete the other or move it elsewhere)",
            ));
        }
        (true, false) => return Ok(raw),
        (false, true) => return Ok(gz),
        (false, false) => {}
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

/// Parses IDX bytes (gzip-compressed if they start with the gzip magic; several gzip members one
/// after another, as `cat a.gz b.gz` makes, are read as one stream, as `gunzip` does). `path`
/// names the source in error messages.
pub fn parse(path: &Path, bytes: &[u8], ndim: usize) -> Result<IdxArray> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut decoder = Members::new(bytes);
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

/// Reads the gzip members of `bytes` one after another as one stream. Bytes after the last
/// complete member that do not start another member are an error ([`TrailingData`]).
struct Members<'a> {
    decoder: Option<GzDecoder<&'a [u8]>>,
    /// Complete members read so far.
    done: usize,
}

impl<'a> Members<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Members {
            decoder: Some(GzDecoder::new(bytes)),
            done: 0,
        }
    }
}

impl Read for Members<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // this member is complete (its checksum verified); what follows it?
            self.done += 1;
            let rest = self
                .decoder
                .take()
                .map(GzDecoder::into_inner)
                .unwrap_or(&[]);
            if rest.is_empty() {
                return Ok(0);
            }
            if !rest.starts_with(&GZIP_MAGIC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TrailingData {
                        bytes: rest.len(),
                        members: self.done,
                    },
                ));
            }
            self.decoder = Some(GzDecoder::new(rest));
        }
    }
}

/// Bytes after the gzip stream that are not another gzip member.
#[derive(Debug)]
struct TrailingData {
    bytes: usize,
    members: usize,
}

impl std::fmt::Display for TrailingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.members == 1 { "" } else { "s" };
        write!(
            f,
            "{} byte(s) of trailing data after the end of the gzip stream ({} member{s}), not gzip data",
            self.bytes, self.members
        )
    }
}

impl std::error::Error for TrailingData {}

fn gz_error(path: &Path, e: io::Error) -> Error {
    if let Some(t) = e.get_ref().and_then(|t| t.downcast_ref::<TrailingData>()) {
        return bad(
            path,
            t.to_string(),
            "something was appended to the compressed file, or it is corrupt; re-download it",
        );
    }
    bad(
        path,
        format!("corrupt or truncated gzip stream: {e}"),
        "re-download the file, or decompress it with `gunzip -t` to check it",
    )
}

fn read_exact(path: &Path, r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
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
