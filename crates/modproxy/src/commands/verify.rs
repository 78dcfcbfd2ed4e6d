//! `modproxy verify [--repair]`: re-check the store against the module zip
//! rules, the recorded hashes and the checksum database.

use std::process::ExitCode;

use anyhow::Context;
use modproxy_service::audit::{audit, Verdict};

use crate::cli::VerifyArgs;
use crate::printer;
use modproxy_service::Settings;

pub fn run(args: &VerifyArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (mut good, mut unverified, mut bad) = (0u64, 0u64, 0u64);
    super::block_on(audit(settings, args.repair, |checked| {
        let path = &checked.key;
        match &checked.verdict {
            Verdict::Good => good += 1,
            Verdict::Unverified(why) => {
                unverified += 1;
                printer::line(&format!("unverified  {path}: {why}"));
            }
            Verdict::Bad(why) => {
                bad += 1;
                let action = if checked.removed { " (removed)" } else { "" };
                printer::line(&format!("BAD         {path}: {why}{action}"));
            }
        }
    }))?
    .context("cannot check the store")?;
    printer::line(&format!(
        "{good} verified, {unverified} unverified, {bad} bad{}",
        if bad > 0 && !args.repair {
            " (run with --repair to remove them)"
        } else {
            ""
        }
    ));
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
