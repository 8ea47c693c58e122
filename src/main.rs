//! `rbp`: the command-line tool. Thin: parse, run, print any error once with its context.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
