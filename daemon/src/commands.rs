//! One module per subcommand.

pub mod image;
pub mod init;
pub mod plan;
pub mod validate;
