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
/// source, comments removed.
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
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            if name == "lib" || name == "main" {
                continue;
            }
            let text: String = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, text);
        }
    }
    out
}

/// The modules each module imports (`crate::a::b…`, resolved to the longest module path),
/// leaving out a module's own ancestors and descendants.
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (m, text) in mods {
        let mut to = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let path: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
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

#[test]
fn no_module_imports_another_that_imports_it_back() {
    for krate in ["rbprop-core", "rbprop", "rbprop-cli"] {
        let mods = modules(&Path::new(ROOT).join("crates").join(krate).join("src"));
        assert!(mods.len() > 3, "{krate}: modules not found");
        if let Some(cycle) = find_cycle(&imports(&mods)) {
            panic!("{krate}: import loop {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_loop_check_finds_a_loop() {
    let mut mods = BTreeMap::new();
    mods.insert("a".to_string(), "use crate::b::X;".to_string());
    mods.insert("b::c".to_string(), "use crate::a::Y;".to_string());
    mods.insert("b".to_string(), "pub mod c;".to_string());
    mods.insert("d".to_string(), "use crate::a::Z;".to_string());
    assert_eq!(find_cycle(&imports(&mods)), None);
    mods.insert("b".to_string(), "use crate::d;".to_string());
    let cycle = find_cycle(&imports(&mods)).expect("a → b → d → a");
    assert_eq!(cycle.first(), cycle.last());
}
