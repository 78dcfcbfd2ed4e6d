//! One module per subcommand, each with `run(…) -> Result<ExitCode>`.

pub mod doctor;
pub mod gc;
pub mod serve;
pub mod stats;
pub mod verify;
pub mod warm;
