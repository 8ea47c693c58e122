//! Checkpoints in the safetensors format: everything a run needs to continue exactly where it
//! stopped — forward weights and biases, momentum buffers, the channel's matrices (feedback
//! matrices, random kernels, sign magnitudes), the update count and the position of the
//! channel-noise stream — plus the epoch and the run's configuration as metadata. The other random
//! streams are derived per epoch from the seed, so they need no state. The file loads in
//! PyTorch or NumPy (`safetensors.numpy.load_file`): tensors `layers.{i}.weight` (`n_out × n_in`, or
//! `c_out × c_in·k·k` for a convolution), `layers.{i}.bias`, `momentum.{i}.weight|bias`,
//! `feedback.{i}.{j}` (hidden layer i, term j).

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::train::Trainer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Format tag in the metadata.
pub const FORMAT: &str = "rbp-checkpoint-2";

/// SHA-256 (hex) of the settings that determine a run's numbers: the resolved configuration with
/// the thread count and the number of epochs left out (results do not depend on the first; the
/// second may be raised to extend a run).
pub fn settings_hash(config: &TrainConfig) -> String {
    hex(&Sha256::digest(
        toml::to_string(&config.identity())
            .expect("config serializes")
            .as_bytes(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) over every tensor (name and bytes, in order) and the counters, stored in the
/// metadata so that a flipped bit anywhere in the numbers is detected (safetensors has no
/// checksum of its own).
fn checksum(
    all: &[(String, Vec<usize>, Vec<f32>)],
    epoch: usize,
    step: u64,
    noise: u128,
    settings: &str,
) -> String {
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

/// All tensors of a trainer, as (name, shape, values).
fn tensors(t: &mut Trainer) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    for (i, l) in t.net.layers.iter().enumerate() {
        let rows = l.b.len();
        out.push((
            format!("layers.{i}.weight"),
            vec![rows, l.w.len() / rows],
            l.w.clone(),
        ));
        out.push((format!("layers.{i}.bias"), vec![rows], l.b.clone()));
    }
    for (i, (vw, vb)) in t.velocity.iter().enumerate() {
        let rows = vb.len();
        out.push((
            format!("momentum.{i}.weight"),
            vec![rows, vw.len() / rows],
            vw.clone(),
        ));
        out.push((format!("momentum.{i}.bias"), vec![rows], vb.clone()));
    }
    for (name, m) in t.channel.matrices_mut() {
        out.push((name, vec![m.len()], m.clone()));
    }
    out
}

/// Writes the checkpoint of `t` after `epoch` epochs to `path` (atomically).
pub fn save(path: &Path, t: &mut Trainer, epoch: usize, config: &TrainConfig) -> Result<()> {
    let all = tensors(t);
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
    ]);
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    crate::run::write_atomic(path, &data)
}

/// Restores `t` (built from `config`) from `path`; returns the epochs done. Refused: a checkpoint
/// of other settings (only the number of epochs and the thread count may differ), one whose
/// update count is not `steps_per_epoch` per epoch, and one whose numbers do not match their
/// checksum.
pub fn load(
    path: &Path,
    t: &mut Trainer,
    config: &TrainConfig,
    steps_per_epoch: u64,
) -> Result<usize> {
    let bad = |problem: String| Error::Data {
        path: path.to_path_buf(),
        problem,
        hint: "the checkpoint does not belong to this run; delete it or use --overwrite".into(),
    };
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&data)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not an rbp checkpoint (format {:?})",
            meta.get("format")
        )));
    }
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
    if epoch == 0 || steps_per_epoch.checked_mul(epoch as u64) != Some(step) {
        return Err(bad(format!(
            "update count {step} does not match {epoch} epochs of {steps_per_epoch} updates"
        )));
    }
    if noise > u64::MAX as u128 {
        return Err(bad(format!("noise position {noise} is out of range")));
    }
    let sum = stored("sha256")?.clone();
    let st = SafeTensors::deserialize(&data).map_err(|e| bad(format!("corrupt tensors: {e}")))?;
    let fill = |name: &str, dst: &mut Vec<f32>| -> Result<()> {
        let view = st
            .tensor(name)
            .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if view.dtype() != Dtype::F32 || view.data().len() != dst.len() * 4 {
            return Err(bad(format!("tensor `{name}` has the wrong type or size")));
        }
        for (d, c) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    };
    for (i, l) in t.net.layers.iter_mut().enumerate() {
        fill(&format!("layers.{i}.weight"), &mut l.w)?;
        fill(&format!("layers.{i}.bias"), &mut l.b)?;
    }
    for (i, (vw, vb)) in t.velocity.iter_mut().enumerate() {
        fill(&format!("momentum.{i}.weight"), vw)?;
        fill(&format!("momentum.{i}.bias"), vb)?;
    }
    for (name, m) in t.channel.matrices_mut() {
        fill(&name, m)?;
    }
    t.step = step;
    t.channel.set_noise_position(noise);
    if checksum(&tensors(t), epoch, step, noise, &settings) != sum {
        return Err(Error::Data {
            path: path.to_path_buf(),
            problem: "the checkpoint's numbers do not match its checksum (the file is damaged)"
                .into(),
            hint: "pass --overwrite to start the run again".into(),
        });
    }
    Ok(epoch)
}
