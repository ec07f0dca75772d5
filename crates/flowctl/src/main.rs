//! `flowctl`: the command-line entry point. All the work is in the library.

fn main() {
    std::process::exit(flowctl::cli::main());
}
