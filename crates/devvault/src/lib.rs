//! keyvol-devvault: a local stand-in for Azure Key Vault, Entra ID, IMDS and AAD Pod Identity's
//! NMI, over real HTTPS, good enough that the official Azure SDKs cannot tell it from the service
//! on the operations keyvol and its users need.
//!
//! Where to start: [`DevVault::start`] with a [`DevVaultConfig`] (built from a [`Seed`]). It opens
//! the [`store`] (in memory, or file-backed through [`persist`]), fills it from the seed, makes or
//! reloads the CA ([`tls`]) and token key ([`token`]), builds the shared [`state`], and serves on
//! one HTTPS listener:
//!
//! - the Key Vault data plane: the routes every object kind shares, written once in [`objects`],
//!   and what is each kind's own in [`secrets`], [`keys`] and [`certificates`]; around them
//!   [`vault`] (the 401 challenge, token checks, api-versions, errors, paging), [`reply`] (the
//!   service's error body and headers), [`access`] (access policies) and [`limits`] (names,
//!   secret sizes);
//! - Entra ID ([`entra`]: token endpoint with client secrets, federated assertions and
//!   certificate assertions ([`clientcert`]), checked by the [`directory`] with what
//!   [`clientauth`] shares; OpenID and instance-discovery documents);
//! - IMDS ([`imds`]), also on the optional plain-HTTP identity listener with NMI ([`nmi`]);
//! - the admin API ([`admin`]): counters and fault rules ([`observe`], [`faults`]).
//!
//! Key and certificate material lives in [`crypto`] (PFX is read by `keyvol-pkcs12`);
//! certificate policies in [`certpolicy`]. docs/dev-vault.md is the user guide; [`cli`] is its
//! command line (`keyvol-dev dev-vault`).
//!
//! Modules depend on each other in one direction: [`server`] on everything, the handlers on
//! [`state`], [`store`] and [`seed`] on [`limits`], never back.
//!
//! Several vaults are served at once: a request for `https://<name>.vault.azure.net` reaches vault
//! `<name>`. Clients either resolve those names to the dev vault's address (a hosts entry, or
//! keyvol's `--azure-connect-to`) or, when only one vault is seeded, call it by IP.

// Handlers return early with a ready `Response` as their error; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod admin;
pub mod certificates;
pub mod certpolicy;
pub mod cli;
pub mod clientauth;
pub mod clientcert;
pub mod crypto;
pub mod directory;
pub mod entra;
pub mod faults;
pub mod imds;
pub mod keys;
pub mod limits;
pub mod nmi;
pub mod objects;
pub mod observe;
pub mod persist;
pub mod reply;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod token;
pub mod vault;

pub use seed::Seed;
pub use server::{DevVault, DevVaultConfig, DevVaultError, RunningDevVault};
