//! Runs: [`dir`] owns everything about a run directory on disk (the result files' names, atomic
//! writes, the writer's lock, reading a run back, whether it is complete); [`training`] trains a
//! run into one, epoch by epoch, resuming from its checkpoint. Both are re-exported here.
//!
//! Dependencies go one way: `training` uses `dir` and the checkpoint module; the checkpoint
//! module uses `dir` (for its atomic write); `dir` uses neither.

pub mod device;
pub mod dir;
pub mod ensemble;
pub mod training;

pub use dir::{
    CHECKPOINT, CONFIG, EpochMetrics, LOCK, METRICS, RunDir, RunLock, SUMMARY, State, Summary,
    read_metrics, same_run, write_atomic,
};
pub use training::{
    Observer, PROBE_EXAMPLES, Silent, build_trainer, check_memory, epoch_metrics, probe, run,
    run_locked, run_locked_on, run_with_trainer, train_epoch,
};
