//! The command line: the subcommands and their own arguments (clap's
//! derive), plus each subcommand's settings, added from their declarations
//! in [`crate::settings::defs`] (so `gc --help` lists only what gc reads).

use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::settings::defs::{self, Form, Sub};
#[derive(Debug, Parser)]
#[command(
    name = "modproxy",
    version,
    about = "A caching Go module proxy: point GOPROXY at it and go mod tidy stops hanging."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (default address 127.0.0.1:3000).
    Serve,
    /// Re-check the store against the checksum database; exit 1 if anything is bad.
    Verify(VerifyArgs),
    /// Fetch everything a build needs into the store; exit 1 if anything failed.
    Warm(WarmArgs),
    /// Evict module versions (least recently used first) down to --max-size and/or --older-than
    Gc(GcArgs),
    /// Print the store's size, objects, oldest module version and the running proxy's hit ratio
    Stats,
    /// Check the network path to every proxy and checksum database, and the
    /// go command's settings; exit 0 healthy, 1 degraded, 2 broken.
    Doctor(DoctorArgs),
}

/// Options of `gc` besides the store settings (its `--max-size` is the
/// budget): an age limit and a dry run.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Evict module versions not used for this long, e.g. 90d
    #[arg(long, value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub older_than: Option<std::time::Duration>,
    /// Only print what would be evicted
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `doctor` besides `--upstream` (modproxy's upstreams, checked
/// too when given) and `--config`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Longest wait for each step of a check (DNS, connect, TLS, first byte, download)
    #[arg(long, default_value = "5s", value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// Module whose version list is downloaded from each proxy
    #[arg(long, default_value = "golang.org/x/text", value_parser = escaped_module_path, value_name = "PATH")]
    pub module: String,
    /// Print the diagnosis as JSON
    #[arg(long)]
    pub json: bool,
    /// Remove the broken entries of the module cache (only those)
    #[arg(long)]
    pub repair: bool,
    /// Check only the module cache, not the network
    #[arg(long)]
    pub no_network: bool,
    /// Longest time spent checking the module cache
    #[arg(long, default_value = "60s", value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub cache_timeout: std::time::Duration,
}

/// Options of `warm` besides the store and upstream settings: what to warm
/// and how.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// go.mod, go.sum, go.work or list files (module@version per line),
    /// directories holding them, or module@version (@latest, @branch…)
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Warm through a running modproxy (its GOPROXY URL) instead of the local store
    #[arg(long, value_parser = http_url, value_name = "URL")]
    pub proxy: Option<String>,
    /// Downloads at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// No progress bar, only the summary
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Platforms of the toolchain a go.mod's `toolchain`/`go` line makes the
    /// go command download (`linux/amd64,darwin/arm64`; `none`) [default: this machine's]
    #[arg(long, value_delimiter = ',', value_parser = platform, value_name = "GOOS/GOARCH")]
    pub toolchain_platforms: Vec<String>,
    /// Version of the go command the builds use (`1.22.4`): a go line newer
    /// than it adds the toolchain that go command switches to [default: the go on PATH]
    #[arg(long, value_name = "VERSION")]
    pub go_version: Option<String>,
}

impl WarmArgs {
    /// `--toolchain-platforms`, with its default.
    pub fn platforms(&self) -> Vec<String> {
        match self.toolchain_platforms.as_slice() {
            [] => vec![this_platform()],
            [none] if none == "none" => Vec::new(),
            list => list.to_vec(),
        }
    }
}

/// `GOOS/GOARCH` of this machine, in Go's names.
fn this_platform() -> String {
    let goos = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let goarch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        arch => arch,
    };
    format!("{goos}/{goarch}")
}

/// A `GOOS/GOARCH` pair (lower-case letters and digits), or `none`.
fn platform(s: &str) -> Result<String, String> {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match s.split_once('/') {
        Some((os, arch)) if word(os) && word(arch) => Ok(s.to_string()),
        _ if s == "none" => Ok(s.to_string()),
        _ => Err(format!(
            "{s:?} is not GOOS/GOARCH (like linux/amd64) or none"
        )),
    }
}

/// Options of `verify` besides the store and checksum database settings.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Remove what fails, so the next request fetches it again
    #[arg(long)]
    pub repair: bool,
}

/// A module path, checked and in its escaped (URL) form.
fn escaped_module_path(s: &str) -> Result<String, String> {
    modproxy_module::ModulePath::new(s)
        .map(|p| p.escaped())
        .map_err(|e| e.to_string())
}

/// An http:// or https:// URL.
fn http_url(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an http:// or https:// URL (e.g. http://127.0.0.1:3000)"
        ))
    }
}

/// A parsed command line: the subcommand, its own arguments, and the
/// matches its settings are read from.
pub struct Invocation {
    pub command: Command,
    pub sub: Sub,
    pub matches: ArgMatches,
}

impl Invocation {
    /// Parses the process arguments; exits with clap's message on misuse.
    pub fn parse() -> Invocation {
        let matches = command().get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let (name, sub_matches) = matches.subcommand().expect("a subcommand is required");
        let sub = Sub::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .expect("every subcommand is a Sub");
        Invocation {
            command: cli.command,
            sub,
            matches: sub_matches.clone(),
        }
    }
}

/// The whole command line: the derived subcommands, each with the flags
/// (and variables) of the settings it reads.
fn command() -> clap::Command {
    let mut command = Cli::command();
    for sub in Sub::ALL {
        command = command.mut_subcommand(sub.name(), |c| c.args(setting_args(sub)));
    }
    command
}

/// The flags (and variables) of the settings `sub` reads.
fn setting_args(sub: Sub) -> Vec<Arg> {
    defs::ALL
        .iter()
        .filter(|d| d.used_by(sub) && d.on_command_line())
        .map(|d| {
            // doctor checks modproxy's upstreams only when they are given.
            let help = if sub == Sub::Doctor && d.name == defs::UPSTREAM.name {
                "modproxy's upstreams to check too, GOPROXY syntax (GOPROXY is always checked)"
                    .to_string()
            } else {
                d.help_line()
            };
            let arg = Arg::new(d.name)
                .long(d.flag())
                .env(d.var())
                .value_name(d.value_name)
                .help(help)
                .help_heading(d.group)
                .action(ArgAction::Set);
            match d.form {
                Form::Switch => arg.num_args(0..=1).default_missing_value("true"),
                _ => arg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(sub: &str) -> String {
        command()
            .find_subcommand_mut(sub)
            .unwrap()
            .render_long_help()
            .to_string()
    }

    #[test]
    fn each_subcommand_offers_only_its_settings() {
        let gc = help("gc");
        for flag in [
            "--max-size",
            "--data",
            "--store",
            "--config",
            "--older-than",
        ] {
            assert!(gc.contains(flag), "gc lacks {flag}:\n{gc}");
        }
        for flag in ["--listen", "--tls-cert", "--hedge-after", "--upstream"] {
            assert!(!gc.contains(flag), "gc offers {flag}:\n{gc}");
        }
        let doctor = help("doctor");
        assert!(doctor.contains("--upstream") && doctor.contains("--config"));
        assert!(!doctor.contains("--data"), "{doctor}");
        let serve = help("serve");
        assert!(serve.contains("[default: 127.0.0.1:3000]"), "{serve}");
        assert!(serve.contains("MODPROXY_HEDGE_AFTER"), "{serve}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }
}
