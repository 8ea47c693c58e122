//! `rbp reproduce --slurm` against a real Slurm cluster (`scripts/slurm-local.sh start` makes one
//! on this machine). With `RBP_SLURM=1` (as in CI) a missing cluster fails these tests; without
//! it they run where `sinfo` answers and say so where it does not.

use super::cli::rbp;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether a Slurm cluster answers; panics when one is required (`RBP_SLURM=1`) and absent.
fn cluster() -> bool {
    let required = std::env::var("RBP_SLURM").is_ok_and(|v| v == "1");
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            !required,
            "RBP_SLURM=1 but no Slurm cluster answers `sinfo` (start one with scripts/slurm-local.sh start)"
        );
        eprintln!("SKIPPED: no Slurm cluster here (set RBP_SLURM=1 to require one)");
    }
    up
}

/// The job id `rbp reproduce --slurm` printed.
fn job_id(o: &Output) -> String {
    let t = text(o);
    t.split("submitted job array ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no job id in: {t}"))
        .to_string()
}

/// Waits (bounded) until the array's runs are all finished per `--status`.
fn wait_finished(config: &str, results: &str, runs: usize) {
    let start = Instant::now();
    let want = format!("{runs} runs: {runs} finished");
    loop {
        let o = rbp(&["reproduce", config, "--results", results, "--status"]);
        let t = text(&o);
        if t.contains(&want) {
            return;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let q = Command::new("squeue").output().map(|o| text(&o));
            panic!("the array did not finish within 10 minutes:\n{t}\nsqueue: {q:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// metrics.jsonl with the timing field masked.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["seconds"] = serde_json::Value::Null;
            v
        })
        .collect()
}

const SMOKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/smoke/table1.toml"
);

#[test]
fn the_smoke_grid_as_a_slurm_array_equals_a_local_run() {
    if !cluster() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (remote, local) = (tmp.path().join("slurm"), tmp.path().join("local"));
    let (r, l) = (remote.to_str().unwrap(), local.to_str().unwrap());
    // the script, shown without submitting
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--slurm", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("#SBATCH --array=0-13"), "{}", text(&o));
    let o = rbp(&[
        "reproduce",
        SMOKE,
        "--results",
        r,
        "--slurm",
        "--max-concurrent",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    job_id(&o);
    wait_finished(SMOKE, r, 14);

    let o = rbp(&["reproduce", SMOKE, "--results", l, "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    for dir in [&remote, &local] {
        let o = rbp(&["table", dir.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    for f in ["table.md", "table.csv"] {
        let (a, b) = (
            std::fs::read(remote.join(f)).unwrap(),
            std::fs::read(local.join(f)).unwrap(),
        );
        assert!(
            a == b,
            "{f} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
    // every run's numbers, not only the table's rounding of them
    let runs = rbprop::experiment::Experiment::load(Path::new(SMOKE))
        .unwrap()
        .runs()
        .unwrap();
    assert_eq!(runs.len(), 14);
    for run in &runs {
        let (a, b) = (
            local.join("smoke-table1").join(&run.id),
            remote.join("smoke-table1").join(&run.id),
        );
        assert_eq!(metrics(&a), metrics(&b), "{}", run.id);
    }
    // a second submission finds everything finished: each task only skips
    let o = rbp(&["reproduce", SMOKE, "--results", r, "--status"]);
    assert!(text(&o).contains("14 runs: 14 finished"), "{}", text(&o));
}

const LONG: &str = r#"name = "long"
dataset = "fashion-mnist-subset"
data = "embedded:fashion-mnist-subset"
seeds = [1]
[train]
epochs = 24
hidden = [256, 256]
train_limit = 6000
[[variant]]
row = "baseline"
column = "RBP"
channel = "rbp"
"#;

#[test]
fn a_requeued_task_resumes_its_run_to_the_same_numbers() {
    if !cluster() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("long.toml");
    std::fs::write(&config, LONG).unwrap();
    let c = config.to_str().unwrap();
    let (remote, local) = (tmp.path().join("slurm"), tmp.path().join("local"));
    let (r, l) = (remote.to_str().unwrap(), local.to_str().unwrap());
    let o = rbp(&["reproduce", c, "--results", r, "--slurm"]);
    assert!(o.status.success(), "{}", text(&o));
    let job = job_id(&o);
    let run = remote.join("long").join("rbp/seed-1");
    // wait for a few finished epochs, then requeue the task mid-run (Slurm kills it)
    let start = Instant::now();
    while std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the task never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let task = format!("{job}_0");
    let q = Command::new("scontrol")
        .args(["requeue", &task])
        .output()
        .unwrap();
    assert!(q.status.success(), "scontrol requeue: {}", text(&q));
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let status = rbp(&["reproduce", c, "--results", r, "--status"]);
    assert!(
        text(&status).contains("interrupted after") || text(&status).contains("running"),
        "{}",
        text(&status)
    );
    // a requeued job waits for a begin time; let it start now (the update is refused while the
    // killed task is still completing, so it is retried until the task runs again or is done)
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let _ = Command::new("scontrol")
            .args(["update", &format!("JobId={task}"), "StartTime=now"])
            .output();
        let q = Command::new("squeue")
            .args(["-h", "-r", "-o", "%T", "-j", &job])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if q.is_empty() || q.contains("RUNNING") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_finished(c, r, 1);

    let o = rbp(&["reproduce", c, "--results", l, "--jobs", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let done = metrics(&local.join("long").join("rbp/seed-1"));
    assert_eq!(metrics(&run), done);
    assert_eq!(done.len(), 24);
    // the epochs finished before the requeue were kept, not recomputed: their lines, timing
    // included, are unchanged (a restart would have rewritten their `seconds`)
    let after = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let kept = before.lines().count().saturating_sub(1).max(1);
    for (i, (a, b)) in before.lines().zip(after.lines()).take(kept).enumerate() {
        assert_eq!(a, b, "epoch {} was recomputed", i + 1);
    }
}
