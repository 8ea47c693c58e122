//! Checkpoints in the safetensors format: everything a run needs to continue exactly where it
//! stopped — forward weights and biases, momentum buffers, the channel's matrices (feedback
//! matrices, random kernels, sign magnitudes, quantizer scales), the update count and the position
//! of the channel-noise stream — plus the epoch and the run's configuration as metadata. The other
//! random streams are derived per epoch from the seed, so they need no state. The file loads in
//! PyTorch or NumPy (`safetensors.numpy.load_file`); every tensor is f32 with its real shape
//! (format [`FORMAT`], `rbp-checkpoint-3`):
//!
//! | tensor | shape |
//! |---|---|
//! | `layers.{l}.weight` | dense `[n_out, n_in]`; conv `[c_out, c_in, k, k]` |
//! | `layers.{l}.bias` | `[n_out]` dense, `[c_out]` conv |
//! | `momentum.{l}.weight`, `momentum.{l}.bias` | like the parameter (with momentum only) |
//! | `feedback.{i}.{j}`: hidden layer i, term j of its route | `[receiving, sending]`, below |
//! | `feedback.{i}.{j}.magnitude`: frSF's fixed magnitudes B0 | `[receiving, sending]`, below |
//! | `quantize.signal.alpha`, `quantize.update.alpha` | `[hidden layers]`, `[layers]` |
//!
//! Feedback tensors have one orientation, `[receiving, sending]`. A dense feedback matrix C
//! (SRBP, cascade, DRTP; RBP between dense layers) is `[N_i, N_k]`: N_i the units of hidden layer
//! i before its pooling, N_k those of the sending layer k (as the channel holds it). Random
//! weights in W_{i+1}'s place (RBP where layer i pools or layer i+1 is a convolution) and frSF
//! magnitudes are held in W_{i+1}'s orientation: where layer i+1 is dense they are stored
//! transposed, `[n_in, n_out]` of layer i+1 (n_in: layer i's units after pooling), and transposed
//! back when loaded; where layer i+1 is a convolution they keep its kernel shape
//! `[c_out, c_in, k, k]` (the signal goes down through the transposed convolution).
//!
//! Version 2 checkpoints ([`FORMAT_V2`]: conv weights `[c_out, c_in·k·k]`, channel tensors flat
//! in memory order) still load; any other version is refused, naming the file and both versions.

use crate::channel::{Carrier, SignScale};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::model::{Kind, Layer, Net};
use crate::train::Trainer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Format tag in the metadata.
pub const FORMAT: &str = "rbp-checkpoint-3";

/// The previous format, still read: conv weights `[c_out, c_in·k·k]`, channel tensors flat.
pub const FORMAT_V2: &str = "rbp-checkpoint-2";

/// The prefix of every version's format tag.
const FORMAT_PREFIX: &str = "rbp-checkpoint-";

/// The tensor layout of a format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V2,
    V3,
}

/// SHA-256 (hex) of the settings that determine a run's numbers: the resolved configuration with
/// the thread count and the number of epochs left out (results do not depend on the first; the
/// second may be raised to extend a run), in a canonical text that does not depend on how
/// settings files name the keys ([`TrainConfig::identity_text`]).
pub fn settings_hash(config: &TrainConfig) -> String {
    hex(&Sha256::digest(config.identity_text().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) over every tensor as stored (name, shape and bytes, in order) and the counters,
/// stored in the metadata so that a flipped bit anywhere in the numbers is detected (safetensors
/// has no checksum of its own).
fn checksum(all: &[Tensor], epoch: usize, step: u64, noise: u128, settings: &str) -> String {
    let mut h = Sha256::new();
    for (name, shape, values) in all {
        h.update(name.as_bytes());
        h.update([0]);
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    h.update(
        format!("epoch={epoch}\nstep={step}\nnoise={noise}\nsettings={settings}\n").as_bytes(),
    );
    hex(&h.finalize())
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A tensor as stored: name, shape, values.
type Tensor = (String, Vec<usize>, Vec<f32>);

/// Where a tensor's values are held in memory and how the file stores them.
#[derive(Clone, Debug, PartialEq)]
struct Place {
    /// The shape in the file.
    shape: Vec<usize>,
    /// `Some((rows, cols))`: held `rows × cols` row-major, stored transposed (`cols × rows`).
    transposed: Option<(usize, usize)>,
}

impl Place {
    fn as_is(shape: Vec<usize>) -> Place {
        Place {
            shape,
            transposed: None,
        }
    }
}

/// `v` (`rows × cols`, row-major) transposed.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// The shape of a layer's weights: `[n_out, n_in]` dense, `[c_out, c_in, k, k]` conv (version 2:
/// `[rows, len / rows]` for both).
fn weight_shape(l: &Layer, layout: Layout) -> Vec<usize> {
    match (layout, l.kind) {
        (Layout::V3, Kind::Dense) => vec![l.n_out, l.n_in],
        (Layout::V3, Kind::Conv(g)) => vec![g.c_out, g.c_in, g.k, g.k],
        (Layout::V2, _) => vec![l.b.len(), l.w.len() / l.b.len().max(1)],
    }
}

/// A tensor in W's place of `layer` (`n_out × n_in` dense, its kernel conv): dense transposed
/// into `[n_in, n_out]`, conv in its kernel shape.
fn in_place_of(layer: &Layer) -> Place {
    match layer.kind {
        Kind::Dense => Place {
            shape: vec![layer.n_in, layer.n_out],
            transposed: Some((layer.n_out, layer.n_in)),
        },
        Kind::Conv(g) => Place::as_is(vec![g.c_out, g.c_in, g.k, g.k]),
    }
}

/// The version-3 place of each channel tensor, by the names of `Channel::matrices_mut`; a name
/// not here (the quantizer scales) is stored flat.
fn channel_places(t: &Trainer) -> HashMap<String, Place> {
    let net: &Net = &t.net;
    let mut out = HashMap::new();
    for (i, route) in t.channel.routes.iter().enumerate() {
        for (j, term) in route.iter().flat_map(|r| &r.terms).enumerate() {
            let Some(sender) = net.layers.get(term.from) else {
                continue;
            };
            match &term.carrier {
                Carrier::Feedback(_) => {
                    let shape = vec![net.layers[i].n_out, sender.n_out];
                    out.insert(format!("feedback.{i}.{j}"), Place::as_is(shape));
                }
                Carrier::Kernel(_) => {
                    out.insert(format!("feedback.{i}.{j}"), in_place_of(sender));
                }
                Carrier::SignOfForward(SignScale::Fixed(_)) => {
                    out.insert(format!("feedback.{i}.{j}.magnitude"), in_place_of(sender));
                }
                _ => {}
            }
        }
    }
    out
}

/// Every tensor of a trainer in `layout`: (name, place) in file order, with its values in memory.
fn places(t: &mut Trainer, layout: Layout) -> Vec<(String, Place, &mut Vec<f32>)> {
    let channel = match layout {
        Layout::V3 => channel_places(t),
        Layout::V2 => HashMap::new(),
    };
    let shapes: Vec<(Place, Place)> = t
        .net
        .layers
        .iter()
        .map(|l| {
            (
                Place::as_is(weight_shape(l, layout)),
                Place::as_is(vec![l.b.len()]),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (i, (l, (w, b))) in t.net.layers.iter_mut().zip(shapes.clone()).enumerate() {
        out.push((format!("layers.{i}.weight"), w, &mut l.w));
        out.push((format!("layers.{i}.bias"), b, &mut l.b));
    }
    for (i, ((vw, vb), (w, b))) in t.velocity.iter_mut().zip(shapes).enumerate() {
        out.push((format!("momentum.{i}.weight"), w, vw));
        out.push((format!("momentum.{i}.bias"), b, vb));
    }
    for (name, m) in t.channel.matrices_mut() {
        let place = channel
            .get(&name)
            .filter(|p| p.shape.iter().product::<usize>() == m.len())
            .cloned()
            .unwrap_or_else(|| Place::as_is(vec![m.len()]));
        out.push((name, place, m));
    }
    out
}

/// All tensors of a trainer as stored in `layout`.
fn tensors(t: &mut Trainer, layout: Layout) -> Vec<Tensor> {
    places(t, layout)
        .into_iter()
        .map(|(name, p, v)| {
            let values = match p.transposed {
                Some((rows, cols)) => transpose(v, rows, cols),
                None => v.clone(),
            };
            (name, p.shape, values)
        })
        .collect()
}

/// Writes the checkpoint of `t` after `epoch` epochs to `path` (atomically).
pub fn save(path: &Path, t: &mut Trainer, epoch: usize, config: &TrainConfig) -> Result<()> {
    save_with_metrics(path, t, epoch, config, None)
}

/// [`save`], recording the SHA-256 of the run's `metrics.jsonl` text as it stands at `epoch`
/// (its lines for epochs 1 ..= `epoch`), so that a resume can tell the run's own metrics from a
/// file copied in from another run ([`metrics_sha256`]).
pub fn save_with_metrics(
    path: &Path,
    t: &mut Trainer,
    epoch: usize,
    config: &TrainConfig,
    metrics: Option<&str>,
) -> Result<()> {
    let data = to_bytes(t, epoch, config, metrics)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    crate::run::dir::write_atomic(path, &data)
}

/// The bytes [`save_with_metrics`] writes (a checkpoint held in memory, e.g. a pickled net's),
/// or why they could not be serialized.
pub fn to_bytes(
    t: &mut Trainer,
    epoch: usize,
    config: &TrainConfig,
    metrics: Option<&str>,
) -> std::result::Result<Vec<u8>, String> {
    let all = tensors(t, Layout::V3);
    let settings = settings_hash(config);
    let sum = checksum(&all, epoch, t.step, t.channel.noise_position(), &settings);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> =
        all.into_iter().map(|(n, s, v)| (n, s, bytes(&v))).collect();
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("consistent shape"),
            )
        })
        .collect();
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        ("step".to_string(), t.step.to_string()),
        (
            "noise_position".to_string(),
            t.channel.noise_position().to_string(),
        ),
        (
            "config".to_string(),
            toml::to_string(config).expect("config serializes"),
        ),
        ("settings_sha256".to_string(), settings),
        ("sha256".to_string(), sum),
        ("input_shape".to_string(), {
            let (c, h, w) = input_shape(&t.net);
            format!("{c},{h},{w}")
        }),
    ]);
    let mut meta = meta;
    if let Some(text) = metrics {
        meta.insert(METRICS_KEY.to_string(), text_sha256(text));
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

/// The metadata key of the SHA-256 of the run's metrics text at the checkpoint's epoch.
const METRICS_KEY: &str = "metrics_sha256";

/// The SHA-256 of a text, in hex.
pub fn text_sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The SHA-256 of the metrics text a checkpoint was saved with ([`save_with_metrics`]), if it
/// records one (checkpoints written before it did, and those of the Python `Net`, do not).
pub fn metrics_sha256(path: &Path) -> Result<Option<String>> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&data).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        problem: format!("not a safetensors file: {e}"),
        hint: "the file is not an rbp checkpoint".into(),
    })?;
    Ok(header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METRICS_KEY).cloned()))
}

/// An input shape: (channels, rows, cols).
pub type InputShape = (usize, usize, usize);

/// The shape a layer's weights are stored in (dense `[n_out, n_in]`, conv
/// `[c_out, c_in, k, k]`), which random weights standing in W's place share.
pub fn layer_weight_shape(layer: &Layer) -> Vec<usize> {
    weight_shape(layer, Layout::V3)
}

/// The input shape (channels, rows, cols) a net was built for: a conv net's first geometry, or
/// `(n_in, 1, 1)` for a dense net (whose layers see only the number of values).
pub fn input_shape(net: &Net) -> InputShape {
    match net.layers.first().map(|l| l.kind) {
        Some(Kind::Conv(g)) => (g.c_in, g.h, g.w),
        Some(Kind::Dense) => (net.layers[0].n_in, 1, 1),
        None => (0, 0, 0),
    }
}

/// What a checkpoint says about the net it holds without reading its numbers: the input shape
/// (written since this version; else `(n_in, 1, 1)` for a dense first layer, `None` for a conv
/// one) and the number of classes (the last layer's biases).
pub fn peek(path: &Path) -> Result<(Option<InputShape>, usize)> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |problem: String| Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: "the file is not an rbp checkpoint".into(),
    };
    let (_, header) = SafeTensors::read_metadata(&data)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let tensors = header.tensors();
    let layers = (0..)
        .take_while(|i| tensors.contains_key(&format!("layers.{i}.bias")))
        .count();
    let shape_of = |name: &str| tensors.get(name).map(|t| t.shape.clone());
    let classes = shape_of(&format!("layers.{}.bias", layers.max(1) - 1))
        .and_then(|s| s.first().copied())
        .ok_or_else(|| bad("no layers".into()))?;
    let stored = meta.get("input_shape").and_then(|v| {
        let n: Vec<usize> = v.split(',').filter_map(|x| x.parse().ok()).collect();
        (n.len() == 3).then(|| (n[0], n[1], n[2]))
    });
    let input = stored.or_else(|| match shape_of("layers.0.weight")?.as_slice() {
        [_, n_in] => Some((*n_in, 1, 1)),
        _ => None,
    });
    Ok((input, classes))
}

/// Every tensor of a trainer as a checkpoint stores it: name (`layers.{i}.weight`,
/// `feedback.{i}.{j}`, …), shape and values.
pub fn named_tensors(t: &mut Trainer) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    tensors(t, Layout::V3)
}

/// Restores `t` (built from `config`) from `path`; returns the epochs done. Reads this version
/// and version 2. Refused: another version, a checkpoint of other settings (only the number of
/// epochs and the thread count may differ), one whose update count is not `steps_per_epoch` per
/// epoch, a tensor of another shape than this run's, and numbers that do not match their checksum.
pub fn load(
    path: &Path,
    t: &mut Trainer,
    config: &TrainConfig,
    steps_per_epoch: u64,
) -> Result<usize> {
    restore(path, t, config, Some(steps_per_epoch))
}

/// [`load`] without the check of the update count, for a net trained by single steps as well as
/// by epochs (the library's); a checkpoint at epoch 0 is taken too.
pub fn load_any(path: &Path, t: &mut Trainer, config: &TrainConfig) -> Result<usize> {
    restore(path, t, config, None)
}

/// [`load_any`] from a checkpoint's bytes ([`to_bytes`]); `label` names them in errors.
pub fn load_bytes(
    label: &Path,
    data: &[u8],
    t: &mut Trainer,
    config: &TrainConfig,
) -> Result<usize> {
    restore_data(label, data, t, config, None)
}

fn restore(
    path: &Path,
    t: &mut Trainer,
    config: &TrainConfig,
    steps_per_epoch: Option<u64>,
) -> Result<usize> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    restore_data(path, &data, t, config, steps_per_epoch)
}

fn restore_data(
    path: &Path,
    data: &[u8],
    t: &mut Trainer,
    config: &TrainConfig,
    steps_per_epoch: Option<u64>,
) -> Result<usize> {
    let bad = |problem: String| Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: "the checkpoint does not belong to this run; delete it or use --overwrite".into(),
    };
    let (_, header) = SafeTensors::read_metadata(data)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let layout = match meta.get("format").map(String::as_str) {
        Some(FORMAT) => Layout::V3,
        Some(FORMAT_V2) => Layout::V2,
        Some(other) if other.starts_with(FORMAT_PREFIX) => {
            return Err(Error::Data {
                path: path.to_path_buf(),
                problem: format!(
                    "checkpoint format version {other}, expected {FORMAT} (this rbp also reads {FORMAT_V2})"
                ),
                hint: "the checkpoint was written by another version of rbp; continue it with that version, or pass --overwrite to start again".into(),
            });
        }
        other => {
            return Err(bad(format!("not an rbp checkpoint (format {other:?})")));
        }
    };
    let number = |key: &str| -> Result<u128> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("metadata `{key}` is missing or not a number")))
    };
    let (epoch, step, noise) = (
        number("epoch")? as usize,
        number("step")? as u64,
        number("noise_position")?,
    );
    let settings = settings_hash(config);
    let stored = |key: &str| -> Result<&String> {
        meta.get(key)
            .ok_or_else(|| bad(format!("metadata `{key}` is missing")))
    };
    if *stored("settings_sha256")? != settings {
        return Err(Error::Data {
            path: path.to_path_buf(),
            problem: "the checkpoint was written under other settings than this run's".into(),
            hint: "only raising --epochs (or changing --threads) continues a run; choose another --out, or pass --overwrite to start again".into(),
        });
    }
    if let Some(steps_per_epoch) = steps_per_epoch
        && (epoch == 0 || steps_per_epoch.checked_mul(epoch as u64) != Some(step))
    {
        return Err(bad(format!(
            "update count {step} does not match {epoch} epochs of {steps_per_epoch} updates"
        )));
    }
    if noise > u64::MAX as u128 {
        return Err(bad(format!("noise position {noise} is out of range")));
    }
    let sum = stored("sha256")?.clone();
    let st = SafeTensors::deserialize(data).map_err(|e| bad(format!("corrupt tensors: {e}")))?;
    for (name, place, dst) in places(t, layout) {
        let view = st
            .tensor(&name)
            .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is not f32")));
        }
        if view.shape() != place.shape.as_slice() || view.data().len() != dst.len() * 4 {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, this run's is {:?}",
                view.shape(),
                place.shape
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        *dst = match place.transposed {
            // stored cols × rows: back to rows × cols
            Some((rows, cols)) => transpose(&values, cols, rows),
            None => values,
        };
    }
    t.step = step;
    t.channel.set_noise_position(noise);
    if checksum(&tensors(t, layout), epoch, step, noise, &settings) != sum {
        return Err(Error::Data {
            path: path.to_path_buf(),
            problem: "the checkpoint's numbers do not match its checksum (the file is damaged)"
                .into(),
            hint: "pass --overwrite to start the run again".into(),
        });
    }
    Ok(epoch)
}
