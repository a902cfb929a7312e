//! `keyvol mount` and `keyvol unmount`: a one-shot publish of a SecretProviderClass into a
//! directory, with no cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use keyvol_azure::AzureProvider;
use keyvol_core::volume::{self, Backing, Published};
use keyvol_core::{SecretProviderClass, Sensitive};
use serde_json::Value;

use crate::azure_flags::AzureFlags;
use keyvol_cli::Failure;

/// Arguments of `keyvol mount`.
#[derive(clap::Args, Debug)]
pub struct MountArgs {
    /// SecretProviderClass manifest (YAML); other documents in the file are skipped.
    #[arg(long, value_name = "FILE")]
    pub class: PathBuf,
    /// Which class, when the manifest holds several.
    #[arg(long)]
    pub name: Option<String>,
    /// Directory to fill; created if missing.
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    /// Credentials for the provider, as a nodePublishSecretRef would carry them: a Kubernetes
    /// Secret manifest or a YAML map (e.g. clientid, clientsecret). AZURE_CLIENT_ID and
    /// AZURE_CLIENT_SECRET in the environment fill clientid and clientsecret.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// A service-account token (a projected token file, e.g. AZURE_FEDERATED_TOKEN_FILE) for
    /// workload identity: handed to the provider as the token for audience
    /// api://AzureADTokenExchange, as kubelet would.
    #[arg(long, value_name = "FILE")]
    pub service_account_token_file: Option<PathBuf>,
    /// Pod name reported to the provider.
    #[arg(long, default_value = "keyvol-mount")]
    pub pod_name: String,
    /// Pod namespace reported to the provider (default: the class's namespace, else "default").
    #[arg(long)]
    pub namespace: Option<String>,
    /// Write into the target directory as it is instead of mounting a tmpfs there. Secrets then
    /// reach disk unless the directory is already memory-backed. For development without root.
    #[arg(long)]
    pub no_tmpfs: bool,
    /// Size cap of the tmpfs in bytes.
    #[arg(long, value_name = "BYTES")]
    pub tmpfs_size: Option<u64>,
    /// Make every file, directory and link group-owned by GID and every file group-readable
    /// (what a pod's fsGroup gets through `keyvol node`), so a non-root process in that group
    /// can read them.
    #[arg(long, value_name = "GID")]
    pub group: Option<u32>,
    /// Provider flags.
    #[command(flatten)]
    pub azure: AzureFlags,
}

/// Arguments of `keyvol unmount`.
#[derive(clap::Args, Debug)]
pub struct UnmountArgs {
    /// Directory written by `keyvol mount`.
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
}

/// Largest SecretProviderClass manifest `keyvol mount` reads (the API server's own object limit
/// is about 1.5 MiB).
const MAX_CLASS_BYTES: u64 = 2 * 1024 * 1024;
/// Largest credentials file (a Kubernetes Secret is at most 1 MiB).
const MAX_SECRETS_BYTES: u64 = 1024 * 1024;
/// Largest service-account token file (projected tokens are a few KiB).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// Reads a file the user named, capped; the message never holds its contents.
fn read_input(path: &Path, limit: u64) -> Result<String, Failure> {
    keyvol_core::bounded::read_to_string(path, limit).map_err(|e| Failure::chain(&e, true))
}

/// Reads credentials: a Kubernetes Secret manifest (`data` base64, `stringData`) or a flat map.
pub fn read_secrets_file(path: &Path) -> Result<BTreeMap<String, Sensitive<String>>, Failure> {
    let text = read_input(path, MAX_SECRETS_BYTES)?;
    let doc: Value = serde_saphyr::from_str(&text)
        .map_err(|_| Failure::input(format!("secrets file {} is not YAML", path.display())))?;
    let mut out = BTreeMap::new();
    let field_err = |field: &str| {
        Failure::input(format!(
            "secrets file {}: {field} must map names to strings",
            path.display()
        ))
    };
    if doc.get("kind").and_then(Value::as_str) == Some("Secret") {
        if let Some(data) = doc.get("data") {
            for (k, v) in data.as_object().ok_or_else(|| field_err("data"))? {
                let encoded = v.as_str().ok_or_else(|| field_err("data"))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| {
                        Failure::input(format!(
                            "secrets file {}: data.{k} is not base64",
                            path.display()
                        ))
                    })?;
                let value = String::from_utf8(bytes).map_err(|_| {
                    Failure::input(format!(
                        "secrets file {}: data.{k} is not UTF-8",
                        path.display()
                    ))
                })?;
                out.insert(k.clone(), Sensitive::new(value));
            }
        }
        if let Some(data) = doc.get("stringData") {
            for (k, v) in data.as_object().ok_or_else(|| field_err("stringData"))? {
                out.insert(
                    k.clone(),
                    Sensitive::new(
                        v.as_str()
                            .ok_or_else(|| field_err("stringData"))?
                            .to_owned(),
                    ),
                );
            }
        }
    } else {
        for (k, v) in doc.as_object().ok_or_else(|| field_err("the file"))? {
            out.insert(
                k.clone(),
                Sensitive::new(v.as_str().ok_or_else(|| field_err(k))?.to_owned()),
            );
        }
    }
    Ok(out)
}

/// Credentials from the environment (standard Azure variable names), never echoed.
fn secrets_from_env(secrets: &mut BTreeMap<String, Sensitive<String>>) {
    for (var, key) in [
        ("AZURE_CLIENT_ID", "clientid"),
        ("AZURE_CLIENT_SECRET", "clientsecret"),
    ] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
            && !secrets.keys().any(|k| k.eq_ignore_ascii_case(key))
        {
            secrets.insert(key.to_owned(), Sensitive::new(v));
        }
    }
}

/// Prints what a publish did (names, modes and versions; never contents).
pub fn print_published(published: &Published, spc: &SecretProviderClass, target: &Path) {
    let objects: BTreeMap<&str, &str> = published
        .object_versions
        .iter()
        .map(|v| (v.id.as_str(), v.version.as_str()))
        .collect();
    let state = match &published.write {
        keyvol_core::WriteOutcome::Unchanged => "unchanged",
        keyvol_core::WriteOutcome::Written { .. } => "written",
    };
    println!(
        "mounted SecretProviderClass {} into {} ({} files, {state})",
        spc.name,
        target.display(),
        published.files.len()
    );
    for (path, mode) in &published.files {
        println!("  {path}  {mode:04o}");
    }
    for (id, version) in objects {
        println!("  object {id} version {version}");
    }
}

/// `keyvol mount`.
pub async fn run(args: MountArgs) -> Result<(), Failure> {
    let text = read_input(&args.class, MAX_CLASS_BYTES)?;
    let spc = SecretProviderClass::from_manifest(&text, args.name.as_deref())
        .map_err(|e| Failure::input(format!("{}: {e}", args.class.display())))?;
    let mut secrets = match &args.secrets_file {
        Some(path) => read_secrets_file(path)?,
        None => BTreeMap::new(),
    };
    secrets_from_env(&mut secrets);
    if let Some(path) = &args.service_account_token_file {
        let token = Sensitive::new(read_input(path, MAX_TOKEN_BYTES)?);
        let tokens = serde_json::json!({ "api://AzureADTokenExchange": { "token": token.expose().trim(), "expirationTimestamp": "" } });
        secrets.insert(
            "csi.storage.k8s.io/serviceAccount.tokens".into(),
            Sensitive::new(tokens.to_string()),
        );
    }
    let namespace = args
        .namespace
        .clone()
        .or_else(|| spc.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let provider = AzureProvider::new(args.azure.config()).map_err(|e| Failure::chain(&e, true))?;
    let backing = if args.no_tmpfs {
        Backing::PlainDirectory
    } else {
        Backing::Tmpfs {
            size_bytes: args.tmpfs_size,
        }
    };
    if spc.provider != "azure" {
        return Err(Failure::input(format!(
            "spec.provider: {:?} is not built in; keyvol mount serves provider \"azure\"",
            spc.provider
        )));
    }
    let request = spc.mount_request(&args.pod_name, &namespace, secrets, &args.target);
    let published =
        volume::publish_for_group(&provider, request, &args.target, backing, args.group)
            .await?
            .commit();
    print_published(&published, &spc, &args.target);
    Ok(())
}

/// `keyvol unmount`: only what a volume writer made is unmounted or removed.
pub fn run_unmount(args: UnmountArgs) -> Result<(), Failure> {
    let t = args.target.display();
    match volume::unpublish(&args.target)? {
        volume::Unpublished::AlreadyClean => println!("nothing to unmount at {t}"),
        volume::Unpublished::Unmounted => println!("unmounted {t}"),
        volume::Unpublished::Removed => println!("removed {t}"),
    }
    Ok(())
}
