//! Where a run's steps execute: the one place a [`Device`] becomes a [`Backend`].
//!
//! Work that is generic over the backend implements [`OnBackend`]; [`on_device`] runs it on the
//! backend the settings' device names — the CPU, or the GPU adapter they choose, opened and
//! checked (a net or channel the GPU backend lacks is refused by name) before the work starts.
//! The run loop of the command line, `reproduce`, Slurm tasks and the Python package all go
//! through it. [`lend`] moves a host trainer onto the chosen backend for a while (the CPU's is
//! the trainer itself), and [`Resident`] keeps it there between calls.

use crate::backend::{Backend, Cpu};
use crate::config::{Device, TrainConfig};
use crate::error::Result;
use crate::train::Trainer;
use std::any::Any;

/// A check a trainer passes before it runs on a backend: the backend supports its net and
/// channel.
pub type Accept<'a> = dyn Fn(&Trainer) -> Result<()> + Sync + 'a;

/// Work generic over the backend, for [`on_device`].
pub trait OnBackend {
    type Output;
    /// Does the work on backend `B`. `accept` says whether `B` can run a trainer (call it on
    /// the host trainer before moving it there).
    fn run<B: Backend>(self, accept: &Accept<'_>) -> Result<Self::Output>;
}

/// Runs `work` on the backend `config.device` names: the CPU, or the process's device on the
/// GPU adapter `config.adapter` chooses (opened the first time, then shared by every run of the
/// process that names it), entered by this thread for the work.
pub fn on_device<W: OnBackend>(config: &TrainConfig, work: W) -> Result<W::Output> {
    match config.device {
        Device::Cpu => work.run::<Cpu>(&|_| Ok(())),
        Device::Gpu => gpu::run(config, work),
    }
}

/// A device opened by [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// `cpu`, or the GPU adapter's name, API and type (e.g. `llvmpipe (LLVM 19.1.7, 256 bits)
    /// (Vulkan, Cpu)`).
    pub description: String,
    /// The adapter is a GPU emulated on the CPU (Mesa's lavapipe, WARP, SwiftShader): it runs
    /// the GPU backend's kernels correctly but slower than the CPU backend.
    pub emulated: bool,
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl Opened {
    /// The warning to give when the adapter is an emulation, if it is.
    pub fn warning(&self) -> Option<String> {
        self.emulated.then(|| {
            format!(
                "the GPU adapter {} is a CPU emulation of a GPU: it computes correctly but slower than device \"cpu\"; choose a real GPU with the adapter setting if the machine has one",
                self.description
            )
        })
    }
}

/// Opens the device `config` names.
pub fn open(config: &TrainConfig) -> Result<Opened> {
    match config.device {
        Device::Cpu => Ok(Opened {
            description: "cpu".into(),
            emulated: false,
        }),
        Device::Gpu => gpu::open(config),
    }
}

/// `f` on `host` as a trainer of backend `B`: the trainer itself where `B` is the CPU, else a
/// copy moved onto `B` and brought back when `f` returns (the host keeps every update done).
pub fn lend<B: Backend, T>(host: &mut Trainer, f: impl FnOnce(&mut Trainer<B>) -> T) -> T {
    if let Some(same) = (host as &mut dyn Any).downcast_mut::<Trainer<B>>() {
        return f(same);
    }
    let mut moved: Trainer<B> = host.to_backend();
    let out = f(&mut moved);
    *host = moved.to_backend();
    out
}

/// A trainer left on its backend between calls (so that a loop of single steps moves only its
/// minibatches), or none: the host's copy is then the trainer.
#[derive(Default)]
pub struct Resident(Option<Kept>);

/// A trainer of some backend, with the functions that read it back as its type.
struct Kept {
    trainer: Box<dyn Any + Send + Sync>,
    back: fn(&dyn Any) -> Trainer,
    steps: fn(&dyn Any) -> u64,
}

fn back<B: Backend>(t: &dyn Any) -> Trainer {
    t.downcast_ref::<Trainer<B>>()
        .expect("kept as this type")
        .to_backend()
}

fn steps<B: Backend>(t: &dyn Any) -> u64 {
    t.downcast_ref::<Trainer<B>>()
        .expect("kept as this type")
        .step
}

impl Resident {
    /// The trainer on backend `B`: the one kept, or `host` moved there (the CPU's is `host`
    /// itself and is never kept). A trainer kept on another backend is brought back first.
    pub fn get<'a, B: Backend>(&'a mut self, host: &'a mut Trainer) -> &'a mut Trainer<B> {
        if (host as &dyn Any).is::<Trainer<B>>() {
            self.bring_back(host);
            return (host as &mut dyn Any)
                .downcast_mut::<Trainer<B>>()
                .expect("the same type");
        }
        if !matches!(&self.0, Some(k) if k.trainer.is::<Trainer<B>>()) {
            self.bring_back(host);
            self.0 = Some(Kept {
                trainer: Box::new(host.to_backend::<B>()),
                back: back::<B>,
                steps: steps::<B>,
            });
        }
        let kept = self.0.as_mut().expect("kept above");
        kept.trainer
            .downcast_mut::<Trainer<B>>()
            .expect("kept as this type")
    }

    /// Brings a kept trainer back into `host` (which is stale while one is kept).
    pub fn bring_back(&mut self, host: &mut Trainer) {
        if let Some(k) = self.0.take() {
            *host = (k.back)(k.trainer.as_ref());
        }
    }

    /// Updates done by the kept trainer, if one is kept.
    pub fn steps(&self) -> Option<u64> {
        self.0.as_ref().map(|k| (k.steps)(k.trainer.as_ref()))
    }

    /// Whether a trainer is kept.
    pub fn is_kept(&self) -> bool {
        self.0.is_some()
    }
}

/// The GPU backend behind `device = "gpu"`.
#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use crate::error::Error;
    use rbprop_gpu::{Device, Gpu};

    /// The process's device on the adapter the settings choose (opened once per adapter).
    fn device(config: &TrainConfig) -> Result<Device> {
        Device::shared(config.adapter.as_deref())
            .map_err(|e| Error::config("device", e.to_string()))
    }

    pub fn open(config: &TrainConfig) -> Result<Opened> {
        let info = device(config)?.info();
        Ok(Opened {
            description: format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
            emulated: info.device_type == rbprop_gpu::DeviceType::Cpu,
        })
    }

    pub fn run<W: OnBackend>(config: &TrainConfig, work: W) -> Result<W::Output> {
        device(config)?.enter(|| {
            work.run::<Gpu>(&|t: &Trainer| {
                rbprop_gpu::supports(&t.net, &t.channel)
                    .map_err(|problem| Error::config("device", problem))
            })
        })
    }
}

/// Without the GPU backend (built without the `gpu` feature), `device = "gpu"` is refused.
#[cfg(not(feature = "gpu"))]
mod gpu {
    use super::*;
    use crate::error::Error;

    fn missing() -> Error {
        Error::config(
            "device",
            "this build has no GPU backend (rbprop was built without its `gpu` feature); set device = \"cpu\"",
        )
    }

    pub fn open(_config: &TrainConfig) -> Result<Opened> {
        Err(missing())
    }

    pub fn run<W: OnBackend>(_config: &TrainConfig, _work: W) -> Result<W::Output> {
        Err(missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::build_trainer;

    fn trainer() -> Trainer {
        let config = TrainConfig {
            hidden: vec![4],
            ..TrainConfig::default()
        };
        build_trainer(&config, (1, 1, 6), 3).unwrap()
    }

    #[test]
    fn the_cpu_lends_the_host_trainer_itself_and_keeps_none() {
        let mut host = trainer();
        let at = &host as *const Trainer;
        lend::<Cpu, _>(&mut host, |t| {
            assert!(std::ptr::eq(t as *const Trainer, at));
            t.step += 5;
        });
        assert_eq!(host.step, 5);
        let mut resident = Resident::default();
        resident.get::<Cpu>(&mut host).step += 1;
        assert!(!resident.is_kept());
        assert_eq!(resident.steps(), None);
        assert_eq!(host.step, 6);
    }

    #[test]
    fn the_cpu_device_opens_and_accepts_everything() {
        struct Work<'a>(&'a Trainer);
        impl OnBackend for Work<'_> {
            type Output = &'static str;
            fn run<B: Backend>(self, accept: &Accept<'_>) -> Result<&'static str> {
                accept(self.0)?;
                Ok(B::NAME)
            }
        }
        let config = TrainConfig::default();
        let cpu = open(&config).unwrap();
        assert_eq!((cpu.to_string(), cpu.warning()), ("cpu".to_string(), None));
        assert_eq!(on_device(&config, Work(&trainer())).unwrap(), "cpu");
    }
}
