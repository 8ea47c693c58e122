//! Sweeps: a `[[variant]]` whose settings hold lists expands into the Cartesian product of the
//! listed values, each combination a cell of the grid with its labels and run id made from the
//! values (see the module documentation of [`super`] for the rules as a user reads them).

use crate::channel::ChannelSpec;
use crate::channel::registry::CHANNELS;
use crate::config::TrainConfig;
use crate::error::Error;
use toml::{Table, Value};

/// A setting's place in the settings tree: `["channel_options", "quantize_signal", "bits"]`.
pub type Path = Vec<String>;

/// One swept setting: where it is and the values it takes, in the order written.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: Path,
    pub values: Vec<Value>,
}

/// `a.b.c`.
pub fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// `value` at `path` inside otherwise empty tables.
fn nest(path: &[String], value: Value) -> Table {
    let mut v = value;
    for k in path.iter().rev() {
        v = Value::Table(Table::from_iter([(k.clone(), v)]));
    }
    match v {
        Value::Table(t) => t,
        _ => unreachable!("a path has at least one key"),
    }
}

/// Merges `over` into `base` (tables recursively; anything else replaces).
pub fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Whether `value` at `path` on top of `base` is a valid run configuration as far as types go:
/// the test that tells a list the setting takes from a list of values to sweep.
fn fits(base: &Table, path: &[String], value: &Value) -> bool {
    let mut t = base.clone();
    merge(&mut t, &nest(path, value.clone()));
    Value::Table(t).try_into::<TrainConfig>().is_ok()
}

/// The swept settings of `settings` over `base` (the defaults with the experiment's `[train]`),
/// in key order: every list the setting does not take as it is. A setting that is itself a list
/// (`hidden`, `channel_options.mix`) takes a list of numbers or names as its value, so only a
/// list of lists sweeps it; any other setting (a string, number, boolean or table) is swept by
/// any list.
pub fn axes(base: &Table, settings: &Table) -> Vec<Axis> {
    fn walk(base: &Table, path: &mut Path, t: &Table, out: &mut Vec<Axis>) {
        for (k, v) in t {
            path.push(k.clone());
            match v {
                Value::Table(sub) => walk(base, path, sub, out),
                Value::Array(items) if !fits(base, path, v) => out.push(Axis {
                    path: path.clone(),
                    values: items.clone(),
                }),
                _ => {}
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(base, &mut Vec::new(), settings, &mut out);
    out
}

/// Every combination of the axes' values, as settings: `settings` with each swept list replaced
/// by one of its values. The channel varies fastest (a table's row across its columns), the
/// other axes in key order, the first slowest.
pub fn expand(settings: &Table, axes: &[Axis]) -> Vec<Table> {
    let mut order: Vec<&Axis> = axes.iter().filter(|a| a.path != ["channel"]).collect();
    order.extend(axes.iter().filter(|a| a.path == ["channel"]));
    let mut out = vec![settings.clone()];
    for axis in order {
        out = out
            .into_iter()
            .flat_map(|t| {
                axis.values.iter().map(move |v| {
                    let mut t = t.clone();
                    merge(&mut t, &nest(&axis.path, v.clone()));
                    t
                })
            })
            .collect();
    }
    out
}

/// Every leaf setting of `t` (tables flattened), in key order.
pub fn leaves(t: &Table) -> Vec<(Path, Value)> {
    fn walk(path: &mut Path, t: &Table, out: &mut Vec<(Path, Value)>) {
        for (k, v) in t {
            path.push(k.clone());
            match v {
                Value::Table(sub) => walk(path, sub, out),
                v => out.push((path.clone(), v.clone())),
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), t, &mut out);
    out
}

/// A setting's value as text: strings bare, numbers as Rust writes them (`1.0` → `1`), lists
/// comma-separated, tables as `key=value` pairs.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        Value::Table(t) => leaves(t)
            .iter()
            .map(|(p, v)| format!("{}={}", dotted(p), text(v)))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// How a table shows a channel: its column (the algorithm in capitals: `rbp` → RBP), whether
/// it is the adaptive version of another (`arbp`, `asrbp`: in the RBP and SRBP columns, row
/// `adaptive`) and whether it is a no-derivative version (`srbp-nof`: column SRBP, row `no-f'`).
fn display(channel: &str) -> Option<(String, bool, bool)> {
    let spec = ChannelSpec::parse(channel, false).ok()?;
    let name = spec.kind.name;
    let base = name
        .strip_prefix('a')
        .filter(|b| spec.kind.adaptive && CHANNELS.iter().any(|k| k.name == *b));
    Some((
        base.unwrap_or(name).to_uppercase(),
        base.is_some(),
        !spec.derivative,
    ))
}

/// The display name of a channel, as a table's column: its algorithm in capitals, adaptive
/// versions and no-derivative ones under their channel (`rbp` → RBP, `asrbp` → SRBP,
/// `bp-nof` → BP; the row says `adaptive` or `no-f'`).
pub fn channel_column(channel: &str) -> String {
    display(channel).map_or_else(|| channel.to_uppercase(), |d| d.0)
}

/// A setting's name in words and ids: its path without `channel_options`.
fn short(path: &[String]) -> Vec<&str> {
    let skip = usize::from(path.len() > 1 && path[0] == "channel_options");
    path[skip..].iter().map(String::as_str).collect()
}

/// The settings of a cell in one vocabulary for labels and ids, whichever names the file used:
/// the channel's options gathered under `channel_options` (`channel_dropout` as its `dropout`),
/// a quantizer written as the flag's string (`"2:0.1"`, `"4:auto:stochastic"`) as the table of
/// the parts it writes (`{ alpha = 0.1, bits = 2 }`). So a cell gets the same row label and run
/// id from today's keys as from the keys of earlier files.
fn vocabulary(settings: &Table) -> Table {
    let mut out = settings.clone();
    let mut options = match out.remove("channel_options") {
        Some(Value::Table(t)) => t,
        Some(v) => {
            out.insert("channel_options".into(), v);
            return out;
        }
        None => Table::new(),
    };
    for (flat, nested) in [
        ("feedback", "feedback"),
        ("average", "average"),
        ("adapt_factor", "adapt_factor"),
        ("channel_dropout", "dropout"),
        ("quantize_signal", "quantize_signal"),
        ("quantize_update", "quantize_update"),
        ("mix", "mix"),
    ] {
        if let Some(v) = out.remove(flat) {
            options.insert(nested.into(), v);
        }
    }
    for k in ["quantize_signal", "quantize_update"] {
        if let Some(Value::String(q)) = options.get(k) {
            let parts = quantizer_parts(q);
            options.insert(k.into(), Value::Table(parts));
        }
        // the defaults, written or not, name nothing: α calibrated, rounding to the nearest
        if let Some(Value::Table(q)) = options.get_mut(k) {
            q.retain(|part, v| {
                !matches!(
                    (part, text(v).as_str()),
                    ("alpha", "auto") | ("rounding", "nearest")
                )
            });
        }
    }
    if !options.is_empty() {
        out.insert("channel_options".into(), Value::Table(options));
    }
    out
}

/// The parts a quantizer string writes: `B[:α|auto][:mid-rise|mid-tread][:nearest|stochastic]`.
fn quantizer_parts(q: &str) -> Table {
    let mut t = Table::new();
    for (i, part) in q.split(':').map(str::trim).enumerate() {
        let (key, value) = match part {
            _ if i == 0 => (
                "bits",
                part.parse::<i64>()
                    .map_or_else(|_| Value::String(part.into()), Value::Integer),
            ),
            "mid-rise" | "mid-tread" => ("form", Value::String(part.into())),
            "nearest" | "stochastic" => ("rounding", Value::String(part.into())),
            "auto" => ("alpha", Value::String(part.into())),
            _ => (
                "alpha",
                part.parse::<f64>()
                    .map_or_else(|_| Value::String(part.into()), Value::Float),
            ),
        };
        t.insert(key.into(), value);
    }
    t
}

/// A feedback distribution in words: `sparse:8` → `sparse n=8`, `sparse-signed:8` →
/// `signed sparse n=8`.
fn feedback_words(spec: &str) -> String {
    match spec.split_once(':') {
        Some(("sparse", n)) => format!("sparse n={n}"),
        Some(("sparse-signed", n)) => format!("signed sparse n={n}"),
        Some(("sparse-gaussian", n)) => format!("gaussian sparse n={n}"),
        _ => format!("feedback {spec}"),
    }
}

/// A quantizer in words: `quantize-signal b=2, α=0.1, mid-tread`.
fn quantizer_words(what: &str, q: &Table) -> String {
    let mut out = what.to_string();
    if let Some(b) = q.get("bits") {
        out += &format!(" b={}", text(b));
    }
    for (k, v) in q {
        match k.as_str() {
            "bits" => {}
            // the defaults go unsaid: α calibrated, rounding to the nearest level
            "alpha" if text(v) == "auto" => {}
            "rounding" if text(v) == "nearest" => {}
            "alpha" => out += &format!(", α={}", text(v)),
            "form" | "rounding" => out += &format!(", {}", text(v)),
            _ => out += &format!(", {k}={}", text(v)),
        }
    }
    out
}

/// A row label made of the settings of a cell (all but the channel): words the table and the
/// figures know (`sparse n=8`; the channel's noise and quantizers by their flags' names,
/// `channel-dropout r=0.25`, `quantize-signal b=2`, `quantize-update b=4, stochastic`; a
/// quantizer's defaults, α auto and nearest rounding, go unsaid), `key=value` otherwise, joined
/// by `, `; `adaptive` and `no-f'` first for such channels; `baseline` when the cell sets nothing
/// else.
pub fn row_words(settings: &Table) -> String {
    let settings = &vocabulary(settings);
    let mut words: Vec<String> = Vec::new();
    let channel = settings.get("channel").map(text).unwrap_or_default();
    if let Some((_, adaptive, nof)) = display(&channel) {
        if adaptive {
            words.push("adaptive".into());
        }
        if nof {
            words.push("no-f'".into());
        }
    }
    let mut rest = settings.clone();
    rest.remove("channel");
    let mut options = match rest.remove("channel_options") {
        Some(Value::Table(t)) => t,
        Some(v) => Table::from_iter([("channel_options".to_string(), v)]),
        None => Table::new(),
    };
    for (k, what) in [
        ("quantize_signal", "quantize-signal"),
        ("quantize_update", "quantize-update"),
    ] {
        if let Some(Value::Table(q)) = options.get(k) {
            let q = q.clone();
            options.remove(k);
            options.insert(format!("~{k}"), Value::String(quantizer_words(what, &q)));
        }
    }
    for (path, v) in leaves(&options) {
        let key = path.join(".");
        words.push(match key.as_str() {
            "feedback" => feedback_words(&text(&v)),
            "dropout" => format!("channel-dropout r={}", text(&v)),
            "average" => format!("average k={}", text(&v)),
            k if k.starts_with('~') => text(&v),
            k => format!("{k}={}", text(&v)),
        });
    }
    for (path, v) in leaves(&rest) {
        words.push(format!("{}={}", dotted(&path), text(&v)));
    }
    if words.is_empty() {
        "baseline".into()
    } else {
        words.join(", ")
    }
}

/// The words of row labels renamed to their flags' names (`--quantize-signal`,
/// `--quantize-update`, `--channel-dropout`), as (earlier, today): each begins a group of a row's
/// words (the row's start, or after `, `). Used only for rows written in the earlier words (in
/// results written by earlier versions, or by hand), which read in today's words
/// ([`current_words`]), and for the directory names that were made of labels, which keep the
/// earlier words ([`earlier_words`]: [`legacy_id`], [`label_part`]), so that the renaming moved
/// no run.
pub const RENAMED_WORDS: [(&str, &str); 3] = [
    ("quantized error b=", "quantize-signal b="),
    ("quantized update b=", "quantize-update b="),
    ("dropout r=", "channel-dropout r="),
];

/// `row` with every group of words (split at `, `) that begins with the first of a pair of
/// [`RENAMED_WORDS`] beginning with the second instead.
fn reword(
    row: &str,
    pick: impl Fn(&(&'static str, &'static str)) -> (&'static str, &'static str),
) -> String {
    row.split(", ")
        .map(|group| {
            RENAMED_WORDS
                .iter()
                .map(&pick)
                .find_map(|(from, to)| group.strip_prefix(from).map(|rest| format!("{to}{rest}")))
                .unwrap_or_else(|| group.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row in today's words: `quantized error b=2, α=0.1` → `quantize-signal b=2, α=0.1`,
/// `dropout r=0.25` → `channel-dropout r=0.25` (see [`RENAMED_WORDS`]); any other row as it is.
pub fn current_words(row: &str) -> String {
    reword(row, |&(earlier, today)| (earlier, today))
}

/// A row in the words of labels before [`RENAMED_WORDS`]: `quantize-signal b=2, α=0.1` →
/// `quantized error b=2, α=0.1`; any other row as it is. Only for the directory names once made
/// of labels.
pub fn earlier_words(row: &str) -> String {
    reword(row, |&(earlier, today)| (today, earlier))
}

/// Fills the placeholders of a label: `{KEY}` is the value of the cell's setting KEY (its full
/// dotted name, or its last part where no other setting of the cell ends alike), `{KEY#}` the
/// last number in it (`sparse-signed:8` → 8); `{{` and `}}` are braces.
pub fn fill(template: &str, settings: &Table) -> std::result::Result<String, String> {
    let vars: Vec<(Path, Value)> = leaves(settings);
    let lookup = |name: &str| -> std::result::Result<String, String> {
        let (key, number) = match name.strip_suffix('#') {
            Some(k) => (k.trim(), true),
            None => (name.trim(), false),
        };
        let exact: Vec<&(Path, Value)> = vars.iter().filter(|(p, _)| dotted(p) == key).collect();
        let found: Vec<&(Path, Value)> = if exact.is_empty() {
            vars.iter()
                .filter(|(p, _)| p.last().is_some_and(|l| l == key))
                .collect()
        } else {
            exact
        };
        let v = match found.as_slice() {
            [(_, v)] => text(v),
            [] => {
                let known: Vec<String> = vars.iter().map(|(p, _)| dotted(p)).collect();
                return Err(format!(
                    "`{{{name}}}` names no setting of the variant (it sets {})",
                    known.join(", ")
                ));
            }
            several => {
                let names: Vec<String> = several.iter().map(|(p, _)| dotted(p)).collect();
                return Err(format!(
                    "`{{{name}}}` could be any of {}: write the full name",
                    names.join(", ")
                ));
            }
        };
        if !number {
            return Ok(v);
        }
        last_number(&v).ok_or_else(|| format!("`{{{name}}}`: `{v}` holds no number"))
    };
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("`{template}`: a `{{` without its `}}`")),
                    }
                }
                out += &lookup(&name)?;
            }
            '}' => return Err(format!("`{template}`: a `}}` without its `{{`")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The last number written in `s`: `sparse-signed:8` → 8, `0.25` → 0.25.
fn last_number(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let end = chars.iter().rposition(|c| c.is_ascii_digit())? + 1;
    let mut start = end;
    while start > 0 && (chars[start - 1].is_ascii_digit() || chars[start - 1] == '.') {
        start -= 1;
    }
    let n: String = chars[start..end].iter().collect();
    Some(n.trim_start_matches('.').to_string())
}

/// Longest part of a run id.
const MAX_PART: usize = 96;

/// A path part: lower case, `[a-z0-9._+-]` only (anything else a dash, dashes not doubled, none
/// at either end), at most 96 characters.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || "._+".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let mut out: String = out.chars().take(MAX_PART).collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    let out = out.trim_start_matches('.').to_string();
    if out.is_empty() { "x".into() } else { out }
}

/// The id part of one setting: `sparse-8` for a feedback distribution, `dropout-0.25`,
/// `signal-bits-2` (`channel_options.quantize_signal.bits`), `update-rounding-stochastic`, `flip`
/// / `no-flip`, `hidden-100_100`, `lr-0.01`.
fn id_part(path: &[String], v: &Value) -> String {
    let key: Vec<&str> = short(path)
        .into_iter()
        .map(|k| match k {
            "quantize_signal" => "signal",
            "quantize_update" => "update",
            k => k,
        })
        .collect();
    let key = key.join("-");
    match v {
        _ if key == "feedback" => slug(&text(v)),
        Value::Boolean(true) => slug(&key),
        Value::Boolean(false) => slug(&format!("no-{key}")),
        Value::Array(a) => slug(&format!(
            "{key}-{}",
            a.iter().map(text).collect::<Vec<_>>().join("_")
        )),
        v => slug(&format!("{key}-{}", text(v))),
    }
}

/// The id of a run, before the seed: the channel's canonical name, then a part per setting the
/// cell writes (swept or not; key order), e.g. `rbp/sparse-8` or `srbp/signal-alpha-0.1/signal-bits-2`.
pub fn id_stem(settings: &Table, config: &TrainConfig) -> String {
    let channel = config.channel.canonical_name();
    let mut parts = vec![channel];
    for (path, v) in leaves(&vocabulary(settings)) {
        if path != ["channel"] {
            parts.push(id_part(&path, &v));
        }
    }
    parts.join("/")
}

/// The run id of a seed of a cell.
pub fn with_seed(stem: &str, seed: u64) -> String {
    format!("{stem}/seed-{seed}")
}

/// The id of the run of cell (`row`, `column`) with `seed` before sweeps (the `row--column--seedN`
/// of results written until then): where `rbp reproduce`, `rbp table` and the others look for a
/// run whose directory under its id does not exist. The row in the words of that time
/// ([`earlier_words`]): `quantize-signal b=2, α=0.1` / `SRBP` / 1 →
/// `quantized-error-b-2----0.1--srbp--seed1`, as from `quantized error b=2, α=0.1`.
pub fn legacy_id(row: &str, column: &str, seed: u64) -> String {
    let row = earlier_words(row);
    let clean = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}--{}--seed{seed}", clean(&row), clean(column))
}

/// The labels part told apart by when two cells have the same settings (and so the same id
/// stem): `sparsity-n-0--rbp`; the row in the words of labels before [`RENAMED_WORDS`]
/// ([`earlier_words`]), so that ids made before the renaming still hold.
pub fn label_part(row: &str, column: &str) -> String {
    format!("{}--{}", slug(&earlier_words(row)), slug(column))
}

/// An error of a variant: `variant ROW / COLUMN` (as written or expanded).
pub fn place(row: &str, column: &str) -> String {
    format!("variant {row} / {column}")
}

/// Reports a sweep without values.
pub fn empty(place: &str, axis: &Axis) -> Error {
    Error::config(
        format!("{place}: {}", dotted(&axis.path)),
        "an empty list sweeps nothing: give at least one value",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Table {
        match Value::try_from(TrainConfig::default()) {
            Ok(Value::Table(t)) => t,
            _ => unreachable!(),
        }
    }

    fn table(s: &str) -> Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn lists_sweep_single_values_and_lists_of_lists_sweep_lists() {
        let t = table(
            "channel = [\"rbp\", \"srbp\"]\nhidden = [100, 100]\nchannel_options.mix = [\"bp\", \"srbp\"]\n\
             channel_options.quantize_signal.bits = [1, 2]\n",
        );
        let a = axes(&base(), &t);
        let paths: Vec<String> = a.iter().map(|a| dotted(&a.path)).collect();
        assert_eq!(paths, ["channel", "channel_options.quantize_signal.bits"]);
        let t =
            table("hidden = [[100], [100, 100]]\nchannel_options.mix = [[\"bp\"], [\"srbp\"]]\n");
        let paths: Vec<String> = axes(&base(), &t).iter().map(|a| dotted(&a.path)).collect();
        assert_eq!(paths, ["channel_options.mix", "hidden"]);
        // a list of tables sweeps a table-valued setting
        let t =
            table("channel_options.quantize_signal = [{ bits = 1 }, { bits = 2, alpha = 1.0 }]\n");
        assert_eq!(axes(&base(), &t)[0].values.len(), 2);
    }

    #[test]
    fn the_channel_varies_fastest() {
        let t = table("channel = [\"bp\", \"rbp\"]\nchannel_options.dropout = [0.1, 0.5]\n");
        let cells = expand(&t, &axes(&base(), &t));
        let got: Vec<String> = cells.iter().map(row_and_channel).collect();
        assert_eq!(
            got,
            [
                "channel-dropout r=0.1 bp",
                "channel-dropout r=0.1 rbp",
                "channel-dropout r=0.5 bp",
                "channel-dropout r=0.5 rbp"
            ]
        );
    }

    fn row_and_channel(t: &Table) -> String {
        format!("{} {}", row_words(t), text(&t["channel"]))
    }

    #[test]
    fn labels_in_words_and_placeholders() {
        let t = table(
            "channel = \"srbp-nof\"\nchannel_options = { feedback = \"sparse-signed:8\", quantize_signal = { bits = 2, alpha = 0.1 } }\n",
        );
        assert_eq!(
            row_words(&t),
            "no-f', signed sparse n=8, quantize-signal b=2, α=0.1"
        );
        assert_eq!(channel_column("srbp-nof"), "SRBP");
        assert_eq!(row_words(&table("channel = \"bp\"")), "baseline");
        assert_eq!(
            row_words(&table(
                "channel_options.quantize_update = { bits = 4, rounding = \"stochastic\" }\nlr = 0.5"
            )),
            "quantize-update b=4, stochastic, lr=0.5"
        );
        assert_eq!(
            fill("sparsity n={feedback#}, b={bits} {{x}}", &t).unwrap(),
            "sparsity n=8, b=2 {x}"
        );
        assert_eq!(
            fill("{channel_options.feedback}", &t).unwrap(),
            "sparse-signed:8"
        );
        assert!(fill("{nope}", &t).unwrap_err().contains("names no setting"));
        assert!(fill("{bits", &t).is_err());
    }

    #[test]
    fn ids_are_readable_paths() {
        let t = table(
            "channel = \"fa\"\nflip = false\nhidden = [100, 50]\nchannel_options = { feedback = \"sparse:8\", quantize_update = { bits = 4, rounding = \"stochastic\" } }\n",
        );
        let config: TrainConfig = {
            let mut b = base();
            merge(&mut b, &t);
            Value::Table(b).try_into().unwrap()
        };
        assert_eq!(
            with_seed(&id_stem(&t, &config), 3),
            "rbp/sparse-8/update-bits-4/update-rounding-stochastic/no-flip/hidden-100_50/seed-3"
        );
        assert_eq!(
            slug("Quantized error b=2, α=0.1"),
            "quantized-error-b-2-0.1"
        );
        assert_eq!(slug("../.."), "x");
        // legacy ids are made of the earlier words, whichever words the row is in
        for row in ["quantized error b=2, α=0.1", "quantize-signal b=2, α=0.1"] {
            assert_eq!(
                legacy_id(row, "SRBP", 1),
                "quantized-error-b-2----0.1--srbp--seed1"
            );
        }
        assert_eq!(
            legacy_id("channel-dropout r=0.25", "RBP", 1),
            "dropout-r-0.25--rbp--seed1"
        );
        assert_eq!(
            label_part("quantize-update b=4, stochastic", "RBP"),
            "quantized-update-b-4-stochastic--rbp"
        );
    }

    #[test]
    fn rows_in_the_earlier_words_read_in_todays() {
        for (earlier, today) in [
            ("quantized error b=2, α=0.1", "quantize-signal b=2, α=0.1"),
            (
                "quantized error b=2, mid-tread α=1",
                "quantize-signal b=2, mid-tread α=1",
            ),
            (
                "quantized update b=4, stochastic",
                "quantize-update b=4, stochastic",
            ),
            ("dropout r=0.25", "channel-dropout r=0.25"),
            (
                "adaptive, dropout r=0.1, quantized error b=2, quantized update b=4",
                "adaptive, channel-dropout r=0.1, quantize-signal b=2, quantize-update b=4",
            ),
        ] {
            assert_eq!(current_words(earlier), today);
            assert_eq!(current_words(today), today, "today's words stay");
            assert_eq!(earlier_words(today), earlier);
            assert_eq!(earlier_words(earlier), earlier);
        }
        // only a group's first words: other rows are as written
        for row in [
            "dropout",
            "no dropout r=0.1",
            "sparse n=8",
            "quantized error",
        ] {
            assert_eq!(current_words(row), row);
            assert_eq!(earlier_words(row), row);
        }
        // the generated rows are today's words
        let t = table(
            "channel = \"asrbp\"\nchannel_dropout = 0.1\nquantize_signal = \"2:0.5:mid-tread\"\nquantize_update = \"4:auto:stochastic\"\n",
        );
        assert_eq!(
            row_words(&t),
            "adaptive, channel-dropout r=0.1, quantize-signal b=2, α=0.5, mid-tread, quantize-update b=4, stochastic"
        );
        assert_eq!(current_words(&row_words(&t)), row_words(&t));
    }
}
