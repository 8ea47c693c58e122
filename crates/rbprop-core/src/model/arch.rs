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

/// Largest number of units (values per example) of one layer, and of channels of a convolution.
pub const MAX_UNITS: u64 = 1 << 28;
/// Largest number of channels of a convolution.
pub const MAX_CHANNELS: u64 = 1 << 16;

/// What a net costs in memory, counted before anything is allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Weights and biases.
    pub params: u64,
    /// Values per example over all layers (outputs before pooling, pooled maps, the input).
    pub units: u64,
    /// Scratch values per worker thread of the largest convolution (a column matrix or padded
    /// maps of one example).
    pub scratch: u64,
}

fn too_large(layer: usize, what: &str) -> Error {
    Error::config(
        "arch",
        format!("layer {layer}: {what} is too large to represent"),
    )
}

/// Checks the geometry of every layer of `spec` on inputs of shape `(channels, height, width)`
/// with overflow-safe arithmetic, and counts the net's footprint; the error names the layer and
/// the rule it breaks. Nothing is allocated.
pub fn plan(input: (usize, usize, usize), spec: &[LayerSpec], classes: usize) -> Result<Footprint> {
    let (mut c, mut h, mut w) = (input.0 as u64, input.1 as u64, input.2 as u64);
    let mut flat = false;
    let mut after_conv = false;
    let mut fp = Footprint {
        units: c * h * w,
        ..Footprint::default()
    };
    let add =
        |a: u64, b: u64, n: usize, what: &str| a.checked_add(b).ok_or_else(|| too_large(n, what));
    let mul =
        |a: u64, b: u64, n: usize, what: &str| a.checked_mul(b).ok_or_else(|| too_large(n, what));
    for (i, s) in spec.iter().enumerate() {
        let n = i + 1;
        match *s {
            LayerSpec::Dense { units } => {
                let units = units as u64;
                if units > MAX_UNITS {
                    return Err(Error::config(
                        "arch",
                        format!("layer {n}: fc{units} exceeds the limit of {MAX_UNITS} units"),
                    ));
                }
                let fan_in = mul(mul(c, h, n, "the input")?, w, n, "the input")?;
                fp.params = add(
                    fp.params,
                    add(
                        mul(fan_in, units, n, "the weight matrix")?,
                        units,
                        n,
                        "the weights",
                    )?,
                    n,
                    "the net",
                )?;
                fp.units = add(fp.units, units, n, "the net")?;
                (c, h, w, flat, after_conv) = (units, 1, 1, true, false);
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
                        format!("layer {n}: a convolution cannot follow a dense layer"),
                    ));
                }
                let (co, k, s) = (channels as u64, k as u64, stride as u64);
                if co > MAX_CHANNELS {
                    return Err(Error::config(
                        "arch",
                        format!("layer {n}: {co} channels exceed the limit of {MAX_CHANNELS}"),
                    ));
                }
                let p = pad.map_or((k - 1) / 2, |p| p as u64);
                let (h_out, w_out) = window_geometry(n, "kernel", (h, w), k, s, p)?;
                let kdim = mul(mul(c, k, n, "the kernel")?, k, n, "the kernel")?;
                fp.params = add(
                    fp.params,
                    add(mul(co, kdim, n, "the kernel")?, co, n, "the kernel")?,
                    n,
                    "the net",
                )?;
                let out = mul(
                    mul(co, h_out, n, "the output map")?,
                    w_out,
                    n,
                    "the output map",
                )?;
                if out > MAX_UNITS {
                    return Err(Error::config(
                        "arch",
                        format!(
                            "layer {n}: an output map of {co}×{h_out}×{w_out} exceeds the limit of {MAX_UNITS} units"
                        ),
                    ));
                }
                fp.units = add(fp.units, out, n, "the net")?;
                let cols = mul(
                    kdim,
                    mul(h_out, w_out, n, "the output map")?,
                    n,
                    "the column matrix",
                )?;
                let padded = mul(
                    c,
                    mul(h + 2 * p, w + 2 * p, n, "the padded map")?,
                    n,
                    "the padded map",
                )?; // p < k ≤ h + 2p was checked
                fp.scratch = fp.scratch.max(add(cols, padded, n, "the scratch")?);
                (c, h, w, after_conv) = (co, h_out, w_out, true);
            }
            LayerSpec::Pool { k, stride, pad } => {
                if !after_conv {
                    return Err(Error::config(
                        "arch",
                        format!("layer {n}: pooling must follow a convolution (once)"),
                    ));
                }
                let k = k as u64;
                let s = stride.map_or(k, |s| s as u64);
                let p = pad.map_or((k - 1) / 2, |p| p as u64);
                let (h_out, w_out) = window_geometry(n, "pooling window", (h, w), k, s, p)?;
                (h, w, after_conv) = (h_out, w_out, false);
                fp.units = add(
                    fp.units,
                    mul(c, mul(h, w, n, "the pooled map")?, n, "the pooled map")?,
                    n,
                    "the net",
                )?;
            }
        }
    }
    let fan_in = mul(mul(c, h, 0, "the input")?, w, 0, "the input")?;
    let classes = classes as u64;
    fp.params = add(
        fp.params,
        add(
            mul(fan_in, classes, spec.len() + 1, "the output layer")?,
            classes,
            0,
            "the net",
        )?,
        0,
        "the net",
    )?;
    fp.units = add(fp.units, classes, 0, "the net")?;
    Ok(fp)
}

/// Output size of a `k × k` window sliding with stride `s` over an `h × w` map padded by `p`,
/// under the rules that make every window see the input: p < k, k ≤ the padded map, the stride
/// no larger than the map.
fn window_geometry(
    n: usize,
    what: &str,
    (h, w): (u64, u64),
    k: u64,
    s: u64,
    p: u64,
) -> Result<(u64, u64)> {
    let rule = |why: String| Error::config("arch", format!("layer {n}: {why}"));
    if p >= k {
        return Err(rule(format!(
            "padding {p} must be smaller than the {what} size {k} (a window of padding alone sees no input)"
        )));
    }
    let side = h.min(w);
    let (Some(ph), Some(pw)) = (
        p.checked_mul(2).and_then(|p2| h.checked_add(p2)),
        p.checked_mul(2).and_then(|p2| w.checked_add(p2)),
    ) else {
        return Err(rule(format!("padding {p} is too large")));
    };
    if k > ph.min(pw) {
        return Err(rule(format!(
            "a {k}×{k} {what} (padding {p}) does not fit the {h}×{w} map"
        )));
    }
    if s > side {
        return Err(rule(format!(
            "stride {s} exceeds the {h}×{w} map: every window after the first would start beyond it"
        )));
    }
    Ok(((ph - k) / s + 1, (pw - k) / s + 1))
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
        // every rule is checked (and every size counted) before anything is allocated
        plan(input, spec, classes)?;
        let (mut c, mut h, mut w) = input;
        let mut layers: Vec<Layer> = Vec::new();
        for s in spec {
            match *s {
                LayerSpec::Dense { units } => {
                    layers.push(Layer::dense(c * h * w, units, rng));
                    (c, h, w) = (units, 1, 1);
                }
                LayerSpec::Conv {
                    channels,
                    k,
                    stride,
                    pad,
                } => {
                    let pad = pad.unwrap_or((k - 1) / 2);
                    let g = ConvGeom::new(c, h, w, channels, k, stride, pad)
                        .expect("the geometry was checked by plan");
                    layers.push(Layer::conv(g, rng));
                    (c, h, w) = (channels, g.h_out, g.w_out);
                }
                LayerSpec::Pool { k, stride, pad } => {
                    let (stride, pad) = (stride.unwrap_or(k), pad.unwrap_or((k - 1) / 2));
                    let p = PoolGeom::new(c, h, w, k, stride, pad)
                        .expect("the geometry was checked by plan");
                    let last = layers
                        .last_mut()
                        .expect("plan: pooling follows a convolution");
                    last.pool = Some(p);
                    (h, w) = (p.h_out, p.w_out);
                }
            }
        }
        layers.push(Layer::dense(c * h * w, classes, rng));
        Ok(Net { layers, activation })
    }
}
