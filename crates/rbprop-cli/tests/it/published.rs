//! The published results regenerate from the raw runs committed beside them: every
//! `docs/results/runs/<experiment>.tar.gz` is unpacked, `rbp table` and `rbp plot` run on the
//! unpacked runs alone, and the table (Markdown and CSV) and every figure (SVG) must equal the
//! committed ones byte for byte (`scripts/publish-results.sh` writes them).

use super::cli::rbp;
use std::path::Path;

fn unpack(archive: &Path, into: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(into)
        .unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
}

#[test]
fn published_tables_and_figures_regenerate_from_the_committed_runs() {
    let published =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("docs/results/runs");
    let archives: Vec<_> = std::fs::read_dir(&published)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert!(
        !archives.is_empty(),
        "no raw runs in {}",
        published.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    for a in &archives {
        unpack(a, tmp.path());
    }
    let dir = tmp.path().to_str().unwrap();
    for cmd in ["table", "plot"] {
        let o = rbp(&[cmd, dir]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["table.md", "table.csv"] {
        let (got, want) = (
            std::fs::read_to_string(tmp.path().join(f)).unwrap(),
            std::fs::read_to_string(published.join(f)).unwrap(),
        );
        assert!(
            got == want,
            "{f} does not regenerate from the committed runs:\n{got}\n--- committed:\n{want}"
        );
    }
    let figures = published.join("figures");
    let mut n = 0;
    for e in std::fs::read_dir(&figures).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        let regenerated = tmp.path().join("figures").join(name);
        assert!(
            std::fs::read(&regenerated).ok() == std::fs::read(&p).ok(),
            "{} does not regenerate from the committed runs",
            p.display()
        );
        n += 1;
    }
    // and no figure of the runs is missing from the published ones
    let drawn = std::fs::read_dir(tmp.path().join("figures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert_eq!(
        n, drawn,
        "published figures differ in number from the regenerated ones"
    );
}
