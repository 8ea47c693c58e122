//! `rbp`: the command-line tool. Thin: parse, run, print any error once with its context.

mod cli;

fn main() {
    if let Err(e) = cli::main() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
