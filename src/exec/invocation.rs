//! From a unit of work (a task's call, a map item, a callback) to the
//! [`Invocation`] a worker runs: placeholders filled, shell args passed as
//! `"$1"`..., kwargs as `JOBFILE_ARG_<NAME>`, `[vars]` as
//! `JOBFILE_VAR_<NAME>` (command, shell and Python functions alike), and
//! shell scripts run with `-e`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::protocol::Invocation;
use crate::spec::template::{Bindings, value_text};
use crate::spec::{Function, FunctionKind, Job, Task};

/// Where and how a call runs, beyond its function and arguments.
pub struct Setting<'a> {
    /// Extra environment (the function's, with the task's on top).
    pub env: &'a BTreeMap<String, String>,
    /// Working folder; `None` for the job file's folder.
    pub cwd: Option<&'a Path>,
    pub timeout: Option<Duration>,
    /// Send each output line as it comes (`--live`, stream producers).
    pub forward_lines: bool,
}

impl<'a> Setting<'a> {
    /// The setting of a task's calls.
    pub fn of_task(task: &'a Task, function: &'a Function, forward_lines: bool) -> Setting<'a> {
        Setting {
            env: task.env(),
            cwd: task.cwd().or(function.cwd.as_deref()),
            timeout: task.timeout,
            forward_lines,
        }
    }

    /// The setting of a call outside any task (a pool's initializer).
    pub fn of_function(function: &'a Function) -> Setting<'a> {
        Setting {
            env: &function.env,
            cwd: function.cwd.as_deref(),
            timeout: function.timeout,
            forward_lines: false,
        }
    }
}

/// Builds the invocation of `function` with these arguments.
pub fn invocation(
    job: &Job,
    function: &Function,
    args: &[Value],
    kwargs: &Map<String, Value>,
    item: Option<&Value>,
    setting: &Setting<'_>,
) -> Result<Invocation, String> {
    if let FunctionKind::Builtin(name) = &function.kind {
        // Runs in the worker: no environment, no folder, nothing to build.
        return Ok(builtin(name, args, kwargs));
    }
    let cwd = setting.cwd.unwrap_or(&job.dir);
    // Vars first, so that a function's or task's own `env` can override.
    let mut env: Vec<(String, String)> = job
        .vars
        .iter()
        .map(|(k, v)| (format!("JOBFILE_VAR_{}", env_name(k)), v.clone()))
        .chain(setting.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    let timeout_ms = setting
        .timeout
        .map(|t| t.as_millis().min(u64::MAX as u128) as u64);
    let argv = match &function.kind {
        FunctionKind::Builtin(name) => return Ok(builtin(name, args, kwargs)),
        FunctionKind::Python(target) => {
            return Ok(Invocation::Python {
                target: target.to_string(),
                args: args.to_vec(),
                kwargs: kwargs.clone(),
                env,
                cwd: setting.cwd.map(|c| c.to_string_lossy().into_owned()),
                timeout_ms,
                forward_lines: setting.forward_lines,
            });
        }
        FunctionKind::Command(templates) => {
            let b = Bindings {
                args,
                kwargs,
                item,
                vars: &job.vars,
            };
            templates
                .iter()
                .map(|t| t.render(&b).map_err(|e| e.to_string()))
                .collect::<Result<Vec<String>, String>>()?
        }
        FunctionKind::Shell(script) => {
            // As written, for `/bin/sh -c` (the specification's word): its
            // status is its last command's; `set -e` in it stops it at the
            // first failing command.
            let mut argv = vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                script.clone(),
                function.name.clone(),
            ];
            argv.extend(args.iter().map(value_text));
            for (k, v) in kwargs {
                env.push((format!("JOBFILE_ARG_{}", env_name(k)), value_text(v)));
            }
            argv
        }
    };
    Ok(Invocation::Command {
        argv,
        env,
        cwd: Some(cwd.to_string_lossy().into_owned()),
        timeout_ms,
        returns: function.returns,
        forward_lines: setting.forward_lines,
    })
}

fn builtin(name: &str, args: &[Value], kwargs: &Map<String, Value>) -> Invocation {
    Invocation::Builtin {
        name: name.to_string(),
        args: args.to_vec(),
        kwargs: kwargs.clone(),
    }
}

/// Adds environment variables to a command's or Python call's own (they
/// win over the function's and task's `env`); a builtin has none.
pub(crate) fn add_env(inv: &mut Invocation, vars: impl IntoIterator<Item = (String, String)>) {
    match inv {
        Invocation::Command { env, .. } | Invocation::Python { env, .. } => env.extend(vars),
        Invocation::Builtin { .. } => {}
    }
}

/// `JOBFILE_ARG_<NAME>`: upper-cased, anything but letters, digits and `_` as `_`.
fn env_name(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A one-line description of an invocation, for `--dry-run`.
pub fn describe(inv: &Invocation) -> String {
    match inv {
        Invocation::Builtin { name, args, kwargs } => {
            let mut s = format!(
                "builtin {name}({}",
                args.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (k, v) in kwargs {
                s.push_str(&format!(", {k}={v}"));
            }
            s.push(')');
            s
        }
        Invocation::Python {
            target,
            args,
            kwargs,
            ..
        } => {
            let mut parts: Vec<String> = args.iter().map(Value::to_string).collect();
            parts.extend(kwargs.iter().map(|(k, v)| format!("{k}={v}")));
            format!("{target}({})", parts.join(", "))
        }
        Invocation::Command { argv, env, .. } => {
            let mut parts: Vec<String> = env
                .iter()
                .filter(|(k, _)| k.starts_with("JOBFILE_ARG_"))
                .map(|(k, v)| format!("{k}={}", shell_quote(v)))
                .collect();
            parts.extend(argv.iter().map(|a| shell_quote(a)));
            parts.join(" ")
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
