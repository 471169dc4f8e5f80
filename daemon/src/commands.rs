//! One module per subcommand.

pub mod init;
pub mod plan;
pub mod validate;
