//! The WGSL compute kernels, one module per kernel: binding 0 holds the kernel's parameters
//! (`P`, four integers and four floats), the others its buffers in the order the Rust side binds
//! them (read-only inputs first, the buffers written last). Elementwise kernels run 256
//! invocations per workgroup and stride over the grid, so any length fits the dispatch limits.
//! No kernel uses atomics or floating-point reductions across workgroups: the order of every
//! sum is fixed, so the same inputs give the same bits on one adapter.

/// Declarations every kernel shares.
const PRELUDE: &str = r#"
struct P { a: u32, b: u32, c: u32, d: u32, e: f32, f: f32, g: f32, h: f32 }
@group(0) @binding(0) var<uniform> p: P;

fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

fn sign_of(v: f32) -> f32 {
    if (v > 0.0) { return 1.0; }
    if (v < 0.0) { return -1.0; }
    return 0.0;
}
"#;

/// `c ← alpha · op(a) · op(b) + beta · c` (`p.a = m`, `p.b = n`, `p.c = k`, `p.d` = transposes:
/// bit 0 for `a`, bit 1 for `b`; `p.e = alpha`, `p.f = beta`): 64 × 64 tiles of `c` per
/// workgroup, staged through workgroup memory 16 steps of `k` at a time, 4 × 4 values per
/// invocation, each summed in order of `k` with fused multiply-adds.
const GEMM: &str = r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const TS: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m = p.a;
    let n = p.b;
    let k = p.c;
    let ta = (p.d & 1u) != 0u;
    let tb = (p.d & 2u) != 0u;
    let row0 = wid.y * TS;
    let col0 = wid.x * TS;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var q = 0u; q < 16u; q++) { acc[q] = 0.0; }
    for (var k0 = 0u; k0 < k; k0 += BK) {
        for (var l = 0u; l < 4u; l++) {
            let idx = tid + l * 256u;
            var i: u32;
            var kk: u32;
            if (ta) { kk = idx / TS; i = idx % TS; } else { i = idx / BK; kk = idx % BK; }
            let gi = row0 + i;
            let gk = k0 + kk;
            var v = 0.0;
            if (gi < m && gk < k) {
                if (ta) { v = A[gk * m + gi]; } else { v = A[gi * k + gk]; }
            }
            As[kk * TS + i] = v;
        }
        for (var l = 0u; l < 4u; l++) {
            let idx = tid + l * 256u;
            var j: u32;
            var kk: u32;
            if (tb) { j = idx / BK; kk = idx % BK; } else { kk = idx / TS; j = idx % TS; }
            let gj = col0 + j;
            let gk = k0 + kk;
            var v = 0.0;
            if (gj < n && gk < k) {
                if (tb) { v = B[gj * k + gk]; } else { v = B[gk * n + gj]; }
            }
            Bs[kk * TS + j] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) { av[r] = As[kk * TS + lid.y * 4u + r]; }
            for (var c = 0u; c < 4u; c++) { bv[c] = Bs[kk * TS + lid.x * 4u + c]; }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    acc[r * 4u + c] = fma(av[r], bv[c], acc[r * 4u + c]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let gi = row0 + lid.y * 4u + r;
        for (var c = 0u; c < 4u; c++) {
            let gj = col0 + lid.x * 4u + c;
            if (gi < m && gj < n) {
                let o = gi * n + gj;
                if (p.f == 0.0) {
                    C[o] = p.e * acc[r * 4u + c];
                } else {
                    C[o] = p.e * acc[r * 4u + c] + p.f * C[o];
                }
            }
        }
    }
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

/// `g ← g ⊙ f'(S)` from `o = f(S)` (linear leaves `g` as it is, NaN included).
const MUL_DERIVATIVE: &str = r#"
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
fn body(i: u32) {
    if (p.b != 3u) { g[i] = g[i] * dact(p.b, o[i]); }
}
"#;

/// Softmax and cross-entropy of `p.a` rows of `p.b` classes, one invocation per row; `p.c = 1`
/// writes `O_L − T` into `delta`. `stats[2r]` receives the row's loss, `stats[2r + 1]` 1 if its
/// first largest logit is at the label.
const SOFTMAX: &str = r#"
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
fn body(r: u32) {
    let k = p.b;
    let base = r * k;
    let label = labels[r];
    var ok = true;
    for (var j = 0u; j < k; j++) { ok = ok && finite(x[base + j]); }
    if (!ok) {
        for (var j = 0u; j < k; j++) { x[base + j] = bitcast<f32>(0x7fc00000u); }
        stats[2u * r] = bitcast<f32>(0x7fc00000u);
        stats[2u * r + 1u] = 0.0;
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
        stats[2u * r] = log(sum) - zy;
        stats[2u * r + 1u] = select(0.0, 1.0, arg == label);
    }
    if (p.c == 1u) {
        for (var j = 0u; j < k; j++) {
            delta[base + j] = x[base + j] - select(0.0, 1.0, j == label);
        }
    }
}
"#;

/// The totals of `p.a` rows of `stats` in one workgroup: `out[0]` the loss, `out[1]` the count
/// of correct rows, each summed per invocation in a fixed stride, then in a fixed tree.
const LOSS_TOTAL: &str = r#"
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> ls: array<f32, 256>;
var<workgroup> cs: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var l = 0.0;
    var c = 0.0;
    for (var r = lid.x; r < p.a; r += 256u) {
        l += stats[2u * r];
        c += stats[2u * r + 1u];
    }
    ls[lid.x] = l;
    cs[lid.x] = c;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s) {
            ls[lid.x] = ls[lid.x] + ls[lid.x + s];
            cs[lid.x] = cs[lid.x] + cs[lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[0] = ls[0];
        out[1] = cs[0];
    }
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
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var m = 0.0;
    for (var i = lid.x; i < p.a; i += 256u) {
        let v = abs(x[i]);
        if (v > m) { m = v; }
    }
    part[lid.x] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid.x < s && part[lid.x + s] > part[lid.x]) { part[lid.x] = part[lid.x + s]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[0] = part[0]; }
}
"#;

/// Every kernel: its name and WGSL source.
pub fn all() -> Vec<(&'static str, String)> {
    let each = |body: &str| format!("{PRELUDE}{body}{EACH}");
    let act = |body: &str| format!("{PRELUDE}{ACTIVATIONS}{body}{EACH}");
    let whole = |body: &str| format!("{PRELUDE}{body}");
    vec![
        ("gemm", whole(GEMM)),
        ("add_bias_rows", each(ADD_BIAS_ROWS)),
        ("bias_grad", each(BIAS_GRAD)),
        ("scale", each(SCALE)),
        ("add_assign", each(ADD_ASSIGN)),
        ("activate", act(ACTIVATE)),
        ("mul_derivative", act(MUL_DERIVATIVE)),
        ("softmax", each(SOFTMAX)),
        ("loss_total", whole(LOSS_TOTAL)),
        ("neg_one_hot", each(NEG_ONE_HOT)),
        ("sign", each(SIGN)),
        ("sign_magnitude", each(SIGN_MAGNITUDE)),
        ("sign_uniform", whole(SIGN_UNIFORM)),
        ("dropout", each(DROPOUT)),
        ("max_abs", whole(MAX_ABS)),
    ]
}
