//! Which token a vault wants: the scope of Key Vault's 401 challenge
//! (`WWW-Authenticate: Bearer authorization="…", resource="…"`, or `scope="…"`), checked against
//! the vault's host, and known once per vault for the whole process — shared by every identity,
//! so a new identity costs one token request and no unauthenticated request.
//!
//! Where the scope comes from, per vault ([`VaultScope`]):
//! - **learned**: a challenge this process received from the vault; it wins over everything;
//! - **from the cloud**: the built-in clouds' Key Vault resource, which Microsoft documents per
//!   cloud ([`crate::cloud::Cloud::vault_scope`]); the first request of a vault goes out with a
//!   token for it — if the vault answers 401 naming another scope, that one is learned and the
//!   request sent again with a token for it;
//! - **neither** (a custom cloud): the first request to the vault goes out unauthenticated to
//!   collect the challenge, one request per vault at a time; the others wait for it.
//!
//! The tenant a challenge names (`authorization`) is not used for the token: each identity's
//! credential is bound to the class's tenant, as with the official SDKs; a vault of another
//! tenant refuses the token with its own message (`AKV10032: Invalid issuer`).
//!
//! A challenge is only honoured when its scope is an `https` URL whose host is a parent domain
//! of the vault's host (`vault.azure.net` for `kv.vault.azure.net`), as the official SDKs check:
//! otherwise anything answering for the vault's name could have the identity mint tokens for
//! another service and send them to it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cache::IdleCache;

/// A vault no request went to for this long forgets the scope it learned.
pub const SCOPE_IDLE: Duration = Duration::from_secs(600);
/// Most vaults whose scope is kept; past this the least recently used is forgotten.
pub const MAX_SCOPES: usize = 1024;

/// The token scope for a resource: `https://vault.azure.net` → `https://vault.azure.net/.default`.
pub fn scope_of_resource(resource: &str) -> String {
    format!("{}/.default", resource.trim_end_matches('/'))
}

/// The scope a `WWW-Authenticate` header asks for: its `scope` parameter, else its `resource`
/// as a scope. `None` when the header is not a Bearer challenge or names neither.
pub fn parse(header: &str) -> Option<String> {
    let header = header.trim_start();
    let scheme_len = header.find(|c: char| c.is_ascii_whitespace())?;
    if !header[..scheme_len].eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (mut scope, mut resource) = (None, None);
    for (key, value) in params(&header[scheme_len..]) {
        if key.eq_ignore_ascii_case("scope") {
            scope = Some(value);
        } else if key.eq_ignore_ascii_case("resource") {
            resource = Some(value);
        }
    }
    scope.filter(|s| !s.is_empty()).or_else(|| {
        resource
            .filter(|r| !r.is_empty())
            .map(|r| scope_of_resource(&r))
    })
}

/// The `key=value` parameters of a challenge, values unquoted (`\` escapes honoured).
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            if key.is_empty() {
                return out;
            }
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
}

/// Checks that a challenge's `scope` may be used for requests to `vault_host`: an `https` URL
/// whose host is a parent domain of the vault's.
pub fn check(scope: &str, vault_host: &str) -> Result<(), String> {
    let host = url::Url::parse(scope)
        .ok()
        .filter(|u| u.scheme() == "https")
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .ok_or_else(|| format!("the vault's challenge names {scope:?}, not an https resource"))?;
    let vault_host = vault_host.to_ascii_lowercase();
    if host.contains('.') && vault_host.ends_with(&format!(".{host}")) {
        Ok(())
    } else {
        Err(format!(
            "the vault's challenge names resource {host}, which is not a parent domain of {vault_host}; no token is sent for it"
        ))
    }
}

/// What this process knows of one vault's challenge, shared by every identity.
#[derive(Default)]
pub struct VaultScope {
    learned: RwLock<Option<Arc<str>>>,
    /// Held while a request goes out unauthenticated to learn the challenge, so concurrent
    /// first requests collect one 401 between them.
    pub(crate) learning: tokio::sync::Mutex<()>,
}

impl VaultScope {
    /// The scope learned from the vault's challenge, if any.
    pub fn learned(&self) -> Option<Arc<str>> {
        self.learned
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the scope the vault's challenge named.
    pub fn learn(&self, scope: &str) {
        let mut learned = self.learned.write().unwrap_or_else(|p| p.into_inner());
        if learned.as_deref() != Some(scope) {
            tracing::debug!(scope, "learned the vault's challenge");
            *learned = Some(Arc::from(scope));
        }
    }
}

/// Every vault's [`VaultScope`], by vault URL; bounded and idle-evicting.
pub struct Scopes {
    map: IdleCache<String, Arc<VaultScope>>,
}

impl Default for Scopes {
    fn default() -> Self {
        Self {
            map: IdleCache::new(SCOPE_IDLE, MAX_SCOPES),
        }
    }
}

impl Scopes {
    /// The shared state of `vault_url`, created empty on first use.
    pub fn vault(&self, vault_url: &str) -> Arc<VaultScope> {
        self.map
            .get_or_try_insert_with(&vault_url.to_owned(), || {
                Ok::<_, std::convert::Infallible>(Arc::default())
            })
            .unwrap_or_else(|never| match never {})
    }

    /// Number of vaults held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops the vaults no request has used for the idle time; returns how many went.
    pub fn evict_idle(&self) -> usize {
        self.map.sweep_now()
    }

    /// True when no vault is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_and_scope_challenges_are_read() {
        assert_eq!(
            parse(
                r#"Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net""#
            )
            .as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            parse(
                r#"Bearer authorization="https://login.microsoftonline.com/t", scope="https://vault.azure.net/.default""#
            )
            .as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            parse(r#"bearer  Resource = "https://vault.azure.cn/" , error="invalid_token""#)
                .as_deref(),
            Some("https://vault.azure.cn/.default"),
            "case, spaces and a trailing slash"
        );
        assert_eq!(
            parse(r#"Bearer authorization_uri="https://a/t",scope="x\"y""#).as_deref(),
            Some("x\"y")
        );
        assert_eq!(parse(r#"Basic realm="x""#), None);
        assert_eq!(parse(r#"Bearer authorization="https://a/t""#), None);
        assert_eq!(parse("Bearer"), None);
        assert_eq!(parse(r#"Bearer resource="""#), None);
        assert_eq!(parse("Bearer ,,=,x"), None, "garbage ends without a panic");
    }

    #[test]
    fn only_a_parent_domain_of_the_vault_over_https_is_honoured() {
        assert!(check("https://vault.azure.net/.default", "kv.vault.azure.net").is_ok());
        assert!(check("https://Vault.Azure.Net/.default", "KV.vault.azure.net").is_ok());
        assert!(
            check(
                "https://management.azure.com/.default",
                "kv.vault.azure.net"
            )
            .is_err()
        );
        assert!(check("https://kv.vault.azure.net/.default", "kv.vault.azure.net").is_err());
        assert!(check("https://net/.default", "kv.vault.azure.net.evil").is_err());
        assert!(
            check("https://net/.default", "kv.vault.azure.net").is_err(),
            "a bare TLD"
        );
        assert!(check("http://vault.azure.net/.default", "kv.vault.azure.net").is_err());
        assert!(check("not a url", "kv.vault.azure.net").is_err());
    }

    #[test]
    fn a_vault_learns_once_and_is_shared() {
        let scopes = Scopes::default();
        let a = scopes.vault("https://kv.vault.azure.net/");
        assert_eq!(a.learned(), None);
        a.learn("https://vault.azure.net/.default");
        let again = scopes.vault("https://kv.vault.azure.net/");
        assert_eq!(
            again.learned().as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            scopes.vault("https://other.vault.azure.net/").learned(),
            None
        );
        assert_eq!(scopes.len(), 2);
    }
}
