//! The crate's error, gathering each module's.

use crate::config::ConfigError;
use crate::nft::NftError;
use crate::routes::RouteError;
use crate::sysctl::SysctlError;
use crate::table::TableError;

/// Why the proxy could not start, apply a table or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The table was refused; nothing of it was applied.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A route that keeps traffic on the node is missing.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// nftables refused a batch; nothing of it was applied.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// A kernel setting could not be read, written or is wrong.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
}
