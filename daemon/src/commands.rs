//! One module per subcommand.

pub mod agent;
mod container;
pub mod describe;
pub mod exec;
pub mod get;
pub mod help;
pub mod history;
pub mod image;
pub mod init;
pub mod kubeconfig;
pub mod logs;
pub mod node;
pub mod plan;
pub mod port_forward;
pub mod rollout;
pub mod secrets;
pub mod status;
pub mod top;
pub mod up;
pub mod validate;
pub mod write;
