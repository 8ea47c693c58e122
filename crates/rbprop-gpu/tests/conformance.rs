//! The GPU backend against the conformance suite (`rbprop_core::backend::conformance`), on any
//! adapter (CI: lavapipe). Without an adapter the test says so and passes, unless `RBP_GPU=1`
//! makes that a failure.

use rbprop_core::backend::conformance;
use rbprop_gpu::Gpu;

#[test]
fn the_gpu_backend_conforms() {
    if !rbprop_gpu::testing::available() {
        return;
    }
    let failed: Vec<String> = conformance::all::<Gpu>()
        .into_iter()
        .filter_map(|(name, v)| v.err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
