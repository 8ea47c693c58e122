//! Python values in and out: keyword arguments as settings, numpy arrays as datasets (checked,
//! with errors that name the argument), tensors and JSON back as numpy arrays and dicts.

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rbprop::data::Dataset;

/// Keyword arguments as a table of settings keys (`None` values left out, so they keep their
/// default).
pub fn settings_table(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    if let Some(kwargs) = kwargs {
        for (k, v) in kwargs.iter() {
            let key: String = k.extract()?;
            if let Some(value) = to_toml(&v, &key)? {
                table.insert(key, value);
            }
        }
    }
    Ok(table)
}

/// A Python value as a TOML value: bool, int, float, str, and lists or tuples of them.
fn to_toml(v: &Bound<'_, PyAny>, key: &str) -> PyResult<Option<toml::Value>> {
    if v.is_none() {
        return Ok(None);
    }
    let value = if v.is_instance_of::<PyBool>() {
        toml::Value::Boolean(v.extract()?)
    } else if v.is_instance_of::<PyInt>() {
        toml::Value::Integer(v.extract().map_err(|_| {
            PyValueError::new_err(format!("{key}: {v} does not fit in a 64-bit integer"))
        })?)
    } else if v.is_instance_of::<PyFloat>() {
        toml::Value::Float(v.extract()?)
    } else if v.is_instance_of::<PyString>() {
        toml::Value::String(v.extract()?)
    } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in v.try_iter()? {
            if let Some(x) = to_toml(&item?, key)? {
                items.push(x);
            }
        }
        toml::Value::Array(items)
    } else if let Ok(x) = v.call_method0("item") {
        // a numpy scalar
        return to_toml(&x, key);
    } else {
        return Err(PyTypeError::new_err(format!(
            "{key}: expected a bool, number, string or list, got {}",
            v.get_type().name()?
        )));
    };
    Ok(Some(value))
}

/// The dtype kind of an array-like (`f` float, `i`/`u` integer, …), after `numpy.asarray`.
fn as_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<(Bound<'py, PyAny>, String)> {
    let np = obj.py().import("numpy")?;
    let arr = np
        .call_method1("asarray", (obj,))
        .map_err(|e| PyTypeError::new_err(format!("{name}: not an array: {e}")))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    Ok((arr, kind))
}

/// A float array-like as f32 values (C order) and its shape. Refused: non-float dtypes
/// (`TypeError`), NaN or infinite values (`ValueError`), all naming `name`.
pub fn floats(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<f32>, Vec<usize>)> {
    let py = obj.py();
    let (arr, kind) = as_array(obj, name)?;
    if kind != "f" {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected floating-point values (pixels scaled to [0, 1]), got dtype {}",
            arr.getattr("dtype")?.str()?
        )));
    }
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float32")?)?;
    let c = np.call_method("ascontiguousarray", (arr,), Some(&kwargs))?;
    let c = c.cast::<PyArrayDyn<f32>>()?;
    let shape = c.shape().to_vec();
    let view = c.readonly();
    let src = view.as_slice()?;
    // one pass: copy and check (a vectorizable sum of v · 0 is NaN exactly when some v is not
    // finite); the position only when something is wrong
    let mut values = Vec::with_capacity(src.len());
    let mut finite = true;
    for chunk in src.chunks(1 << 14) {
        values.extend_from_slice(chunk);
        finite &= chunk.iter().fold(0.0f32, |acc, v| acc + v * 0.0) == 0.0;
    }
    if !finite && let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{name}: holds a non-finite value ({}) at flat index {i}",
            values[i]
        )));
    }
    Ok((values, shape))
}

/// An integer array-like of class labels in `0..classes`. Refused: other dtypes (`TypeError`),
/// labels out of range or more than one dimension (`ValueError`), naming `name`.
pub fn labels(obj: &Bound<'_, PyAny>, name: &str, classes: usize) -> PyResult<Vec<u8>> {
    let (arr, kind) = as_array(obj, name)?;
    if kind != "i" && kind != "u" {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected integer class labels, got dtype {}",
            arr.getattr("dtype")?.str()?
        )));
    }
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "{name}: expected a 1-d array of labels, got {ndim} dimensions"
        )));
    }
    let values: Vec<i64> = arr
        .call_method1("astype", ("int64",))?
        .call_method0("tolist")?
        .extract()?;
    let mut out = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        if v < 0 || v as usize >= classes {
            return Err(PyValueError::new_err(format!(
                "{name}: label {v} at index {i} is out of range: the net has {classes} classes (0..{})",
                classes - 1
            )));
        }
        out.push(v as u8);
    }
    Ok(out)
}

/// Examples `x` (`N × values`, `N × H × W` or `N × C × H × W`) and their labels `y` as a
/// dataset for a net of input shape `input` and `classes` classes.
pub fn dataset(
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    input: (usize, usize, usize),
    classes: usize,
    names: (&str, &str),
) -> PyResult<Dataset> {
    let (images, shape) = floats(x, names.0)?;
    let labels = labels(y, names.1, classes)?;
    let dim = input.0 * input.1 * input.2;
    let n = shape.first().copied().unwrap_or(0);
    let per: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || per != dim {
        return Err(PyValueError::new_err(format!(
            "{}: shape {shape:?} does not fit the net's input of {dim} values ({}×{}×{}): expected (N, {dim}) or (N, {}, {}, {})",
            names.0, input.0, input.1, input.2, input.0, input.1, input.2
        )));
    }
    if n != labels.len() {
        return Err(PyValueError::new_err(format!(
            "{} has {n} examples but {} has {} labels",
            names.0,
            names.1,
            labels.len()
        )));
    }
    if n == 0 {
        return Err(PyValueError::new_err(format!("{}: no examples", names.0)));
    }
    Ok(Dataset {
        images,
        labels,
        dim,
        shape: input,
        classes,
    })
}

/// Examples only (for `predict`), checked like [`dataset`]'s.
pub fn inputs(
    x: &Bound<'_, PyAny>,
    input: (usize, usize, usize),
    name: &str,
) -> PyResult<Vec<f32>> {
    let (images, shape) = floats(x, name)?;
    let dim = input.0 * input.1 * input.2;
    let per: usize = shape.iter().skip(1).product();
    if shape.len() < 2 || per != dim {
        return Err(PyValueError::new_err(format!(
            "{name}: shape {shape:?} does not fit the net's input of {dim} values: expected (N, {dim}) or (N, {}, {}, {})",
            input.0, input.1, input.2
        )));
    }
    Ok(images)
}

/// A tensor as a numpy float32 array of `shape`.
pub fn array<'py>(
    py: Python<'py>,
    shape: &[usize],
    values: Vec<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, values)
        .reshape(shape.to_vec())?
        .into_any())
}

/// A float64 array of `rows × cols`.
pub fn matrix<'py>(py: Python<'py>, rows: &[Vec<f64>]) -> PyResult<Bound<'py, PyAny>> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Ok(PyArray1::from_vec(py, flat)
        .reshape(vec![rows.len(), cols])?
        .into_any())
}

/// A serializable value as Python objects (dicts, lists, numbers), through JSON.
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// An input shape given as an int (values), `(H, W)` or `(C, H, W)`.
pub fn input_shape(obj: &Bound<'_, PyAny>) -> PyResult<(usize, usize, usize)> {
    if let Ok(n) = obj.extract::<usize>() {
        return Ok((n, 1, 1));
    }
    let dims: Vec<usize> = obj
        .extract()
        .map_err(|_| PyTypeError::new_err("input_shape: expected an int, (H, W) or (C, H, W)"))?;
    match dims.as_slice() {
        [n] => Ok((*n, 1, 1)),
        [h, w] => Ok((1, *h, *w)),
        [c, h, w] => Ok((*c, *h, *w)),
        _ => Err(PyValueError::new_err(format!(
            "input_shape: expected an int, (H, W) or (C, H, W), got {dims:?}"
        ))),
    }
}
