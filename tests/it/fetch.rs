//! `rbp data fetch` against a local HTTP server on 127.0.0.1 serving small fixture archives with
//! their own checksums (no other network is touched).

use super::cli::rbp;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Serves `files` at `http://127.0.0.1:PORT/NAME`; stops by itself after 40 requests or 60 s.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let served = count.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while served.load(Ordering::SeqCst) < 40 && start.elapsed() < Duration::from_secs(60) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            served.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
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
            let mut out = stream;
            match files.get(&path) {
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
    });
    (url, count)
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
    let split = rbp::data::load_dir(&dir).unwrap();
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
        !dir.join("train-images-idx3-ubyte.gz").exists(),
        "a corrupt download must not be kept"
    );
    // with a correct file in place, the missing one is a clear error naming its URL
    let good = mnist_fixture();
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
    let o = rbp(&["data", "fetch", "imagenet", "x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown dataset `imagenet`"));
}

#[test]
fn fetch_unpacks_the_cifar_archive() {
    let src = tempfile::tempdir().unwrap();
    let batches = src.path().join(rbp::data::cifar::ARCHIVE_DIR);
    std::fs::create_dir(&batches).unwrap();
    super::cifar::generate(&batches, 3, 3, 4);
    let mut tarball = Vec::new();
    {
        let enc = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut t = tar::Builder::new(enc);
        t.append_dir_all(rbp::data::cifar::ARCHIVE_DIR, &batches)
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
    let split = rbp::data::load_dir(&dir).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (15, 3));
    assert_eq!(
        rbp::data::fetch::source("cifar10").unwrap().files[0].md5,
        "c32a1d4ab5d03f1284b67883e8d87530"
    );
}
