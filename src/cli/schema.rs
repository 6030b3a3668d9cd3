//! `jobfile schema`: the JSON Schema generated from the job-file types.

use super::exit::ExitCode;
use super::output::print_stdout;

pub fn run() -> ExitCode {
    let schema = crate::spec::json_schema();
    match serde_json::to_string_pretty(&schema) {
        Ok(mut text) => {
            text.push('\n');
            print_stdout(text.as_bytes())
        }
        Err(e) => {
            diag!("error: cannot print the schema: {e}");
            ExitCode::TaskFailed
        }
    }
}
