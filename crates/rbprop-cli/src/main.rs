//! `rbp`: the command-line tool. Thin: parse, run, print any error once with its context.

mod cli;

fn main() {
    if let Err(e) = cli::main() {
        // an error that quotes a huge input stays readable
        eprintln!("error: {}", rbprop::error::bounded(&format!("{e:#}")));
        std::process::exit(2);
    }
}
