//! Python functions: the interpreter side that ships inside the binary
//! (`runtime.py`, stdlib only), the template interpreter the engine starts
//! once per run, the interpreter a worker drives, and the probe `check`
//! asks.
//!
//! A template imports the job's modules once and forks every interpreter
//! from itself, so a module's import costs once per run, not once per
//! worker or per replacement. Each worker owns one interpreter for its
//! life: the worker's own capture, timeouts and cancellation apply to it
//! as to a command. When the interpreter dies, or is killed at a timeout,
//! the worker answers that call and ends, and the engine starts a new
//! worker (which runs the pool's initializer again in its new interpreter).

mod interpreter;
mod probe;
mod setup;
mod template;

pub(crate) use interpreter::{CallEvents, Interpreter, PythonCall};
pub use probe::probe;
pub use setup::PythonSetup;
pub use template::{Template, probe_and_start};

/// The Python side, run as `python3 -c BOOT RUNTIME MODE CONFIG`.
pub(crate) const RUNTIME: &str = include_str!("runtime.py");

/// Compiles the runtime under the name `<jobfile>`, so that stacks show
/// its frames as jobfile's rather than as anonymous `<string>`.
pub(crate) const BOOT: &str = "import sys; exec(compile(sys.argv.pop(1), '<jobfile>', 'exec'))";

/// The words before MODE: `-c BOOT RUNTIME`.
pub(crate) fn runtime_args() -> [&'static str; 3] {
    ["-c", BOOT, RUNTIME]
}
