//! keyvol-devvault: a local stand-in for Azure Key Vault and Entra ID over real HTTPS.
//!
//! [`DevVault::start`] generates a CA and a server certificate ([`tls`]), seeds an in-memory
//! [`store`] from YAML ([`seed`]), and serves the Key Vault data plane ([`vault`]) and the Entra ID
//! token endpoint ([`entra`]) on one listener. Tokens are signed JWTs ([`token`]) that the vault
//! checks on every request, so authentication failures are real ones.
//!
//! Several vaults are served at once: a request for `https://<name>.vault.azure.net` reaches vault
//! `<name>`. Clients either resolve those names to the dev vault's address (a hosts entry, or
//! keyvol's `--azure-connect-to`) or, when only one vault is seeded, call it by IP.

// Handlers return early with a ready `Response` as their error; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod crypto;
pub mod entra;
pub mod seed;
pub mod server;
pub mod store;
pub mod tls;
pub mod token;
pub mod vault;

pub use seed::Seed;
pub use server::{DevVault, DevVaultConfig, DevVaultError, RunningDevVault};
