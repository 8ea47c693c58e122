//! `rbp data fetch` against a local HTTP server on 127.0.0.1 serving small fixture archives with
//! their own checksums (no other network is touched).

use super::cli::rbp;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Accepts connections on 127.0.0.1 and hands each, with the requested path, to `handle` on its
/// own thread; stops by itself after 40 requests or 60 s.
fn serve_with(
    handle: impl Fn(&str, TcpStream) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let served = count.clone();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        let start = Instant::now();
        while served.load(Ordering::SeqCst) < 40 && start.elapsed() < Duration::from_secs(60) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            served.fetch_add(1, Ordering::SeqCst);
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                handle(&path, stream);
            });
        }
    });
    (url, count)
}

/// Serves `files` at `http://127.0.0.1:PORT/NAME`.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    serve_with(move |path, out| respond(&files, path, out))
}

/// Answers with the file at `path` in `files`, or 404.
fn respond(files: &HashMap<String, Vec<u8>>, path: &str, mut out: TcpStream) {
    match files.get(path) {
        Some(body) => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(body);
        }
        None => {
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }
}

fn md5(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(ndim: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, ndim];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

fn mnist_fixture() -> HashMap<String, Vec<u8>> {
    let img: Vec<u8> = (0..6 * 784).map(|i| (i % 251) as u8).collect();
    let lab: Vec<u8> = (0..6).map(|i| i as u8).collect();
    HashMap::from([
        (
            "train-images-idx3-ubyte.gz".to_string(),
            gz(&idx(3, &[6, 28, 28], &img)),
        ),
        (
            "train-labels-idx1-ubyte.gz".to_string(),
            gz(&idx(1, &[6], &lab)),
        ),
        (
            "t10k-images-idx3-ubyte.gz".to_string(),
            gz(&idx(3, &[2, 28, 28], &img[..2 * 784])),
        ),
        (
            "t10k-labels-idx1-ubyte.gz".to_string(),
            gz(&idx(1, &[2], &lab[..2])),
        ),
    ])
}

fn checksums(files: &HashMap<String, Vec<u8>>, dir: &std::path::Path) -> String {
    let p = dir.join("md5sums.txt");
    let text: String = files
        .iter()
        .map(|(n, b)| format!("{}  {n}\n", md5(b)))
        .collect();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn fetch_downloads_verifies_and_skips_what_is_there() {
    let files = mnist_fixture();
    let (url, count) = serve(files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let sums = checksums(&files, tmp.path());
    let dir = tmp.path().join("mnist");
    let d = dir.to_str().unwrap();
    let o = rbp(&[
        "data",
        "fetch",
        "mnist",
        d,
        "--mirror",
        &url,
        "--checksums",
        &sums,
    ]);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("downloaded and verified").count(), 4, "{t}");
    let split = rbprop::data::load_dir(&dir).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (6, 2));
    assert_eq!(count.load(Ordering::SeqCst), 4);
    // a second fetch finds everything in place and asks the server nothing
    let o = rbp(&[
        "data",
        "fetch",
        "mnist",
        d,
        "--mirror",
        &url,
        "--checksums",
        &sums,
    ]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success() && t.matches("already present").count() == 4,
        "{t}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(
        !std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".part"))
    );
}

#[test]
fn fetch_refuses_corrupt_downloads_and_reports_missing_files() {
    let mut files = mnist_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let sums = checksums(&files, tmp.path());
    // the server now holds a different train-images file than the checksum says
    files.insert(
        "train-images-idx3-ubyte.gz".into(),
        b"not the real file".to_vec(),
    );
    files.remove("t10k-labels-idx1-ubyte.gz");
    let (url, _) = serve(files);
    let dir = tmp.path().join("m");
    let fetch = || {
        let o = rbp(&[
            "data",
            "fetch",
            "mnist",
            dir.to_str().unwrap(),
            "--mirror",
            &url,
            "--checksums",
            &sums,
        ]);
        let t = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{t}");
        t
    };
    let t = fetch();
    assert!(
        t.contains("checksum mismatch")
            && t.contains("train-images-idx3-ubyte.gz")
            && t.contains("expected"),
        "{t}"
    );
    assert!(
        !dir.join("train-images-idx3-ubyte.gz").exists() && !dir.exists(),
        "a corrupt download, and the directory the fetch created for it, must not be kept"
    );
    // with a correct file in place, the missing one is a clear error naming its URL
    let good = mnist_fixture();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        &good["train-images-idx3-ubyte.gz"],
    )
    .unwrap();
    let t = fetch();
    assert!(
        t.contains("t10k-labels-idx1-ubyte.gz") && t.contains("404"),
        "{t}"
    );
    // the directory was there before: the verified files stay, nothing partial does
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "t10k-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    let o = rbp(&["data", "fetch", "imagenet", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown dataset `imagenet`"));
}

#[test]
fn fetch_unpacks_the_cifar_archive() {
    let src = tempfile::tempdir().unwrap();
    let batches = src.path().join(rbprop::data::cifar::ARCHIVE_DIR);
    std::fs::create_dir(&batches).unwrap();
    super::cifar::generate(&batches, 3, 3, 4);
    let mut tarball = Vec::new();
    {
        let enc = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut t = tar::Builder::new(enc);
        t.append_dir_all(rbprop::data::cifar::ARCHIVE_DIR, &batches)
            .unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    let files = HashMap::from([("cifar-10-binary.tar.gz".to_string(), tarball)]);
    let (url, _) = serve(files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let sums = checksums(&files, tmp.path());
    let dir = tmp.path().join("cifar");
    let o = rbp(&[
        "data",
        "fetch",
        "cifar10",
        dir.to_str().unwrap(),
        "--mirror",
        &url,
        "--checksums",
        &sums,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let split = rbprop::data::load_dir(&dir).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (15, 3));
    assert_eq!(
        rbprop::data::fetch::source("cifar10").unwrap().files[0].md5,
        "c32a1d4ab5d03f1284b67883e8d87530"
    );
}

/// How a misbehaving server answers the request for `train-images-idx3-ubyte.gz`, the first file
/// fetched; the other files are served normally.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Never answers.
    SilentBeforeHeaders,
    /// Sends the headers and a few bytes, then nothing.
    StallsAfterHeaders,
    /// Sends bytes without end (no Content-Length, the body ends when the connection closes).
    Endless,
    /// Announces a body far larger than the official file.
    HugeContentLength,
    /// Sends one byte every 100 ms (never silent for long, so no read times out).
    Trickles,
    /// Sends 64 KiB every 100 ms without end: fast enough, but never done.
    Steady,
}

/// Serves the MNIST fixture with `train-images-idx3-ubyte.gz` answered as `how`. A stalling
/// server waits 10 s before giving up; an endless one stops after 64 MiB (far more than the
/// official 9.9 MB) or when the client hangs up.
fn serve_misbehaving(how: Misbehaviour) -> (String, HashMap<String, Vec<u8>>) {
    let files = mnist_fixture();
    let served = files.clone();
    let (url, _) = serve_with(move |path, mut out| {
        if path != "train-images-idx3-ubyte.gz" {
            return respond(&served, path, out);
        }
        let stall = || std::thread::sleep(Duration::from_secs(10));
        match how {
            Misbehaviour::SilentBeforeHeaders => stall(),
            Misbehaviour::StallsAfterHeaders => {
                let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                let _ = out.write_all(&[0x1f, 0x8b, 8, 0]);
                let _ = out.flush();
                stall();
            }
            Misbehaviour::Endless => {
                let _ = write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let chunk = vec![b'x'; 1 << 16];
                for _ in 0..1024 {
                    if out.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
            Misbehaviour::Trickles => {
                let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                for _ in 0..100 {
                    if out.write_all(b"x").and_then(|_| out.flush()).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Misbehaviour::Steady => {
                let _ = write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let chunk = vec![b'x'; 1 << 16];
                for _ in 0..150 {
                    if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Misbehaviour::HugeContentLength => {
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n"
                );
                let chunk = vec![b'x'; 1 << 16];
                for _ in 0..1024 {
                    if out.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (url, files)
}

/// Runs `rbp data fetch mnist DIR` against `url` with a 0.5 s timeout; returns the exit code,
/// stderr and the seconds it took.
fn fetch_with_short_timeout(
    url: &str,
    dir: &std::path::Path,
    sums: &str,
) -> (Option<i32>, String, f64) {
    let start = Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(["data", "fetch", "mnist", dir.to_str().unwrap()])
        .args(["--mirror", url, "--checksums", sums])
        .env(rbprop::data::fetch::TIMEOUT_ENV, "0.5")
        .output()
        .expect("run rbp");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).to_string(),
        start.elapsed().as_secs_f64(),
    )
}

#[test]
fn a_stalling_server_times_out_and_leaves_nothing_behind() {
    for how in [
        Misbehaviour::SilentBeforeHeaders,
        Misbehaviour::StallsAfterHeaders,
    ] {
        let (url, files) = serve_misbehaving(how);
        let tmp = tempfile::tempdir().unwrap();
        let sums = checksums(&files, tmp.path());
        // a directory this fetch creates, two levels deep, is removed again
        let dir = tmp.path().join("new").join("mnist");
        let (code, err, secs) = fetch_with_short_timeout(&url, &dir, &sums);
        assert_eq!(code, Some(2), "{how:?}: {err}");
        assert!(
            err.contains("timed out")
                && err.contains("train-images-idx3-ubyte.gz")
                && err.contains(rbprop::data::fetch::TIMEOUT_ENV),
            "{how:?}: {err}"
        );
        assert!(secs < 5.0, "{how:?}: gave up only after {secs:.1} s");
        assert!(!tmp.path().join("new").exists(), "{how:?}: directory left");
        // in a directory that was there before, only the partial download is removed
        std::fs::create_dir(tmp.path().join("old")).unwrap();
        let dir = tmp.path().join("old");
        let (code, err, _) = fetch_with_short_timeout(&url, &dir, &sums);
        assert_eq!(code, Some(2), "{how:?}: {err}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(dir.is_dir() && left.is_empty(), "{how:?}: {left:?}");
    }
}

#[test]
fn a_server_sending_more_than_the_official_size_is_refused() {
    for (how, needle) in [
        (Misbehaviour::Endless, "sends more than the 9912422 bytes"),
        (
            Misbehaviour::HugeContentLength,
            "announces 1000000000000 bytes",
        ),
    ] {
        let (url, files) = serve_misbehaving(how);
        let tmp = tempfile::tempdir().unwrap();
        let sums = checksums(&files, tmp.path());
        let dir = tmp.path().join("mnist");
        let (code, err, secs) = fetch_with_short_timeout(&url, &dir, &sums);
        assert_eq!(code, Some(2), "{how:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("train-images-idx3-ubyte.gz"),
            "{how:?}: {err}"
        );
        assert!(secs < 5.0, "{how:?}: gave up only after {secs:.1} s");
        assert!(!dir.exists(), "{how:?}: directory left");
    }
}

#[test]
fn the_size_limit_is_exact_and_holds_without_content_length() {
    use rbprop::data::fetch::{self, Resource};
    let body: Vec<u8> = (0..5000).map(|i| (i % 253) as u8).collect();
    let sum = md5(&body);
    let served = body.clone();
    // answers `exact-N` with the first N bytes and Content-Length, `open-N` without
    let (url, _) = serve_with(move |path, mut out| {
        let (kind, n) = path.split_once('-').unwrap();
        let n: usize = n.parse().unwrap();
        let length = if kind == "exact" {
            format!("Content-Length: {n}\r\n")
        } else {
            String::new()
        };
        let _ = write!(out, "HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n");
        let _ = out.write_all(&served[..n]);
    });
    let tmp = tempfile::tempdir().unwrap();
    for (kind, n, size, ok) in [
        ("exact", 5000, 5000, true),
        ("open", 5000, 5000, true),
        ("exact", 5000, 4999, false),
        ("open", 5000, 4999, false),
    ] {
        let mut src = fetch::source("mnist")
            .unwrap()
            .with_mirror(&url)
            .with_timeout(Duration::from_secs(5));
        let name = format!("{kind}-{n}");
        src.files = vec![Resource {
            name: name.clone(),
            md5: sum.clone(),
            size,
        }];
        let dir = tmp.path().join(format!("{name}-{size}"));
        let r = fetch::fetch(&src, &dir, |_, _, _| {});
        assert_eq!(r.is_ok(), ok, "{name} with limit {size}: {r:?}");
        if ok {
            assert_eq!(std::fs::read(dir.join(&name)).unwrap(), body);
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("4999 bytes of the official file"), "{e}");
            assert!(!dir.exists());
        }
    }
    // a malformed timeout setting is a clear error
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args(["data", "fetch", "mnist", tmp.path().to_str().unwrap()])
        .env(fetch::TIMEOUT_ENV, "soon")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(fetch::TIMEOUT_ENV) && err.contains("`soon`"),
        "{err}"
    );
}

/// A server that trickles (a byte every 100 ms: no read ever waits long) is given up on for its
/// rate, and one that sends steadily but never finishes for the overall deadline; both limits
/// can be changed, and a bad value is named.
#[test]
fn a_trickling_or_endless_server_is_given_up_on() {
    use rbprop::data::fetch::{DEADLINE_ENV, MIN_RATE_ENV};
    let run = |how: Misbehaviour, env: &[(&str, &str)]| {
        let (url, files) = serve_misbehaving(how);
        let tmp = tempfile::tempdir().unwrap();
        let sums = checksums(&files, tmp.path());
        let dir = tmp.path().join("mnist");
        let start = Instant::now();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_rbp"))
            .args(["data", "fetch", "mnist", dir.to_str().unwrap()])
            .args(["--mirror", &url, "--checksums", &sums])
            .env(rbprop::data::fetch::TIMEOUT_ENV, "0.5")
            .envs(env.iter().copied())
            .output()
            .expect("run rbp");
        let left = dir.exists();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
            start.elapsed().as_secs_f64(),
            left,
        )
    };
    let (code, err, secs, left) = run(Misbehaviour::Trickles, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("too slow") && err.contains(MIN_RATE_ENV),
        "{err}"
    );
    assert!(secs < 5.0, "gave up only after {secs:.1} s");
    assert!(!left, "the directory it created is removed");
    let (code, err, secs, _) = run(Misbehaviour::Steady, &[(DEADLINE_ENV, "1")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("did not finish within 1 s") && err.contains(DEADLINE_ENV),
        "{err}"
    );
    assert!(secs < 6.0, "gave up only after {secs:.1} s");
    // with no minimum rate, the trickle is waited for until the deadline
    let (code, err, secs, _) = run(
        Misbehaviour::Trickles,
        &[(MIN_RATE_ENV, "0"), (DEADLINE_ENV, "1.5")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("did not finish within"), "{err}");
    assert!(secs >= 1.4, "{secs}");
    let (code, err, _, _) = run(Misbehaviour::Trickles, &[(MIN_RATE_ENV, "fast")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(MIN_RATE_ENV) && err.contains("`fast`"),
        "{err}"
    );
}
