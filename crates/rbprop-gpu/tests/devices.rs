//! Devices are values: several in one process, each entered by the thread that trains on it,
//! every buffer kept on the device that made it.

use rbprop::backend::Backend as _;
use rbprop::config::TrainConfig;
use rbprop::run;
use rbprop::train::Trainer;
use rbprop_gpu::{Device, Gpu};

fn inputs() -> (Vec<f32>, Vec<u8>) {
    let x = (0..16 * 784)
        .map(|i| ((i * 7919 % 1000) as f32) / 1000.0)
        .collect();
    let labels = (0..16).map(|i| (i % 10) as u8).collect();
    (x, labels)
}

/// Three steps of an RBP net on `device`; its weights afterwards.
fn train_on(device: Device) -> Vec<Vec<f32>> {
    let config = TrainConfig {
        channel: "rbp".parse().unwrap(),
        hidden: vec![32, 32],
        batch: 16,
        ..TrainConfig::default()
    };
    let host = run::build_trainer(&config, (784, 1, 1), 10).unwrap();
    let (x, labels) = inputs();
    device.enter(|| {
        let mut t: Trainer<Gpu> = host.to_backend();
        for _ in 0..3 {
            t.step(&x, &labels);
        }
        let back: Trainer = t.to_backend();
        back.net.layers.iter().map(|l| l.w.clone()).collect()
    })
}

#[test]
fn two_devices_train_side_by_side_in_one_process() {
    if !rbprop_gpu::testing::available() {
        return;
    }
    // two devices of their own (on a machine with two adapters, name them; here both may be
    // the same adapter, still two devices with their own queues, kernels and buffers)
    let a = Device::open(None).unwrap();
    let b = Device::open(None).unwrap();
    assert_ne!(a, b);
    let alone = train_on(a);
    let (on_a, on_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| train_on(a));
        let tb = s.spawn(|| train_on(b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert_eq!(on_a, alone, "device a, trained beside b");
    assert_eq!(
        on_b, alone,
        "device b: the same kernels on the same adapter"
    );

    // a buffer stays on the device that made it, whichever device the thread entered since
    let buf = a.enter(|| Gpu::upload(&[1.0, -2.0, 3.0]));
    let (copy, scaled) = b.enter(|| {
        let mut copy = buf.clone();
        Gpu::scale(&mut copy, 2.0);
        (copy, Gpu::download(&buf))
    });
    assert_eq!(scaled, vec![1.0, -2.0, 3.0]);
    assert_eq!(Gpu::download(&copy), vec![2.0, -4.0, 6.0]);

    // the process's shared device is opened once per adapter
    assert_eq!(Device::shared(None).unwrap(), Device::shared(None).unwrap());
}
