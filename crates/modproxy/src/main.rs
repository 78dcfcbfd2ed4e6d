//! The `modproxy` binary: a thin shell over `modproxy-service`.
//!
//! `main` parses the command line and hands it to [`run`]; this is the one
//! place where errors turn into a message and an exit code.

mod cli;
mod commands;
mod logging;
mod printer;
mod settings;

use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            printer::error(&err);
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let invocation = cli::Invocation::parse();
    match invocation.command {
        cli::Command::Serve(args) => commands::serve::run(&args, &invocation.sources),
        cli::Command::Verify(args) => commands::verify::run(&args, &invocation.sources),
        cli::Command::Warm(args) => commands::warm::run(&args, &invocation.sources),
        cli::Command::Doctor(args) => commands::doctor::run(&args),
        cli::Command::Gc(args) => commands::gc::run(&args, &invocation.sources),
        cli::Command::Stats(args) => commands::stats::run(&args, &invocation.sources),
    }
}
