//! One module per subcommand, each with `run(…) -> Result<ExitCode>`.

pub mod doctor;
pub mod serve;
pub mod verify;
pub mod warm;
