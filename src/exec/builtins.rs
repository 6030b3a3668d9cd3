//! Functions run inside the worker process, without a new process: the
//! builtins of the spec, and any Rust function (or closure) a library user
//! registers.
//!
//! A call that panics is a failed call whose error is the panic's message:
//! the worker catches it and goes on serving. What a function prints is
//! not handled here but by the worker, which captures its fd 1 and fd 2
//! call by call ([`super::worker`]).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Number, Value};

use crate::shared::{SharedOp, Target};

/// What a registered function receives: its arguments, and the run's
/// shared values.
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

    /// The shared value `name` (`arr[0]` for one element), as `shared.get`.
    pub fn shared_get(&mut self, name: &str) -> Result<Value, String> {
        let target = target(name)?;
        self.shared(SharedOp::Get { target })
    }

    /// Replaces the shared value `name`; gives the new value, as `shared.set`.
    pub fn shared_set(&mut self, name: &str, value: impl Into<Value>) -> Result<Value, String> {
        let target = target(name)?;
        self.shared(SharedOp::Set {
            target,
            value: value.into(),
        })
    }

    /// Adds a number (`1`, `-2`, `0.5`) to the shared number `name`; gives
    /// the new value, as `shared.add` (integers stay integral).
    pub fn shared_add(&mut self, name: &str, number: impl Into<Value>) -> Result<Value, String> {
        let target = target(name)?;
        let number = match number.into() {
            Value::Number(n) => n,
            other => return Err(format!("shared add takes a finite number, got {other}")),
        };
        self.shared(SharedOp::Add { target, number })
    }

    /// Appends to the shared list `name`; gives its new length, as
    /// `shared.append`.
    pub fn shared_append(&mut self, name: &str, value: impl Into<Value>) -> Result<Value, String> {
        let target = target(name)?;
        self.shared(SharedOp::Append {
            target,
            value: value.into(),
        })
    }

    /// Sets `key` of the shared dict `name`; gives its new number of keys,
    /// as `shared.put`.
    pub fn shared_put(
        &mut self,
        name: &str,
        key: &str,
        value: impl Into<Value>,
    ) -> Result<Value, String> {
        let target = target(name)?;
        self.shared(SharedOp::Put {
            target,
            key: key.to_string(),
            value: value.into(),
        })
    }
}

fn target(name: &str) -> Result<Target, String> {
    name.parse()
        .map_err(|e: crate::shared::SharedError| e.to_string())
}

/// A function the workers can run: its value, or an error message. Plain
/// `fn` items and closures (which may hold state of their own, one copy
/// per worker process) alike.
pub type Builtin = Arc<dyn Fn(&mut CallContext<'_>) -> Result<Value, String> + Send + Sync>;

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
            r.register(&format!("shared.{op}"), move |cx| run_shared(op, cx));
        }
        r
    }

    /// Adds (or replaces) a function under `name`: a `fn` item or a
    /// closure. A closure's state lives in each worker process (workers
    /// are forked, so each starts from the state at `install_registry`);
    /// state meant for the whole run belongs in shared values.
    pub fn register<F>(&mut self, name: &str, f: F)
    where
        F: Fn(&mut CallContext<'_>) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.functions.insert(name.to_string(), Arc::new(f));
    }

    /// The registered names.
    pub fn names(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    /// Runs `name`; shared operations go through `shared`. A panic in the
    /// function is an error carrying the panic's message.
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
        // The function gets nothing it could leave half-changed for the
        // next call but its own state, which is its business (as a Python
        // function's globals after an exception).
        catch_unwind(AssertUnwindSafe(|| f(&mut cx)))
            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())))
    }
}

/// The message a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked (with a value that is not a message)".to_string()
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

    #[test]
    fn closures_keep_state_and_panics_are_errors() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut r = Registry::new();
        let calls = AtomicU64::new(0);
        r.register("count", move |_| {
            Ok(json!(calls.fetch_add(1, Ordering::SeqCst) + 1))
        });
        r.register("boom", |_| panic!("boom {}", 7));
        let pointer: fn(&mut CallContext<'_>) -> Result<Value, String> = |_| Ok(json!("ptr"));
        r.register("pointer", pointer);
        let mut no_engine = |_| Err("no engine".to_string());
        let mut call = |name: &str| r.call(name, &[], &Map::new(), &mut no_engine);
        assert_eq!(call("count"), Ok(json!(1)));
        assert_eq!(call("count"), Ok(json!(2)));
        assert_eq!(call("boom"), Err("boom 7".into()));
        assert_eq!(call("count"), Ok(json!(3)));
        assert_eq!(call("pointer"), Ok(json!("ptr")));
    }

    #[test]
    fn typed_shared_calls_build_their_operations() {
        let mut seen = Vec::new();
        let mut engine = |op: SharedOp| {
            seen.push(op);
            Ok(Value::Null)
        };
        let args = [];
        let kwargs = Map::new();
        let mut cx = CallContext {
            args: &args,
            kwargs: &kwargs,
            shared: &mut engine,
        };
        cx.shared_add("n", 1).unwrap();
        cx.shared_add("x", 0.5).unwrap();
        cx.shared_get("arr[0]").unwrap();
        cx.shared_set("s", "v").unwrap();
        cx.shared_append("log", json!({"a": 1})).unwrap();
        cx.shared_put("seen", "k", true).unwrap();
        assert!(cx.shared_add("n", f64::NAN).is_err());
        assert!(cx.shared_get("bad[").is_err());
        let words = |op: &str, a: &[Value]| SharedOp::from_values(op, a).unwrap();
        assert_eq!(
            seen,
            vec![
                words("add", &[json!("n"), json!(1)]),
                words("add", &[json!("x"), json!(0.5)]),
                words("get", &[json!("arr[0]")]),
                words("set", &[json!("s"), json!("v")]),
                words("append", &[json!("log"), json!({"a": 1})]),
                words("put", &[json!("seen"), json!("k"), json!(true)]),
            ]
        );
    }
}
