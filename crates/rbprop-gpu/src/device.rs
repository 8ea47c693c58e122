//! The device of the process: adapter, device and queue, the compiled kernels, and the command
//! encoder that collects the operations of a step until something must come back to the host.

use crate::shaders;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wgpu::util::DeviceExt;

/// Operations recorded before the encoder is submitted even if nothing is read back (bounds the
/// memory held by the recorded bind groups and parameter buffers).
const MAX_PENDING: usize = 512;

/// Invocations per workgroup of the elementwise kernels.
pub const WORKGROUP: usize = 256;

/// The parameters of a kernel (`P` in the WGSL): four integers, four floats, and twelve
/// integers of geometry (a convolution's or a pooling's).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub u: [u32; 4],
    pub f: [f32; 4],
    pub geom: [u32; 12],
}

pub struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    pending: Mutex<Pending>,
    /// Bound where a kernel's optional output is absent.
    pub dummy: wgpu::Buffer,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    ops: usize,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// The device, once [`crate::Gpu::init`] has chosen it.
pub fn context() -> &'static Context {
    CONTEXT
        .get()
        .expect("the GPU backend is used before Gpu::init chose an adapter")
}

/// Why no device could be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitError {
    /// No adapter at all.
    NoAdapter,
    /// `--adapter NAME` matched none of these.
    NoSuchAdapter {
        name: String,
        available: Vec<String>,
    },
    /// The process already uses another adapter.
    AlreadyOpen { open: String, wanted: String },
    /// The adapter refused to open a device.
    Device(String),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::NoAdapter => write!(
                f,
                "no GPU adapter found (Vulkan/Metal/DX12); install a driver, e.g. mesa-vulkan-drivers for a CPU Vulkan device"
            ),
            InitError::NoSuchAdapter { name, available } => write!(
                f,
                "no GPU adapter named like `{name}`; available: {}",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            ),
            InitError::AlreadyOpen { open, wanted } => write!(
                f,
                "this process already trains on GPU adapter `{open}`, not `{wanted}`"
            ),
            InitError::Device(e) => write!(f, "the GPU adapter did not open a device: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(&wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::from_env_or_default()
    })
}

/// The names of the adapters present (Vulkan, Metal, DX12), best first as wgpu lists them.
pub fn adapters() -> Vec<wgpu::AdapterInfo> {
    instance()
        .enumerate_adapters(wgpu::Backends::PRIMARY)
        .iter()
        .map(|a| a.get_info())
        .collect()
}

/// Opens the device of the adapter whose name contains `name` (case-insensitive), or of the best
/// adapter; once per process (a second call with a compatible name returns the open adapter).
pub fn init(name: Option<&str>) -> Result<&'static wgpu::AdapterInfo, InitError> {
    static OPENING: Mutex<()> = Mutex::new(());
    let _guard = OPENING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = CONTEXT.get() {
        return match name {
            Some(n) if !matches(&c.info.name, n) => Err(InitError::AlreadyOpen {
                open: c.info.name.clone(),
                wanted: n.to_string(),
            }),
            _ => Ok(&c.info),
        };
    }
    let instance = instance();
    let adapter = match name {
        Some(n) => {
            let all = instance.enumerate_adapters(wgpu::Backends::PRIMARY);
            let names = all.iter().map(|a| a.get_info().name).collect();
            all.into_iter()
                .find(|a| matches(&a.get_info().name, n))
                .ok_or(InitError::NoSuchAdapter {
                    name: n.to_string(),
                    available: names,
                })?
        }
        None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .map_err(|_| InitError::NoAdapter)?,
    };
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("rbprop"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| InitError::Device(e.to_string()))?;
    let pipelines = shaders::all()
        .into_iter()
        .map(|(name, source)| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            (name, pipeline)
        })
        .collect();
    let dummy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unused"),
        size: 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let context = Context {
        device,
        queue,
        info,
        pipelines,
        pending: Mutex::new(Pending::default()),
        dummy,
    };
    Ok(&CONTEXT.get_or_init(|| context).info)
}

fn matches(adapter: &str, wanted: &str) -> bool {
    adapter.to_lowercase().contains(&wanted.to_lowercase())
}

/// What a dispatch binds after its parameters.
pub enum Bind<'a> {
    Buf(&'a wgpu::Buffer),
}

impl Context {
    /// Records `f` into the pending encoder (submitted by [`Context::flush`]).
    pub fn record(&self, f: impl FnOnce(&wgpu::Device, &mut wgpu::CommandEncoder)) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let enc = p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        f(&self.device, enc);
        p.ops += 1;
        if p.ops >= MAX_PENDING {
            Self::submit(&self.queue, &mut p);
        }
    }

    fn submit(queue: &wgpu::Queue, p: &mut Pending) {
        if let Some(enc) = p.encoder.take() {
            queue.submit([enc.finish()]);
        }
        p.ops = 0;
    }

    /// Submits what was recorded.
    pub fn flush(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        Self::submit(&self.queue, &mut p);
    }

    /// Records kernel `name` over `groups` workgroups with `params` and `bufs` bound in order.
    pub fn dispatch(&self, name: &str, params: Params, bufs: &[Bind<'_>], groups: (u32, u32)) {
        self.dispatch3(name, params, bufs, (groups.0, groups.1, 1));
    }

    /// [`Context::dispatch`] over a three-dimensional grid of workgroups.
    pub fn dispatch3(
        &self,
        name: &str,
        params: Params,
        bufs: &[Bind<'_>],
        groups: (u32, u32, u32),
    ) {
        if groups.0 == 0 || groups.1 == 0 || groups.2 == 0 {
            return;
        }
        let pipeline = &self.pipelines[name];
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        entries.extend(bufs.iter().enumerate().map(|(i, b)| {
            let Bind::Buf(b) = b;
            wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            }
        }));
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.record(|_, enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(name),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        });
    }

    /// Records an elementwise kernel over `n` values.
    pub fn each(&self, name: &str, mut params: Params, n: usize, bufs: &[Bind<'_>]) {
        params.u[0] = n as u32;
        let groups = n.div_ceil(WORKGROUP).min(65_535) as u32;
        self.dispatch(name, params, bufs, (groups, 1));
    }

    /// A new storage buffer holding `bytes` (at least 4 bytes).
    pub fn buffer_with(&self, bytes: &[u8]) -> wgpu::Buffer {
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        if bytes.is_empty() {
            return self.buffer(4);
        }
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage,
            })
    }

    /// A new zeroed storage buffer of `bytes` (at least 4).
    pub fn buffer(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The first `bytes` of `src`, on the host: submits what was recorded and waits.
    pub fn read(&self, src: &wgpu::Buffer, bytes: u64) -> Vec<u8> {
        if bytes == 0 {
            self.flush();
            return Vec::new();
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.record(|_, enc| enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes));
        self.flush();
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("the GPU device was lost");
        rx.recv()
            .expect("the map callback ran")
            .expect("a readback buffer maps");
        let data = slice.get_mapped_range().to_vec();
        staging.unmap();
        data
    }
}
