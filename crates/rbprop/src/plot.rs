//! Figures: SVG or PNG chosen by the file extension, with an embedded font (DejaVu Sans) so that
//! PNG text renders on any machine.

use crate::error::{Error, Result};
use std::path::Path;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font as `sans-serif` (once).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; a failure here would be a build defect.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT);
    });
}

/// The output format of a figure path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// From the extension of `path` (`.svg` or `.png`).
    pub fn of(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
        {
            Some(e) if e == "svg" => Ok(Format::Svg),
            Some(e) if e == "png" => Ok(Format::Png),
            _ => Err(Error::config(
                "out",
                format!("{}: a figure must end in .svg or .png", path.display()),
            )),
        }
    }
}

/// Turns a drawing error into ours, naming the file.
pub fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

/// Renders `$draw(&area)` (a generic function over the backend) into `$path` as SVG or PNG.
#[macro_export]
macro_rules! render {
    ($path:expr, $size:expr, $draw:expr) => {{
        use plotters::prelude::*;
        let path: &std::path::Path = $path;
        $crate::plot::register_font();
        match $crate::plot::Format::of(path)? {
            $crate::plot::Format::Svg => {
                let area = SVGBackend::new(path, $size).into_drawing_area();
                $draw(&area).map_err(|e| $crate::plot::draw_error(path, e))?;
                area.present()
                    .map_err(|e| $crate::plot::draw_error(path, e))?;
            }
            $crate::plot::Format::Png => {
                let area = BitMapBackend::new(path, $size).into_drawing_area();
                $draw(&area).map_err(|e| $crate::plot::draw_error(path, e))?;
                area.present()
                    .map_err(|e| $crate::plot::draw_error(path, e))?;
            }
        }
        Ok::<(), $crate::error::Error>(())
    }};
}
