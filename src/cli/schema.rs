//! `jobfile schema`: the JSON Schema generated from the job-file types.

use super::exit::ExitCode;

pub fn run() -> ExitCode {
    let schema = crate::spec::json_schema();
    match serde_json::to_string_pretty(&schema) {
        Ok(text) => {
            println!("{text}");
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!("error: cannot print the schema: {e}");
            ExitCode::TaskFailed
        }
    }
}
