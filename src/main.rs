//! The `jobfile` binary: a thin shell around [`jobfile::cli`].

fn main() {
    std::process::exit(jobfile::cli::main());
}
