//! Functions run inside the worker process, without a new process: the
//! builtins of the spec, and any Rust function a library user registers.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Number, Value};

use crate::shared::SharedOp;

/// What a registered function receives.
pub struct CallContext<'a> {
    /// Positional arguments.
    pub args: &'a [Value],
    /// Keyword arguments.
    pub kwargs: &'a Map<String, Value>,
    shared: &'a mut dyn FnMut(SharedOp) -> Result<Value, String>,
}

impl CallContext<'_> {
    /// Applies an operation on the run's shared values, atomically.
    pub fn shared(&mut self, op: SharedOp) -> Result<Value, String> {
        (self.shared)(op)
    }
}

/// A function the workers can run: its value, or an error message.
pub type Builtin = fn(&mut CallContext<'_>) -> Result<Value, String>;

/// The functions a worker can run in-process, by name.
#[derive(Clone)]
pub struct Registry {
    functions: BTreeMap<String, Builtin>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry holding the spec's builtins.
    pub fn new() -> Registry {
        let mut r = Registry {
            functions: BTreeMap::new(),
        };
        r.register("noop", |_| Ok(Value::Null));
        r.register("echo", |cx| Ok(Value::Array(cx.args.to_vec())));
        r.register("sleep", sleep);
        r.register("fail", |cx| {
            Err(match cx.args.first() {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "failed".into(),
            })
        });
        r.register("square", |cx| match cx.args {
            [x] => square(x),
            _ => Err(format!(
                "square takes one number, got {} args",
                cx.args.len()
            )),
        });
        r.register("sum", |cx| match cx.args {
            [Value::Array(items)] => sum(items),
            args => sum(args),
        });
        r.register("crash", |_| {
            // The worker dies as by an outside SIGKILL: for tests of lost workers.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            Err("the worker survived SIGKILL".into())
        });
        for op in ["get", "set", "add", "append", "put"] {
            r.register(&format!("shared.{op}"), shared_op(op));
        }
        r
    }

    /// Adds (or replaces) a function under `name`.
    pub fn register(&mut self, name: &str, f: Builtin) {
        self.functions.insert(name.to_string(), f);
    }

    /// The registered names.
    pub fn names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    /// Runs `name`; shared operations go through `shared`.
    pub fn call(
        &self,
        name: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        shared: &mut dyn FnMut(SharedOp) -> Result<Value, String>,
    ) -> Result<Value, String> {
        let Some(f) = self.functions.get(name) else {
            return Err(format!("unknown builtin `{name}`"));
        };
        let mut cx = CallContext {
            args,
            kwargs,
            shared,
        };
        f(&mut cx)
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Installs the registry of this process (once, before any job runs).
pub fn install_registry(registry: Registry) {
    let _ = REGISTRY.set(registry);
}

/// The registry of this process: the installed one, else the builtins.
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::new)
}

/// Names of the functions every worker of this process knows.
pub fn builtin_names() -> Vec<String> {
    registry().names()
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{what} takes numbers, got {v}"))
}

fn sleep(cx: &mut CallContext<'_>) -> Result<Value, String> {
    let secs = match cx.args {
        [v] => number(v, "sleep")?,
        [] => 0.0,
        _ => return Err("sleep takes one number of seconds".into()),
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("sleep: {secs} is not a number of seconds"));
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    // std's sleep retries after signals; loop anyway to be exact.
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left);
    }
    Ok(cx.args.first().cloned().unwrap_or(Value::from(0)))
}

fn square(x: &Value) -> Result<Value, String> {
    if let Some(i) = x.as_i64() {
        return i
            .checked_mul(i)
            .map(Value::from)
            .ok_or_else(|| format!("square: {i}*{i} overflows"));
    }
    let f = number(x, "square")?;
    Number::from_f64(f * f)
        .map(Value::Number)
        .ok_or_else(|| format!("square: {f}*{f} is not a finite number"))
}

fn sum(items: &[Value]) -> Result<Value, String> {
    if items.iter().all(|v| v.is_i64()) {
        let mut total: i64 = 0;
        for v in items {
            total = total
                .checked_add(v.as_i64().unwrap_or(0))
                .ok_or("sum overflows")?;
        }
        return Ok(Value::from(total));
    }
    let mut total = 0.0;
    for v in items {
        total += number(v, "sum")?;
    }
    Number::from_f64(total)
        .map(Value::Number)
        .ok_or_else(|| "sum is not a finite number".into())
}

fn shared_op(op: &str) -> Builtin {
    match op {
        "get" => |cx| run_shared("get", cx),
        "set" => |cx| run_shared("set", cx),
        "add" => |cx| run_shared("add", cx),
        "append" => |cx| run_shared("append", cx),
        _ => |cx| run_shared("put", cx),
    }
}

fn run_shared(op: &str, cx: &mut CallContext<'_>) -> Result<Value, String> {
    let op = SharedOp::from_values(op, cx.args).map_err(|e| e.to_string())?;
    cx.shared(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
        Registry::new().call(name, &args, &Map::new(), &mut |_| Err("no engine".into()))
    }

    #[test]
    fn builtins_compute_their_values() {
        assert_eq!(call("noop", vec![]), Ok(Value::Null));
        assert_eq!(
            call("echo", vec![json!("a"), json!(1)]),
            Ok(json!(["a", 1]))
        );
        assert_eq!(call("square", vec![json!(7)]), Ok(json!(49)));
        assert_eq!(call("square", vec![json!(1.5)]), Ok(json!(2.25)));
        assert_eq!(
            call("sum", vec![json!(1), json!(2), json!(3)]),
            Ok(json!(6))
        );
        assert_eq!(call("sum", vec![json!([1, 2.5])]), Ok(json!(3.5)));
        assert_eq!(call("sleep", vec![json!(0.01)]), Ok(json!(0.01)));
        assert_eq!(call("fail", vec![json!("boom")]), Err("boom".into()));
        assert!(call("square", vec![json!("x")]).is_err());
        assert!(call("square", vec![json!(i64::MAX)]).is_err());
        assert!(call("nope", vec![]).is_err());
    }
}
