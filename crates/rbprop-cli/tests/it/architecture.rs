//! The rules of the house (docs/architecture.md), checked on the sources: the core crate has no
//! command-line, network or plotting dependency, and no two modules of a crate import each
//! other, directly or around a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn the_core_has_no_cli_network_or_plotting_dependency() {
    let text = std::fs::read_to_string(format!("{ROOT}/crates/rbprop-core/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for banned in ["clap", "ureq", "plotters", "indicatif"] {
        assert!(
            !deps.contains_key(banned),
            "rbprop-core depends on {banned}"
        );
    }
    let lib = std::fs::read_to_string(format!("{ROOT}/crates/rbprop/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&lib).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for banned in ["clap", "indicatif"] {
        assert!(!deps.contains_key(banned), "rbprop depends on {banned}");
    }
}

/// Every module of the crate at `src` (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`) with its
/// source: comments removed, and the file's test module (from `#[cfg(test)]` on) left out, since
/// its `super::` is the file's module itself.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            if name == "lib" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            let text: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, text);
        }
    }
    out
}

/// The paths of `text` that start at the crate (`crate::`), at the module or one of its
/// ancestors (`self::`, `super::`, `super::super::`), in `use` items and in expressions alike,
/// with grouped imports (`crate::{a::X, b::{c, d}}`) expanded: each as its segments.
fn local_paths(text: &str) -> Vec<Vec<String>> {
    fn ident(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }
    /// Parses a path (or a group of paths) at `s`, after `prefix`; returns where it ends.
    fn parse(s: &[char], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix;
        loop {
            while i < s.len() && s[i].is_whitespace() {
                i += 1;
            }
            if i < s.len() && s[i] == '{' {
                i += 1;
                loop {
                    i = parse(s, i, path.clone(), out);
                    while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                        i += 1;
                    }
                    if i >= s.len() || s[i] == '}' {
                        return i + 1;
                    }
                }
            }
            let start = i;
            while i < s.len() && ident(s[i]) {
                i += 1;
            }
            if i == start {
                out.push(path);
                return i;
            }
            path.push(s[start..i].iter().collect());
            let mut j = i;
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            if s.get(j) == Some(&':') && s.get(j + 1) == Some(&':') {
                i = j + 2;
            } else {
                out.push(path);
                return i;
            }
        }
    }
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let boundary = i == 0 || !(ident(s[i - 1]) || s[i - 1] == '$' || s[i - 1] == ':');
        let word: String = s[i..].iter().take_while(|c| ident(**c)).collect();
        let root = ["crate", "self", "super"].contains(&word.as_str());
        let next = i + word.len();
        if boundary && root && s.get(next) == Some(&':') && s.get(next + 1) == Some(&':') {
            i = parse(&s, i, Vec::new(), &mut out);
        } else {
            i = next.max(i + 1);
        }
    }
    out
}

/// The modules each module imports (paths of [`local_paths`] resolved against the module and
/// matched to the longest module path), leaving out a module's own ancestors and descendants.
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (m, text) in mods {
        let here: Vec<&str> = m.split("::").collect();
        let mut to = BTreeSet::new();
        for path in local_paths(text) {
            let mut parts: Vec<&str> = Vec::new();
            let mut rest = path.iter().map(String::as_str).peekable();
            match rest.peek().copied() {
                Some("crate") => {
                    rest.next();
                }
                Some("self") => {
                    rest.next();
                    parts.extend(&here);
                }
                Some("super") => {
                    parts.extend(&here);
                    while rest.peek() == Some(&"super") {
                        rest.next();
                        parts.pop();
                    }
                }
                _ => continue,
            }
            parts.extend(rest);
            let target = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|c| mods.contains_key(c));
            if let Some(t) = target {
                let related = m.starts_with(&format!("{t}::")) || t.starts_with(&format!("{m}::"));
                if t != *m && !related {
                    to.insert(t);
                }
            }
        }
        edges.insert(m.clone(), to);
    }
    edges
}

/// A loop of imports, if there is one (depth-first search for a back edge).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        m: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        state.insert(m, true);
        stack.push(m);
        for n in &edges[m] {
            match state.get(n.as_str()) {
                Some(true) => {
                    let from = stack.iter().position(|s| *s == n).unwrap();
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                Some(false) => {}
                None => {
                    if let Some(c) = visit(n, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m, false);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m.as_str())
            && let Some(c) = visit(m, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// Every crate of the workspace (each directory of `crates/` with a `Cargo.toml`).
fn crates() -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    all
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let all = crates();
    for krate in [
        "rbprop-core",
        "rbprop",
        "rbprop-cli",
        "rbprop-gpu",
        "rbprop-py",
    ] {
        assert!(all.iter().any(|c| c == krate), "{krate} not found");
    }
    for krate in &all {
        let mods = modules(&Path::new(ROOT).join("crates").join(krate).join("src"));
        assert!(mods.len() >= 3, "{krate}: modules not found");
        let edges = imports(&mods);
        assert!(
            edges.values().any(|e| !e.is_empty()),
            "{krate}: no import between modules found"
        );
        if let Some(cycle) = find_cycle(&edges) {
            panic!("{krate}: import loop {}", cycle.join(" → "));
        }
    }
}

/// A crate of `files` (module → source) has a loop, and loses it when `a`'s import is removed.
fn planted(files: &[(&str, &str)]) -> Option<Vec<String>> {
    let mods: BTreeMap<String, String> = files
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    find_cycle(&imports(&mods))
}

#[test]
fn the_loop_check_finds_a_planted_loop_of_every_path_form() {
    let forms: [(&str, &[(&str, &str)]); 8] = [
        (
            "crate path in use",
            &[("a", "use crate::b::X;"), ("b", "use crate::a::Y;")],
        ),
        (
            "crate path in an expression",
            &[("a", "fn f() { crate::b::g() }"), ("b", "use crate::a;")],
        ),
        (
            "grouped use",
            &[
                ("a", "use crate::{c::Z, b::{X, Y}};"),
                ("b", "use crate::a::W;"),
                ("c", ""),
            ],
        ),
        (
            "super from a sibling",
            &[
                ("p::a", "use super::b::X;"),
                ("p::b", "use super::a::Y;"),
                ("p", ""),
            ],
        ),
        (
            "super grouped",
            &[
                ("p::a", "use super::{b, c::Z};"),
                ("p::b", "use super::a;"),
                ("p", ""),
                ("p::c", ""),
            ],
        ),
        (
            "super::super",
            &[
                ("p::q::a", "use super::super::b::X;"),
                ("p::b", "pub fn g() { super::q::a::f() }"),
                ("p", ""),
                ("p::q", ""),
            ],
        ),
        (
            "glob and rename",
            &[("a", "use crate::b::*;"), ("b", "use crate::a::X as Y;")],
        ),
        (
            "a longer loop",
            &[
                ("a", "use crate::b::X;"),
                ("b", "use crate::c::X;"),
                ("c", "use crate::a::X;"),
            ],
        ),
    ];
    for (form, files) in forms {
        let cycle = planted(files).unwrap_or_else(|| panic!("{form}: loop not found"));
        assert_eq!(cycle.first(), cycle.last(), "{form}");
        // the same crate with the first module's imports removed has no loop
        let mut cut: Vec<(&str, &str)> = files.to_vec();
        cut[0].1 = "";
        assert_eq!(planted(&cut), None, "{form}: a loop without the import");
    }
    // `self::` names the module or its children, never another module: it resolves there
    let mods: BTreeMap<String, String> =
        [("a", "use self::x::Y; fn f() { self::g() }"), ("a::x", "")]
            .map(|(m, t)| (m.to_string(), t.to_string()))
            .into();
    assert!(imports(&mods)["a"].is_empty());
    // relatives are not loops: a parent re-exporting its child which uses the parent
    assert_eq!(
        planted(&[("a", "pub use self::x::Y;"), ("a::x", "use super::Z;")]),
        None
    );
    // `$crate::`, `Self::` and identifiers ending in `crate`/`super` are not paths
    assert!(local_paths("$crate::a::b; Self::new(); mycrate::x; pub(super) fn f()").is_empty());
    assert_eq!(
        local_paths("use crate::{a::{b, c::D}, e};"),
        vec![
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c", "D"],
            vec!["crate", "e"]
        ]
    );
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

/// Adding a backend, step 2 of docs/architecture.md: every type that implements the backend
/// trait in a crate's sources runs the conformance suite in that crate's tests.
#[test]
fn every_backend_runs_the_conformance_suite() {
    let mut backends = Vec::new();
    for krate in crates() {
        let dir = Path::new(ROOT).join("crates").join(&krate);
        for (path, text) in sources(&dir.join("src")) {
            for part in text.split("impl Backend for ").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let tests = sources(&dir.join("tests"));
                assert!(
                    tests
                        .iter()
                        .any(|(_, t)| t.contains(&format!("conformance::all::<{name}>()"))),
                    "{}: backend {name} does not run `conformance::all::<{name}>()` in {krate}/tests",
                    path.display()
                );
                backends.push(name);
            }
        }
    }
    backends.sort();
    assert_eq!(backends, ["Cpu", "Gpu"]);
}

/// The lists of places to touch in docs/architecture.md stay true: every file they name exists
/// and every guard they name is a test of the workspace.
#[test]
fn the_places_to_touch_name_files_and_tests_that_exist() {
    let doc = std::fs::read_to_string(format!("{ROOT}/docs/architecture.md")).unwrap();
    let section = doc
        .split("## Adding a setting, a backend or a channel")
        .nth(1)
        .expect("the places-to-touch section")
        .split("\n## ")
        .next()
        .unwrap();
    let all: Vec<String> = crates()
        .iter()
        .flat_map(|k| sources(&Path::new(ROOT).join("crates").join(k)))
        .map(|(_, t)| t)
        .collect();
    let quoted: Vec<&str> = section.split('`').skip(1).step_by(2).collect();
    let mut guards = 0;
    for (i, q) in quoted.iter().enumerate() {
        if q.starts_with("crates/") {
            // `crates/x/src/{a,b}.rs` names a.rs and b.rs
            let paths: Vec<String> = match (q.find('{'), q.find('}')) {
                (Some(a), Some(b)) => q[a + 1..b]
                    .split(',')
                    .map(|m| format!("{}{m}{}", &q[..a], &q[b + 1..]))
                    .collect(),
                _ => vec![q.split(' ').next().unwrap().to_string()],
            };
            for p in paths {
                let p = p.split("::").next().unwrap();
                assert!(Path::new(ROOT).join(p).exists(), "{p} does not exist");
            }
        }
        // a guard is quoted right after "guard:"
        let before = section.split('`').nth(2 * i).unwrap_or("");
        if before.trim_end().ends_with("guard:") {
            let f = format!("fn {q}(");
            assert!(all.iter().any(|t| t.contains(&f)), "no test `{q}`");
            guards += 1;
        }
    }
    assert!(guards >= 8, "{guards} guards found");
}
