//! The `s4db` command line (README "Command line").
//!
//! Every failure prints one line, `s4db: error: …`, to stderr and exits with
//! the documented code: 1 key not found, 2 usage or invalid input, 3 conflict,
//! 4 corruption, 5 anything else, 6 a segment only the remote holds read with
//! no remote attached. Never a panic or a backtrace.

mod cli;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapKind;

use cli::args::Cli;
use cli::commands::{self, Failure};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ClapKind::DisplayHelp | ClapKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // Keep clap's list of valid values: it is the fix.
            let valid = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("[possible values:"))
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            eprintln!("s4db: error: {first}{valid} (see `s4db --help`)");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s4db: error: starting the runtime: {e}");
            return ExitCode::from(5);
        }
    };
    match rt.block_on(commands::run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`s4db keys | head`) is not an error.
        Err(Failure::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("s4db: error: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}
