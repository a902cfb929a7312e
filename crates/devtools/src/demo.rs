//! `keyvol-dev demo`: the README's first command. Starts the dev vault in-process with the example
//! seed, mounts `examples/secretproviderclass.yaml` from it into a fresh directory (a tmpfs when
//! running as root), prints the tree with the object behind each file, and cleans up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keyvol_azure::{AzureProvider, AzureProviderConfig, ConnectTo, HttpConfig};
use keyvol_cli::Failure;
use keyvol_core::volume::{self, Backing};
use keyvol_core::{SecretProviderClass, Sensitive};
use keyvol_devvault::cli::EXAMPLE_SEED;
use keyvol_devvault::{DevVault, DevVaultConfig, Seed};

/// The class the demo mounts.
const EXAMPLE_CLASS: &str = include_str!("../../../examples/secretproviderclass.yaml");

/// Arguments of `keyvol-dev demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Directory to mount into (default: a fresh directory under the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Leave the files (and the tmpfs) in place so you can look at them.
    #[arg(long)]
    pub keep: bool,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `keyvol-dev demo`.
pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    let seed = Seed::from_yaml(EXAMPLE_SEED).map_err(|e| Failure::chain(&e, false))?;
    let client = seed
        .clients
        .first()
        .cloned()
        .ok_or_else(|| Failure::internal("the example seed has no client"))?;
    let spc = SecretProviderClass::from_manifest(EXAMPLE_CLASS, None)
        .map_err(|e| Failure::chain(&e, false))?;

    let dev = DevVault::start(DevVaultConfig::new(seed))
        .await
        .map_err(|e| Failure::chain(&e, false))?;
    println!(
        "dev vault: https://{} (Key Vault and Entra ID stand-in, CA generated just now)",
        dev.addr()
    );

    let provider = AzureProvider::new(AzureProviderConfig {
        http: HttpConfig {
            ca_pems: vec![dev.ca_pem().as_bytes().to_vec()],
            connect_to: Some(ConnectTo::all_azure(dev.addr())),
            ..HttpConfig::default()
        },
        ..AzureProviderConfig::default()
    })
    .map_err(|e| Failure::chain(&e, false))?;

    let target = match &args.target {
        Some(t) => t.clone(),
        None => std::env::temp_dir().join(format!("keyvol-demo-{}", std::process::id())),
    };
    let backing = if is_root() {
        Backing::Tmpfs {
            size_bytes: Some(16 * 1024 * 1024),
        }
    } else {
        Backing::PlainDirectory
    };
    let secrets: BTreeMap<String, Sensitive<String>> = BTreeMap::from([
        (
            "clientid".to_owned(),
            Sensitive::new(client.client_id.clone()),
        ),
        (
            "clientsecret".to_owned(),
            Sensitive::new(client.client_secret.clone()),
        ),
    ]);
    let request = spc.mount_request("keyvol-demo", "default", secrets, &target);
    let published = match volume::publish(&provider, request, &target, backing).await {
        Ok(p) => p.commit(),
        Err(e) => {
            dev.shutdown().await;
            return Err(e.into());
        }
    };
    let medium = match backing {
        Backing::Tmpfs { .. } => "a tmpfs (nodev,nosuid,noexec)",
        Backing::PlainDirectory => "a plain directory (not root, so no tmpfs)",
    };
    println!(
        "class: examples/secretproviderclass.yaml (SecretProviderClass {}, provider {})",
        spc.name, spc.provider
    );
    println!("mounted into {} on {medium}:", target.display());
    print_tree(&target, &published);
    dev.shutdown().await;
    if args.keep {
        println!(
            "kept; remove with: keyvol unmount --target {}",
            target.display()
        );
    } else {
        volume::unpublish(&target).map_err(Failure::from)?;
        println!("cleaned up {}", target.display());
    }
    Ok(())
}

/// Prints the visible tree: the `..data` link, each file with its mode, size and source object.
fn print_tree(target: &Path, published: &volume::Published) {
    if let Ok(version_dir) = std::fs::read_link(target.join("..data")) {
        println!("  ..data -> {}", version_dir.display());
    }
    let sources = object_sources();
    // The Azure provider returns one version per file, in the same order, for single-version objects.
    let aligned = published.files.len() == published.object_versions.len();
    for (i, (path, mode)) in published.files.iter().enumerate() {
        let size = std::fs::metadata(target.join(path))
            .map(|m| m.len())
            .unwrap_or(0);
        let source = sources.get(path.as_str()).cloned().unwrap_or_default();
        let version = if aligned {
            published.object_versions[i].version.as_str()
        } else {
            ""
        };
        println!(
            "  {path:<28} {mode:04o} {size:>4} bytes  <- {source} (version {})",
            short(version)
        );
    }
}

/// File name to `type/name` of the object it comes from, read from the example class.
fn object_sources() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(spc) = SecretProviderClass::from_manifest(EXAMPLE_CLASS, None) else {
        return out;
    };
    let Some(objects) = spc.parameters.get("objects") else {
        return out;
    };
    if let Ok(parsed) = keyvol_azure::objects::parse_objects(objects) {
        for o in parsed.objects {
            out.insert(
                o.file.to_string(),
                format!("{}/{}", o.object_type.as_str(), o.name),
            );
        }
    }
    out
}

fn short(version: &str) -> &str {
    version.get(..8).unwrap_or(version)
}
