//! A `jobfile` binary that knows more functions, written in Rust.
//!
//! A library user builds a [`Registry`] (it starts with the spec's
//! builtins), registers their own functions, installs it, and hands over to
//! the normal command line. Job files then name the new functions like any
//! builtin: directly as a task's `function`, or with
//! `[functions.NAME] builtin = "..."`. They run inside the forked workers,
//! without a new process per call.
//!
//! - `fib` is a plain `fn`;
//! - `greet` changes a shared value through the typed API of
//!   [`CallContext`];
//! - `shout` prints: what a function writes to stdout and stderr is its
//!   record's `stdout` and `stderr`, never part of the results stream;
//! - `divide` panics on a division by zero: that call is a `failed` record
//!   whose `error` is the panic's message, and the worker goes on;
//! - `calls` is a closure that keeps state: how many calls the worker
//!   process running it has served (each worker has its own count).
//!
//! ```text
//! cargo run --example custom_function -- run examples/custom_function.toml
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use jobfile::exec::{CallContext, Registry, install_registry};
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
    // Goes to the engine, which applies it atomically.
    cx.shared_add("greetings", 1)?;
    Ok(json!(format!("Hello, {name}{punctuation}")))
}

/// `shout(word)`: the word in capitals; says so on stdout and stderr.
fn shout(cx: &mut CallContext<'_>) -> Result<Value, String> {
    let Some(Value::String(word)) = cx.args.first() else {
        return Err("shout takes a word".into());
    };
    println!("shouting {word}");
    eprintln!("{word} was {} bytes long", word.len());
    Ok(json!(word.to_uppercase()))
}

/// `divide(a, b)`: a / b in whole numbers. Panics when b is 0, as Rust's
/// integer division does.
fn divide(cx: &mut CallContext<'_>) -> Result<Value, String> {
    let (Some(a), Some(b)) = (
        cx.args.first().and_then(Value::as_i64),
        cx.args.get(1).and_then(Value::as_i64),
    ) else {
        return Err("divide takes two whole numbers".into());
    };
    Ok(json!(a / b))
}

fn main() {
    let mut registry = Registry::new();
    registry.register("fib", fib);
    registry.register("greet", greet);
    registry.register("shout", shout);
    registry.register("divide", divide);
    // A closure with state of its own: one counter per worker process.
    let served = AtomicU64::new(0);
    registry.register("calls", move |_cx| {
        Ok(json!(served.fetch_add(1, Ordering::Relaxed) + 1))
    });
    // Before the command line runs: `check` learns the names from it, and
    // the workers, forked later, inherit it.
    install_registry(registry);
    std::process::exit(jobfile::cli::main());
}
