//! Expanding an experiment grid: a variant sweeping two settings (feedback sparsity × learning
//! rate) into 10³, 10⁴ and 10⁵ cells, one seed. Every grid operation (`reproduce`, `--status`,
//! `--print-config`, `ls`, `table`, Slurm submission) expands the grid first, so its cost is
//! theirs; it should grow linearly with the cells.
//!
//!     cargo bench --bench grid

use rbprop::experiment::Experiment;
use std::time::Instant;

fn grid(side: usize) -> Experiment {
    let feedback: Vec<String> = (1..=side).map(|i| format!("\"sparse:{i}\"")).collect();
    let lr: Vec<String> = (1..=side)
        .map(|i| format!("{}", i as f64 / 1000.0))
        .collect();
    toml::from_str(&format!(
        "name = \"grid\"\ndataset = \"x\"\ndata = \"embedded:fashion-mnist-subset\"\nseeds = [1]\n[train]\nepochs = 1\n[[variant]]\nchannel = \"rbp\"\nfeedback = [{}]\nlr = [{}]\n",
        feedback.join(", "),
        lr.join(", ")
    ))
    .expect("a valid experiment")
}

fn main() {
    println!("{:>8} {:>10} {:>14}", "cells", "seconds", "µs per cell");
    for side in [32, 100, 316] {
        let exp = grid(side);
        let clock = Instant::now();
        let runs = exp.runs().expect("expands");
        let s = clock.elapsed().as_secs_f64();
        println!(
            "{:>8} {:>10.3} {:>14.1}",
            runs.len(),
            s,
            s * 1e6 / runs.len() as f64
        );
    }
}
