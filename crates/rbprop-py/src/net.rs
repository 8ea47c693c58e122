//! `rbprop.Net`: a net, its learning channel and its optimizer, trained from numpy arrays with
//! the command line's trainer, and `FitIter`, its epoch-by-epoch training.

use crate::convert::{self, array, to_py};
use crate::py_err;
use numpy::PyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use rbprop::backend::Backend;
use rbprop::channel::diagnostics;
use rbprop::checkpoint;
use rbprop::config::{Device, TrainConfig};
use rbprop::data::Dataset;
use rbprop::data::augment::Augment;
use rbprop::kernels::loss::BatchLoss;
use rbprop::model::Activations;
use rbprop::run::device::{self, Accept, OnBackend, Resident};
use rbprop::run::dir::read_metrics_lines;
use rbprop::run::{EpochMetrics, Observer, RunDir, build_trainer};
use rbprop::train::Trainer;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Asks a run loop to stop once Ctrl-C raised the flag, and calls the `progress` callback of
/// `fit` after every update (with the GIL; an exception it raises stops the epoch and is raised
/// by `fit`).
struct Stop<'a> {
    flag: &'a AtomicBool,
    progress: Option<&'a Py<PyAny>>,
    epoch: usize,
    examples: usize,
    error: &'a Mutex<Option<PyErr>>,
}

impl Observer for Stop<'_> {
    fn batch(&mut self, done: usize) {
        let Some(callback) = self.progress else {
            return;
        };
        let called = Python::attach(|py| -> PyResult<()> {
            let info = PyDict::new(py);
            info.set_item("epoch", self.epoch)?;
            info.set_item("done", done)?;
            info.set_item("examples", self.examples)?;
            callback.call1(py, (info,))?;
            Ok(())
        });
        if let Err(e) = called {
            self.error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            self.flag.store(true, Ordering::SeqCst);
        }
    }
    fn stop(&mut self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Opens the device a net's settings name and checks that its backend runs the net and channel.
struct Check<'a>(&'a Trainer);
impl OnBackend for Check<'_> {
    type Output = ();
    fn run<B: Backend>(self, accept: &Accept<'_>) -> rbprop::Result<()> {
        accept(self.0)
    }
}

/// One epoch of `fit`, on the backend of the net's device.
struct EpochWork<'a> {
    host: &'a mut Trainer,
    config: &'a TrainConfig,
    train: &'a Dataset,
    test: Option<&'a Dataset>,
    augment: Augment,
    epoch: usize,
    stop: Stop<'a>,
}

impl OnBackend for EpochWork<'_> {
    type Output = EpochMetrics;
    fn run<B: Backend>(self, _accept: &Accept<'_>) -> rbprop::Result<EpochMetrics> {
        let EpochWork {
            host,
            config,
            train,
            test,
            augment,
            epoch,
            mut stop,
        } = self;
        device::lend::<B, _>(host, |t| {
            rbprop::run::train_epoch(t, config, train, augment, test, epoch, &mut stop)
        })
    }
}

/// One update of `step`, on the backend of the net's device, where the trainer stays for the
/// next step.
struct StepWork<'a> {
    host: &'a mut Trainer,
    resident: &'a mut Resident,
    images: &'a [f32],
    labels: &'a [u8],
}

impl OnBackend for StepWork<'_> {
    type Output = BatchLoss;
    fn run<B: Backend>(self, _accept: &Accept<'_>) -> rbprop::Result<BatchLoss> {
        Ok(self
            .resident
            .get::<B>(self.host)
            .step(self.images, self.labels))
    }
}

/// What `data` says in the settings of a net trained on arrays given by its caller.
pub const ARRAYS: &str = "arrays";

/// Settings `fit` may change between calls (the others fix the net and its channel).
const FIT_KEYS: [&str; 6] = ["epochs", "batch", "lr", "translate", "flip", "threads"];

/// A feed-forward net with its learning channel (`channel="srbp"`, …) and SGD state.
///
/// Net(layers=None, *, arch=None, input_shape=None, classes=None, **settings)
///
/// Give either `layers=[n_in, hidden..., classes]` for a dense net, or `input_shape` (an int,
/// `(H, W)` or `(C, H, W)`), `classes` and `hidden=[...]` or `arch="conv16k5-pool3s2-fc64"`.
/// `settings` are the keys of `rbp train --print-config` (the flags' names in snake_case):
/// `channel`, `activation`, `seed`, `lr`, `batch`, `decay`, `momentum`, `weight_decay`,
/// `feedback`, `average`, `adapt_factor`, `channel_dropout`, `quantize_signal`,
/// `quantize_update`, `mix`, `threads`, `translate`, `flip`, `epochs`, … with the command line's
/// defaults. Initial weights and feedback matrices come from the seed exactly as in `rbp train`.
#[pyclass(module = "rbprop", dict, weakref)]
pub struct Net {
    pub(crate) config: TrainConfig,
    pub(crate) input: (usize, usize, usize),
    pub(crate) classes: usize,
    /// The trainer on the host; stale while `resident` holds it (read it through [`Net::host`]).
    pub(crate) trainer: Trainer,
    /// The trainer on its device between consecutive `step` calls, so that a loop of steps moves
    /// only its minibatches; brought back by the first call that reads or changes the net.
    resident: Resident,
    /// Metrics of the finished epochs.
    pub(crate) history: Vec<EpochMetrics>,
    pool: rayon::ThreadPool,
    /// The constructor's arguments as given (for `get_params`; none for a net loaded or trained
    /// by `rbprop.train`).
    params: Option<Py<PyDict>>,
    /// The epochs of the last `fit` (what its deprecated list-like result indexes).
    last_fit: std::ops::Range<usize>,
}

fn pool(threads: usize) -> PyResult<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| PyValueError::new_err(format!("threads: {e}")))
}

/// Runs `work` off the interpreter's thread with the GIL released, checking for signals
/// (Ctrl-C) every 20 ms: on one, `work`'s stop flag is raised, and once `work` has returned the
/// signal's exception (KeyboardInterrupt) is raised instead of its result.
pub fn interruptible<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(&AtomicBool) -> T + Send,
) -> PyResult<T> {
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let mut raised: Option<PyErr> = None;
    let out = std::thread::scope(|s| {
        let (stop, done) = (&stop, &done);
        let worker = s.spawn(move || {
            let v = work(stop);
            done.store(true, Ordering::SeqCst);
            v
        });
        loop {
            // wait up to 20 ms without the GIL, then look for signals with it
            py.detach(|| {
                let deadline = Instant::now() + Duration::from_millis(20);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            if done.load(Ordering::SeqCst) || worker.is_finished() {
                return worker.join().ok();
            }
            if raised.is_none()
                && let Err(e) = py.check_signals()
            {
                raised = Some(e);
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    match (raised, out) {
        (Some(e), _) => Err(e),
        (None, Some(v)) => Ok(v),
        (None, None) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the training thread panicked",
        )),
    }
}

impl Net {
    /// A net as `config` describes for inputs of `input` shape and `classes` classes.
    pub fn build(
        config: TrainConfig,
        input: (usize, usize, usize),
        classes: usize,
    ) -> PyResult<Self> {
        if !(2..=256).contains(&classes) {
            return Err(PyValueError::new_err(format!(
                "classes: expected 2 to 256 classes, got {classes}"
            )));
        }
        if input.0 * input.1 * input.2 == 0 {
            return Err(PyValueError::new_err(format!(
                "input_shape: {input:?} has no values"
            )));
        }
        let trainer = build_trainer(&config, input, classes).map_err(py_err)?;
        Net::from_parts(config, input, classes, trainer, Vec::new())
    }

    /// A net from a trainer built for `config` and the metrics of its finished epochs.
    pub fn from_parts(
        config: TrainConfig,
        input: (usize, usize, usize),
        classes: usize,
        trainer: Trainer,
        history: Vec<EpochMetrics>,
    ) -> PyResult<Self> {
        // the device opens now (an error names it), and the net and channel must run there
        device::on_device(&config, Check(&trainer)).map_err(py_err)?;
        if let Some(w) = device::open(&config).map_err(py_err)?.warning() {
            Python::attach(|py| {
                PyErr::warn(
                    py,
                    &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(),
                    &std::ffi::CString::new(w).expect("no NUL in the message"),
                    1,
                )
            })?;
        }
        Ok(Net {
            pool: pool(config.threads)?,
            config,
            input,
            classes,
            trainer,
            resident: Resident::default(),
            history,
            params: None,
            last_fit: 0..0,
        })
    }

    /// The trainer on the host, brought back from the GPU if `step` left it there.
    pub(crate) fn host(&mut self) -> &mut Trainer {
        self.resident.bring_back(&mut self.trainer);
        &mut self.trainer
    }

    /// Updates done, wherever the trainer is.
    fn step_count(&self) -> u64 {
        self.resident.steps().unwrap_or(self.trainer.step)
    }

    /// Applies the settings `fit` was given to this net's configuration (and optimizer).
    fn fit_settings(&mut self, settings: toml::Table) -> PyResult<()> {
        if let Some(k) = settings.keys().find(|k| !FIT_KEYS.contains(&k.as_str())) {
            return Err(PyValueError::new_err(format!(
                "fit: `{k}` is fixed when the net is made (Net(..., {k}=...)); fit takes {}",
                FIT_KEYS.join(", ")
            )));
        }
        let config = TrainConfig::with_settings(settings, &self.config).map_err(py_err)?;
        config.validate().map_err(py_err)?;
        if config.threads != self.config.threads {
            self.pool = pool(config.threads)?;
        }
        self.host().sgd.lr = config.lr;
        self.config = config;
        Ok(())
    }

    /// Trains one epoch (the next of this net) on `train`, then evaluates on `test`.
    /// On any error (Ctrl-C, a divergence, an exception of `progress`) the net goes back to
    /// where it was when the epoch began, so that the next epoch is the one a clean run trains.
    fn epoch(
        &mut self,
        py: Python<'_>,
        train: &Dataset,
        test: Option<&Dataset>,
        progress: Option<&Py<PyAny>>,
    ) -> PyResult<EpochMetrics> {
        let before: Trainer = self.host().to_backend();
        let done = self.epoch_from_here(py, train, test, progress);
        if done.is_err() {
            self.trainer = before;
        }
        done
    }

    fn epoch_from_here(
        &mut self,
        py: Python<'_>,
        train: &Dataset,
        test: Option<&Dataset>,
        progress: Option<&Py<PyAny>>,
    ) -> PyResult<EpochMetrics> {
        let epoch = self.history.len() + 1;
        let augment = Augment {
            translate: self.config.translate,
            flip: self.config.flip,
        };
        if augment.active() && train.shape.1 < 2 {
            return Err(PyValueError::new_err(
                "translate/flip: augmentation needs image inputs (input_shape (C, H, W))",
            ));
        }
        self.host();
        let (config, host, pool) = (&self.config, &mut self.trainer, &self.pool);
        let error = Mutex::new(None);
        let done = interruptible(py, |flag| {
            pool.install(|| {
                let stop = Stop {
                    flag,
                    progress,
                    epoch,
                    examples: train.len(),
                    error: &error,
                };
                let work = EpochWork {
                    host,
                    config,
                    train,
                    test,
                    augment,
                    epoch,
                    stop,
                };
                device::on_device(config, work)
            })
        })?;
        if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let m = done.map_err(py_err)?;
        self.history.push(m.clone());
        Ok(m)
    }

    /// The training set and the optional validation set of a `fit` call.
    fn fit_data(
        &self,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        validation: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Dataset, Option<Dataset>)> {
        let train = convert::dataset(x, y, self.input, self.classes, ("X", "y"))?;
        let test = match validation {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => {
                let (vx, vy): (Bound<'_, PyAny>, Bound<'_, PyAny>) = v.extract().map_err(|_| {
                    PyTypeError::new_err("validation: expected a pair (X_test, y_test)")
                })?;
                Some(convert::dataset(
                    &vx,
                    &vy,
                    self.input,
                    self.classes,
                    ("validation X", "validation y"),
                )?)
            }
        };
        Ok((train, test))
    }

    /// The logits of `x` (`n × classes`).
    fn logits(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, usize)> {
        self.host();
        let images = convert::inputs(x, self.input, "X")?;
        let dim = self.input.0 * self.input.1 * self.input.2;
        let n = images.len() / dim;
        let net = &self.trainer.net;
        let classes = self.classes;
        let out = py.detach(|| {
            self.pool.install(|| {
                let chunk = if net.is_dense() { 1000 } else { 250 };
                let mut acts = Activations::new(net, chunk.min(n.max(1)));
                let mut out = Vec::with_capacity(n * classes);
                for start in (0..n).step_by(chunk) {
                    let m = chunk.min(n - start);
                    acts.out[0][..m * dim].copy_from_slice(&images[start * dim..(start + m) * dim]);
                    net.forward(&mut acts, m);
                    out.extend_from_slice(&acts.out[net.depth()][..m * classes]);
                }
                out
            })
        });
        Ok((out, n))
    }
}

#[pymethods]
impl Net {
    #[new]
    #[pyo3(signature = (layers=None, *, arch=None, input_shape=None, classes=None, **settings))]
    fn new(
        py: Python<'_>,
        layers: Option<&Bound<'_, PyAny>>,
        arch: Option<&Bound<'_, PyAny>>,
        input_shape: Option<&Bound<'_, PyAny>>,
        classes: Option<&Bound<'_, PyAny>>,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        // the arguments as given, for get_params (scikit-learn's clone checks their identity)
        let params = PyDict::new(py);
        params.set_item("layers", layers)?;
        params.set_item("arch", arch)?;
        params.set_item("input_shape", input_shape)?;
        params.set_item("classes", classes)?;
        if let Some(s) = settings {
            params.update(s.as_mapping())?;
        }
        let layers: Option<Vec<usize>> = layers
            .map(|l| l.extract())
            .transpose()
            .map_err(|_| PyTypeError::new_err("layers: expected a list of ints"))?;
        let arch: Option<String> = arch.map(|a| a.extract()).transpose().map_err(|_| {
            PyTypeError::new_err("arch: expected a str such as \"conv16k5-pool2-fc64\"")
        })?;
        let classes: Option<usize> = classes
            .map(|c| c.extract())
            .transpose()
            .map_err(|_| PyTypeError::new_err("classes: expected an int"))?;
        let mut net = Self::build_from(layers, arch, input_shape, classes, settings)?;
        net.params = Some(params.unbind());
        Ok(net)
    }

    /// get_params(deep=True) -> dict
    ///
    /// The net's parameters in scikit-learn's sense: the constructor's arguments (`layers`, or
    /// `input_shape`, `classes` and `arch`) and every setting of `print_config()` but `data`,
    /// as given to the constructor where they were, else as the net resolved them.
    /// `type(net)(**net.get_params())` builds the same untrained net (scikit-learn's `clone`).
    #[pyo3(signature = (deep=true))]
    fn get_params<'py>(&self, py: Python<'py>, deep: bool) -> PyResult<Bound<'py, PyDict>> {
        let _ = deep; // no parameter is itself an estimator
        let out = PyDict::new(py);
        let given = match &self.params {
            Some(p) => p.bind(py).copy()?,
            None => PyDict::new(py),
        };
        let settings = to_py(py, &self.config)?.cast_into::<PyDict>()?;
        settings.del_item("data")?;
        let by_layers = given.get_item("layers")?.is_some_and(|l| !l.is_none());
        out.set_item("layers", py.None())?;
        if by_layers {
            for k in ["arch", "input_shape", "classes", "hidden"] {
                out.set_item(k, py.None())?;
            }
        } else {
            out.set_item("arch", settings.get_item("arch")?)?;
            out.set_item("input_shape", self.input)?;
            out.set_item("classes", self.classes)?;
        }
        for (k, v) in settings.iter() {
            if !out.contains(&k)? {
                out.set_item(k, v)?;
            }
        }
        out.update(given.as_mapping())?;
        Ok(out)
    }

    /// set_params(**params) -> Net
    ///
    /// Sets parameters of `get_params()` and builds the net again from them (new initial
    /// weights from the seed; the finished epochs are forgotten), as scikit-learn expects before
    /// a `fit`. A dense net given by `layers` takes `input_shape`, `classes` or `hidden` in
    /// their place. Returns the net.
    #[pyo3(signature = (**params))]
    fn set_params<'py>(
        slf: &Bound<'py, Self>,
        params: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let Some(params) = params.filter(|p| !p.is_empty()) else {
            return Ok(slf.clone());
        };
        let current = slf.borrow().get_params(py, false)?;
        for k in params.keys() {
            if !current.contains(&k)? {
                return Err(PyValueError::new_err(format!(
                    "set_params: `{k}` is not a parameter of Net (get_params() lists them)"
                )));
            }
        }
        let set =
            |k: &str| -> PyResult<bool> { Ok(params.get_item(k)?.is_some_and(|v| !v.is_none())) };
        let by_layers = current.get_item("layers")?.is_some_and(|l| !l.is_none());
        if set("layers")? {
            for k in ["arch", "input_shape", "classes", "hidden"] {
                current.set_item(k, py.None())?;
            }
        } else if by_layers
            && (set("input_shape")? || set("classes")? || set("hidden")? || set("arch")?)
        {
            let sizes: Vec<usize> = current
                .get_item("layers")?
                .expect("checked above")
                .extract()?;
            current.set_item("layers", py.None())?;
            current.set_item("input_shape", sizes[0])?;
            current.set_item("classes", sizes[sizes.len() - 1])?;
            current.set_item("hidden", sizes[1..sizes.len() - 1].to_vec())?;
        }
        current.update(params.as_mapping())?;
        let take = |k: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            let v = current.get_item(k)?.filter(|v| !v.is_none());
            current.del_item(k)?;
            Ok(v)
        };
        let (layers, arch, input, classes) = (
            take("layers")?,
            take("arch")?,
            take("input_shape")?,
            take("classes")?,
        );
        let net = Net::new(
            py,
            layers.as_ref(),
            arch.as_ref(),
            input.as_ref(),
            classes.as_ref(),
            Some(&current),
        )?;
        *slf.borrow_mut() = net;
        Ok(slf.clone())
    }

    /// score(X, y) -> float
    ///
    /// The accuracy on `X`, `y` (the fraction of examples whose largest output is their label),
    /// as scikit-learn's classifiers score.
    fn score(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let data = convert::dataset(x, y, self.input, self.classes, ("X", "y"))?;
        self.host();
        let (trainer, pool) = (&self.trainer, &self.pool);
        Ok(py.detach(|| pool.install(|| trainer.evaluate(&data))).acc)
    }

    /// The class labels, `0 .. classes` (int64), as scikit-learn's classifiers hold them.
    #[getter]
    fn classes_<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        PyArray1::from_vec(py, (0..self.classes as i64).collect()).into_any()
    }

    /// scikit-learn's tags (scikit-learn ≥ 1.6 asks for them; imported only then): a
    /// classifier that needs `y`.
    fn __sklearn_tags__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let utils = py.import("sklearn.utils")?;
        let target = PyDict::new(py);
        target.set_item("required", true)?;
        let kw = PyDict::new(py);
        kw.set_item("estimator_type", "classifier")?;
        kw.set_item(
            "target_tags",
            utils.getattr("TargetTags")?.call((), Some(&target))?,
        )?;
        kw.set_item("classifier_tags", utils.getattr("ClassifierTags")?.call0()?)?;
        kw.set_item("input_tags", utils.getattr("InputTags")?.call0()?)?;
        utils.getattr("Tags")?.call((), Some(&kw))
    }

    /// `"classifier"`, for scikit-learn before 1.6.
    #[getter]
    fn _estimator_type(&self) -> &'static str {
        "classifier"
    }

    /// Values per example (`C·H·W`).
    #[getter]
    fn n_features_in_(&self) -> usize {
        self.input.0 * self.input.1 * self.input.2
    }

    /// The metrics of every finished epoch (as `history`), scikit-learn's name.
    #[getter]
    fn history_<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.history)
    }

    /// Deprecated: `fit` returned the list of its epochs' metrics; it returns the net now.
    /// Indexing the net (`net.fit(...)[-1]`, or iterating it) still gives those metrics, with a
    /// `DeprecationWarning`; read `net.history_` instead.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let warn = py.import("warnings")?;
        warn.call_method1(
            "warn",
            (
                "fit() returns the net now (scikit-learn's protocol); read the epochs' metrics from net.history_",
                py.get_type::<pyo3::exceptions::PyDeprecationWarning>(),
                2,
            ),
        )?;
        let last = to_py(py, &self.history[self.last_fit.clone()].to_vec())?;
        last.get_item(index)
    }

    /// partial_fit(X, y, classes=None, **settings) -> Net
    ///
    /// One more epoch on `X`, `y` (scikit-learn's incremental training: `fit(X, y, 1)`).
    /// `classes`, if given, must be `0 .. classes` of the net. Returns the net.
    #[pyo3(signature = (x, y, classes=None, **settings))]
    fn partial_fit<'py>(
        slf: &Bound<'py, Self>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        classes: Option<&Bound<'py, PyAny>>,
        settings: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, Self>> {
        if let Some(c) = classes {
            let given: Vec<i64> = c
                .extract()
                .or_else(|_| c.call_method0("tolist")?.extract())
                .map_err(|_| PyTypeError::new_err("classes: expected a list of ints"))?;
            let n = slf.borrow().classes;
            if given != (0..n as i64).collect::<Vec<_>>() {
                return Err(PyValueError::new_err(format!(
                    "classes: the net's classes are 0..{n} (its labels are their indices), got {given:?}"
                )));
            }
        }
        Net::fit(slf, x, y, Some(1), None, 0, None, settings)
    }

    /// The net's state for pickle: settings, shape, metrics and the checkpoint's bytes (every
    /// tensor, the step count and the channel's noise position), so that a round trip predicts
    /// and trains on bit for bit.
    fn __reduce__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let restore = py.import("rbprop._rbprop")?.getattr("_restore")?;
        let args = self.state(py, None)?;
        PyTuple::new(py, [restore.into_any(), args.into_any()])
    }

    fn __copy__(&mut self, py: Python<'_>) -> PyResult<Net> {
        let state = self.state(py, None)?;
        restore_state(&state)
    }

    fn __deepcopy__(&mut self, py: Python<'_>, memo: &Bound<'_, PyAny>) -> PyResult<Net> {
        let state = self.state(py, Some(memo))?;
        restore_state(&state)
    }

    /// fit(X, y, epochs=None, *, validation=None, verbose=0, progress=None, **settings) -> Net
    ///
    /// Trains `epochs` epochs (default: the net's `epochs` setting) on examples `X`
    /// (`(N, values)` or `(N, C, H, W)`, floats) and labels `y` (`(N,)`, ints in
    /// `0..classes`), continuing the epochs already done (the shuffle of epoch e depends only on
    /// the seed and e, as in `rbp train`). `validation=(X_test, y_test)` is evaluated after each
    /// epoch (test_loss, test_acc; None in `history_` without it). `settings` may change
    /// `batch`, `lr`, `translate`, `flip` and `threads`. `verbose=1` prints a line per epoch; `progress`, a
    /// callable, receives `{"epoch", "done", "examples"}` after every update (it must not use
    /// the net; an exception it raises stops training and is raised here). Returns the net (the
    /// metrics are in `history_`; each one's `lr` is the rate the next update uses). Ctrl-C
    /// stops between two updates (KeyboardInterrupt) and a divergence raises `DivergedError`;
    /// either way the net goes back to where its last finished epoch left it, so the next `fit`
    /// continues exactly as an uninterrupted run would.
    #[pyo3(signature = (x, y, epochs=None, *, validation=None, verbose=0, progress=None, **settings))]
    #[allow(clippy::too_many_arguments)]
    fn fit<'py>(
        slf: &Bound<'py, Self>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        epochs: Option<usize>,
        validation: Option<&Bound<'py, PyAny>>,
        verbose: usize,
        progress: Option<Py<PyAny>>,
        settings: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let mut net = slf.borrow_mut();
        net.fit_settings(convert::settings_table(settings)?)?;
        let (train, test) = net.fit_data(x, y, validation)?;
        let start = net.history.len();
        net.last_fit = start..start;
        let total = epochs.unwrap_or(net.config.epochs);
        for k in 0..total {
            let m = net.epoch(py, &train, test.as_ref(), progress.as_ref())?;
            net.last_fit.end += 1;
            if verbose > 0 {
                let tested = if test.is_some() {
                    format!(
                        "  test loss {:.4} acc {:.2}%",
                        m.test_loss,
                        100.0 * m.test_acc
                    )
                } else {
                    String::new()
                };
                let line = format!(
                    "epoch {} ({}/{total})  train loss {:.4} acc {:.2}%{tested}  {:.2}s",
                    m.epoch,
                    k + 1,
                    m.train_loss,
                    100.0 * m.train_acc,
                    m.seconds
                );
                py.import("builtins")?.call_method1("print", (line,))?;
            }
        }
        drop(net);
        Ok(slf.clone())
    }

    /// fit_iter(X, y, *, epochs=None, validation=None, **settings) -> iterator of dict
    ///
    /// `fit`, one epoch per iteration: yields each epoch's metrics as soon as it is done (for
    /// live plots or tqdm). The same numbers as `fit`.
    #[pyo3(signature = (x, y, *, epochs=None, validation=None, **settings))]
    fn fit_iter(
        slf: &Bound<'_, Self>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        epochs: Option<usize>,
        validation: Option<&Bound<'_, PyAny>>,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<FitIter> {
        let mut net = slf.borrow_mut();
        net.fit_settings(convert::settings_table(settings)?)?;
        let (train, test) = net.fit_data(x, y, validation)?;
        Ok(FitIter {
            net: slf.clone().unbind(),
            train,
            test,
            remaining: epochs.unwrap_or(net.config.epochs),
        })
    }

    /// step(X, y) -> dict
    ///
    /// One SGD update on the minibatch `X`, `y` (the learning channel's update). Returns the
    /// batch's mean loss and accuracy, measured before the update.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let batch = convert::dataset(x, y, self.input, self.classes, ("X", "y"))?;
        let (images, labels) = (&batch.images, &batch.labels);
        let (config, pool) = (&self.config, &self.pool);
        let work = StepWork {
            host: &mut self.trainer,
            resident: &mut self.resident,
            images,
            labels,
        };
        let loss = py
            .detach(|| pool.install(|| device::on_device(config, work)))
            .map_err(py_err)?;
        let n = batch.len() as f64;
        let out = PyDict::new(py);
        out.set_item("loss", loss.loss_sum / n)?;
        out.set_item("accuracy", loss.correct as f64 / n)?;
        Ok(out)
    }

    /// predict(X) -> numpy.ndarray
    ///
    /// The predicted class of each example (int64, `(N,)`): the largest output.
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (logits, _) = self.logits(py, x)?;
        let classes: Vec<i64> = logits
            .chunks(self.classes)
            .map(|row| {
                // the first of equal maxima, as the accuracy counts
                let mut best = 0;
                for (j, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = j;
                    }
                }
                best as i64
            })
            .collect();
        Ok(PyArray1::from_vec(py, classes).into_any())
    }

    /// predict_proba(X) -> numpy.ndarray
    ///
    /// The softmax output of each example (float32, `(N, classes)`).
    fn predict_proba<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut logits, n) = self.logits(py, x)?;
        for row in logits.chunks_mut(self.classes) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for v in row.iter_mut() {
                *v /= sum;
            }
        }
        array(py, &[n, self.classes], logits)
    }

    /// evaluate(X, y) -> dict
    ///
    /// Mean cross-entropy (`loss`) and accuracy of the net on `X`, `y`, computed as the test
    /// metrics of `rbp train`.
    fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let data = convert::dataset(x, y, self.input, self.classes, ("X", "y"))?;
        self.host();
        let (trainer, pool) = (&self.trainer, &self.pool);
        let stats = py.detach(|| pool.install(|| trainer.evaluate(&data)));
        let out = PyDict::new(py);
        out.set_item("loss", stats.loss)?;
        out.set_item("accuracy", stats.acc)?;
        Ok(out)
    }

    /// alignment(X, y) -> list[dict]
    ///
    /// How this net's learning channel relates to backpropagation on the batch `X`, `y` (at
    /// most a few thousand examples), one row per hidden layer. `layer` is the weight layer's
    /// index, as in `net.weights[layer]`, the checkpoint's `layers.{layer}.weight` and the keys
    /// `(layer, k)` of `net.feedback`; the hidden layer is that weight layer's output.
    /// - `learns`: whether the channel sends the layer a signal (the others keep their weights);
    /// - `delta_angle`: the angle in degrees between the δ this channel delivers to the layer
    ///   and backpropagation's δ (the batch's δ matrices, flattened);
    /// - `update_angle`: the angle in degrees between this channel's weight update of the layer
    ///   and backpropagation's (−Σ δ ⊗ input over the batch);
    /// - `orthant`: the fraction of the update's entries whose sign agrees with BP's;
    /// - `feedback_angle` and `feedback_norm_ratio`: where a feedback matrix C stands in
    ///   W_{layer+1}ᵀ's place (a dense RBP-style route from the layer above), angle(C, W_{layer+1}ᵀ)
    ///   in degrees and ‖C‖/‖W_{layer+1}‖; None elsewhere (SRBP's direct routes, mixed routes);
    /// - `signal_zero`, `signal_clipped`, `update_zero`, `update_clipped`: with a quantized
    ///   error signal or quantized updates, the fractions of entries sent to zero and clipped
    ///   (None otherwise).
    ///
    /// A pandas DataFrame (one row per hidden layer, these columns) when pandas is installed,
    /// else this list of dicts. (Before this version the rows were numbered from 1 and
    /// `weight_angle`/`norm_ratio` named what `feedback_angle`/`feedback_norm_ratio` name now.)
    fn alignment<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = convert::dataset(x, y, self.input, self.classes, ("X", "y"))?;
        self.host();
        let (t, pool) = (&self.trainer, &self.pool);
        let layers = py.detach(|| {
            pool.install(|| {
                diagnostics::probe(&t.net, &t.channel, &data.images, &data.labels, t.rate())
            })
        });
        let out = PyList::empty(py);
        for i in 0..t.net.depth() - 1 {
            let row = PyDict::new(py);
            let d = layers.iter().find(|d| d.layer == i + 1);
            row.set_item("layer", i)?;
            row.set_item("learns", d.is_some())?;
            row.set_item("delta_angle", d.map(|d| d.delta_angle))?;
            row.set_item("update_angle", d.map(|d| d.update_angle))?;
            row.set_item("orthant", d.map(|d| d.orthant))?;
            row.set_item("feedback_angle", d.and_then(|d| d.weight_angle))?;
            row.set_item("feedback_norm_ratio", d.and_then(|d| d.norm_ratio))?;
            row.set_item("signal_zero", d.and_then(|d| d.signal_zero))?;
            row.set_item("signal_clipped", d.and_then(|d| d.signal_clipped))?;
            row.set_item("update_zero", d.and_then(|d| d.update_zero))?;
            row.set_item("update_clipped", d.and_then(|d| d.update_clipped))?;
            out.append(row)?;
        }
        match py.import("pandas") {
            Ok(pandas) => pandas.getattr("DataFrame")?.call1((out,)),
            Err(_) => Ok(out.into_any()),
        }
    }

    /// Every tensor of the net as its checkpoint stores it, by name: `layers.{i}.weight`
    /// (dense `(n_out, n_in)`, conv `(c_out, c_in, k, k)`), `layers.{i}.bias`,
    /// `momentum.{i}.*`, `feedback.{i}.{j}` (the j-th feedback term of hidden layer i:
    /// `(N_i, N_k)`, receiving × sending, or the sending layer's weight shape where random
    /// weights stand in its place) and the channel's other tensors.
    fn tensors<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, shape, values) in checkpoint::named_tensors(self.host()) {
            out.set_item(name, array(py, &shape, values)?)?;
        }
        Ok(out)
    }

    /// The weight matrices, input to output (copies): dense `(n_out, n_in)` (so that the
    /// layer computes `W @ x + b`), conv `(c_out, c_in, k, k)`.
    #[getter]
    fn weights<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut out = Vec::new();
        for (name, shape, values) in checkpoint::named_tensors(self.host()) {
            if name.starts_with("layers.") && name.ends_with(".weight") {
                out.push(array(py, &shape, values)?);
            }
        }
        Ok(out)
    }

    /// The bias vectors, input to output (copies).
    #[getter]
    fn biases<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut out = Vec::new();
        for (name, shape, values) in checkpoint::named_tensors(self.host()) {
            if name.starts_with("layers.") && name.ends_with(".bias") {
                out.push(array(py, &shape, values)?);
            }
        }
        Ok(out)
    }

    /// Replaces the weights: a list with one array (or None: unchanged) per layer, each of
    /// the shape `weights` gives (dense `(n_out, n_in)`, conv `(c_out, c_in, k, k)`), any float
    /// dtype. The shapes and finiteness are checked first; nothing changes on an error.
    #[setter]
    fn set_weights(&mut self, values: Vec<Option<Bound<'_, PyAny>>>) -> PyResult<()> {
        self.replace_layer_tensors("weights", values, checkpoint::layer_weight_shape, |l| {
            &mut l.w
        })
    }

    /// Replaces the biases: a list with one array (or None: unchanged) per layer, `(n_out,)`
    /// dense, `(c_out,)` conv; checked as `weights` are.
    #[setter]
    fn set_biases(&mut self, values: Vec<Option<Bound<'_, PyAny>>>) -> PyResult<()> {
        self.replace_layer_tensors("biases", values, |l| vec![l.b.len()], |l| &mut l.b)
    }

    /// Replaces feedback matrices: a dict `(i, k) → array` for some of the keys of `feedback`,
    /// each of the shape `feedback` gives; the others stay. An unknown key or a wrong shape is
    /// refused before anything changes.
    #[setter]
    fn set_feedback(&mut self, values: &Bound<'_, PyDict>) -> PyResult<()> {
        self.host();
        let shapes: Vec<((usize, usize), Vec<usize>)> = self
            .feedback_shapes()
            .into_iter()
            .map(|(i, k, shape)| ((i, k), shape))
            .collect();
        let mut new = Vec::new();
        for (key, value) in values.iter() {
            let (i, k): (usize, usize) = key.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "feedback: keys are pairs (i, k) of layer indices, got {key}"
                ))
            })?;
            let Some((_, shape)) = shapes.iter().find(|(ik, _)| *ik == (i, k)) else {
                let known: Vec<String> = shapes
                    .iter()
                    .map(|((i, k), _)| format!("({i}, {k})"))
                    .collect();
                return Err(PyValueError::new_err(format!(
                    "feedback[({i}, {k})]: this channel has no such matrix; its keys are {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            let name = format!("feedback[({i}, {k})]");
            new.push(((i, k), tensor_in(&name, &value, shape)?));
        }
        for ((i, k), c) in new {
            *self
                .trainer
                .channel
                .feedback_matrix_mut(i, k)
                .expect("the key was checked") = c;
        }
        Ok(())
    }

    /// The layers as they compute, input to output: dicts with `kind` (`"dense"`: `n_in`,
    /// `n_out`; `"conv"`: `c_in`, `h`, `w`, `c_out`, `k`, `stride`, `pad`), and `pool` (None, or
    /// `k`, `stride`, `pad` of the max-pooling after the layer's activation). With
    /// `config["activation"]` this is what `to_torch` rebuilds.
    #[getter]
    fn layer_specs<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for l in &self.host().net.layers {
            let d = PyDict::new(py);
            match l.kind {
                rbprop::model::Kind::Dense => {
                    d.set_item("kind", "dense")?;
                    d.set_item("n_in", l.n_in)?;
                    d.set_item("n_out", l.n_out)?;
                }
                rbprop::model::Kind::Conv(g) => {
                    d.set_item("kind", "conv")?;
                    for (k, v) in [
                        ("c_in", g.c_in),
                        ("h", g.h),
                        ("w", g.w),
                        ("c_out", g.c_out),
                        ("k", g.k),
                        ("stride", g.stride),
                        ("pad", g.pad),
                    ] {
                        d.set_item(k, v)?;
                    }
                }
            }
            match l.pool {
                None => d.set_item("pool", py.None())?,
                Some(p) => {
                    let pool = PyDict::new(py);
                    pool.set_item("k", p.k)?;
                    pool.set_item("stride", p.stride)?;
                    pool.set_item("pad", p.pad)?;
                    d.set_item("pool", pool)?;
                }
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// The learning channel's feedback matrices (copies), as a dict `(i, k) → C`: the matrix
    /// that carries layer k's error to hidden layer i (0-based weight layers), shape
    /// `(N_i, N_k)` (receiving × sending); for channels that put random weights in place of
    /// W_{i+1} (RBP's kernels on conv nets) the sending layer's weight shape.
    #[getter]
    fn feedback<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.host();
        let out = PyDict::new(py);
        let shapes = self.feedback_shapes();
        for ((i, k, c), (_, _, shape)) in self
            .trainer
            .channel
            .feedback_matrices()
            .into_iter()
            .zip(shapes)
        {
            out.set_item((i, k), array(py, &shape, c.clone())?)?;
        }
        Ok(out)
    }

    /// The resolved settings (the keys of the run's `config.toml`).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.config)
    }

    /// The settings as `rbp train --print-config` prints them (TOML).
    fn print_config(&self) -> String {
        toml::to_string(&self.config).expect("settings serialize")
    }

    /// The metrics of every finished epoch (dicts, as the lines of `metrics.jsonl`).
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.history)
    }

    /// Epochs finished.
    #[getter]
    fn epochs(&self) -> usize {
        self.history.len()
    }

    /// Updates done (epochs and single steps).
    #[getter]
    fn steps(&self) -> u64 {
        self.step_count()
    }

    /// The input shape `(C, H, W)` (`(values, 1, 1)` for a dense net).
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        self.input
    }

    /// Number of classes.
    #[getter]
    fn classes(&self) -> usize {
        self.classes
    }

    /// The learning channel of each hidden layer, in words.
    #[getter]
    fn channel(&mut self) -> Vec<String> {
        self.host();
        self.trainer.channel.describe(&self.trainer.net)
    }

    /// save(path, *, overwrite=False)
    ///
    /// Writes the net as a run directory of `rbp train --out`: `config.toml`, `metrics.jsonl`,
    /// `summary.json` and `checkpoint.safetensors` (each atomically). `rbprop.load` reads it
    /// back; `rbp train --config PATH/config.toml --data DIR --out PATH` continues it. A
    /// directory that is not empty is refused (`FileExistsError`) unless `overwrite=True`,
    /// which replaces those four files.
    #[pyo3(signature = (path, *, overwrite=false))]
    fn save(&mut self, py: Python<'_>, path: PathBuf, overwrite: bool) -> PyResult<()> {
        if !overwrite
            && let Ok(mut entries) = std::fs::read_dir(&path)
            && let Some(first) = entries.next()
        {
            let name = first
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(pyo3::exceptions::PyFileExistsError::new_err(format!(
                "save: {} is not empty (it holds {name}, …); pass overwrite=True to replace the run saved there",
                path.display()
            )));
        }
        let mut config = self.config.clone();
        config.epochs = self.history.len().max(1);
        self.host();
        let (history, trainer) = (&self.history, &mut self.trainer);
        py.detach(|| -> rbprop::Result<()> {
            std::fs::create_dir_all(&path).map_err(|e| rbprop::Error::io(&path, e))?;
            let dir = RunDir::new(&path).lock()?;
            dir.write_config(&config)?;
            let mut lines = String::new();
            for m in history {
                lines.push_str(&serde_json::to_string(m).expect("metrics serialize"));
                lines.push('\n');
            }
            dir.write_metrics(&lines)?;
            checkpoint::save(&dir.checkpoint_file(), trainer, history.len(), &config)?;
            let status = if history.is_empty() {
                "running"
            } else {
                "completed"
            };
            dir.write_summary(status, history, None)?;
            // a saved net is no run in progress: no lock file stays behind
            let _ = std::fs::remove_file(dir.lock_file());
            Ok(())
        })
        .map_err(py_err)
    }

    fn __repr__(&self) -> String {
        format!(
            "Net({}, channel={:?}, epochs done {}, steps {})",
            self.trainer.net.summary(),
            self.config.channel,
            self.history.len(),
            self.step_count()
        )
    }
}

/// Loads a net saved by `Net.save` or a run directory of `rbp train --out` (its config.toml,
/// checkpoint and metrics).
pub fn load(path: PathBuf) -> PyResult<Net> {
    let dir = RunDir::new(&path);
    let config = dir.read_config().map_err(py_err)?;
    let ckpt = dir.checkpoint_file();
    let (input, classes) = checkpoint::peek(&ckpt).map_err(py_err)?;
    let input = match input {
        Some(i) => i,
        // a conv net's checkpoint from before input shapes were recorded: its data tells
        None => {
            let split = rbprop::data::load(&config.data).map_err(py_err)?;
            split.train.shape
        }
    };
    let mut net = Net::build(config, input, classes)?;
    let done = checkpoint::load_any(&ckpt, &mut net.trainer, &net.config).map_err(py_err)?;
    if dir.metrics_file().is_file() {
        let (mut metrics, _) = read_metrics_lines(&dir.metrics_file()).map_err(py_err)?;
        metrics.truncate(done);
        net.history = metrics;
    }
    Ok(net)
}

/// The iterator of [`Net::fit_iter`].
#[pyclass(module = "rbprop")]
pub struct FitIter {
    net: Py<Net>,
    train: Dataset,
    test: Option<Dataset>,
    remaining: usize,
}

#[pymethods]
impl FitIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let mut net = self.net.borrow_mut(py);
        let m = net.epoch(py, &self.train, self.test.as_ref(), None)?;
        self.remaining -= 1;
        Ok(Some(to_py(py, &m)?))
    }

    fn __len__(&self) -> usize {
        self.remaining
    }
}

/// fit_together(nets, X, y, *, epochs=None, validation=None) -> list[list[dict]]
///
/// Trains several nets at once on the same examples, as one ensemble on the CPU: the nets read
/// the same minibatches (they must share `seed`, `batch`, `translate`, `flip` and `threads`, and
/// have done the same number of epochs), layer 0's products are computed once for all of them,
/// and each net ends exactly as its own `fit` would leave it, to the bit. `epochs` defaults to
/// the first net's `epochs` setting; `validation=(X_test, y_test)` as in `fit`. Returns each
/// net's new epochs' metrics, in the order of `nets`. A net whose loss stops being finite raises
/// `DivergedError` after the epoch (the other nets keep that epoch); Ctrl-C stops between two
/// updates (KeyboardInterrupt).
#[pyfunction]
#[pyo3(signature = (nets, x, y, *, epochs=None, validation=None))]
pub fn fit_together<'py>(
    py: Python<'py>,
    nets: Vec<Bound<'py, Net>>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    epochs: Option<usize>,
    validation: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    if nets.is_empty() {
        return Err(PyValueError::new_err("fit_together: nets is empty"));
    }
    let mut refs: Vec<PyRefMut<'py, Net>> = Vec::new();
    for (i, n) in nets.iter().enumerate() {
        refs.push(n.try_borrow_mut().map_err(|_| {
            PyValueError::new_err(format!(
                "fit_together: nets[{i}] is given twice (or is in use); each net once"
            ))
        })?);
    }
    for (i, n) in refs.iter().enumerate() {
        let first = &refs[0];
        let why = if n.config.device != Device::Cpu {
            Some("it is on the GPU (ensembles train on the CPU)".to_string())
        } else if (n.input, n.classes) != (first.input, first.classes) {
            Some("its input shape or classes differ from nets[0]'s".into())
        } else if n.history.len() != first.history.len() {
            Some(format!(
                "it has done {} epochs and nets[0] {}: the nets must be at the same epoch",
                n.history.len(),
                first.history.len()
            ))
        } else {
            rbprop::run::ensemble::incompatible(&first.config, &n.config)
                .map(|w| format!("{w} from nets[0]'s"))
        };
        if let Some(why) = why {
            return Err(PyValueError::new_err(format!(
                "fit_together: nets[{i}] cannot train with the others: {why}"
            )));
        }
    }
    let (train, test) = refs[0].fit_data(x, y, validation)?;
    let per_net: Vec<Bound<'py, PyList>> = refs.iter().map(|_| PyList::empty(py)).collect();
    let config = refs[0].config.clone();
    let augment = Augment {
        translate: config.translate,
        flip: config.flip,
    };
    if augment.active() && train.shape.1 < 2 {
        return Err(PyValueError::new_err(
            "translate/flip: augmentation needs image inputs (input_shape (C, H, W))",
        ));
    }
    let pool = pool(config.threads)?;
    let mut ensemble = rbprop::train::Ensemble::new();
    for _ in 0..epochs.unwrap_or(config.epochs) {
        let epoch = refs[0].history.len() + 1;
        let mut trainers: Vec<&mut Trainer> = refs.iter_mut().map(|r| r.host()).collect();
        let (train, test, ensemble) = (&train, test.as_ref(), &mut ensemble);
        let out = interruptible(py, |stop| {
            pool.install(|| {
                let clock = Instant::now();
                let stats = ensemble.epoch(
                    &mut trainers,
                    train,
                    config.batch,
                    config.seed,
                    epoch,
                    augment,
                    |_, _| {
                        if stop.load(Ordering::SeqCst) {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    },
                );
                let seconds = clock.elapsed().as_secs_f64();
                let nets: Vec<&rbprop::model::Net> = trainers.iter().map(|t| &t.net).collect();
                let tested = test.map(|d| ensemble.evaluate(&nets, d));
                (stats, tested, seconds)
            })
        })?;
        let (stats, tested, seconds) = out;
        let mut diverged = None;
        let mut interrupted = None;
        for (k, r) in refs.iter_mut().enumerate() {
            let Some(s) = stats[k] else {
                interrupted.get_or_insert((epoch, r.step_count()));
                continue;
            };
            let t = tested.as_ref().map(|v| v[k]);
            let done =
                rbprop::run::epoch_metrics(&r.trainer, &r.config, train, epoch, s, t, seconds);
            let m = match done {
                Ok(m) => m,
                Err(rbprop::Error::Diverged { epoch, step, loss }) => {
                    diverged.get_or_insert((k, epoch, step, loss));
                    continue;
                }
                Err(e) => return Err(py_err(e)),
            };
            per_net[k].append(to_py(py, &m)?)?;
            r.history.push(m);
        }
        if let Some((epoch, step)) = interrupted {
            return Err(py_err(rbprop::Error::Interrupted { epoch, step }));
        }
        if let Some((k, epoch, step, loss)) = diverged {
            let e = py_err(rbprop::Error::Diverged { epoch, step, loss });
            return Err(diverged_net(py, e, k));
        }
    }
    PyList::new(py, per_net)
}

/// The `DivergedError` of [`fit_together`], its message prefixed by the net's index.
fn diverged_net(py: Python<'_>, e: PyErr, k: usize) -> PyErr {
    let text = e.value(py).to_string();
    crate::DivergedError::new_err(format!("nets[{k}]: {text}"))
}

impl Net {
    /// Replaces one tensor per layer (`slot`) with `values` (None keeps one), each checked
    /// against `shape` first: nothing changes on an error.
    fn replace_layer_tensors(
        &mut self,
        name: &str,
        values: Vec<Option<Bound<'_, PyAny>>>,
        shape: impl Fn(&rbprop::model::Layer) -> Vec<usize>,
        slot: impl Fn(&mut rbprop::model::Layer) -> &mut Vec<f32>,
    ) -> PyResult<()> {
        let shapes: Vec<Vec<usize>> = self.host().net.layers.iter().map(shape).collect();
        let new = tensors_in(name, values, &shapes)?;
        for (layer, v) in self.trainer.net.layers.iter_mut().zip(new) {
            if let Some(v) = v {
                *slot(layer) = v;
            }
        }
        Ok(())
    }

    /// `(i, k, shape)` of each feedback matrix, in `feedback_matrices` order: `(N_i, N_k)`
    /// receiving × sending, or the sending layer's weight shape for random weights in W_k's
    /// place (the host trainer's; call `host` first).
    fn feedback_shapes(&self) -> Vec<(usize, usize, Vec<usize>)> {
        let net = &self.trainer.net;
        self.trainer
            .channel
            .feedback_matrices()
            .into_iter()
            .map(|(i, k, c)| {
                let (receiving, sending) = (net.layers[i].n_out, net.layers[k].n_out);
                let shape = if c.len() == receiving * sending {
                    vec![receiving, sending]
                } else {
                    // random weights in W_k's place, stored as W_k is
                    checkpoint::layer_weight_shape(&net.layers[k])
                };
                (i, k, shape)
            })
            .collect()
    }

    /// The arguments of [`_restore`]: (settings TOML, input shape, classes, metrics JSON lines,
    /// checkpoint bytes, constructor arguments or None, the last fit's epochs). With `memo`,
    /// the constructor arguments are deep-copied.
    fn state<'py>(
        &mut self,
        py: Python<'py>,
        memo: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let config = self.config.clone();
        let epochs = self.history.len();
        let bytes = checkpoint::to_bytes(self.host(), epochs, &config, None)
            .map_err(PyValueError::new_err)?;
        let history = serde_json::to_string(&self.history).expect("metrics serialize");
        let settings = toml::to_string(&self.config).expect("settings serialize");
        let params = match (&self.params, memo) {
            (None, _) => py.None().into_bound(py),
            (Some(p), None) => p.bind(py).copy()?.into_any(),
            (Some(p), Some(memo)) => py
                .import("copy")?
                .call_method1("deepcopy", (p.bind(py), memo))?,
        };
        (
            settings,
            self.input,
            self.classes,
            history,
            PyBytes::new(py, &bytes),
            params,
            (self.last_fit.start, self.last_fit.end),
        )
            .into_pyobject(py)
    }
}

/// The state of [`Net::state`], as Rust values.
type State<'py> = (
    String,
    (usize, usize, usize),
    usize,
    String,
    Vec<u8>,
    Option<Bound<'py, PyDict>>,
    (usize, usize),
);

/// A net from the state of [`Net::state`].
fn restore_state(state: &Bound<'_, PyTuple>) -> PyResult<Net> {
    let (settings, input, classes, history, bytes, params, last): State<'_> = state.extract()?;
    _restore(settings, input, classes, history, bytes, params, last)
}

/// Unpickles a `Net` (the inverse of `Net.__reduce__`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _restore(
    settings: String,
    input: (usize, usize, usize),
    classes: usize,
    history: String,
    checkpoint: Vec<u8>,
    params: Option<Bound<'_, PyDict>>,
    last_fit: (usize, usize),
) -> PyResult<Net> {
    let bad = |e: String| PyValueError::new_err(format!("unpickling a Net: {e}"));
    let config: TrainConfig = toml::from_str(&settings).map_err(|e| bad(e.to_string()))?;
    let history: Vec<EpochMetrics> =
        serde_json::from_str(&history).map_err(|e| bad(e.to_string()))?;
    let mut net = Net::build(config, input, classes)?;
    checkpoint::load_bytes(
        std::path::Path::new("<pickled net>"),
        &checkpoint,
        &mut net.trainer,
        &net.config,
    )
    .map_err(py_err)?;
    net.history = history;
    net.params = params.map(Bound::unbind);
    net.last_fit = last_fit.0..last_fit.1;
    Ok(net)
}

impl Net {
    /// A net from the constructor's arguments, extracted.
    fn build_from(
        layers: Option<Vec<usize>>,
        arch: Option<String>,
        input_shape: Option<&Bound<'_, PyAny>>,
        classes: Option<usize>,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut table = convert::settings_table(settings)?;
        if table.contains_key("data") {
            return Err(PyValueError::new_err(
                "data: a Net trains on the arrays given to fit(); use rbprop.train(data=...) for a dataset directory",
            ));
        }
        let (input, classes) = match layers {
            Some(sizes) => {
                if arch.is_some()
                    || input_shape.is_some()
                    || classes.is_some()
                    || table.contains_key("hidden")
                {
                    return Err(PyValueError::new_err(
                        "layers: give either layers=[n_in, hidden..., classes], or input_shape, classes and hidden or arch",
                    ));
                }
                if sizes.len() < 2 {
                    return Err(PyValueError::new_err(format!(
                        "layers: expected [n_in, hidden..., classes], got {sizes:?}"
                    )));
                }
                let hidden = sizes[1..sizes.len() - 1]
                    .iter()
                    .map(|&n| toml::Value::Integer(n as i64))
                    .collect();
                table.insert("hidden".into(), toml::Value::Array(hidden));
                ((sizes[0], 1, 1), sizes[sizes.len() - 1])
            }
            None => {
                let input = input_shape.ok_or_else(|| {
                    PyValueError::new_err(
                        "input_shape: needed (or layers=[n_in, hidden..., classes] for a dense net)",
                    )
                })?;
                let classes = classes.ok_or_else(|| {
                    PyValueError::new_err(
                        "classes: needed (or layers=[n_in, hidden..., classes] for a dense net)",
                    )
                })?;
                if let Some(a) = arch {
                    table.insert("arch".into(), toml::Value::String(a));
                }
                (convert::input_shape(input)?, classes)
            }
        };
        let base = TrainConfig {
            data: ARRAYS.into(),
            ..TrainConfig::default()
        };
        let config = TrainConfig::with_settings(table, &base).map_err(py_err)?;
        config.validate().map_err(py_err)?;
        Net::build(config, input, classes)
    }
}

/// An array of exactly `shape` (any float dtype) as f32 values, or an error naming `name`.
fn tensor_in(name: &str, value: &Bound<'_, PyAny>, shape: &[usize]) -> PyResult<Vec<f32>> {
    let (values, got) = convert::floats(value, name)?;
    if got != shape {
        return Err(PyValueError::new_err(format!(
            "{name}: shape {got:?}, expected {shape:?}"
        )));
    }
    Ok(values)
}

/// One array or None per entry of `shapes`, checked ([`tensor_in`]) before anything is used.
fn tensors_in(
    name: &str,
    values: Vec<Option<Bound<'_, PyAny>>>,
    shapes: &[Vec<usize>],
) -> PyResult<Vec<Option<Vec<f32>>>> {
    if values.len() != shapes.len() {
        return Err(PyValueError::new_err(format!(
            "{name}: expected a list of {} arrays (one per layer, None to keep one), got {}",
            shapes.len(),
            values.len()
        )));
    }
    values
        .iter()
        .zip(shapes)
        .enumerate()
        .map(|(i, (v, shape))| {
            v.as_ref()
                .map(|v| tensor_in(&format!("{name}[{i}]"), v, shape))
                .transpose()
        })
        .collect()
}
