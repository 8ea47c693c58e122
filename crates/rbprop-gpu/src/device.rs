//! A GPU device: adapter, device and queue, the compiled kernels, and the command encoder that
//! collects the operations of a step until something must come back to the host.
//!
//! A [`Device`] is a value: opened ([`Device::open`], or [`Device::shared`] for the process's one
//! device per adapter), then entered by the thread that trains on it ([`Device::enter`]). A
//! buffer belongs to the device that made it and every operation runs on its operands' device,
//! so a process may train on several adapters at once, a thread per device.
//!
//! What a step costs on the host is kept small, since a real GPU runs a small net's kernels in
//! microseconds: the dispatches recorded between two submissions share one compute pass and take
//! their parameters from slots of one uniform buffer (written once per submission); storage
//! buffers a step lets go return to a pool at the next submission, to be handed out again instead
//! of allocating device memory; reads come back through one staging buffer.

use crate::shaders;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

/// Operations recorded before the encoder is submitted even if nothing is read back (bounds the
/// memory held by the recorded bind groups; also the slots of the parameter buffer).
const MAX_PENDING: usize = 512;

/// Free buffers the pool keeps, in bytes; beyond it, a buffer let go is freed.
const POOL_BYTES: u64 = 1 << 30;

/// Invocations per workgroup of the elementwise kernels.
pub const WORKGROUP: usize = 256;

/// The parameters of a kernel (`P` in the WGSL): four integers, four floats, twelve integers
/// of geometry (a convolution's or a pooling's), then what [`Context::dispatch3`] fills in for
/// stacked members: the kernel's own workgroup layers and the members, and each binding's
/// values per member (0: one buffer all members read).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub u: [u32; 4],
    pub f: [f32; 4],
    pub geom: [u32; 12],
    pub layers: [u32; 4],
    pub strides: [u32; 16],
}

pub struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pipelines: HashMap<&'static str, (wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
    pending: Mutex<Pending>,
    /// Bound where a kernel's optional output is absent.
    pub dummy: wgpu::Buffer,
    /// The parameters of one submission's dispatches, a slot of `stride` bytes each.
    params: wgpu::Buffer,
    stride: u64,
    pool: Mutex<Pool>,
    /// Where reads land on the host side (grown as needed).
    staging: Mutex<Option<wgpu::Buffer>>,
    /// Device time per kernel, when `RBP_GPU_PROFILE` is set and the adapter has timestamps.
    profiler: Option<Profiler>,
    /// The products' form unless a thread chose another ([`ProductForm::scoped`]).
    product: ProductForm,
    /// Opened on the best adapter (no name asked for).
    best: bool,
}

/// The form of the kernels behind every product (the dense products and the convolutions):
/// both give the same values, so the choice is one of speed, per device. `RBP_GPU_PRODUCT`
/// (`tiled`, the default, or `direct`) sets it for the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductForm {
    /// 64 × 64 results per workgroup through workgroup memory, 16 steps of k per barrier.
    Tiled,
    /// 32 × 32 results per workgroup, the operands read straight from their buffers.
    Direct,
}

thread_local! {
    static PRODUCT: std::cell::Cell<Option<ProductForm>> = const { std::cell::Cell::new(None) };
}

impl ProductForm {
    fn from_env() -> Result<Self, InitError> {
        match std::env::var("RBP_GPU_PRODUCT").as_deref() {
            Err(_) | Ok("tiled") => Ok(ProductForm::Tiled),
            Ok("direct") => Ok(ProductForm::Direct),
            Ok(other) => Err(InitError::Setting {
                var: "RBP_GPU_PRODUCT",
                value: other.to_string(),
                expected: "tiled or direct",
            }),
        }
    }

    /// Runs `f` with this form for the products this thread records (the form before is back
    /// afterwards, also if `f` panics).
    pub fn scoped<T>(self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<ProductForm>);
        impl Drop for Restore {
            fn drop(&mut self) {
                PRODUCT.with(|p| p.set(self.0));
            }
        }
        let _restore = Restore(PRODUCT.with(|p| p.replace(Some(self))));
        f()
    }

    /// The kernel of product `name` in this form, and the results per workgroup side.
    pub fn kernel(self, name: &'static str) -> (&'static str, usize) {
        match (self, name) {
            (ProductForm::Tiled, _) => (name, 64),
            (ProductForm::Direct, "gemm") => ("gemm_direct", 32),
            (ProductForm::Direct, "gemm_bias_act") => ("gemm_bias_act_direct", 32),
            (ProductForm::Direct, "gemm_weight_grad") => ("gemm_weight_grad_direct", 32),
            (ProductForm::Direct, "gemm_signal_delta") => ("gemm_signal_delta_direct", 32),
            (ProductForm::Direct, grouped)
                if let Some([_, direct]) = shaders::GROUPED_KERNELS
                    .iter()
                    .find(|k| k[0] == grouped && !grouped.is_empty()) =>
            {
                (direct, 32)
            }
            (ProductForm::Direct, "conv_forward") => ("conv_forward_direct", 32),
            (ProductForm::Direct, "conv_backward_data") => ("conv_backward_data_direct", 32),
            (ProductForm::Direct, "conv_weight_grad") => ("conv_weight_grad_direct", 32),
            (ProductForm::Direct, other) => panic!("`{other}` is not a product"),
        }
    }
}

thread_local! {
    /// Dispatches this thread recorded ([`crate::Gpu::dispatches`]).
    pub static DISPATCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Timestamps around every dispatch (each in a pass of its own), resolved at each submission,
/// which then waits for the device: for finding where a step's time goes, not for training.
struct Profiler {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// ns per timestamp tick.
    period: f64,
    /// Per kernel: dispatches timed and their total ns.
    totals: Mutex<HashMap<&'static str, (usize, f64)>>,
}

#[derive(Default)]
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    /// The compute pass open on `encoder`, ended before anything else is recorded.
    pass: Option<wgpu::ComputePass<'static>>,
    /// The parameter slots of the dispatches recorded, written at submission.
    params: Vec<u8>,
    /// When profiling: the kernels of the dispatches recorded, in the order of their timestamps.
    timed: Vec<&'static str>,
    ops: usize,
}

/// Storage buffers for reuse, by size. A buffer let go is retired until the next submission
/// (the operations recorded on it run before anything recorded after that), then free.
#[derive(Default)]
struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    free_bytes: u64,
    retiring: Vec<wgpu::Buffer>,
}

/// A storage buffer of its device's pool: back to it when dropped.
pub struct Pooled {
    buf: wgpu::Buffer,
    ctx: &'static Context,
}

impl Pooled {
    /// The device the buffer lives on.
    pub fn ctx(&self) -> &'static Context {
        self.ctx
    }
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pooled({} bytes on {})",
            self.buf.size(),
            self.ctx.info.name
        )
    }
}

impl std::ops::Deref for Pooled {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.ctx
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retiring
            .push(self.buf.clone());
    }
}

/// An opened GPU device (adapter, device, queue and compiled kernels): a value to hold, copy and
/// enter. It lives as long as the process (a device is opened a few times per process at most;
/// its buffers refer to it).
#[derive(Clone, Copy)]
pub struct Device(&'static Context);

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.0.info.name)
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Device {}

thread_local! {
    /// The device this thread's new buffers are made on ([`Device::enter`]).
    static CURRENT: Cell<Option<&'static Context>> = const { Cell::new(None) };
}

/// The devices [`Device::shared`] opened, one per adapter.
static SHARED: Mutex<Vec<&'static Context>> = Mutex::new(Vec::new());

impl Device {
    /// Opens a new device on the adapter whose name contains `name` (case-insensitive), or on
    /// the best adapter: a device of its own, whatever else the process has opened.
    pub fn open(name: Option<&str>) -> Result<Device, InitError> {
        Ok(Device(Box::leak(Box::new(open_context(name)?))))
    }

    /// The process's device on the adapter `name` chooses, opened the first time it is asked
    /// for: every run of a process that names the same adapter shares it (its kernels are
    /// compiled once).
    pub fn shared(name: Option<&str>) -> Result<Device, InitError> {
        let mut open = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let found = match name {
            Some(n) => open.iter().find(|c| matches(&c.info.name, n)),
            None => open.iter().find(|c| c.best),
        };
        if let Some(c) = found {
            return Ok(Device(c));
        }
        let device = Device::open(name)?;
        open.push(device.0);
        Ok(device)
    }

    /// The adapter's description.
    pub fn info(&self) -> &'static wgpu::AdapterInfo {
        &self.0.info
    }

    /// Runs `f` with this device as the thread's device (the one before is back afterwards,
    /// also if `f` panics): the buffers `f` makes from the host are made on it.
    pub fn enter<T>(self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<&'static Context>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self.0))));
        f()
    }

    /// Makes this device the thread's device until another is made or entered.
    pub fn make_current(self) {
        CURRENT.with(|c| c.set(Some(self.0)));
    }

    /// The thread's device, if it has one.
    pub fn current() -> Option<Device> {
        CURRENT.with(Cell::get).map(Device)
    }

    /// The device's state.
    pub fn context(self) -> &'static Context {
        self.0
    }
}

/// The thread's device ([`Device::enter`]), where buffers are made from the host.
pub fn context() -> &'static Context {
    CURRENT.with(Cell::get).expect(
        "the GPU backend made a buffer on a thread that entered no device (Device::enter or Gpu::init)",
    )
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
    /// The adapter refused to open a device.
    Device(String),
    /// An environment variable of the backend holds a value it does not take.
    Setting {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::NoAdapter => write!(
                f,
                "no GPU adapter found (Vulkan/Metal/DX12); install a driver, e.g. mesa-vulkan-drivers for a CPU Vulkan device{}",
                vulkan_hint()
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
            InitError::Device(e) => write!(f, "the GPU adapter did not open a device: {e}"),
            InitError::Setting {
                var,
                value,
                expected,
            } => write!(f, "{var}=`{value}`: expected {expected}"),
        }
    }
}

impl std::error::Error for InitError {}

/// On Linux, what the Vulkan loader would find: the drivers' manifests present, and how to see
/// why one did not load (a driver's library may lack its own dependencies, e.g. NVIDIA's needs
/// libglvnd's `libGLdispatch.so.0`).
fn vulkan_hint() -> String {
    if !cfg!(target_os = "linux") {
        return String::new();
    }
    let dirs = [
        "/usr/share/vulkan/icd.d",
        "/etc/vulkan/icd.d",
        "/usr/local/share/vulkan/icd.d",
    ];
    let mut manifests: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    manifests.sort();
    let chosen = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")));
    if let Some(chosen) = chosen {
        format!("; {chosen} limits the Vulkan loader to those drivers")
    } else if manifests.is_empty() {
        "; no Vulkan driver manifest in /usr/share/vulkan/icd.d or /etc/vulkan/icd.d".to_string()
    } else {
        format!(
            "; Vulkan driver manifests present but none gave an adapter: {} (VK_LOADER_DEBUG=error,warn shows why a driver did not load; NVIDIA's also needs libglvnd, libGLdispatch.so.0)",
            manifests.join(", ")
        )
    }
}

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

/// Opens a device on the adapter whose name contains `name` (case-insensitive), or on the best
/// adapter.
fn open_context(name: Option<&str>) -> Result<Context, InitError> {
    let product = ProductForm::from_env()?;
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
    let profile = std::env::var_os("RBP_GPU_PROFILE").is_some()
        && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("rbprop"),
        required_limits: adapter.limits(),
        required_features: if profile {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        },
        ..Default::default()
    }))
    .map_err(|e| InitError::Device(e.to_string()))?;
    // a kernel that binds more storage buffers than the adapter offers is left out (its
    // operations then run as several dispatches)
    let most = device.limits().max_storage_buffers_per_shader_stage;
    let pipelines = shaders::all()
        .into_iter()
        .filter(|(name, _)| shaders::storage_buffers(name) <= most)
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
            let layout = pipeline.get_bind_group_layout(0);
            (name, (pipeline, layout))
        })
        .collect();
    let dummy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unused"),
        size: 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let align = u64::from(device.limits().min_uniform_buffer_offset_alignment);
    let stride = (std::mem::size_of::<Params>() as u64).div_ceil(align) * align;
    let params = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("parameters"),
        size: stride * MAX_PENDING as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let profiler = profile.then(|| {
        let count = 2 * MAX_PENDING as u32;
        let bytes = u64::from(count) * 8;
        Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel times"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel times"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel times, host"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period: f64::from(queue.get_timestamp_period()),
            totals: Mutex::new(HashMap::new()),
        }
    });
    Ok(Context {
        best: name.is_none(),
        device,
        queue,
        info,
        pipelines,
        pending: Mutex::new(Pending::default()),
        dummy,
        params,
        stride,
        pool: Mutex::new(Pool::default()),
        staging: Mutex::new(None),
        profiler,
        product,
    })
}

fn matches(adapter: &str, wanted: &str) -> bool {
    adapter.to_lowercase().contains(&wanted.to_lowercase())
}

/// What a dispatch binds after its parameters.
pub enum Bind<'a> {
    /// One buffer, read or written as a whole (every member of a stacked dispatch reads it).
    Buf(&'a wgpu::Buffer),
    /// A buffer of `members` stacked segments of `stride` values: member `m`'s values start at
    /// `m · stride`.
    Stacked {
        buf: &'a wgpu::Buffer,
        members: u32,
        stride: u32,
    },
}

impl Bind<'_> {
    fn buffer(&self) -> &wgpu::Buffer {
        match self {
            Bind::Buf(b) | Bind::Stacked { buf: b, .. } => b,
        }
    }
}

impl Context {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pending encoder (a new one after a submission).
    fn encoder<'p>(&self, p: &'p mut Pending) -> &'p mut wgpu::CommandEncoder {
        p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    /// Records `f` into the pending encoder (submitted by [`Context::flush`]).
    pub fn record(&self, f: impl FnOnce(&wgpu::Device, &mut wgpu::CommandEncoder)) {
        let mut p = self.pending();
        p.pass = None;
        f(&self.device, self.encoder(&mut p));
        self.count(&mut p);
    }

    fn count(&self, p: &mut Pending) {
        p.ops += 1;
        if p.ops >= MAX_PENDING {
            self.submit(p);
        }
    }

    fn submit(&self, p: &mut Pending) {
        p.pass = None;
        if !p.params.is_empty() {
            self.queue.write_buffer(&self.params, 0, &p.params);
            p.params.clear();
        }
        let timed = std::mem::take(&mut p.timed);
        if let Some(mut enc) = p.encoder.take() {
            if let (Some(prof), false) = (&self.profiler, timed.is_empty()) {
                let n = 2 * timed.len() as u32;
                enc.resolve_query_set(&prof.queries, 0..n, &prof.resolved, 0);
                enc.copy_buffer_to_buffer(&prof.resolved, 0, &prof.readback, 0, u64::from(n) * 8);
            }
            self.queue.submit([enc.finish()]);
        }
        if let (Some(prof), false) = (&self.profiler, timed.is_empty()) {
            prof.collect(&self.device, &timed);
        }
        p.ops = 0;
        // what was let go before this submission is free for operations recorded after it
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for b in std::mem::take(&mut pool.retiring) {
            if pool.free_bytes + b.size() <= POOL_BYTES {
                pool.free_bytes += b.size();
                pool.free.entry(b.size()).or_default().push(b);
            }
        }
    }

    /// Submits what was recorded.
    pub fn flush(&self) {
        let mut p = self.pending();
        self.submit(&mut p);
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
        // stacked members: one more factor of the third dimension, each member's bindings at
        // its offsets (every kernel reads them: see `shaders::stacked`)
        let mut params = params;
        let mut members = 1;
        for (i, b) in bufs.iter().enumerate() {
            if let Bind::Stacked {
                members: k, stride, ..
            } = *b
                && k > 1
            {
                assert!(
                    members == 1 || members == k,
                    "a dispatch over stacks of {members} and of {k} members"
                );
                members = k;
                params.strides[i] = stride;
            }
        }
        params.layers = [groups.2, members, 0, 0];
        let groups = (groups.0, groups.1, groups.2 * members);
        DISPATCHES.with(|d| d.set(d.get() + 1));
        let (pipeline, layout) = &self.pipelines[name];
        let mut p = self.pending();
        let slot = p.params.len() as u64;
        p.params.extend_from_slice(bytemuck::bytes_of(&params));
        p.params.resize((slot + self.stride) as usize, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.params,
                offset: slot,
                size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
            }),
        }];
        entries.extend(bufs.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.buffer().as_entire_binding(),
        }));
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        });
        // timed: a pass of its own with a timestamp at each end
        let timed = self.profiler.as_ref().map(|_| {
            p.pass = None;
            let (&key, _) = self.pipelines.get_key_value(name).expect("a known kernel");
            p.timed.push(key);
            2 * (p.timed.len() as u32 - 1)
        });
        if p.pass.is_none() {
            let enc = self.encoder(&mut p);
            let writes = timed.map(|at| wgpu::ComputePassTimestampWrites {
                query_set: &self.profiler.as_ref().expect("timed").queries,
                beginning_of_pass_write_index: Some(at),
                end_of_pass_write_index: Some(at + 1),
            });
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: writes,
                })
                .forget_lifetime();
            p.pass = Some(pass);
        }
        let pass = p.pass.as_mut().expect("a pass was opened");
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        if timed.is_some() {
            p.pass = None;
        }
        self.count(&mut p);
    }

    /// The kernel of product `name` (`gemm`, `conv_*`) with an `m × n` result in this thread's
    /// [`ProductForm`], and its workgroups.
    pub fn product(&self, name: &'static str, m: usize, n: usize) -> (&'static str, (u32, u32)) {
        let form = PRODUCT.with(|p| p.get()).unwrap_or(self.product);
        let (kernel, side) = form.kernel(name);
        (kernel, (n.div_ceil(side) as u32, m.div_ceil(side) as u32))
    }

    /// Whether the kernel `name` was built for this adapter (see [`shaders::storage_buffers`]).
    pub fn has_kernel(&self, name: &str) -> bool {
        self.pipelines.contains_key(name)
    }

    /// Records an elementwise kernel over `n` values.
    pub fn each(&self, name: &str, mut params: Params, n: usize, bufs: &[Bind<'_>]) {
        params.u[0] = n as u32;
        let groups = n.div_ceil(WORKGROUP).min(65_535) as u32;
        self.dispatch(name, params, bufs, (groups, 1));
    }

    /// A storage buffer of at least 4 bytes from the pool, or a new one; its contents are
    /// whatever it held (see [`Context::buffer`]).
    pub fn scratch(&'static self, bytes: u64) -> Pooled {
        let size = bytes.max(4);
        let reused = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let b = pool.free.get_mut(&size).and_then(Vec::pop);
            if b.is_some() {
                pool.free_bytes -= size;
            }
            b
        };
        let buf = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        Pooled { buf, ctx: self }
    }

    /// A buffer holding a copy of the first `bytes` of `src` (copied on the device, after the
    /// operations recorded before).
    pub fn copy_of(&'static self, src: &wgpu::Buffer, bytes: u64) -> Pooled {
        let out = self.scratch(bytes);
        if bytes > 0 {
            self.record(|_, enc| enc.copy_buffer_to_buffer(src, 0, &out, 0, bytes));
        }
        out
    }

    /// A storage buffer holding `bytes` (at least 4 bytes).
    pub fn buffer_with(&'static self, bytes: &[u8]) -> Pooled {
        let b = self.scratch(bytes.len() as u64);
        if !bytes.is_empty() {
            // lands at the start of the next submission: after every operation on the buffer
            // before it went back to the pool, before every operation recorded from now on
            self.queue.write_buffer(&b, 0, bytes);
        }
        b
    }

    /// A zeroed storage buffer of `bytes` (at least 4).
    pub fn buffer(&'static self, bytes: u64) -> Pooled {
        let b = self.scratch(bytes);
        self.record(|_, enc| enc.clear_buffer(&b, 0, None));
        b
    }

    /// Writes `bytes` at byte `offset` of `dst`, after the operations recorded before.
    pub fn write(&self, dst: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        self.flush();
        self.queue.write_buffer(dst, offset, bytes);
    }

    /// The first `bytes` of `src`, on the host: submits what was recorded and waits.
    pub fn read(&self, src: &wgpu::Buffer, bytes: u64) -> Vec<u8> {
        self.read_many(&[(src, bytes)])
    }

    /// The first bytes of each buffer (each a multiple of 4), one after the other, in one trip
    /// to the host.
    pub fn read_many(&self, parts: &[(&wgpu::Buffer, u64)]) -> Vec<u8> {
        let total: u64 = parts.iter().map(|(_, n)| n).sum();
        if total == 0 {
            self.flush();
            return Vec::new();
        }
        let mut slot = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|s| s.size() < total) {
            *slot = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: total.next_power_of_two().max(256),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let staging = slot.as_ref().expect("a staging buffer was made");
        self.record(|_, enc| {
            let mut at = 0;
            for (src, n) in parts {
                if *n > 0 {
                    enc.copy_buffer_to_buffer(src, 0, staging, at, *n);
                }
                at += n;
            }
        });
        self.flush();
        let slice = staging.slice(..total);
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

impl Context {
    /// Device time per kernel since the last call, when profiling (`RBP_GPU_PROFILE` set and the
    /// adapter has timestamps): (kernel, dispatches, total ms), longest first; `None` otherwise.
    pub fn profile(&self) -> Option<Vec<(&'static str, usize, f64)>> {
        self.flush();
        let prof = self.profiler.as_ref()?;
        let totals = std::mem::take(&mut *prof.totals.lock().unwrap_or_else(|e| e.into_inner()));
        let mut rows: Vec<_> = totals
            .into_iter()
            .map(|(k, (n, ns))| (k, n, ns / 1e6))
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        Some(rows)
    }
}

impl Profiler {
    /// Waits for the submission just made and adds its dispatches' times.
    fn collect(&self, device: &wgpu::Device, timed: &[&'static str]) {
        let bytes = timed.len() as u64 * 16;
        let slice = self.readback.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("the GPU device was lost");
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&slice.get_mapped_range());
        self.readback.unmap();
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (name, t) in timed.iter().zip(ticks.chunks(2)) {
            let e = totals.entry(name).or_default();
            e.0 += 1;
            e.1 += t[1].saturating_sub(t[0]) as f64 * self.period;
        }
    }
}
