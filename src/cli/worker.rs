//! `jobfile worker`: a worker on stdin/stdout, for pools whose workers are
//! started by something else (Slurm's `srun`).

use std::io::Write;
use std::os::fd::AsFd;

use super::exit::ExitCode;

pub fn run() -> ExitCode {
    if let Err(e) = crate::exec::install_worker_signals() {
        // Not eprintln!: a closed stderr must not panic the worker.
        let _ = writeln!(
            std::io::stderr(),
            "error: the worker cannot set up its signals: {e}"
        );
        return ExitCode::TaskFailed;
    }
    let input = std::io::stdin().as_fd().try_clone_to_owned();
    let output = std::io::stdout().as_fd().try_clone_to_owned();
    match (input, output) {
        (Ok(i), Ok(o)) => match crate::exec::serve_worker(i, o) {
            0 => ExitCode::Ok,
            _ => ExitCode::TaskFailed,
        },
        _ => ExitCode::TaskFailed,
    }
}
