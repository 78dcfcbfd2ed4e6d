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
    let layers = settings::Layers::read(invocation.sub, &invocation.matches);
    if let cli::Command::Doctor(args) = &invocation.command {
        // Only the upstream list: doctor checks the network, not a store;
        // settings it cannot read are one of its findings.
        return match &layers {
            Ok(l) => commands::doctor::run(args, l.raw(&settings::defs::UPSTREAM), None),
            Err(e) => commands::doctor::run(args, None, Some(printer::message(e))),
        };
    }
    let resolved = settings::resolve(layers?)?;
    match invocation.command {
        cli::Command::Serve => commands::serve::run(resolved),
        cli::Command::Verify(args) => commands::verify::run(&args, &resolved.service),
        cli::Command::Warm(args) => commands::warm::run(&args, resolved.service),
        cli::Command::Gc(args) => commands::gc::run(&args, &resolved.service),
        cli::Command::Stats => commands::stats::run(&resolved.service),
        cli::Command::Doctor(_) => unreachable!("handled above"),
    }
}
