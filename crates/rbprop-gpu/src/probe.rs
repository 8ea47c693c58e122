//! Where a device's time goes, measured apart from training: the cost of a dispatch, of a
//! submission and of a round trip to the host, the latency of one dependent load from device
//! memory, the bandwidth of a copy, and the products a dense step makes, each timed on the wall
//! clock around work that ends in a read back (so it includes everything the host waits for).
//! For telling a slow kernel from a slow driver, or memory that is not the device's own.

use crate::device::{Bind, Pooled, context};
use crate::{Gpu, GpuBuf, ProductForm, b, params};
use rbprop_core::backend::{Backend, Mat};
use std::time::Instant;

/// One measurement: what, how much, in which unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
}

fn probe(what: impl Into<String>, value: f64, unit: &'static str) -> Probe {
    Probe {
        what: what.into(),
        value,
        unit,
    }
}

/// Waits until the device has run everything recorded (a 4-byte read).
fn finish(sync: &GpuBuf) {
    let _ = Gpu::download(sync);
}

/// Seconds of `f`, run after a finished warm-up call and followed by [`finish`].
fn timed(sync: &GpuBuf, mut f: impl FnMut()) -> f64 {
    f();
    finish(sync);
    let t = Instant::now();
    f();
    finish(sync);
    t.elapsed().as_secs_f64()
}

/// A single cycle through `n` indices (Sattolo's shuffle), so a chase visits every one.
fn cycle(n: usize, mut seed: u64) -> Vec<u32> {
    let mut next: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((seed >> 33) % i as u64) as usize;
        next.swap(i, j);
    }
    next
}

/// Runs every probe on the thread's device. `small` shrinks the sizes (for a CPU's Vulkan driver,
/// where the full sizes take minutes).
pub fn run(small: bool) -> Vec<Probe> {
    let ctx = context();
    let sync = Gpu::zeros(1);
    let mut out = Vec::new();
    let empty = |n: usize| {
        for _ in 0..n {
            ctx.dispatch("probe_empty", params([0; 4], [0.0; 4]), &[], (1, 1));
        }
    };

    // dispatches in one submission
    let n = if small { 200 } else { 2000 };
    let s = timed(&sync, || empty(n));
    out.push(probe(
        "empty dispatch, many per submission",
        s * 1e6 / n as f64,
        "µs",
    ));
    // one dispatch per submission
    let n = if small { 50 } else { 500 };
    let s = timed(&sync, || {
        for _ in 0..n {
            empty(1);
            ctx.flush();
        }
    });
    out.push(probe(
        "submission of one dispatch",
        s * 1e6 / n as f64,
        "µs",
    ));
    // one dispatch, then wait for it
    let n = if small { 20 } else { 200 };
    let s = timed(&sync, || {
        for _ in 0..n {
            empty(1);
            finish(&sync);
        }
    });
    out.push(probe(
        "dispatch and wait (round trip)",
        s * 1e6 / n as f64,
        "µs",
    ));

    // dependent loads: a chase through a cycle, one invocation
    for len in [4096usize, if small { 1 << 20 } else { 1 << 26 }] {
        let label = format!("through {} KiB", (len * 4) >> 10);
        let chain = cycle(len, 7);
        let next: Pooled = ctx.buffer_with(bytemuck::cast_slice(&chain));
        let steps = if small { 20_000u32 } else { 200_000 };
        let s = timed(&sync, || {
            ctx.dispatch(
                "probe_chase",
                params([steps, 0, 0, 0], [0.0; 4]),
                &[Bind::Buf(&next), b(&sync)],
                (1, 1),
            );
        });
        out.push(probe(
            format!("dependent load, {label}"),
            s * 1e9 / f64::from(steps),
            "ns",
        ));
    }

    // bandwidth: a copy kernel over 64 Mi values (read + write)
    let len = if small { 1 << 22 } else { 1 << 26 };
    let (src, mut dst) = (Gpu::zeros(len), Gpu::zeros(len));
    let reps = if small { 2 } else { 10 };
    let s = timed(&sync, || {
        for _ in 0..reps {
            ctx.each(
                "probe_copy",
                params([0; 4], [0.0; 4]),
                len,
                &[b(&src), b(&dst)],
            );
        }
    });
    out.push(probe(
        format!("copy kernel, {} MiB each way", (len * 4) >> 20),
        (2 * 4 * len * reps) as f64 / s / 1e9,
        "GB/s",
    ));
    Gpu::scale(&mut dst, 0.0);

    // the products of a dense step of the paper's MNIST net (batch 100), then a large one
    let shapes: &[(usize, usize, usize, bool, bool, &str)] = &[
        (100, 784, 100, false, true, "x·Wᵀ 100×784→100 (first layer)"),
        (100, 100, 100, false, true, "h·Wᵀ 100×100→100"),
        (100, 100, 100, false, false, "δ·W 100×100→100"),
        (
            100,
            100,
            784,
            true,
            false,
            "δᵀ·x 100×100→784 (weight gradient)",
        ),
    ];
    for (form, name) in [
        (ProductForm::Tiled, "tiled"),
        (ProductForm::Direct, "direct"),
    ] {
        form.scoped(|| {
            for &(m, k, n, ta, tb, label) in shapes {
                let a = Gpu::zeros(m * k);
                let bm = Gpu::zeros(k * n);
                let mut c = Gpu::zeros(m * n);
                let reps = if small { 5 } else { 200 };
                let s = timed(&sync, || {
                    for _ in 0..reps {
                        gemm(&a, &bm, &mut c, (m, k, n), (ta, tb));
                    }
                });
                out.push(probe(
                    format!("product, {name}: {label}"),
                    s * 1e6 / reps as f64,
                    "µs",
                ));
            }
            let big = if small { 256 } else { 2048 };
            let (a, bm, mut c) = (
                Gpu::zeros(big * big),
                Gpu::zeros(big * big),
                Gpu::zeros(big * big),
            );
            let reps = if small { 1 } else { 10 };
            let s = timed(&sync, || {
                for _ in 0..reps {
                    gemm(&a, &bm, &mut c, (big, big, big), (false, false));
                }
            });
            out.push(probe(
                format!("product, {name}: {big}×{big}×{big}"),
                (2 * big * big * big * reps) as f64 / s / 1e9,
                "GFLOP/s",
            ));
        });
    }
    out
}

/// `c = op(a)·op(b)` through the backend's product (`op(a)` is `m × k`, `op(b)` is `k × n`).
fn gemm(
    a: &GpuBuf,
    bm: &GpuBuf,
    c: &mut GpuBuf,
    (m, k, n): (usize, usize, usize),
    t: (bool, bool),
) {
    let a = if t.0 {
        Mat::t(a, k, m)
    } else {
        Mat::new(a, m, k)
    };
    let bm = if t.1 {
        Mat::t(bm, n, k)
    } else {
        Mat::new(bm, k, n)
    };
    Gpu::gemm(1.0, a, bm, 0.0, c);
}
