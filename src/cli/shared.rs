//! `jobfile shared OP NAME ...`: read or change a shared value from inside
//! a task; finds the engine through `JOBFILE_SHARED`.

use super::args::SharedArgs;
use super::exit::ExitCode;
use super::output::print_stdout;
use crate::shared::{SharedOp, request, socket_from_env};

pub fn run(args: &SharedArgs) -> ExitCode {
    let op = match SharedOp::from_words(&args.op, &args.args) {
        Ok(op) => op,
        Err(e) => {
            diag!("error: {e}");
            return ExitCode::Invalid;
        }
    };
    let socket = match socket_from_env() {
        Ok(s) => s,
        Err(e) => {
            diag!("error: {e}");
            return ExitCode::Invalid;
        }
    };
    match request(&socket, &op) {
        Ok(value) => {
            if matches!(op, SharedOp::Get { .. }) {
                print_stdout(format!("{value}\n").as_bytes())
            } else {
                ExitCode::Ok
            }
        }
        Err(e) => {
            diag!("error: {e}");
            ExitCode::TaskFailed
        }
    }
}
