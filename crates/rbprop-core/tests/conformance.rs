//! The CPU backend against the conformance suite (`rbprop_core::backend::conformance`): every
//! operation of the backend seam against plain f64 loops.

use rbprop_core::backend::{Cpu, conformance};

#[test]
fn the_cpu_backend_conforms() {
    let failed: Vec<String> = conformance::all::<Cpu>()
        .into_iter()
        .filter_map(|(name, v)| v.err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The suite is not vacuous: a product that is off by one part in 10⁴ is caught.
#[test]
fn the_suite_catches_a_wrong_value() {
    struct Off;
    impl Off {
        fn check() -> Result<(), String> {
            // the suite's own comparison, through a backend's result that is slightly off
            let mut c = vec![0.0f32; 4];
            let (a, b) = (vec![1.0f32, 2.0, 3.0, 4.0], vec![1.0f32, 0.0, 0.0, 1.0]);
            Cpu::gemm(
                1.0001,
                rbprop_core::backend::Mat::new(&a, 2, 2),
                rbprop_core::backend::Mat::new(&b, 2, 2),
                0.0,
                &mut c,
            );
            conformance::compare("gemm", &c, &[1.0, 2.0, 3.0, 4.0], 2)
        }
    }
    use rbprop_core::backend::Backend;
    assert!(Off::check().is_err());
    assert!(conformance::compare("same", &[1.0, 2.0], &[1.0, 2.0], 2).is_ok());
}
