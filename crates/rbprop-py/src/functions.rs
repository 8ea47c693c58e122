//! The module's functions: the channel registry, whole runs as `rbp train` and `rbp reproduce`
//! do them, datasets as numpy arrays, results as rows, and the learning dynamics of paper §3.

use crate::convert::{self, array, matrix};
use crate::net::{self, Net, interruptible};
use crate::py_err;
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rbprop::channel::registry::CHANNELS;
use rbprop::config::{Device, TrainConfig};
use rbprop::data::{Dataset, Split};
use rbprop::dynamics::input::{Moments, Numbers};
use rbprop::dynamics::report;
use rbprop::dynamics::solve::Integration;
use rbprop::dynamics::systems::Algo;
use rbprop::experiment::runner::{self, GridObserver, Options};
use rbprop::experiment::{Experiment, Run, export, table};
use rbprop::report::ReportError;
use rbprop::run::{self as runs, Observer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(channels, m)?)?;
    m.add_function(wrap_pyfunction!(settings, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(load_data, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(table_csv, m)?)?;
    m.add_function(wrap_pyfunction!(results_jsonl, m)?)?;
    m.add_function(wrap_pyfunction!(result_columns, m)?)?;
    m.add_function(wrap_pyfunction!(dynamics_chain, m)?)?;
    m.add_function(wrap_pyfunction!(dynamics_wide, m)?)?;
    m.add_function(wrap_pyfunction!(dynamics_sgd, m)?)?;
    m.add_function(wrap_pyfunction!(dynamics_autoencoder, m)?)?;
    m.add_function(wrap_pyfunction!(dynamics_general, m)?)?;
    m.add("EMBEDDED", rbprop::data::EMBEDDED_NAME)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// channels() -> list[dict]
///
/// Every learning channel of the registry: `name`, `aliases`, `summary`, `equation` (the
/// signal each hidden layer receives), `source`, and whether it has a no-f' variant.
#[pyfunction]
fn channels(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for k in CHANNELS {
        let d = PyDict::new(py);
        d.set_item("name", k.name)?;
        d.set_item("aliases", k.aliases.to_vec())?;
        d.set_item("summary", k.summary)?;
        d.set_item("equation", k.equation)?;
        d.set_item("source", k.source)?;
        d.set_item("has_nof", k.has_nof)?;
        out.append(d)?;
    }
    Ok(out)
}

/// settings() -> list[dict]
///
/// Every setting of a run, from its one declaration (the keys `rbp train --print-config` writes,
/// `Net(**settings)`, `train` and experiment files accept): `key`, `flag` (the `rbp train` flag),
/// `default` (the built-in value, None where unset), `help`, and `required` (whether a complete
/// run configuration must hold it).
#[pyfunction]
fn settings(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let defaults = convert::to_py(py, &TrainConfig::default())?;
    let out = PyList::empty(py);
    for s in rbprop::config::SETTINGS {
        let d = PyDict::new(py);
        d.set_item("key", s.key)?;
        d.set_item("flag", format!("--{}", s.flag()))?;
        d.set_item("default", defaults.call_method1("get", (s.key,))?)?;
        d.set_item("help", s.help_text())?;
        d.set_item("required", s.required)?;
        out.append(d)?;
    }
    Ok(out)
}

/// load(path) -> Net
///
/// A net saved by `Net.save`, or the run directory of `rbp train --out` (its settings,
/// checkpoint and metrics), ready to predict or to train on.
#[pyfunction]
fn load(path: PathBuf) -> PyResult<Net> {
    net::load(path)
}

/// The dataset of `data`: a source name (`embedded:fashion-mnist-subset` or a directory of
/// MNIST IDX or CIFAR-10 binary files).
fn split(py: Python<'_>, source: &str) -> PyResult<Split> {
    let source = source.to_string();
    py.detach(move || rbprop::data::load(&source))
        .map_err(py_err)
}

/// load_data(source="embedded:fashion-mnist-subset") -> tuple
///
/// `(X_train, y_train, X_test, y_test)` of a dataset as `rbp train --data` reads it: X float32
/// `(N, C, H, W)` scaled to [0, 1], y int64 `(N,)`. `source` is a directory (a `str` or any
/// path-like object, `pathlib.Path` included) or `"embedded:…"`.
#[pyfunction]
#[pyo3(signature = (source=None))]
fn load_data(py: Python<'_>, source: Option<PathBuf>) -> PyResult<Bound<'_, PyAny>> {
    let source = source.map(|p| p.to_string_lossy().into_owned());
    let split = split(py, source.as_deref().unwrap_or(rbprop::data::EMBEDDED_NAME))?;
    let arrays = |d: Dataset| -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
        let (c, h, w) = d.shape;
        let x = array(py, &[d.len(), c, h, w], d.images)?;
        let y = PyArray1::from_vec(py, d.labels.iter().map(|&l| l as i64).collect()).into_any();
        Ok((x, y))
    };
    let (xtr, ytr) = arrays(split.train)?;
    let (xte, yte) = arrays(split.test)?;
    Ok((xtr, ytr, xte, yte).into_pyobject(py)?.into_any())
}

/// Stops a run when the flag is raised.
struct Stopper<'a>(&'a AtomicBool);
impl Observer for Stopper<'_> {
    fn stop(&mut self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
struct GridStopper<'a>(&'a AtomicBool);
impl GridObserver for GridStopper<'_> {
    fn run(&self, _k: usize, _run: &Run) -> Box<dyn Observer + '_> {
        Box::new(Stopper(self.0))
    }
}

/// train(data=None, out=None, **settings) -> Net
///
/// What `rbp train` does: trains on `data` (default the embedded Fashion-MNIST subset; a
/// directory; or arrays `(X_train, y_train, X_test, y_test)`) with `settings` (the keys of
/// `rbp train --print-config`, e.g. `channel="srbp", epochs=5, seed=1`), writing and resuming the
/// run directory `out` if given, exactly as the command line. Returns the trained net (its
/// `history` holds the metrics). The same seed gives the same numbers as the command line.
#[pyfunction]
#[pyo3(signature = (data=None, out=None, **settings))]
fn train(
    py: Python<'_>,
    data: Option<&Bound<'_, PyAny>>,
    out: Option<PathBuf>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<Net> {
    let mut table = convert::settings_table(settings)?;
    let split = match data {
        None => split(py, rbprop::data::EMBEDDED_NAME)?,
        Some(d) if d.is_none() => split(py, rbprop::data::EMBEDDED_NAME)?,
        Some(d) => {
            if let Ok(source) = d.extract::<PathBuf>() {
                let source = source.to_string_lossy().into_owned();
                table.insert("data".into(), toml::Value::String(source.clone()));
                split(py, &source)?
            } else {
                arrays_split(d)?
            }
        }
    };
    let base = TrainConfig {
        data: if data.is_some_and(|d| !d.is_none()) && !table.contains_key("data") {
            net::ARRAYS.into()
        } else {
            rbprop::data::EMBEDDED_NAME.into()
        },
        ..TrainConfig::default()
    };
    let config = TrainConfig::with_settings(table, &base).map_err(py_err)?;
    config.validate().map_err(py_err)?;
    let run = interruptible(py, |stop| {
        runs::run_with_trainer(&config, &split, out.as_deref(), &mut Stopper(stop))
    })?;
    let (history, trainer) = run.map_err(py_err)?;
    Net::from_parts(
        config,
        split.train.shape,
        split.train.classes,
        trainer,
        history,
    )
}

/// A split from arrays `(X_train, y_train, X_test, y_test)`.
fn arrays_split(d: &Bound<'_, PyAny>) -> PyResult<Split> {
    let (xtr, ytr, xte, yte): (
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
        Bound<'_, PyAny>,
    ) = d.extract().map_err(|_| {
        PyValueError::new_err(
            "data: expected a dataset name or directory, or arrays (X_train, y_train, X_test, y_test)",
        )
    })?;
    let (_, shape) = convert::floats(&xtr, "X_train")?;
    let input = match shape.as_slice() {
        [_, n] => (*n, 1, 1),
        [_, h, w] => (1, *h, *w),
        [_, c, h, w] => (*c, *h, *w),
        _ => {
            return Err(PyValueError::new_err(format!(
                "X_train: expected (N, values), (N, H, W) or (N, C, H, W), got shape {shape:?}"
            )));
        }
    };
    let max = |y: &Bound<'_, PyAny>| -> PyResult<i64> {
        Ok(y.py()
            .import("numpy")?
            .call_method1("max", (y,))?
            .extract::<i64>()
            .unwrap_or(0))
    };
    let classes = (max(&ytr)?.max(max(&yte)?) + 1).clamp(2, 256) as usize;
    let train = convert::dataset(&xtr, &ytr, input, classes, ("X_train", "y_train"))?;
    let test = convert::dataset(&xte, &yte, input, classes, ("X_test", "y_test"))?;
    Ok(Split {
        train,
        test,
        source: "arrays".into(),
    })
}

/// reproduce(config, results, jobs=1, quick=None, data=None, device=None, adapter=None,
///     ensemble=None) -> list[tuple[str, str]]
///
/// What `rbp reproduce` does: runs every run of experiment file `config` not yet finished into
/// `results/<experiment>/` (resuming interrupted ones), `jobs` at a time, on `device` ("cpu" or
/// "gpu", replacing the experiment's; `adapter` chooses a GPU adapter by name), up to
/// `ensemble` runs trained together (on the CPU runs that read the same minibatches, on the GPU
/// runs that differ only in their seeds, stacked; by default 8 with device="gpu", else 1);
/// returns each run's id and how it ended.
#[pyfunction]
#[pyo3(signature = (config, results, jobs=1, quick=None, data=None, device=None, adapter=None, ensemble=None))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments
fn reproduce(
    py: Python<'_>,
    config: PathBuf,
    results: PathBuf,
    jobs: usize,
    quick: Option<usize>,
    data: Option<String>,
    device: Option<String>,
    adapter: Option<String>,
    ensemble: Option<usize>,
) -> PyResult<Vec<(String, String)>> {
    if ensemble == Some(0) {
        return Err(PyValueError::new_err(
            "ensemble must be ≥ 1 (1 trains every run alone)",
        ));
    }
    let exp = Experiment::load(&config).map_err(py_err)?;
    let device = device
        .as_deref()
        .map(str::parse::<Device>)
        .transpose()
        .map_err(PyValueError::new_err)?;
    if adapter.is_some() && device != Some(Device::Gpu) {
        return Err(PyValueError::new_err(
            "adapter chooses a GPU adapter: it needs device=\"gpu\"",
        ));
    }
    let opts = Options {
        results,
        jobs: jobs.max(1),
        quick,
        data,
        device,
        adapter,
        ensemble: ensemble.unwrap_or(runner::default_ensemble(device)),
    };
    let outcomes = interruptible(py, |stop| {
        runner::reproduce(&exp, &opts, &GridStopper(stop))
    })?
    .map_err(py_err)?;
    Ok(outcomes
        .into_iter()
        .map(|(id, o)| (id, format!("{o:?}")))
        .collect())
}

/// The table of `rbp table RESULTS`, as CSV text.
#[pyfunction]
fn table_csv(py: Python<'_>, results: PathBuf) -> PyResult<String> {
    let cells = py.detach(|| table::collect(&results)).map_err(py_err)?;
    Ok(table::render(&cells).1)
}

/// The long-format export of `rbp export RESULTS --format jsonl`, as text.
#[pyfunction]
fn results_jsonl(py: Python<'_>, results: PathBuf) -> PyResult<String> {
    let mut out = Vec::new();
    py.detach(|| export::export(&results, export::Format::Jsonl, &mut out))
        .map_err(py_err)?;
    Ok(String::from_utf8(out).expect("JSON is UTF-8"))
}

/// The columns of the long-format export, in order.
#[pyfunction]
fn result_columns() -> Vec<String> {
    export::columns()
}

fn report_err(e: ReportError) -> PyErr {
    match e {
        ReportError::Invalid(m) => PyValueError::new_err(m),
        ReportError::Core(e) => py_err(e),
    }
}

fn algo(name: &str) -> PyResult<Algo> {
    name.parse()
        .map_err(|e: String| PyValueError::new_err(format!("algo: {e}")))
}

fn numbers(v: &[f64]) -> Numbers {
    Numbers(v.to_vec())
}

fn moments(alpha: f64, beta: f64) -> Moments {
    Moments {
        alpha,
        beta,
        stats: None,
    }
}

fn integration(t_end: f64, method: &str, step: f64, rtol: f64) -> PyResult<Integration> {
    Ok(Integration {
        t_end,
        method: method
            .parse()
            .map_err(|e: String| PyValueError::new_err(format!("method: {e}")))?,
        step,
        rtol,
    })
}

/// The linear chain A[1,…,1] of paper §3 (see `rbp dynamics chain`).
#[pyfunction]
#[pyo3(signature = (start, algo="rbp", c=None, mu=1.0, signed_power=false, adaptive=false,
    alpha=1.0, beta=1.0, t_end=1000.0, method="auto", step=1e-3, rtol=1e-10))]
#[allow(clippy::too_many_arguments)]
fn dynamics_chain<'py>(
    py: Python<'py>,
    start: Vec<f64>,
    algo: &str,
    c: Option<Vec<f64>>,
    mu: f64,
    signed_power: bool,
    adaptive: bool,
    alpha: f64,
    beta: f64,
    t_end: f64,
    method: &str,
    step: f64,
    rtol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = report::ChainOptions {
        length: start.len(),
        algo: self::algo(algo)?,
        c: c.as_deref().map(numbers),
        from: numbers(&start),
        mu,
        signed_power,
        adaptive,
        moments: moments(alpha, beta),
        integration: integration(t_end, method, step, rtol)?,
    };
    let mut text = Vec::new();
    let r = py
        .detach(|| report::chain(&o, &mut text))
        .map_err(report_err)?;
    let out = PyDict::new(py);
    out.set_item("t", PyArray1::from_vec(py, r.times))?;
    out.set_item("states", matrix(py, &r.states)?)?;
    out.set_item("end", PyArray1::from_vec(py, r.end))?;
    out.set_item("target", r.target)?;
    match r.predicted {
        Some(p) => {
            out.set_item("predicted", PyArray1::from_vec(py, p.limit))?;
            out.set_item("roots", PyArray1::from_vec(py, p.roots))?;
        }
        None => {
            out.set_item("predicted", py.None())?;
            out.set_item("roots", py.None())?;
        }
    }
    out.set_item("report", String::from_utf8_lossy(&text).into_owned())?;
    Ok(out)
}

/// A[1,N,1] (see `rbp dynamics wide`).
#[pyfunction]
#[pyo3(signature = (n, algo="rbp", c=None, start=None, seed=1, alpha=1.0, beta=1.0,
    t_end=1000.0, method="auto", step=1e-3, rtol=1e-10))]
#[allow(clippy::too_many_arguments)]
fn dynamics_wide<'py>(
    py: Python<'py>,
    n: usize,
    algo: &str,
    c: Option<Vec<f64>>,
    start: Option<Vec<f64>>,
    seed: u64,
    alpha: f64,
    beta: f64,
    t_end: f64,
    method: &str,
    step: f64,
    rtol: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = report::WideOptions {
        n,
        algo: self::algo(algo)?,
        c: c.as_deref().map(numbers),
        from: start.as_deref().map(numbers),
        seed,
        moments: moments(alpha, beta),
        integration: integration(t_end, method, step, rtol)?,
    };
    let mut text = Vec::new();
    let r = py
        .detach(|| report::wide(&o, &mut text))
        .map_err(report_err)?;
    let out = PyDict::new(py);
    out.set_item("a", PyArray1::from_vec(py, r.a))?;
    out.set_item("b", PyArray1::from_vec(py, r.b))?;
    out.set_item("sum", r.sum)?;
    out.set_item("target", r.target)?;
    out.set_item("report", String::from_utf8_lossy(&text).into_owned())?;
    Ok(out)
}

/// The per-example learning rule of A[1,1,1] against its expected ODE (see `rbp dynamics sgd`).
#[pyfunction]
#[pyo3(signature = (start, algo="rbp", c=1.0, alpha=1.0, beta=1.0, noise=0.1, eta=1e-3,
    time=10.0, seed=1))]
#[allow(clippy::too_many_arguments)]
fn dynamics_sgd<'py>(
    py: Python<'py>,
    start: Vec<f64>,
    algo: &str,
    c: f64,
    alpha: f64,
    beta: f64,
    noise: f64,
    eta: f64,
    time: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = report::SgdOptions {
        algo: self::algo(algo)?,
        alpha,
        beta,
        c,
        noise,
        from: numbers(&start),
        eta,
        time,
        seed,
    };
    let mut text = Vec::new();
    let rows = py
        .detach(|| report::sgd(&o, &mut text))
        .map_err(report_err)?;
    let out = PyDict::new(py);
    out.set_item(
        "t",
        PyArray1::from_vec(py, rows.iter().map(|r| r.t).collect()),
    )?;
    let pairs = |f: fn(&report::SgdRow) -> [f64; 2]| -> Vec<Vec<f64>> {
        rows.iter().map(|r| f(r).to_vec()).collect()
    };
    out.set_item("sgd", matrix(py, &pairs(|r| r.sgd))?)?;
    out.set_item("ode", matrix(py, &pairs(|r| r.ode))?)?;
    out.set_item("report", String::from_utf8_lossy(&text).into_owned())?;
    Ok(out)
}

/// The linear autoencoder A[N,1,N] on decorrelated data (see `rbp dynamics autoencoder`).
#[pyfunction]
#[pyo3(signature = (n, algo="rbp", c=None, start=None, seed=1, t_end=1000.0))]
fn dynamics_autoencoder<'py>(
    py: Python<'py>,
    n: usize,
    algo: &str,
    c: Option<Vec<f64>>,
    start: Option<Vec<f64>>,
    seed: u64,
    t_end: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = report::AutoencoderOptions {
        n,
        algo: self::algo(algo)?,
        c: c.as_deref().map(numbers),
        from: start.as_deref().map(numbers),
        seed,
        t_end,
    };
    let mut text = Vec::new();
    let cosine = py
        .detach(|| report::autoencoder(&o, &mut text))
        .map_err(report_err)?;
    let out = PyDict::new(py);
    out.set_item("cosine", cosine)?;
    out.set_item("report", String::from_utf8_lossy(&text).into_owned())?;
    Ok(out)
}

/// The general linear A[N0,N1,N2] (see `rbp dynamics general`).
#[pyfunction]
#[pyo3(signature = (sizes, algo="rbp", seed=1, t_end=1000.0))]
fn dynamics_general<'py>(
    py: Python<'py>,
    sizes: (usize, usize, usize),
    algo: &str,
    seed: u64,
    t_end: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = report::GeneralOptions {
        sizes: numbers(&[sizes.0 as f64, sizes.1 as f64, sizes.2 as f64]),
        algo: self::algo(algo)?,
        stats: None,
        seed,
        t_end,
    };
    let mut text = Vec::new();
    let r = py
        .detach(|| report::general(&o, &mut text))
        .map_err(report_err)?;
    let rows =
        |v: Vec<f64>| -> Vec<Vec<f64>> { v.chunks(sizes.0.max(1)).map(<[f64]>::to_vec).collect() };
    let out = PyDict::new(py);
    out.set_item("start", matrix(py, &rows(r.start))?)?;
    out.set_item("end", matrix(py, &rows(r.end))?)?;
    out.set_item("speed", r.speed)?;
    out.set_item("report", String::from_utf8_lossy(&text).into_owned())?;
    Ok(out)
}
