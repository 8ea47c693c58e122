//! A channel in words, for the run log: what each hidden layer receives.

use super::quantize::Form;
use super::{Channel, Input};
use crate::backend::Backend;
use crate::model::Net;

impl<B: Backend> Channel<B> {
    /// One line per hidden layer saying what it receives, for the run log.
    pub fn describe(&self, net: &Net<B>) -> Vec<String> {
        let sizes = net.sizes();
        let top = net.depth() - 1;
        let layer = |k: usize| {
            if k == top {
                "top".to_string()
            } else {
                format!("{}", k + 1)
            }
        };
        let mut noise = String::new();
        if self.dropout > 0.0 {
            noise += &format!(", channel-dropout r={}", self.dropout);
        }
        if let Some(q) = self.quantize_signal {
            noise += &format!(", quantize-signal ({})", q.describe(Form::MidRise));
        }
        self.routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let what = match r {
                    None => "nothing (frozen)".to_string(),
                    Some(r) => r
                        .terms
                        .iter()
                        .map(|t| {
                            let x = match t.input {
                                Input::Delta => format!("δ[{}]", layer(t.from)),
                                Input::Signal => format!("g[{}]", layer(t.from)),
                                Input::Target => "(−T)".to_string(),
                                Input::ErrorSign => "sign(δ[top])".to_string(),
                            };
                            t.carrier.describe(net, i, t.from, &layer(t.from), &x)
                        })
                        .collect::<Vec<_>>()
                        .join(" + "),
                };
                let d = if r.is_some() && self.derivative {
                    " ⊙ f'"
                } else {
                    ""
                };
                let n = if r.is_some() { noise.as_str() } else { "" };
                format!(
                    "hidden layer {} ({} units) ← {what}{d}{n}",
                    i + 1,
                    sizes[i + 1]
                )
            })
            .collect()
    }
}
