//! A `jobfile` binary that knows two more functions, written in Rust.
//!
//! A library user builds a [`Registry`] (it starts with the spec's
//! builtins), registers their own functions, installs it, and hands over to
//! the normal command line. Job files then name the new functions like any
//! builtin: directly as a task's `function`, or with
//! `[functions.NAME] builtin = "..."`. They run inside the forked workers,
//! without a new process per call.
//!
//! ```text
//! cargo run --example custom_function -- run examples/custom_function.toml
//! ```

use jobfile::exec::{CallContext, Registry, install_registry};
use jobfile::shared::SharedOp;
use serde_json::{Value, json};

/// `fib(n)`: the n-th Fibonacci number, as an integer.
fn fib(cx: &mut CallContext<'_>) -> Result<Value, String> {
    let n = match cx.args {
        [n] => n
            .as_u64()
            .ok_or_else(|| format!("fib takes a whole number >= 0, got {n}"))?,
        _ => return Err(format!("fib takes one arg, got {}", cx.args.len())),
    };
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a
            .checked_add(b)
            .ok_or_else(|| format!("fib({n}) overflows"))?;
        (a, b) = (b, next);
    }
    Ok(json!(a))
}

/// `greet(name, punctuation = ".")`: a greeting. Each call adds 1 to the
/// shared value `greetings`, which the job must declare in `[shared]`.
fn greet(cx: &mut CallContext<'_>) -> Result<Value, String> {
    let Some(Value::String(name)) = cx.args.first() else {
        return Err("greet takes a name (a string) as its first arg".into());
    };
    let punctuation = match cx.kwargs.get("punctuation") {
        None => ".",
        Some(Value::String(p)) => p.as_str(),
        Some(other) => return Err(format!("punctuation must be a string, got {other}")),
    };
    let greeting = format!("Hello, {name}{punctuation}");
    // A shared-value operation goes to the engine, which applies it atomically.
    let op =
        SharedOp::from_values("add", &[json!("greetings"), json!(1)]).map_err(|e| e.to_string())?;
    cx.shared(op)?;
    Ok(json!(greeting))
}

fn main() {
    let mut registry = Registry::new();
    registry.register("fib", fib);
    registry.register("greet", greet);
    // Before the command line runs: `check` learns the names from it, and
    // the workers, forked later, inherit it.
    install_registry(registry);
    std::process::exit(jobfile::cli::main());
}
