//! The GPU backend end to end: whole BP / RBP / SRBP runs and conv nets against the CPU's,
//! determinism on one adapter, every net and channel setting accepted, the device in every entry
//! point and on the command line, divergence, the probes and the product form. (The kernels one
//! by one are tested in `crates/rbprop-gpu/tests/`.)
//!
//! Training tolerances: per-epoch losses within 1e-3 (relative), accuracies within 0.5 points,
//! after 3 epochs.
//!
//! The tests that need an adapter (lavapipe will do: `apt-get install mesa-vulkan-drivers`) are
//! skipped with a note when there is none, and fail instead when `RBP_GPU=1` (CI sets it).

use super::cli::rbp;
use rbprop::channel::{CHANNELS, Channel, ChannelOptions, ChannelSpec, Quantizer};
use rbprop::config::{Device, TrainConfig};
use rbprop::data;
use rbprop::kernels::Activation;
use rbprop::model::{Net, parse_arch};
use rbprop::rng::{self};
use rbprop::run::{self, EpochMetrics, Silent};
use rbprop_gpu::{Gpu, supports};

/// Whether a GPU adapter is open for the tests ([`rbprop_gpu::testing::available`]).
pub fn available() -> bool {
    rbprop_gpu::testing::available()
}

fn channel(net: &Net, name: &str, options: &ChannelOptions) -> Channel {
    Channel::new(
        &ChannelSpec::parse(name, false).unwrap(),
        options,
        net,
        &mut rng::stream(2, "feedback"),
        rng::stream(2, "channel-noise"),
    )
    .unwrap()
}

/// A seconds-long experiment of two dense channels.
const BASIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/smoke/basic.toml"
);

fn small(channel: &str, seed: u64) -> TrainConfig {
    TrainConfig {
        channel: channel.parse().unwrap(),
        hidden: vec![64, 32],
        epochs: 3,
        train_limit: Some(2000),
        seed,
        ..TrainConfig::default()
    }
}

fn on_device(config: &TrainConfig, split: &data::Split) -> rbprop::Result<Vec<EpochMetrics>> {
    let config = TrainConfig {
        device: Device::Gpu,
        ..config.clone()
    };
    run::run_locked_on::<Gpu>(&config, split, None, &mut Silent, &|t| {
        supports(&t.net, &t.channel).map_err(|p| rbprop::Error::config("device", p))
    })
}

#[test]
fn bp_rbp_and_srbp_train_like_the_cpu_and_repeat_exactly() {
    if !available() {
        return;
    }
    let split = data::embedded();
    for name in ["bp", "rbp", "srbp"] {
        let config = small(name, 3);
        let cpu = run::run(&config, &split, None, &mut Silent).unwrap();
        let a = on_device(&config, &split).unwrap();
        assert_eq!(a.len(), 3);
        for (c, g) in cpu.iter().zip(&a) {
            for (what, x, y) in [
                ("train loss", c.train_loss, g.train_loss),
                ("test loss", c.test_loss, g.test_loss),
            ] {
                assert!(
                    (x - y).abs() <= 1e-3 * x,
                    "{name} epoch {}: {what} cpu {x} gpu {y}",
                    c.epoch
                );
            }
            for (what, x, y) in [
                ("train acc", c.train_acc, g.train_acc),
                ("test acc", c.test_acc, g.test_acc),
            ] {
                assert!(
                    (x - y).abs() <= 0.005,
                    "{name} epoch {}: {what} cpu {x} gpu {y}",
                    c.epoch
                );
            }
            assert_eq!((c.steps, c.lr), (g.steps, g.lr));
        }
        // the same seed on the same adapter: the same numbers, to the bit
        let b = on_device(&config, &split).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.train_loss, x.train_acc, x.test_loss, x.test_acc),
                (y.train_loss, y.train_acc, y.test_loss, y.test_acc),
                "{name}: a rerun differs"
            );
        }
    }
}

#[test]
fn every_net_and_channel_setting_is_accepted() {
    // no adapter needed: the check reads the host net and channel
    let dense = Net::new(
        &[20, 8, 6, 3],
        Activation::Tanh,
        &mut rng::stream(1, "init"),
    );
    let conv = Net::from_arch(
        (1, 8, 8),
        &parse_arch("conv4k3p1-pool2s2-fc6").unwrap(),
        3,
        Activation::Tanh,
        &mut rng::stream(1, "init"),
    )
    .unwrap();
    let q = |s: &str| Some(Quantizer::parse(s, "q").unwrap());
    for net in [&dense, &conv] {
        for kind in CHANNELS {
            let options = ChannelOptions {
                dropout: if kind.hidden_signal { 0.2 } else { 0.0 },
                ..kind.example_options(2)
            };
            supports(net, &channel(net, kind.name, &options)).unwrap();
        }
        let quantized = ChannelOptions {
            quantize_signal: q("2"),
            quantize_update: q("8:auto:stochastic"),
            ..Default::default()
        };
        supports(net, &channel(net, "rbp", &quantized)).unwrap();
    }
}

/// Per-epoch agreement of two runs: losses within `rel` (relative), accuracies within `points`
/// percentage points, the same steps and rates.
fn assert_curves_close(
    what: &str,
    cpu: &[EpochMetrics],
    gpu: &[EpochMetrics],
    rel: f64,
    points: f64,
) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: epochs");
    for (c, g) in cpu.iter().zip(gpu) {
        for (m, x, y) in [
            ("train loss", c.train_loss, g.train_loss),
            ("test loss", c.test_loss, g.test_loss),
        ] {
            assert!(
                (x - y).abs() <= rel * x,
                "{what} epoch {}: {m} cpu {x} gpu {y}",
                c.epoch
            );
        }
        for (m, x, y) in [
            ("train acc", c.train_acc, g.train_acc),
            ("test acc", c.test_acc, g.test_acc),
        ] {
            assert!(
                (x - y).abs() <= points / 100.0,
                "{what} epoch {}: {m} cpu {x} gpu {y}",
                c.epoch
            );
        }
        assert_eq!((c.steps, c.lr), (g.steps, g.lr), "{what}");
    }
}

#[test]
fn conv_nets_and_the_quantizers_train_like_the_cpu_and_repeat_exactly() {
    if !available() {
        return;
    }
    // a short test set: lavapipe runs the kernels on the CPU
    let mut split = data::embedded();
    split.test.truncate(300);
    let conv = |channel: &str| TrainConfig {
        channel: channel.parse().unwrap(),
        arch: Some("conv4k5p2-pool3s2-conv6k3p1-pool2s2-fc16".into()),
        epochs: 2,
        batch: 50,
        lr: 0.05,
        momentum: 0.9,
        train_limit: Some(300),
        translate: 2,
        flip: true,
        seed: 4,
        ..TrainConfig::default()
    };
    // quantized updates take a constant rate and no momentum (paper §1)
    let quantized = |config: TrainConfig, signal: Option<&str>, update: Option<&str>| TrainConfig {
        channel_options: ChannelOptions {
            quantize_signal: signal.map(|q| Quantizer::parse(q, "q").unwrap()),
            quantize_update: update.map(|q| Quantizer::parse(q, "q").unwrap()),
            ..Default::default()
        },
        decay: if update.is_some() { 0.0 } else { config.decay },
        momentum: if update.is_some() {
            0.0
        } else {
            config.momentum
        },
        ..config
    };
    let dense = |channel: &str| TrainConfig {
        epochs: 2,
        train_limit: Some(500),
        ..small(channel, 5)
    };
    // (what, settings, loss tolerance, accuracy tolerance in points, rerun)
    let cases = [
        ("conv bp", conv("bp"), 1e-3, 0.5, true),
        ("conv rbp", conv("rbp"), 1e-3, 0.5, false),
        ("conv srbp", conv("srbp"), 1e-3, 0.5, false),
        (
            "quantize-signal 2 bits, rbp",
            quantized(dense("rbp"), Some("2"), None),
            1e-2,
            1.0,
            false,
        ),
        (
            "quantize-update 8 bits, bp",
            quantized(dense("bp"), None, Some("8")),
            1e-2,
            1.0,
            false,
        ),
        (
            "quantize-update 8 bits stochastic, srbp",
            quantized(dense("srbp"), None, Some("8:auto:stochastic")),
            1e-2,
            1.0,
            true,
        ),
        (
            "conv srbp, quantized signal and stochastic update",
            quantized(conv("srbp"), Some("3"), Some("8:auto:stochastic")),
            2e-2,
            2.0,
            true,
        ),
    ];
    for (what, config, rel, points, rerun) in cases {
        let cpu = run::run(&config, &split, None, &mut Silent).unwrap();
        let a = on_device(&config, &split).unwrap();
        assert_curves_close(what, &cpu, &a, rel, points);
        if rerun {
            let b = on_device(&config, &split).unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(
                    (x.train_loss, x.train_acc, x.test_loss, x.test_acc),
                    (y.train_loss, y.train_acc, y.test_loss, y.test_acc),
                    "{what}: a rerun differs"
                );
            }
        }
    }
}

#[test]
fn devices_share_an_identity_and_every_entry_point_takes_the_device() {
    let config = TrainConfig {
        epochs: 1,
        ..small("rbp", 1)
    };
    let gpu_config = TrainConfig {
        device: Device::Gpu,
        adapter: Some("llvmpipe".into()),
        ..config.clone()
    };
    assert_eq!(config.identity_text(), gpu_config.identity_text());
    assert_eq!(config.identity(), gpu_config.identity());
    // an adapter is a GPU's
    let e = TrainConfig {
        adapter: Some("x".into()),
        ..config.clone()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("adapter") && e.contains("device = \"gpu\""),
        "{e}"
    );
    if !available() {
        return;
    }
    // the library's entry point runs a GPU configuration on the GPU: the numbers of the GPU
    // backend, not the CPU's
    let split = data::embedded();
    let gpu_config = TrainConfig {
        adapter: None,
        ..gpu_config
    };
    let direct = on_device(&config, &split).unwrap();
    let through_run = run::run(&gpu_config, &split, None, &mut Silent).unwrap();
    let cpu = run::run(&config, &split, None, &mut Silent).unwrap();
    for ((d, r), c) in direct.iter().zip(&through_run).zip(&cpu) {
        assert_eq!(d.train_loss.to_bits(), r.train_loss.to_bits());
        assert_ne!(d.train_loss.to_bits(), c.train_loss.to_bits());
    }
    let e = run::run(
        &TrainConfig {
            adapter: Some("no-such-adapter-anywhere".into()),
            ..gpu_config
        },
        &split,
        None,
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    // (this process has its adapter open already: the error says which)
    assert!(
        e.contains("device") && e.contains("no-such-adapter-anywhere"),
        "{e}"
    );
}

#[test]
fn the_command_line_takes_device_and_adapter() {
    // --device is printed with the settings; --adapter needs --device gpu
    let o = rbp(&["train", "--device", "gpu", "--print-config"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("device = \"gpu\""));
    let o = rbp(&["train", "--print-config"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("device = \"cpu\""));
    let o = rbp(&["train", "--adapter", "x", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("adapter") && err.contains("--device gpu"),
        "{err}"
    );
    let o = rbp(&["reproduce", BASIC, "--adapter", "x"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--adapter") && err.contains("--device gpu"),
        "{err}"
    );
    // reproduce's runs take the device, not into their identity
    let o = rbp(&["reproduce", BASIC, "--device", "gpu", "--print-config"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("device = \"gpu\"") && !out.contains("device = \"cpu\""),
        "{out}"
    );
    let o = rbp(&["train", "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    if !available() {
        return;
    }
    let args = [
        "train",
        "--device",
        "gpu",
        "--channel",
        "srbp",
        "--hidden",
        "16",
        "--train-limit",
        "300",
        "--epochs",
        "1",
    ];
    let o = rbp(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("adapter") && out.contains("epoch   1/1"),
        "{out}"
    );
    let o = rbp(&[&args[..], &["--adapter", "no-such-adapter-anywhere"]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no GPU adapter named like"));
    // a conv net with a quantized channel trains there too
    let o = rbp(&[
        &args[..],
        &["--arch", "conv4k5-pool2s2-fc16", "--quantize-signal", "2"],
    ]
    .concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a grid on the GPU: the runs written are found finished by a CPU invocation
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().to_str().unwrap();
    let grid = ["reproduce", BASIC, "--results", results, "--quick", "1"];
    let o = rbp(&[&grid[..], &["--device", "gpu", "--jobs", "2"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = rbp(&grid);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("already complete") && !out.contains("epoch 1/1"),
        "{out}"
    );
    let status = rbp(&[&grid[..], &["--status"]].concat());
    let st = String::from_utf8_lossy(&status.stdout);
    assert!(
        !st.contains("missing") && st.contains("finished"),
        "{st}\n{out}"
    );
}

/// A diverging run on the GPU stops like one on the CPU (the losses are read back every 64 steps
/// there): a clear error, status `diverged`, only finite epochs kept.
#[test]
fn a_diverging_run_stops_with_a_clear_error_on_the_gpu() {
    if !available() {
        return;
    }
    super::training::assert_diverges(TrainConfig {
        device: Device::Gpu,
        ..TrainConfig::default()
    });
}

/// Where the Vulkan loader finds no working driver, `--device gpu` says so and why it may be
/// (here: the variable that limits the loader to an absent driver; needs no adapter).
/// The device probes (the bench's first part) run and measure a positive, finite amount for
/// each of their rows.
#[test]
fn the_device_probes_measure_every_row() {
    if !available() {
        return;
    }
    let rows = rbprop_gpu::probe::run(true);
    let names: Vec<&str> = rows.iter().map(|p| p.what.as_str()).collect();
    for want in [
        "empty dispatch",
        "submission",
        "round trip",
        "dependent load",
        "copy kernel",
    ] {
        assert!(
            names.iter().any(|n| n.contains(want)),
            "no {want} row in {names:?}"
        );
    }
    for form in ["tiled", "direct"] {
        let products = names
            .iter()
            .filter(|n| n.starts_with(&format!("product, {form}")));
        assert_eq!(products.count(), 5, "{form} products in {names:?}");
    }
    for p in &rows {
        assert!(p.value.is_finite() && p.value > 0.0, "{p:?}");
    }
}

/// `RBP_GPU_PRODUCT` picks the products' form: a value it does not take is refused by name, and
/// a conv net trained with either form writes the same metrics.
#[test]
fn the_product_form_is_chosen_by_the_environment() {
    let train = |form: &str, out: Option<&std::path::Path>| {
        let mut args = vec![
            "train",
            "--device",
            "gpu",
            "--arch",
            "conv4k5-pool2s2-fc16",
            "--channel",
            "rbp",
            "--train-limit",
            "300",
            "--epochs",
            "1",
        ];
        if let Some(o) = out {
            args.extend(["--out", o.to_str().unwrap()]);
        }
        std::process::Command::new(env!("CARGO_BIN_EXE_rbp"))
            .args(&args)
            .env("RBP_GPU_PRODUCT", form)
            .output()
            .expect("run rbp")
    };
    let o = train("bogus", None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RBP_GPU_PRODUCT=`bogus`: expected tiled or direct"),
        "{err}"
    );
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let metrics: Vec<Vec<serde_json::Value>> = ["tiled", "direct"]
        .iter()
        .map(|form| {
            let dir = tmp.path().join(form);
            let o = train(form, Some(&dir));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            std::fs::read_to_string(dir.join("metrics.jsonl"))
                .unwrap()
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("seconds");
                    v
                })
                .collect()
        })
        .collect();
    assert_eq!(metrics[0].len(), 1);
    assert_eq!(
        metrics[0], metrics[1],
        "tiled and direct products trained differently"
    );
}

#[test]
fn no_adapter_names_the_drivers_it_saw() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rbp"))
        .args([
            "train",
            "--device",
            "gpu",
            "--train-limit",
            "100",
            "--epochs",
            "1",
        ])
        // the loader reads only this (absent) manifest: no driver at all
        .env("VK_DRIVER_FILES", "/nonexistent/none.json")
        .env("VK_ICD_FILENAMES", "/nonexistent/none.json")
        .output()
        .expect("run rbp");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no GPU adapter found"), "{err}");
    if cfg!(target_os = "linux") {
        assert!(
            err.contains("VK_DRIVER_FILES=/nonexistent/none.json limits the Vulkan loader"),
            "{err}"
        );
    }
}

/// `rbp reproduce --device gpu --ensemble K`: runs that differ only in their seeds are stacked
/// on the device and write, bit for bit, what their solo GPU runs write — a dense grid, one whose
/// channel does not stack (dropout: its members train one after another) and a conv grid; the
/// grid groups by everything but the seed.
#[test]
fn gpu_ensembles_write_their_solo_gpu_runs() {
    use super::determinism::{results, tensors};
    use rbprop::experiment::Experiment;
    use rbprop::experiment::runner::{self, Options};
    if !available() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke");
    for name in ["basic.toml", "dropout.toml", "conv-fashion-mnist.toml"] {
        let exp = Experiment::load(&dir.join(name)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let opts = |root: &str, ensemble: usize| Options {
            results: tmp.path().join(root),
            jobs: 1,
            quick: Some(1),
            data: None,
            device: Some(Device::Gpu),
            adapter: None,
            ensemble,
        };
        let runs: Vec<_> = exp
            .runs()
            .unwrap()
            .into_iter()
            .map(|mut r| {
                opts("", 1).apply(&mut r.config);
                r
            })
            .collect();
        let units = runner::units(&runs, 8);
        assert!(units.iter().any(|u| u.len() > 1), "{name}: {units:?}");
        for u in &units {
            let first = &runs[u[0]].config;
            for &r in u {
                let c = TrainConfig {
                    seed: first.seed,
                    ..runs[r].config.clone()
                };
                assert_eq!(&c, first, "{name}: members differ only in their seeds");
            }
        }
        let solo = runner::reproduce(&exp, &opts("solo", 1), &runner::Quiet).unwrap();
        let together = runner::reproduce(&exp, &opts("ens", 8), &runner::Quiet).unwrap();
        assert_eq!(solo, together, "{name}");
        for r in &runs {
            let (ds, de) = (
                r.dir(&tmp.path().join("solo").join(&exp.name)),
                r.dir(&tmp.path().join("ens").join(&exp.name)),
            );
            assert_eq!(results(&ds), results(&de), "{name} {}", r.id);
            assert!(tensors(&ds) == tensors(&de), "{name} {}", r.id);
        }
    }
}
