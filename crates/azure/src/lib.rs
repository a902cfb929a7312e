//! keyvol-azure: the Azure Key Vault provider.
//!
//! A mount request flows through [`params`] (SecretProviderClass parameters and the `objects`
//! list from [`objects`], validated before any network call), [`identity`] (which credential,
//! cached process-wide), [`cloud`] and [`http`] (endpoints, trust, redirects), [`keyvault`] (the
//! Key Vault operations behind a small trait) on keyvol's own REST client ([`rest`], with each
//! vault's token scope known once per process in [`challenge`]) and [`format`] (vault answers to
//! file bytes). [`provider`] ties them together and implements `keyvol_core::Provider`. Every
//! cache the provider keeps per identity or per vault is bounded and drops what goes unused
//! (`cache`).

mod cache;
pub mod chain;
pub mod challenge;
pub mod cloud;
pub mod error;
pub mod format;
pub mod http;
pub mod identity;
pub mod jmes;
pub mod jwk;
pub mod keyvault;
pub mod objects;
pub mod params;
pub mod pemfile;
pub mod pfx_pem;
pub mod provider;
pub mod rest;

pub use error::AzureError;
pub use http::{ConnectTo, HttpConfig};
pub use provider::{AzureProvider, AzureProviderConfig};
