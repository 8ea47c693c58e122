//! Architectures from a compact spec: layers separated by `-`, the output layer implied.
//!
//! | token | layer |
//! |---|---|
//! | `fc{N}` | dense layer of N units |
//! | `conv{C}k{K}[s{S}][p{P}\|same\|valid]` | convolution with C output channels, K×K kernel, stride S (1), zero padding P (default "same": (K−1)/2) |
//! | `pool{K}[s{S}][p{P}]` | max-pooling K×K after the previous layer's activation, stride S (default K), padding P (default (K−1)/2) |
//!
//! Presets: `paper-cifar10` = `conv32k5-pool3s2-conv32k5-pool3s2-conv64k5-pool3s2-fc64` (paper
//! §2, our default), `paper-mnist` = `fc100-fc100-fc100-fc100`.

use super::{Layer, Net};
use crate::error::{Error, Result};
use crate::kernels::Activation;
use crate::kernels::conv::ConvGeom;
use crate::kernels::pool::PoolGeom;
use crate::rng::Rng;

/// One token of an architecture spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerSpec {
    Dense {
        units: usize,
    },
    Conv {
        channels: usize,
        k: usize,
        stride: usize,
        pad: Option<usize>,
    },
    Pool {
        k: usize,
        stride: Option<usize>,
        pad: Option<usize>,
    },
}

/// Named architectures.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "paper-cifar10",
        "conv32k5-pool3s2-conv32k5-pool3s2-conv64k5-pool3s2-fc64",
    ),
    ("paper-mnist", "fc100-fc100-fc100-fc100"),
];

fn bad(token: &str, why: &str) -> Error {
    Error::config("arch", format!("`{token}`: {why}"))
}

/// Splits `rest` into (number, remainder).
fn number<'a>(token: &str, rest: &'a str, what: &str) -> Result<(usize, &'a str)> {
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n = rest[..end]
        .parse::<usize>()
        .map_err(|_| bad(token, &format!("expected a number for {what}")))?;
    Ok((n, &rest[end..]))
}

/// Parses a spec (or a preset name) into layer tokens.
pub fn parse_arch(spec: &str) -> Result<Vec<LayerSpec>> {
    let spec = PRESETS
        .iter()
        .find(|(n, _)| *n == spec.trim())
        .map_or(spec.trim(), |(_, s)| s);
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split('-')
        .map(|token| {
            let t = token.trim().to_ascii_lowercase();
            if let Some(rest) = t.strip_prefix("fc") {
                let (units, rest) = number(token, rest, "units")?;
                if !rest.is_empty() || units == 0 {
                    return Err(bad(token, "expected fc{UNITS} with UNITS ≥ 1"));
                }
                Ok(LayerSpec::Dense { units })
            } else if let Some(rest) = t.strip_prefix("conv") {
                let (channels, rest) = number(token, rest, "channels")?;
                let rest = rest.strip_prefix('k').ok_or_else(|| bad(token, "expected conv{C}k{K}"))?;
                let (k, mut rest) = number(token, rest, "kernel size")?;
                let (mut stride, mut pad) = (1, None);
                while !rest.is_empty() {
                    if let Some(r) = rest.strip_prefix("same") {
                        pad = None;
                        rest = r;
                    } else if let Some(r) = rest.strip_prefix("valid") {
                        pad = Some(0);
                        rest = r;
                    } else if let Some(r) = rest.strip_prefix('s') {
                        (stride, rest) = number(token, r, "stride")?;
                    } else if let Some(r) = rest.strip_prefix('p') {
                        let (p, r) = number(token, r, "padding")?;
                        pad = Some(p);
                        rest = r;
                    } else {
                        return Err(bad(token, "expected conv{C}k{K}[s{S}][p{P}|same|valid]"));
                    }
                }
                if channels == 0 || k == 0 || stride == 0 {
                    return Err(bad(token, "channels, kernel and stride must be ≥ 1"));
                }
                Ok(LayerSpec::Conv { channels, k, stride, pad })
            } else if let Some(rest) = t.strip_prefix("pool") {
                let (k, mut rest) = number(token, rest, "window")?;
                let (mut stride, mut pad) = (None, None);
                while !rest.is_empty() {
                    if let Some(r) = rest.strip_prefix('s') {
                        let (s, r) = number(token, r, "stride")?;
                        stride = Some(s);
                        rest = r;
                    } else if let Some(r) = rest.strip_prefix('p') {
                        let (p, r) = number(token, r, "padding")?;
                        pad = Some(p);
                        rest = r;
                    } else {
                        return Err(bad(token, "expected pool{K}[s{S}][p{P}]"));
                    }
                }
                if k == 0 || stride == Some(0) {
                    return Err(bad(token, "window and stride must be ≥ 1"));
                }
                Ok(LayerSpec::Pool { k, stride, pad })
            } else {
                Err(bad(
                    token,
                    "unknown layer; expected fc{N}, conv{C}k{K}[s{S}][p{P}], pool{K}[s{S}][p{P}], or a preset (paper-cifar10, paper-mnist)",
                ))
            }
        })
        .collect()
}

impl Net {
    /// Builds a net for inputs of shape `(channels, height, width)` from `spec`, ending in a dense
    /// layer of `classes` outputs.
    pub fn from_arch(
        input: (usize, usize, usize),
        spec: &[LayerSpec],
        classes: usize,
        activation: Activation,
        rng: &mut Rng,
    ) -> Result<Net> {
        let (mut c, mut h, mut w) = input;
        let mut flat = false;
        let mut layers: Vec<Layer> = Vec::new();
        for (n, s) in spec.iter().enumerate() {
            match *s {
                LayerSpec::Dense { units } => {
                    layers.push(Layer::dense(c * h * w, units, rng));
                    (c, h, w, flat) = (units, 1, 1, true);
                }
                LayerSpec::Conv {
                    channels,
                    k,
                    stride,
                    pad,
                } => {
                    if flat {
                        return Err(Error::config(
                            "arch",
                            format!("layer {}: a convolution cannot follow a dense layer", n + 1),
                        ));
                    }
                    let pad = pad.unwrap_or((k - 1) / 2);
                    let g = ConvGeom::new(c, h, w, channels, k, stride, pad).ok_or_else(|| {
                        Error::config("arch", format!("layer {}: a {k}×{k} kernel (padding {pad}) does not fit a {h}×{w} map", n + 1))
                    })?;
                    layers.push(Layer::conv(g, rng));
                    (c, h, w) = (channels, g.h_out, g.w_out);
                }
                LayerSpec::Pool { k, stride, pad } => {
                    let last = layers
                        .last_mut()
                        .ok_or_else(|| Error::config("arch", "a pooling must follow a layer"))?;
                    if last.pool.is_some() || flat {
                        return Err(Error::config(
                            "arch",
                            format!("layer {}: pooling must follow a convolution (once)", n + 1),
                        ));
                    }
                    let (stride, pad) = (stride.unwrap_or(k), pad.unwrap_or((k - 1) / 2));
                    let p = PoolGeom::new(c, h, w, k, stride, pad).ok_or_else(|| {
                        Error::config("arch", format!("layer {}: a {k}×{k} pooling (padding {pad}) does not fit a {h}×{w} map", n + 1))
                    })?;
                    last.pool = Some(p);
                    (h, w) = (p.h_out, p.w_out);
                }
            }
        }
        layers.push(Layer::dense(c * h * w, classes, rng));
        Ok(Net { layers, activation })
    }
}
