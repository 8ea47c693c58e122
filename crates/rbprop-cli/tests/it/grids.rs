//! The experiment files written with sweeps expand to the grids they had before sweeps:
//! `fixtures/paper-grids.json` was recorded from every file of `configs/paper` and
//! `configs/smoke` before they were rewritten (each run's id, row, column, seed and resolved
//! settings); each file must expand to the same cells and seeds with the same settings, each
//! run's legacy id (where `rbp reproduce` and the readers look for results written before) must
//! be the id it had, and the runs keep their order. A file may since declare more seeds: its
//! runs beyond the record must be of seeds not recorded, each with a recorded run's settings but
//! for the seed. The rows recorded in the words labels had
//! before they took the flags' names (`quantized error b=2` for `quantize-signal b=2`) are found
//! in today's words, under the same legacy ids.

use rbprop::config::TrainConfig;
use rbprop::experiment::Experiment;
use rbprop::experiment::sweep::current_words;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_shipped_experiment_file_expands_to_its_recorded_grid() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let fixture: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_str(
        &std::fs::read_to_string(root.join("crates/rbprop-cli/tests/it/fixtures/paper-grids.json"))
            .unwrap(),
    )
    .unwrap();
    let mut files: Vec<String> = Vec::new();
    for d in ["configs/paper", "configs/smoke"] {
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(format!("{d}/{}", p.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    files.sort();
    // every recorded file is still shipped; a file added since (it had no grid before) only has
    // to load
    for f in fixture.keys() {
        assert!(files.contains(f), "{f} is recorded but no longer shipped");
    }
    for f in files.iter().filter(|f| !fixture.contains_key(*f)) {
        let exp = Experiment::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        exp.runs().unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for f in fixture.keys() {
        let exp = Experiment::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let runs = exp.runs().unwrap();
        let recorded = &fixture[f];
        // runs beyond the record are only seeds added since (the paper's protocol has five;
        // three were recorded)
        let recorded_ids: std::collections::HashSet<&str> =
            recorded.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let recorded_seeds: std::collections::HashSet<u64> = recorded
            .iter()
            .map(|r| r["seed"].as_u64().unwrap())
            .collect();
        let added: Vec<_> = runs
            .iter()
            .filter(|r| !recorded_ids.contains(r.legacy_id.as_str()))
            .collect();
        for r in &added {
            assert!(
                !recorded_seeds.contains(&r.seed),
                "{f}: {} is neither recorded nor of an added seed",
                r.id
            );
            // with a recorded sibling's settings but for the seed
            assert!(
                runs.iter()
                    .any(|o| recorded_ids.contains(o.legacy_id.as_str())
                        && (&o.row, &o.column) == (&r.row, &r.column)
                        && TrainConfig {
                            seed: r.seed,
                            ..o.config.clone()
                        } == r.config),
                "{f}: {} has no recorded sibling",
                r.id
            );
        }
        assert_eq!(
            runs.len() - added.len(),
            recorded.len(),
            "{f}: number of runs"
        );
        let mut ids = std::collections::HashSet::new();
        for r in &runs {
            assert!(ids.insert(r.id.clone()), "{f}: {} twice", r.id);
            assert!(
                r.id.ends_with(&format!("/seed-{}", r.seed)),
                "{f}: {}",
                r.id
            );
        }
        for want in recorded {
            let (row, column, seed) = (
                current_words(want["row"].as_str().unwrap()),
                want["column"].as_str().unwrap(),
                want["seed"].as_u64().unwrap(),
            );
            let got = runs
                .iter()
                .find(|r| r.row == row && r.column == column && r.seed == seed)
                .unwrap_or_else(|| panic!("{f}: no run {row} / {column} / seed {seed}"));
            let config: TrainConfig = serde_json::from_value(want["config"].clone()).unwrap();
            assert_eq!(got.config, config, "{f}: {row} / {column} / seed {seed}");
            assert_eq!(got.legacy_id, want["id"].as_str().unwrap(), "{f}");
        }
        // and in the same order (the indices of `--only`, where no seed was added), but for the
        // sparsity sweeps, whose signed rows now follow the 0/1 ones instead of alternating
        let order: Vec<&str> = runs
            .iter()
            .map(|r| r.legacy_id.as_str())
            .filter(|id| recorded_ids.contains(id))
            .collect();
        let recorded: Vec<&str> = recorded.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            order == recorded,
            !f.ends_with("sparsity-sweep.toml"),
            "{f}: grid order"
        );
    }
}
