//! The WGSL compute kernels, one module per kernel: binding 0 holds the kernel's parameters
//! (`P`, four integers and four floats), the others its buffers in the order the Rust side binds
//! them (read-only inputs first, the buffers written last). Elementwise kernels run 256
//! invocations per workgroup and stride over the grid, so any length fits the dispatch limits.
//! No kernel uses atomics or floating-point reductions across workgroups: the order of every
//! sum is fixed, so the same inputs give the same bits on one adapter.

/// Declarations every kernel shares.
const PRELUDE: &str = r#"
struct P {
    a: u32, b: u32, c: u32, d: u32,
    e: f32, f: f32, g: f32, h: f32,
    // a convolution's or a pooling's geometry
    g0: vec4<u32>, g1: vec4<u32>, g2: vec4<u32>,
    // stacked members (see `stacked`): x the kernel's own workgroup layers, y the members
    layers: vec4<u32>,
    // values per member of binding i + 1 (0: all members read the same buffer)
    strides: array<vec4<u32>, 4>,
}
@group(0) @binding(0) var<uniform> p: P;

fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn sign_of(v: f32) -> f32 {
    if (v > 0.0) { return 1.0; }
    if (v < 0.0) { return -1.0; }
    return 0.0;
}
"#;

/// `c ← alpha · op(a) · op(b) + beta · c` (`p.a = m`, `p.b = n`, `p.c = k`, `p.g0.x` =
/// transposes: bit 0 for `a`, bit 1 for `b`; `p.e = alpha`, `p.f = beta`): [`TILED`] on the
/// stored matrices, each operand staged along its contiguous dimension.
const GEMM: &str = r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
fn st(i: u32, j: u32, v: f32, z: u32) {
    let o = i * p.b + j;
    if (p.f == 0.0) { C[o] = p.e * v; } else { C[o] = p.e * v + p.f * C[o]; }
}
"#;

/// A dense layer's forward in one kernel, `C = f(op(A) · op(B) + bias)` (the operands as in
/// [`GEMM`], `p.g0.y` the activation's code, 3 for none): what `gemm`, `add_bias_rows` and
/// `activate` compute, in that order, to the same bits.
const GEMM_BIAS_ACT: &str = r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
fn st(i: u32, j: u32, v: f32, z: u32) {
    C[i * p.b + j] = act(p.g0.y, v + bias[j]);
}
"#;

/// A hidden layer's signal and δ in one product: `G = op(A) · op(B)` and `Dl = G ⊙ f'(S)` from
/// the layer's output `O = f(S)` (`p.g0.y` the activation's code, 3 for none: `Dl = G`) — what
/// `gemm` (α = 1, β = 0) and `delta_from_signal` compute, to the same bits.
const GEMM_SIGNAL_DELTA: &str = r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> O: array<f32>;
@group(0) @binding(4) var<storage, read_write> G: array<f32>;
@group(0) @binding(5) var<storage, read_write> Dl: array<f32>;
fn st(i: u32, j: u32, v: f32, z: u32) {
    let o = i * p.b + j;
    let g = p.e * v;
    G[o] = g;
    if (p.g0.y != 3u) { Dl[o] = g * dact(p.g0.y, O[o]); } else { Dl[o] = g; }
}
"#;

/// A dense layer's weight and bias gradient in one product: `W ← p.e · δᵀ · X + p.f · W` and
/// `bias ← p.e · Σ_rows δ + p.f · bias` as the `n_in + 1` columns of `δᵀ · [X | 1]` (`p.a =
/// n_out`, `p.b = n_in + 1`, `p.c` rows, `p.g0.y = n_in`).
const GEMM_WEIGHT_GRAD: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> W: array<f32>;
@group(0) @binding(4) var<storage, read_write> Bias: array<f32>;
fn a_along_k() -> bool { return false; }
fn b_along_k() -> bool { return false; }
fn la(i: u32, kk: u32) -> f32 { return D[kk * p.a + i]; }
fn lb(kk: u32, j: u32) -> f32 {
    if (j < p.g0.y) { return X[kk * p.g0.y + j]; }
    return 1.0;
}
fn st(i: u32, j: u32, v: f32, z: u32) {
    if (j < p.g0.y) {
        let o = i * p.g0.y + j;
        if (p.f == 0.0) { W[o] = p.e * v; } else { W[o] = p.e * v + p.f * W[o]; }
    } else {
        if (p.f == 0.0) { Bias[i] = p.e * v; } else { Bias[i] = p.e * v + p.f * Bias[i]; }
    }
}
"#;

/// The weight and bias gradients of `g` dense layers in one dispatch, layer `z` in workgroup
/// layer `z`: for each, what [`GEMM_WEIGHT_GRAD`] computes, to the same bits (`p.c` rows, `p.e`,
/// `p.f` shared; `p.g0[z] = n_out`, `p.g1[z] = n_in`). Bindings `4z + 1 … 4z + 4`: δ, X (read),
/// W, bias (written).
fn grouped_weight_grads(g: usize) -> String {
    let mut s = String::from("var<private> layer: u32;\n");
    for l in 0..g {
        let b = 4 * l + 1;
        s += &format!(
            "@group(0) @binding({b}) var<storage, read> D{l}: array<f32>;\n\
             @group(0) @binding({}) var<storage, read> X{l}: array<f32>;\n\
             @group(0) @binding({}) var<storage, read_write> W{l}: array<f32>;\n\
             @group(0) @binding({}) var<storage, read_write> Bias{l}: array<f32>;\n",
            b + 1,
            b + 2,
            b + 3
        );
    }
    let cases = |body: &dyn Fn(usize) -> String| -> String {
        (0..g)
            .map(|l| format!("        case {l}u: {{ {} }}\n", body(l)))
            .collect()
    };
    s += &format!(
        r#"
fn k_range(z: u32) -> vec2<u32> {{ layer = z; return vec2<u32>(0u, p.c); }}
fn dim_m(z: u32) -> u32 {{ return p.g0[z]; }}
fn dim_n(z: u32) -> u32 {{ return p.g1[z] + 1u; }}
fn a_along_k() -> bool {{ return false; }}
fn b_along_k() -> bool {{ return false; }}
fn la(i: u32, kk: u32) -> f32 {{
    let m = p.g0[layer];
    switch layer {{
{}        default: {{ return 0.0; }}
    }}
}}
fn lb(kk: u32, j: u32) -> f32 {{
    let nin = p.g1[layer];
    if (j >= nin) {{ return 1.0; }}
    switch layer {{
{}        default: {{ return 0.0; }}
    }}
}}
fn st(i: u32, j: u32, v: f32, z: u32) {{
    let nin = p.g1[layer];
    let o = i * nin + j;
    if (j < nin) {{
        switch layer {{
{}            default: {{}}
        }}
    }} else {{
        switch layer {{
{}            default: {{}}
        }}
    }}
}}
"#,
        cases(&|l| format!("return D{l}[kk * m + i];")),
        cases(&|l| format!("return X{l}[kk * nin + j];")),
        cases(&|l| format!(
            "if (p.f == 0.0) {{ W{l}[o] = p.e * v; }} else {{ W{l}[o] = p.e * v + p.f * W{l}[o]; }}"
        )),
        cases(&|l| format!(
            "if (p.f == 0.0) {{ Bias{l}[i] = p.e * v; }} else {{ Bias{l}[i] = p.e * v + p.f * Bias{l}[i]; }}"
        )),
    );
    s
}

/// Most dense layers whose gradients one dispatch computes (4 buffers each).
pub const MAX_GROUPED: usize = 4;

/// The operands of [`GEMM`], [`GEMM_BIAS_ACT`] and [`GEMM_SIGNAL_DELTA`]: `p.g0.x` bit 0 transposes `A`, bit 1 `B`.
const GEMM_OPERANDS: &str = r#"
fn a_along_k() -> bool { return (p.g0.x & 1u) == 0u; }
fn b_along_k() -> bool { return (p.g0.x & 2u) != 0u; }
fn la(i: u32, kk: u32) -> f32 {
    if ((p.g0.x & 1u) != 0u) { return A[kk * p.a + i]; }
    return A[i * p.c + kk];
}
fn lb(kk: u32, j: u32) -> f32 {
    if ((p.g0.x & 2u) != 0u) { return B[j * p.c + kk]; }
    return B[kk * p.b + j];
}
"#;

/// The grid-stride loop of an elementwise kernel over `p.a` values.
const EACH: &str = r#"
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.a; i += nwg.x * 256u) {
        body(i);
    }
}
"#;

/// `x[i] += bias[i % p.b]` for `i < p.a`.
const ADD_BIAS_ROWS: &str = r#"
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
fn body(i: u32) { x[i] = x[i] + bias[i % p.b]; }
"#;

/// `db[j] ← beta · db[j] + alpha · Σ_r delta[r][j]` (`p.a` columns, `p.b` rows, `p.e = alpha`,
/// `p.f = beta`): one invocation per column, summing the rows in order.
const BIAS_GRAD: &str = r#"
@group(0) @binding(1) var<storage, read> delta: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
fn body(j: u32) {
    var s = 0.0;
    for (var r = 0u; r < p.b; r++) { s += delta[r * p.a + j]; }
    db[j] = p.f * db[j] + p.e * s;
}
"#;

/// `x ← p.e · x`.
const SCALE: &str = r#"
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
fn body(i: u32) { x[i] = p.e * x[i]; }
"#;

/// `x ← x + y`.
const ADD_ASSIGN: &str = r#"
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
fn body(i: u32) { x[i] = x[i] + y[i]; }
"#;

/// The activations (`p.b`: 0 tanh, 1 logistic, 2 relu, 3 linear). tanh from the exponential
/// for |x| ≥ 1 (no overflow), the built-in below.
const ACTIVATIONS: &str = r#"
fn act(kind: u32, v: f32) -> f32 {
    switch kind {
        case 0u: {
            if (abs(v) < 1.0) { return tanh(v); }
            let t = exp(-2.0 * abs(v));
            let r = (1.0 - t) / (1.0 + t);
            return select(r, -r, v < 0.0);
        }
        case 1u: { return 1.0 / (1.0 + exp(-v)); }
        case 2u: { return select(v, 0.0, v < 0.0); }
        default: { return v; }
    }
}

fn dact(kind: u32, o: f32) -> f32 {
    switch kind {
        case 0u: { return 1.0 - o * o; }
        case 1u: { return o * (1.0 - o); }
        case 2u: { return select(0.0, 1.0, o > 0.0); }
        default: { return 1.0; }
    }
}
"#;

/// `x ← f(x)`.
const ACTIVATE: &str = r#"
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
fn body(i: u32) { x[i] = act(p.b, x[i]); }
"#;

/// `d ← g ⊙ f'(S)` from `o = f(S)`, or `d ← g` (`p.b = 3`: linear, or no derivative).
const DELTA_FROM_SIGNAL: &str = r#"
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> d: array<f32>;
fn body(i: u32) {
    if (p.b != 3u) { d[i] = g[i] * dact(p.b, o[i]); } else { d[i] = g[i]; }
}
"#;

/// `g ← g ⊙ f'(S)` from `o = f(S)` (linear leaves `g` as it is, NaN included).
const MUL_DERIVATIVE: &str = r#"
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
fn body(i: u32) {
    if (p.b != 3u) { g[i] = g[i] * dact(p.b, o[i]); }
}
"#;

/// Softmax and cross-entropy of `p.a` rows of `p.b` classes and the batch's totals, in one
/// workgroup: each invocation takes the rows `lid, lid + 256, …` (softmax in place; `p.c = 1`
/// writes `O_L − T` into `delta`) and sums their losses and correct counts in that order, then
/// the workgroup sums those in a fixed tree: `out[0]` the loss, `out[1]` the count of rows whose
/// first largest logit is at the label. A row with a non-finite logit becomes NaN (its loss
/// NaN, so the batch's).
const SOFTMAX_LOSS: &str = r#"
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
fn row(r: u32) -> vec2<f32> {
    let k = p.b;
    let base = r * k;
    let label = labels[r];
    var ok = true;
    var stat = vec2<f32>(bitcast<f32>(0x7fc00000u), 0.0);
    for (var j = 0u; j < k; j++) { ok = ok && finite(x[base + j]); }
    if (!ok) {
        for (var j = 0u; j < k; j++) { x[base + j] = bitcast<f32>(0x7fc00000u); }
    } else {
        var arg = 0u;
        var mx = x[base];
        for (var j = 1u; j < k; j++) {
            if (x[base + j] > mx) { mx = x[base + j]; arg = j; }
        }
        let zy = x[base + label] - mx;
        var sum = 0.0;
        for (var j = 0u; j < k; j++) {
            let e = exp(x[base + j] - mx);
            x[base + j] = e;
            sum += e;
        }
        let inv = 1.0 / sum;
        for (var j = 0u; j < k; j++) { x[base + j] = x[base + j] * inv; }
        stat = vec2<f32>(log(sum) - zy, select(0.0, 1.0, arg == label));
    }
    if (p.c == 1u) {
        for (var j = 0u; j < k; j++) {
            delta[base + j] = x[base + j] - select(0.0, 1.0, j == label);
        }
    }
    return stat;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var l = 0.0;
    var c = 0.0;
    for (var r = lid.x; r < p.a; r += 256u) {
        let s = row(r);
        l += s.x;
        c += s.y;
    }
    let t = pair_sum(lid.x, l, c);
    if (lid.x == 0u) {
        out[0] = t.x;
        out[1] = t.y;
    }
}
"#;

/// `pair_sum(lid, l, r)`: the sums of `l` and of `r` over a workgroup's 256 invocations, in a
/// fixed tree (every invocation gets them); `ELEM` is the type summed.
const PAIR_SUM: &str = r#"
var<workgroup> pair_l: array<ELEM, 256>;
var<workgroup> pair_r: array<ELEM, 256>;
fn pair_sum(lid: u32, l: ELEM, r: ELEM) -> vec2<ELEM> {
    pair_l[lid] = l;
    pair_r[lid] = r;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            pair_l[lid] = pair_l[lid] + pair_l[lid + s];
            pair_r[lid] = pair_r[lid] + pair_r[lid + s];
        }
        workgroupBarrier();
    }
    let t = vec2<ELEM>(pair_l[0], pair_r[0]);
    workgroupBarrier();
    return t;
}
"#;

/// `tree_max(lid, v)`: the largest `v` of a workgroup's 256 invocations, in a fixed tree (every
/// invocation gets it).
const TREE_MAX: &str = r#"
var<workgroup> part_max: array<f32, 256>;
fn tree_max(lid: u32, v: f32) -> f32 {
    part_max[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s && part_max[lid + s] > part_max[lid]) { part_max[lid] = part_max[lid + s]; }
        workgroupBarrier();
    }
    let m = part_max[0];
    workgroupBarrier();
    return m;
}
"#;

/// `out = −T` for `p.a = batch · classes` values (`p.b` classes).
const NEG_ONE_HOT: &str = r#"
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn body(i: u32) { out[i] = select(0.0, -1.0, labels[i / p.b] == i % p.b); }
"#;

/// `out = sign(src)`.
const SIGN: &str = r#"
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn body(i: u32) { out[i] = sign_of(src[i]); }
"#;

/// `out = |m| ⊙ sign(w)`.
const SIGN_MAGNITUDE: &str = r#"
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
fn body(i: u32) { out[i] = abs(m[i]) * sign_of(w[i]); }
"#;

/// `out = σ(w) · sign(w)` over `p.a` values in one workgroup: the mean, then the variance, each
/// summed per invocation in a fixed stride and then in a fixed tree.
const SIGN_UNIFORM: &str = r#"
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> part: array<f32, 256>;
fn total(lid: u32) -> f32 {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
        workgroupBarrier();
    }
    let t = part[0];
    workgroupBarrier();
    return t;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = p.a;
    var s = 0.0;
    for (var i = lid.x; i < n; i += 256u) { s += w[i]; }
    part[lid.x] = s;
    let mean = total(lid.x) / f32(n);
    var v = 0.0;
    for (var i = lid.x; i < n; i += 256u) { let d = w[i] - mean; v += d * d; }
    part[lid.x] = v;
    let sd = sqrt(total(lid.x) / f32(n));
    for (var i = lid.x; i < n; i += 256u) { out[i] = sd * sign_of(w[i]); }
}
"#;

/// Dropout: `g ← g · p.e` where `mask < p.b`, else 0.
const DROPOUT: &str = r#"
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
fn body(i: u32) { g[i] = select(0.0, g[i] * p.e, mask[i] < p.b); }
"#;

/// `out[0] = max |x|` over the finite and infinite entries of `p.a` values (NaN skipped), in
/// one workgroup.
const MAX_ABS: &str = r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var m = 0.0;
    for (var i = lid.x; i < p.a; i += 256u) {
        let v = abs(x[i]);
        if (v > m) { m = v; }
    }
    let most = tree_max(lid.x, m);
    if (lid.x == 0u) { out[0] = most; }
}
"#;

/// The geometry of a convolution (`p.g0 = (C_in, H, W, C_out)`, `p.g1 = (k, stride, pad,
/// H_out)`, `p.g2.x = W_out`) and the gather of its input: the value of input channel `ci` at
/// kernel offset `(ky, kx)` for output position `pos` of example `e`, zero in the padding.
const CONV_GEOM: &str = r#"
fn c_in() -> u32 { return p.g0.x; }
fn h_in() -> u32 { return p.g0.y; }
fn w_in() -> u32 { return p.g0.z; }
fn c_out() -> u32 { return p.g0.w; }
fn ksz() -> u32 { return p.g1.x; }
fn stride() -> u32 { return p.g1.y; }
fn pad() -> u32 { return p.g1.z; }
fn h_out() -> u32 { return p.g1.w; }
fn w_out() -> u32 { return p.g2.x; }
fn positions() -> u32 { return h_out() * w_out(); }
fn kdim() -> u32 { return c_in() * ksz() * ksz(); }
fn in_len() -> u32 { return c_in() * h_in() * w_in(); }
fn out_len() -> u32 { return c_out() * positions(); }

/// Column `kk = (ci, ky, kx)` of the im2col matrix at output position `pos` of example `e`.
fn gather(e: u32, kk: u32, pos: u32) -> f32 {
    let k2 = ksz() * ksz();
    let ci = kk / k2;
    let r = kk % k2;
    let iy = i32((pos / w_out()) * stride() + r / ksz()) - i32(pad());
    let ix = i32((pos % w_out()) * stride() + r % ksz()) - i32(pad());
    if (iy < 0 || ix < 0 || iy >= i32(h_in()) || ix >= i32(w_in())) { return 0.0; }
    return X[e * in_len() + (ci * h_in() + u32(iy)) * w_in() + u32(ix)];
}
"#;

/// A product `C = A · B` whose operands are read through `la(i, kk)` and `lb(kk, j)` and whose
/// result goes through `st(i, j, v, split)` (`p.a = m`, `p.b = n`, `p.c = k`): 64 × 64 tiles of
/// `C` per workgroup, staged through workgroup memory 16 steps of `k` at a time (each operand's
/// loads along `k` where `a_along_k()` / `b_along_k()` say it is contiguous, else along `m` /
/// `n`), 4 × 4 values per invocation, each summed in order of `k` with fused multiply-adds. The
/// stored matrices of [`GEMM`] and the convolutions' index maps (implicit im2col) are its
/// instances. With `p.d > 0`, workgroup `z` sums only `k` in `[z·p.d, (z + 1)·p.d)` (a split of
/// the inner dimension, summed afterwards in a fixed order).
const TILED: &str = r#"
const TS: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let kr = k_range(wid.z);
    let m = dim_m(wid.z);
    let n = dim_n(wid.z);
    let kb = kr.x;
    let ke = kr.y;
    let row0 = wid.y * TS;
    let col0 = wid.x * TS;
    // a grouped product's workgroup beyond its own product's tiles (the whole workgroup alike)
    if (row0 >= m || col0 >= n) { return; }
    let tid = lid.y * 16u + lid.x;
    // the 4 × 4 results in four vectors, not an array: an array indexed in a loop may live in
    // memory instead of registers
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 += BK) {
        for (var l = 0u; l < 4u; l++) {
            let idx = tid + l * 256u;
            var i = idx % TS;
            var kk = idx / TS;
            if (a_along_k()) { i = idx / BK; kk = idx % BK; }
            let gi = row0 + i;
            let gk = k0 + kk;
            var v = 0.0;
            if (gi < m && gk < ke) { v = la(gi, gk); }
            As[kk * TS + i] = v;
        }
        for (var l = 0u; l < 4u; l++) {
            let idx = tid + l * 256u;
            var j = idx % TS;
            var kk = idx / TS;
            if (b_along_k()) { j = idx / BK; kk = idx % BK; }
            let gj = col0 + j;
            let gk = k0 + kk;
            var u = 0.0;
            if (gj < n && gk < ke) { u = lb(gk, gj); }
            Bs[kk * TS + j] = u;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ai = kk * TS + lid.y * 4u;
            let bi = kk * TS + lid.x * 4u;
            let bv = vec4<f32>(Bs[bi], Bs[bi + 1u], Bs[bi + 2u], Bs[bi + 3u]);
            acc0 = fma(vec4<f32>(As[ai]), bv, acc0);
            acc1 = fma(vec4<f32>(As[ai + 1u]), bv, acc1);
            acc2 = fma(vec4<f32>(As[ai + 2u]), bv, acc2);
            acc3 = fma(vec4<f32>(As[ai + 3u]), bv, acc3);
        }
        workgroupBarrier();
    }
    let gi = row0 + lid.y * 4u;
    store_row(gi, col0 + lid.x * 4u, acc0, m, n, wid.z);
    store_row(gi + 1u, col0 + lid.x * 4u, acc1, m, n, wid.z);
    store_row(gi + 2u, col0 + lid.x * 4u, acc2, m, n, wid.z);
    store_row(gi + 3u, col0 + lid.x * 4u, acc3, m, n, wid.z);
}
"#;

/// The other form of [`TILED`], for devices where workgroup memory and barriers cost more than
/// they save (`RBP_GPU_PRODUCT=direct`): 32 × 32 results per workgroup of 8 × 8 invocations, 4 × 4
/// per invocation, each operand read straight from its buffer (through the caches). The same
/// fused multiply-adds in the same order of `k` as [`TILED`]: the same values (a zero's sign
/// aside).
const DIRECT: &str = r#"
const TS: u32 = 32u;

@compute @workgroup_size(8, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let kr = k_range(wid.z);
    let m = dim_m(wid.z);
    let n = dim_n(wid.z);
    let kb = kr.x;
    let ke = kr.y;
    let i0 = wid.y * TS + lid.y * 4u;
    let j0 = wid.x * TS + lid.x * 4u;
    if (i0 >= m || j0 >= n) { return; }
    let rows = min(m - i0, 4u);
    let cols = min(n - j0, 4u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = kb; kk < ke; kk++) {
        var a = vec4<f32>(0.0);
        var bv = vec4<f32>(0.0);
        for (var r = 0u; r < rows; r++) { a[r] = la(i0 + r, kk); }
        for (var c = 0u; c < cols; c++) { bv[c] = lb(kk, j0 + c); }
        acc0 = fma(vec4<f32>(a.x), bv, acc0);
        acc1 = fma(vec4<f32>(a.y), bv, acc1);
        acc2 = fma(vec4<f32>(a.z), bv, acc2);
        acc3 = fma(vec4<f32>(a.w), bv, acc3);
    }
    store_row(i0, j0, acc0, m, n, wid.z);
    store_row(i0 + 1u, j0, acc1, m, n, wid.z);
    store_row(i0 + 2u, j0, acc2, m, n, wid.z);
    store_row(i0 + 3u, j0, acc3, m, n, wid.z);
}
"#;

/// What [`TILED`] and [`DIRECT`] share for one product: its size `p.a × p.b`, the range of `k`
/// workgroup layer `z` sums (all of it, or with `p.d > 0` the part `[z·p.d, (z + 1)·p.d)`); then
/// [`STORE_ROW`].
const PRODUCT_COMMON: &str = r#"
fn k_range(z: u32) -> vec2<u32> {
    if (p.d == 0u) { return vec2<u32>(0u, p.c); }
    return vec2<u32>(z * p.d, min(p.c, z * p.d + p.d));
}
fn dim_m(z: u32) -> u32 { return p.a; }
fn dim_n(z: u32) -> u32 { return p.b; }
"#;

/// The stores of [`TILED`] and [`DIRECT`]: a row of 4 results through the instance's `st`.
const STORE_ROW: &str = r#"

fn store_row(gi: u32, gj0: u32, v: vec4<f32>, m: u32, n: u32, z: u32) {
    for (var c = 0u; c < 4u; c++) {
        if (gi < m && gj0 + c < n) { st(gi, gj0 + c, v[c], z); }
    }
}
"#;

/// Convolution forward: `out[e][co][pos] = Σ_kk W[co][kk] · cols_e[kk][pos] + b[co]`, the
/// product `W (C_out × K) · cols (K × batch·P)`.
const CONV_FORWARD: &str = r#"
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
fn a_along_k() -> bool { return true; }
fn b_along_k() -> bool { return false; }
fn la(i: u32, kk: u32) -> f32 { return Wt[i * kdim() + kk]; }
fn lb(kk: u32, j: u32) -> f32 { return gather(j / positions(), kk, j % positions()); }
fn st(i: u32, j: u32, v: f32, z: u32) {
    let e = j / positions();
    Out[e * out_len() + i * positions() + j % positions()] = v + bias[i];
}
"#;

/// A signal sent down through a convolution's transposed operation, gathered per input value:
/// `dx[e][ci][iy][ix] = β·dx + Σ_(co, ky, kx) W[co][ci][ky][kx] · δ[e][co][oy][ox]` over the
/// output positions whose window holds `(iy, ix)` at `(ky, kx)`: the product
/// `Wᵀ (C_in × C_out·k²) · D (C_out·k² × batch·H·W)` (`p.e = β`).
const CONV_BACKWARD_DATA: &str = r#"
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read> D: array<f32>;
@group(0) @binding(3) var<storage, read_write> DX: array<f32>;
// unused: the gather of the forward pass reads X
var<private> X: array<f32, 1>;
fn a_along_k() -> bool { return true; }
fn b_along_k() -> bool { return false; }
fn la(i: u32, kk: u32) -> f32 {
    let k2 = ksz() * ksz();
    return Wt[(kk / k2) * kdim() + i * k2 + kk % k2];
}
fn lb(kk: u32, j: u32) -> f32 {
    let k2 = ksz() * ksz();
    let co = kk / k2;
    let r = kk % k2;
    let hw = h_in() * w_in();
    let e = j / hw;
    let q = j % hw;
    let ty = i32(q / w_in() + pad()) - i32(r / ksz());
    let tx = i32(q % w_in() + pad()) - i32(r % ksz());
    let s = i32(stride());
    if (ty < 0 || tx < 0 || ty % s != 0 || tx % s != 0) { return 0.0; }
    let oy = u32(ty / s);
    let ox = u32(tx / s);
    if (oy >= h_out() || ox >= w_out()) { return 0.0; }
    return D[e * out_len() + co * positions() + oy * w_out() + ox];
}
fn st(i: u32, j: u32, v: f32, z: u32) {
    let hw = h_in() * w_in();
    let o = (j / hw) * in_len() + i * hw + j % hw;
    if (p.e == 0.0) { DX[o] = v; } else { DX[o] = p.e * DX[o] + v; }
}
"#;

/// A convolution's weight gradient, split along the examples' positions: part `z` of
/// `Σ_(e, pos) δ[e][co][pos] · cols_e[kk][pos]`, the product `D (C_out × batch·P) · colsᵀ`,
/// into `part[z][co][kk]`.
const CONV_WEIGHT_GRAD: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
fn a_along_k() -> bool { return true; }
fn b_along_k() -> bool { return true; }
fn la(i: u32, kk: u32) -> f32 {
    return D[(kk / positions()) * out_len() + i * positions() + kk % positions()];
}
fn lb(kk: u32, j: u32) -> f32 { return gather(kk / positions(), j, kk % positions()); }
fn st(i: u32, j: u32, v: f32, z: u32) { part[(z * p.a + i) * p.b + j] = v; }
"#;

/// `out[i] = α · Σ_z part[z][i] + β · out[i]` over `p.a` values and `p.b` parts, in order of
/// `z` (`p.e = α`, `p.f = β`).
const SUM_PARTS: &str = r#"
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn body(i: u32) {
    var s = 0.0;
    for (var z = 0u; z < p.b; z++) { s += part[z * p.a + i]; }
    if (p.f == 0.0) { out[i] = p.e * s; } else { out[i] = p.e * s + p.f * out[i]; }
}
"#;

/// A convolution's bias gradient, one workgroup per output channel `co = wid.x`:
/// `db[co] = β·db[co] + α·Σ_(e, pos) δ[e][co][pos]` (`p.a` = batch, `p.b` = positions,
/// `p.c` = values per example), summed per invocation in a fixed stride, then in a fixed tree.
const CONV_BIAS_GRAD: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let co = wid.x;
    var s = 0.0;
    for (var t = lid.x; t < p.a * p.b; t += 256u) {
        s += D[(t / p.b) * p.c + co * p.b + t % p.b];
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (lid.x < w) { part[lid.x] = part[lid.x] + part[lid.x + w]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        if (p.f == 0.0) { db[co] = p.e * part[0]; } else { db[co] = p.e * part[0] + p.f * db[co]; }
    }
}
"#;

/// The geometry of a max-pooling (`p.g0 = (C, H, W, k)`, `p.g1 = (stride, pad, H_out, W_out)`).
const POOL_GEOM: &str = r#"
fn pc() -> u32 { return p.g0.x; }
fn ph() -> u32 { return p.g0.y; }
fn pw() -> u32 { return p.g0.z; }
fn pk() -> u32 { return p.g0.w; }
fn ps() -> u32 { return p.g1.x; }
fn ppad() -> u32 { return p.g1.y; }
fn poh() -> u32 { return p.g1.z; }
fn pow_() -> u32 { return p.g1.w; }
fn p_in() -> u32 { return pc() * ph() * pw(); }
fn p_out() -> u32 { return pc() * poh() * pow_(); }
"#;

/// Max-pooling, one invocation per output: the window scanned in row-major order, the first
/// maximum kept on ties and the first NaN winning (the CPU's rule); `arg` receives the winner's
/// index within its example.
const POOL_FORWARD: &str = r#"
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
fn body(o: u32) {
    let e = o / p_out();
    let r = o % p_out();
    let plane = poh() * pow_();
    let c = r / plane;
    let oy = (r % plane) / pow_();
    let ox = (r % plane) % pow_();
    let y0 = i32(oy * ps()) - i32(ppad());
    let x0 = i32(ox * ps()) - i32(ppad());
    let ylo = u32(max(y0, 0));
    let yhi = u32(min(y0 + i32(pk()), i32(ph())));
    let xlo = u32(max(x0, 0));
    let xhi = u32(min(x0 + i32(pk()), i32(pw())));
    let base = e * p_in() + c * ph() * pw();
    var at = ylo * pw() + xlo;
    var best = X[base + at];
    for (var iy = ylo; iy < yhi; iy++) {
        for (var ix = xlo; ix < xhi; ix++) {
            let v = X[base + iy * pw() + ix];
            if (!is_nan(best) && (is_nan(v) || v > best)) {
                best = v;
                at = iy * pw() + ix;
            }
        }
    }
    Y[o] = best;
    arg[o] = c * ph() * pw() + at;
}
"#;

/// The adjoint of max-pooling, gathered per input value: `dst = β·dst + Σ src[o]` over the
/// outputs `o` whose maximum it was, added in order of `o` (the CPU's order) (`p.e = β`).
const UNPOOL: &str = r#"
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
fn body(i: u32) {
    let e = i / p_in();
    let r = i % p_in();
    let plane = ph() * pw();
    let c = r / plane;
    let iy = (r % plane) / pw();
    let ix = (r % plane) % pw();
    var acc = 0.0;
    if (p.e != 0.0) { acc = p.e * dst[i]; }
    // the windows holding (iy, ix): oy·s − pad ≤ iy < oy·s − pad + k
    let ty = i32(iy + ppad()) - i32(pk()) + 1;
    let tx = i32(ix + ppad()) - i32(pk()) + 1;
    let s = i32(ps());
    let oy0 = u32(max((ty + s - 1) / s, 0));
    let ox0 = u32(max((tx + s - 1) / s, 0));
    let oy1 = min((iy + ppad()) / ps() + 1u, poh());
    let ox1 = min((ix + ppad()) / ps() + 1u, pow_());
    for (var oy = oy0; oy < oy1; oy++) {
        for (var ox = ox0; ox < ox1; ox++) {
            let o = e * p_out() + (c * poh() + oy) * pow_() + ox;
            if (arg[o] == r) { acc += src[o]; }
        }
    }
    dst[i] = acc;
}
"#;

/// The quantizers' rules: `mid_rise(x)` with `p.e = α`, `p.f = Δ`; `mid_tread(x)` with
/// `p.e = α`, `p.f = s`, `p.g = s/α`; `steps(x, u)` to a signed number of steps, nearest
/// (`u < 0`, ties to even) or `floor(x + u)`, clamped to `±p.f`.
const QUANTIZE_RULES: &str = r#"
fn clamp_to(v: f32, hi: f32) -> f32 {
    if (v > hi) { return hi; }
    if (v < -hi) { return -hi; }
    return v;
}
fn mid_rise(x: f32) -> f32 {
    // an exact zero is no signal: it stays zero (the CPU's `mid_rise_one`)
    if (x == 0.0) { return x; }
    let d = p.f;
    return clamp_to(d * (floor(x / d) + 0.5), p.e - 0.5 * d);
}
fn mid_tread(x: f32) -> f32 {
    if (p.f == 0.0) { return p.e * sign_of(x); }
    return clamp_to(p.e * round(x * p.g) / p.f, p.e);
}
fn q_one(x: f32) -> f32 {
    if (p.b == 0u) { return mid_rise(x); }
    return mid_tread(x);
}
fn steps(x: f32, u: f32) -> f32 {
    if (u < 0.0) { return clamp_to(round(x), p.f); }
    return clamp_to(floor(x + u), p.f);
}
/// lowbias32 of `lo ⊕ k`, top 24 bits, as a number in [0, 1) (the CPU's `uniform_lo`).
fn uniform_lo(k: u32, lo: u32) -> f32 {
    var x = lo ^ k;
    x ^= x >> 16u;
    x *= 0x21f0aaadu;
    x ^= x >> 15u;
    x *= 0x735a2d97u;
    x ^= x >> 15u;
    return f32(x >> 8u) * (1.0 / 16777216.0);
}
/// `a · b + c` as a 64-bit number (high, low).
fn mul_add64(a: u32, b: u32, c: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let lo = a0 * b0;
    let mid1 = a1 * b0;
    let mid2 = a0 * b1;
    var hi = a1 * b1;
    let m = mid1 + mid2;
    hi += select(0u, 0x10000u, m < mid1);
    hi += m >> 16u;
    let low = lo + (m << 16u);
    hi += select(0u, 1u, low < lo);
    let out = low + c;
    hi += select(0u, 1u, out < low);
    return vec2<u32>(hi, out);
}
"#;

/// `g ← Q(g)` (`p.b`: 0 mid-rise, 1 mid-tread).
const QUANTIZE: &str = r#"
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
fn body(i: u32) { g[i] = q_one(g[i]); }
"#;

/// Of `p.a` values, in one workgroup: `out[0]` how many quantize to zero (mid-rise: the exact zeros),
/// `out[1]` how many lie beyond ±α.
const QUANTIZE_CENSUS: &str = r#"
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var z = 0u;
    var c = 0u;
    for (var i = lid.x; i < p.a; i += 256u) {
        let v = g[i];
        if (abs(v) > p.e) { c += 1u; }
        if (q_one(v) == 0.0) { z += 1u; }
    }
    let t = pair_sum(lid.x, z, c);
    if (lid.x == 0u) {
        out[0] = t.x;
        out[1] = t.y;
    }
}
"#;

/// The scale `auto` picks for a dense layer's quantized update, in one workgroup:
/// `out[0] = max_e rate · max|δ_e| · max(max|x_e|, 1)` (`p.a` = batch, `p.b = n_out`,
/// `p.c = n_in`, `p.e` = rate; a row whose maximum is not finite counts as 0).
const QU_CALIBRATE_DENSE: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
fn row_max(m: f32) -> f32 { return select(0.0, m, finite(m)); }
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var best = 0.0;
    for (var e = lid.x; e < p.a; e += 256u) {
        var d = 0.0;
        for (var r = 0u; r < p.b; r++) { let v = abs(D[e * p.b + r]); if (v > d) { d = v; } }
        var o = 0.0;
        for (var c = 0u; c < p.c; c++) { let v = abs(X[e * p.c + c]); if (v > o) { o = v; } }
        let m = p.e * row_max(d) * max(row_max(o), 1.0);
        if (m > best) { best = m; }
    }
    let most = tree_max(lid.x, best);
    if (lid.x == 0u) { out[0] = most; }
}
"#;

/// A dense layer's quantized update, one invocation per weight (`r·n_in + c`) and per bias
/// (after the weights): `acc = Σ_e steps(coef_e[r] · x_e[c])`, `coef = p.h · δ`, then
/// `w += acc · p.e` (`p.a` entries, `p.b = n_out`, `p.c = n_in`, `p.d` = batch, `p.e` = α/s/B,
/// `p.f = s`, `p.g` = 1 for stochastic rounding with `keys[hi]` the draw key of the indices
/// whose high half is `hi`).
const QU_DENSE: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> Wt: array<f32>;
@group(0) @binding(5) var<storage, read_write> bias: array<f32>;
fn draw(index: vec2<u32>) -> f32 {
    if (p.g == 0.0) { return -1.0; }
    return uniform_lo(keys[index.x], index.y);
}
fn body(j: u32) {
    let nw = p.b * p.c;
    var acc = 0.0;
    if (j < nw) {
        let r = j / p.c;
        let c = j % p.c;
        for (var e = 0u; e < p.d; e++) {
            let coef = p.h * D[e * p.b + r];
            acc += steps(coef * X[e * p.c + c], draw(mul_add64(e, nw, j)));
        }
        Wt[j] = Wt[j] + acc * p.e;
    } else {
        let r = j - nw;
        // biases count after every weight entry of every example
        let base = mul_add64(p.d, nw, 0u);
        for (var e = 0u; e < p.d; e++) {
            let coef = p.h * D[e * p.b + r];
            let off = e * p.b + r;
            let lo = base.y + off;
            let index = vec2<u32>(base.x + select(0u, 1u, lo < base.y), lo);
            acc += steps(coef, draw(index));
        }
        bias[r] = bias[r] + acc * p.e;
    }
}
"#;

/// A convolution's quantized update, one invocation per weight (`co·K + kk`) and per bias
/// (after the weights), one example at a time: the example's gradient `g = p.h · Σ_pos
/// δ_e[co][pos] · cols_e[kk][pos]` (`p.h = −rate`), then `acc += steps(g · s/α)` with index
/// `e · (weights + biases) + j`; `w += acc · p.e` (`p.a` entries, `p.d` = batch, `p.e` = α/s/B,
/// `p.f = s`, `p.g` = s/α, stochastic when `p.c = 1`). With `p.b = 1` it only calibrates:
/// `scratch[j] = max_e |g|`.
const QU_CONV: &str = r#"
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> Wt: array<f32>;
@group(0) @binding(5) var<storage, read_write> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;
fn body(j: u32) {
    let nw = c_out() * kdim();
    let per = nw + c_out();
    let is_w = j < nw;
    var co = j - nw;
    var kk = 0u;
    if (is_w) { co = j / kdim(); kk = j % kdim(); }
    var acc = 0.0;
    var most = 0.0;
    for (var e = 0u; e < p.d; e++) {
        var g = 0.0;
        for (var pos = 0u; pos < positions(); pos++) {
            let d = D[e * out_len() + co * positions() + pos];
            if (is_w) { g = fma(d, gather(e, kk, pos), g); } else { g += d; }
        }
        g = p.h * g;
        if (p.b == 1u) {
            if (abs(g) > most) { most = abs(g); }
        } else {
            var u = -1.0;
            if (p.c == 1u) {
                let index = mul_add64(e, per, j);
                u = uniform_lo(keys[index.x], index.y);
            }
            acc += steps(g * p.g, u);
        }
    }
    if (p.b == 1u) {
        scratch[j] = most;
    } else if (is_w) {
        Wt[j] = Wt[j] + acc * p.e;
    } else {
        bias[co] = bias[co] + acc * p.e;
    }
}
"#;

/// [`crate::probe`]: nothing (the cost of a dispatch).
const PROBE_EMPTY: &str = r#"
fn body(i: u32) {}
"#;

/// [`crate::probe`]: `p.a` dependent loads through the cycle in `next`, one invocation.
const PROBE_CHASE: &str = r#"
@group(0) @binding(1) var<storage, read> next: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() {
    var i = 0u;
    for (var n = 0u; n < p.a; n++) { i = next[i]; }
    out[0] = i;
}
"#;

/// [`crate::probe`]: `dst = src`.
const PROBE_COPY: &str = r#"
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
fn body(i: u32) { dst[i] = src[i]; }
"#;

/// Gives kernel `src` its stacked members: the dispatch's third dimension is the kernel's own
/// (`p.layers.x` layers) times the members (`p.layers.y`), and each storage binding `N` at
/// binding `j` is read at member `m`'s offset `m · p.strides[j − 1]` — every `N[i]` becomes
/// `N[MO_j + i]`, `wid.z` the kernel's own layer. With one member every offset is 0 and the
/// kernel computes what it did before, to the bit.
pub fn stacked(src: &str) -> String {
    let mut bindings: Vec<(usize, String)> = Vec::new();
    for line in src.lines() {
        let Some(rest) = line.trim().strip_prefix("@group(0) @binding(") else {
            continue;
        };
        let (num, decl) = rest.split_once(')').expect("a binding's number");
        let Some(decl) = decl.trim().strip_prefix("var<storage") else {
            continue;
        };
        let name = decl
            .split_once('>')
            .and_then(|(_, n)| n.split_once(':'))
            .map(|(n, _)| n.trim().to_string())
            .expect("a storage binding's name");
        bindings.push((num.parse().expect("a binding number"), name));
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
    let replace_word = |text: &str, from: &str, to: &str| -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(from) {
            out.push_str(&rest[..at]);
            let whole = !word(out.chars().last());
            out.push_str(if whole { to } else { from });
            rest = &rest[at + from.len()..];
        }
        out.push_str(rest);
        out
    };
    let mut body = replace_word(src, "wid.z", "(wid.z % p.layers.x)");
    for (j, name) in &bindings {
        body = replace_word(&body, &format!("{name}["), &format!("{name}[MO{j} + "));
    }
    let lanes = ["x", "y", "z", "w"];
    let mut head = String::new();
    let mut set = String::from("fn stacked_offsets(z: u32) {\n    let member = z / p.layers.x;\n");
    for (j, _) in &bindings {
        head += &format!("var<private> MO{j}: u32;\n");
        set += &format!(
            "    MO{j} = member * p.strides[{}].{};\n",
            (j - 1) / 4,
            lanes[(j - 1) % 4]
        );
    }
    set += "}\n";
    // the entry point learns its member first
    let at = body.find("fn main(").expect("a kernel's entry point") + "fn main(".len();
    let open = at + body[at..].find('{').expect("the entry point's body") + 1;
    let signature = &body[at..open];
    let (param, z) = if signature.contains("@builtin(workgroup_id) wid") {
        ("", "wid.z")
    } else if signature.trim_start().starts_with(')') {
        (
            "@builtin(workgroup_id) stacked_wid: vec3<u32>",
            "stacked_wid.z",
        )
    } else {
        (
            "@builtin(workgroup_id) stacked_wid: vec3<u32>, ",
            "stacked_wid.z",
        )
    };
    format!(
        "{head}{set}{}{param}{}\n    stacked_offsets({z});{}",
        &body[..at],
        &body[at..open],
        &body[open..]
    )
}

/// Every kernel: its name and WGSL source.
pub fn all() -> Vec<(&'static str, String)> {
    all_unstacked()
        .into_iter()
        .map(|(name, src)| (name, stacked(&src)))
        .collect()
}

/// Every kernel as written, before [`stacked`].
fn all_unstacked() -> Vec<(&'static str, String)> {
    let each = |body: &str| format!("{PRELUDE}{body}{EACH}");
    let act = |body: &str| format!("{PRELUDE}{ACTIVATIONS}{body}{EACH}");
    let whole = |body: &str| format!("{PRELUDE}{body}");
    // a product: its operands' instance, then the tiled or direct form
    let product = |instance: &str, form: &str| {
        format!("{PRELUDE}{instance}{form}{PRODUCT_COMMON}{STORE_ROW}")
    };
    // a grouped product brings its own sizes and ranges
    let grouped =
        |g: usize, form: &str| format!("{PRELUDE}{}{form}{STORE_ROW}", grouped_weight_grads(g));
    let conv = |instance: &str, form: &str| product(&format!("{CONV_GEOM}{instance}"), form);
    let mut all = vec![
        ("gemm", product(&format!("{GEMM}{GEMM_OPERANDS}"), TILED)),
        (
            "gemm_direct",
            product(&format!("{GEMM}{GEMM_OPERANDS}"), DIRECT),
        ),
        ("gemm_weight_grad", product(GEMM_WEIGHT_GRAD, TILED)),
        ("gemm_weight_grad_direct", product(GEMM_WEIGHT_GRAD, DIRECT)),
        (
            "gemm_bias_act",
            product(
                &format!("{ACTIVATIONS}{GEMM_BIAS_ACT}{GEMM_OPERANDS}"),
                TILED,
            ),
        ),
        (
            "gemm_bias_act_direct",
            product(
                &format!("{ACTIVATIONS}{GEMM_BIAS_ACT}{GEMM_OPERANDS}"),
                DIRECT,
            ),
        ),
        (
            "gemm_signal_delta",
            product(
                &format!("{ACTIVATIONS}{GEMM_SIGNAL_DELTA}{GEMM_OPERANDS}"),
                TILED,
            ),
        ),
        (
            "gemm_signal_delta_direct",
            product(
                &format!("{ACTIVATIONS}{GEMM_SIGNAL_DELTA}{GEMM_OPERANDS}"),
                DIRECT,
            ),
        ),
        ("probe_empty", each(PROBE_EMPTY)),
        ("probe_chase", whole(PROBE_CHASE)),
        ("probe_copy", each(PROBE_COPY)),
        ("add_bias_rows", each(ADD_BIAS_ROWS)),
        ("bias_grad", each(BIAS_GRAD)),
        ("scale", each(SCALE)),
        ("add_assign", each(ADD_ASSIGN)),
        ("activate", act(ACTIVATE)),
        ("mul_derivative", act(MUL_DERIVATIVE)),
        ("delta_from_signal", act(DELTA_FROM_SIGNAL)),
        (
            "softmax_loss",
            whole(&format!(
                "{}{SOFTMAX_LOSS}",
                PAIR_SUM.replace("ELEM", "f32")
            )),
        ),
        ("neg_one_hot", each(NEG_ONE_HOT)),
        ("sign", each(SIGN)),
        ("sign_magnitude", each(SIGN_MAGNITUDE)),
        ("sign_uniform", whole(SIGN_UNIFORM)),
        ("dropout", each(DROPOUT)),
        ("max_abs", whole(&format!("{TREE_MAX}{MAX_ABS}"))),
        ("conv_forward", conv(CONV_FORWARD, TILED)),
        ("conv_forward_direct", conv(CONV_FORWARD, DIRECT)),
        ("conv_backward_data", conv(CONV_BACKWARD_DATA, TILED)),
        (
            "conv_backward_data_direct",
            conv(CONV_BACKWARD_DATA, DIRECT),
        ),
        ("conv_weight_grad", conv(CONV_WEIGHT_GRAD, TILED)),
        ("conv_weight_grad_direct", conv(CONV_WEIGHT_GRAD, DIRECT)),
        ("sum_parts", each(SUM_PARTS)),
        ("conv_bias_grad", whole(CONV_BIAS_GRAD)),
        ("pool_forward", each(&format!("{POOL_GEOM}{POOL_FORWARD}"))),
        ("unpool", each(&format!("{POOL_GEOM}{UNPOOL}"))),
        ("quantize", each(&format!("{QUANTIZE_RULES}{QUANTIZE}"))),
        (
            "quantize_census",
            whole(&format!(
                "{QUANTIZE_RULES}{}{QUANTIZE_CENSUS}",
                PAIR_SUM.replace("ELEM", "u32")
            )),
        ),
        (
            "qu_calibrate_dense",
            whole(&format!("{TREE_MAX}{QU_CALIBRATE_DENSE}")),
        ),
        ("qu_dense", each(&format!("{QUANTIZE_RULES}{QU_DENSE}"))),
        (
            "qu_conv",
            each(&format!("{QUANTIZE_RULES}{CONV_GEOM}{QU_CONV}")),
        ),
    ];
    for (g, [tiled, direct]) in GROUPED_KERNELS.iter().enumerate().skip(2) {
        all.push((tiled, grouped(g, TILED)));
        all.push((direct, grouped(g, DIRECT)));
    }
    all
}

/// The kernels of [`grouped_weight_grads`] by the number of layers (tiled, direct): 2 to
/// [`MAX_GROUPED`].
pub const GROUPED_KERNELS: [[&str; 2]; MAX_GROUPED + 1] = [
    ["", ""],
    ["", ""],
    ["gemm_weight_grads2", "gemm_weight_grads2_direct"],
    ["gemm_weight_grads3", "gemm_weight_grads3_direct"],
    ["gemm_weight_grads4", "gemm_weight_grads4_direct"],
];

/// The storage buffers a kernel binds, where more than the 8 every adapter offers: the grouped
/// weight gradients' four per layer.
pub fn storage_buffers(name: &str) -> u32 {
    GROUPED_KERNELS
        .iter()
        .position(|k| k.contains(&name) && !name.is_empty())
        .map_or(0, |g| 4 * g as u32)
}
