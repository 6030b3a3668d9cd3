//! The command-line arguments, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::jobs::{Jobs, parse_jobs};
use crate::plan::PlanFormat;
use crate::results::{Format, Order};

/// Run a declarative job file on a pool of forked worker processes.
#[derive(Debug, Parser)]
#[command(name = "jobfile", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour in diagnostics and the text format: `auto` when the stream
    /// is a terminal (NO_COLOR turns it off, CLICOLOR_FORCE on).
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, env = "JOBFILE_COLOR")]
    pub color: ColorChoice,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set (or when CLICOLOR_FORCE is).
    Auto,
    Always,
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job file and write its results.
    Run(RunArgs),
    /// Parse, validate and plan job files; silent when they are fine.
    Check(CheckArgs),
    /// Print the task graph; nothing is run.
    Plan(PlanArgs),
    /// Print the job file's JSON Schema.
    Schema,
    /// Serve as a worker on standard input and output (remote pools).
    Worker,
    /// Print the man page (roff) on standard output.
    Man,
    /// Read or change a shared value, from inside a task.
    Shared(SharedArgs),
    /// Write an HTML page of a finished run from its results file.
    Report(ReportArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `jobfile run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file.
    pub job: PathBuf,
    /// Processes of the default pool (overrides `[pool] processes`): N, 0
    /// for one per CPU this process may use, or a share of them (`50%`).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_jobs, env = "JOBFILE_JOBS")]
    pub jobs: Option<Jobs>,
    /// Results file (relative to the current folder); default `[results] path`, else stdout.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Results format; default `text` on a terminal, else `jsonl`.
    #[arg(long, value_enum, env = "JOBFILE_FORMAT")]
    pub format: Option<Format>,
    /// Order of the records.
    #[arg(long, value_enum, env = "JOBFILE_ORDER")]
    pub order: Option<Order>,
    /// Leave out `worker`, `started` and `duration_ms`: reruns give the same bytes.
    #[arg(long)]
    pub reproducible: bool,
    /// Rerun only the tasks whose record is not ok or whose definition or inputs changed.
    #[arg(long)]
    pub resume: bool,
    /// Print what each task would run, with placeholders filled; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy each line a task writes to stderr as it comes, prefixed with its id.
    #[arg(long)]
    pub live: bool,
    /// Show a progress bar on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, env = "JOBFILE_PROGRESS")]
    pub progress: ProgressMode,
    /// Run only this task and what it depends on (repeatable). Not read
    /// from the environment: tasks see their own id in `JOBFILE_TASK`.
    #[arg(long = "task", value_name = "ID", conflicts_with = "resume")]
    pub tasks: Vec<String>,
    /// Override a `[vars]` entry.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Also write an HTML report of the run to PATH (even when interrupted).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// When to show the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Only when stderr is a terminal.
    Auto,
    Always,
    Never,
}

/// `jobfile check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Job files to check.
    #[arg(required = true)]
    pub jobs: Vec<PathBuf>,
}

/// `jobfile plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job file.
    pub job: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// `jobfile shared OP NAME [ARGS...]`.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// get, set, add, append or put.
    pub op: String,
    /// The value's name (`arr[0]` for one element), then the operation's arguments.
    #[arg(required = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `jobfile report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results file, `jsonl` or `json`.
    pub results: PathBuf,
    /// The page to write; default: RESULTS with the extension `.html`.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `jobfile completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `jobfile completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}
