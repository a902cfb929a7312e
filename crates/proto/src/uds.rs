//! Unix-domain sockets for gRPC: [`UdsListener`] binds a server socket that is owner-only from
//! the moment it exists and hands out connections whose requests reach the server with
//! `:authority` `localhost` whatever the client sent ([`crate::authority`]); [`connect`] /
//! [`connect_lazy`] dial a tonic client with `:authority` `localhost`.
//!
//! Serving:
//!
//! ```no_run
//! use keyvol_proto::csi::v1::identity_server::{Identity, IdentityServer};
//! use keyvol_proto::csi::v1::identity_client::IdentityClient;
//! use keyvol_proto::tonic::transport::Server;
//! use keyvol_proto::uds::{self, UdsListener};
//!
//! # async fn demo(identity: impl Identity) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = UdsListener::bind("/var/lib/kubelet/plugins/keyvol/csi.sock")?;
//! Server::builder()
//!     .add_service(IdentityServer::new(identity))
//!     .serve_with_incoming(listener.into_incoming())
//!     .await?;
//!
//! // elsewhere, a client:
//! let mut client = IdentityClient::new(uds::connect("/var/lib/kubelet/plugins/keyvol/csi.sock").await?);
//! # Ok(()) }
//! ```
//!
//! How the socket is kept private: the socket is created with `socket2`, `fchmod`ed to
//! [`SOCKET_MODE`] while it is still unbound, and only then bound. On Linux `bind(2)` gives the
//! new filesystem node the mode of the socket inode less the umask, so the path never exists
//! with wider permissions. The mode is then set explicitly on the path as well, which makes the
//! final mode exact (independent of the umask) and covers kernels that ignore `fchmod` on
//! sockets. `listen(2)` comes last, so no client can connect before both steps are done.
//! The directory holding the socket should itself not be world-writable.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::Stream;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::authority::LocalAuthority;

/// Mode of every socket keyvol serves: read/write for the owner (root, like kubelet and the
/// driver) and nothing for anyone else, because whoever can connect can ask for secrets.
pub const SOCKET_MODE: u32 = 0o600;

/// The URI clients are built from. Only its authority matters: `localhost` is what the upstream
/// driver sends (`grpc.WithAuthority("localhost")`) and what its e2e provider insists on.
pub const CLIENT_URI: &str = "http://localhost";

/// Pending-connection queue length passed to `listen(2)`. A node starting hundreds of pods at
/// once sees that many connections arrive together (kubelet dials per operation); 128 refused
/// part of a 200-volume burst. The kernel caps it at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Everything that can go wrong binding or dialling a unix socket.
#[derive(Debug, thiserror::Error)]
pub enum UdsError {
    /// Something other than a socket sits at the path; it is left alone.
    #[error("refusing to replace {path}: it exists and is not a socket")]
    NotASocket {
        /// The socket path.
        path: PathBuf,
    },
    /// Looking at what is at the path failed.
    #[error("failed to inspect {path}")]
    Inspect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A live server already answers on the path: one socket, one owner. (A socket left by a
    /// process that is gone answers nothing and is replaced.)
    #[error("another process is serving {path}; refusing to take its socket")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// A stale socket from an earlier run could not be removed.
    #[error("failed to remove stale socket {path}")]
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The socket could not be created (or its address built, e.g. a path over 107 bytes).
    #[error("failed to create a unix socket for {path}")]
    Create {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Restricting the socket's mode failed.
    #[error("failed to set mode {mode:o} on socket {path}", mode = SOCKET_MODE)]
    Permissions {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `bind(2)` failed.
    #[error("failed to bind {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `listen(2)` failed.
    #[error("failed to listen on {path}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Handing the socket to tokio failed (for example outside a runtime).
    #[error("failed to register socket {path} with the tokio runtime")]
    Register {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The client could not connect.
    #[error("failed to connect to {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: tonic::transport::Error,
    },
}

/// A listening unix socket created with [`SOCKET_MODE`]. Turn it into a connection stream for
/// tonic with [`UdsListener::into_incoming`].
#[derive(Debug)]
pub struct UdsListener {
    listener: UnixListener,
    guard: SocketFileGuard,
}

impl UdsListener {
    /// Binds `path`: removes a stale socket left there (anything else at the path is an error),
    /// creates the socket owner-only as described in the [module docs](self), and listens.
    /// Must be called inside a tokio runtime.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, UdsError> {
        let path = path.as_ref().to_path_buf();
        remove_stale_socket(&path)?;
        let socket = bind_private_socket(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(
            |source| UdsError::Permissions {
                path: path.clone(),
                source,
            },
        )?;
        let guard = SocketFileGuard::new(&path)?;
        socket
            .listen(LISTEN_BACKLOG)
            .map_err(|source| UdsError::Listen {
                path: path.clone(),
                source,
            })?;
        socket
            .set_nonblocking(true)
            .map_err(|source| UdsError::Register {
                path: path.clone(),
                source,
            })?;
        let std_listener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
        let listener =
            UnixListener::from_std(std_listener).map_err(|source| UdsError::Register {
                path: path.clone(),
                source,
            })?;
        Ok(Self { listener, guard })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// The stream of accepted connections, for `Router::serve_with_incoming(_shutdown)`. The
    /// socket file is removed when the stream is dropped (if it is still the one bound here).
    pub fn into_incoming(self) -> UdsIncoming {
        UdsIncoming {
            inner: UnixListenerStream::new(self.listener),
            _guard: self.guard,
        }
    }
}

/// Accepted connections of a [`UdsListener`], each behind [`LocalAuthority`] so that clients
/// sending a socket path as `:authority` (kubelet's plugin watcher does) are answered; removes
/// the socket file when dropped.
#[derive(Debug)]
pub struct UdsIncoming {
    inner: UnixListenerStream,
    _guard: SocketFileGuard,
}

impl Stream for UdsIncoming {
    type Item = io::Result<LocalAuthority<UnixStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|next| next.map(|accepted| accepted.map(LocalAuthority::new)))
    }
}

/// Connects a tonic channel to the socket at `path`, failing if nothing accepts there now.
/// Requests carry `:authority` `localhost`.
pub async fn connect(path: impl AsRef<Path>) -> Result<Channel, UdsError> {
    let path = path.as_ref().to_path_buf();
    Endpoint::from_static(CLIENT_URI)
        .connect_with_connector(unix_connector(path.clone()))
        .await
        .map_err(|source| UdsError::Connect { path, source })
}

/// A tonic channel to the socket at `path` that connects on first use and reconnects after
/// failures (the socket may be recreated by a restarting server). Requests carry `:authority`
/// `localhost`. Must be called inside a tokio runtime.
pub fn connect_lazy(path: impl AsRef<Path>) -> Channel {
    Endpoint::from_static(CLIENT_URI)
        .connect_with_connector_lazy(unix_connector(path.as_ref().to_path_buf()))
}

/// A tower connector that ignores the URI and opens the unix socket at `path`.
fn unix_connector(
    path: PathBuf,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<UnixStream>,
    Error = io::Error,
    Future = impl Future<Output = io::Result<TokioIo<UnixStream>>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { UnixStream::connect(path).await.map(TokioIo::new) }
    })
}

/// Removes a socket left at `path` by an earlier run. A socket something still listens on is
/// refused (another server owns it), and so is anything that is not a socket (a file, a
/// directory, a symlink) rather than deleted.
fn remove_stale_socket(path: &Path) -> Result<(), UdsError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                // Refused: nobody listens any more; the socket is stale.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                // Connected, or an answer that is not "nobody there" (e.g. no permission to
                // connect): someone else's live socket.
                _ => {
                    return Err(UdsError::InUse {
                        path: path.to_path_buf(),
                    });
                }
            }
            std::fs::remove_file(path).map_err(|source| UdsError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(_) => Err(UdsError::NotASocket {
            path: path.to_path_buf(),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(UdsError::Inspect {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates a stream socket, restricts its inode to [`SOCKET_MODE`] while unbound, and binds it
/// to `path` (not yet listening).
fn bind_private_socket(path: &Path) -> Result<Socket, UdsError> {
    let create = |source| UdsError::Create {
        path: path.to_path_buf(),
        source,
    };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(create)?;
    rustix::fs::fchmod(&socket, rustix::fs::Mode::from_raw_mode(SOCKET_MODE)).map_err(|errno| {
        UdsError::Permissions {
            path: path.to_path_buf(),
            source: errno.into(),
        }
    })?;
    let address = SockAddr::unix(path).map_err(create)?;
    socket.bind(&address).map_err(|source| UdsError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(socket)
}

/// Removes the socket file on drop, but only if the path still names the inode bound here (a
/// newer server may have replaced it).
#[derive(Debug)]
struct SocketFileGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// The inode's change time: a socket created after this one was removed may get the same
    /// inode number.
    ctime: (i64, i64),
}

impl SocketFileGuard {
    fn new(path: &Path) -> Result<Self, UdsError> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| UdsError::Inspect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl Drop for SocketFileGuard {
    fn drop(&mut self) {
        let same = std::fs::symlink_metadata(&self.path).is_ok_and(|meta| {
            meta.dev() == self.dev
                && meta.ino() == self.ino
                && (meta.ctime(), meta.ctime_nsec()) == self.ctime
        });
        if same {
            // Nothing useful can be done about a failure while dropping; a stale socket is
            // removed by the next bind anyway.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn socket_file_is_owner_only_straight_after_bind_before_any_chmod_of_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("early.sock");
        let _socket = bind_private_socket(&path).unwrap();
        // The process umask can only remove bits, so anything wider than 0600 would mean the
        // path was reachable with looser permissions before `UdsListener::bind` fixes them.
        assert_eq!(mode(&path) & !SOCKET_MODE, 0, "mode {:o}", mode(&path));
    }

    #[tokio::test]
    async fn bound_socket_has_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csi.sock");
        let listener = UdsListener::bind(&path).unwrap();
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket()
        );
        assert_eq!(mode(listener.path()), 0o600);
    }

    #[tokio::test]
    async fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        let old = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(old); // the file stays behind, as after a crash
        let listener = UdsListener::bind(&path).unwrap();
        assert_eq!(mode(listener.path()), 0o600);
    }

    #[tokio::test]
    async fn a_live_servers_socket_is_refused_and_keeps_working() {
        // Issue 13: a second `keyvol node` on the same endpoint silently took the socket.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.sock");
        let first = UdsListener::bind(&path).unwrap();
        let err = UdsListener::bind(&path).unwrap_err();
        assert!(matches!(err, UdsError::InUse { .. }), "{err:?}");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(first);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn regular_file_at_the_path_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"keep me").unwrap();
        let err = UdsListener::bind(&path).unwrap_err();
        assert!(matches!(err, UdsError::NotASocket { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[tokio::test]
    async fn dropping_the_incoming_stream_removes_the_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let incoming = UdsListener::bind(&path).unwrap().into_incoming();
        assert!(path.exists());
        drop(incoming);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn dropping_an_old_listener_leaves_a_newer_socket_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sock");
        let old = UdsListener::bind(&path).unwrap();
        // The old server stops listening but its guard lives on (a slow shutdown) while a new
        // server starts: the new one may take the path.
        let old_guard = old.guard;
        drop(old.listener);
        let new = UdsListener::bind(&path).unwrap();
        drop(old_guard);
        assert!(path.exists(), "the newer server's socket must survive");
        drop(new);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_burst_of_a_thousand_connects_is_never_refused() {
        // Issue 15: the backlog of 128 refused connects in a 200-volume burst. Nobody accepts
        // here, so every connect must wait in the backlog.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("burst.sock");
        let _listener = UdsListener::bind(&path).unwrap();
        let mut held = Vec::new();
        for i in 0..1000 {
            // Non-blocking, as an async client dials: a full backlog answers EAGAIN at once.
            match UnixStream::connect(&path).await {
                Ok(s) => held.push(s),
                Err(e) => panic!("connect {i} refused: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn connect_fails_when_nothing_listens() {
        let dir = tempfile::tempdir().unwrap();
        let err = connect(dir.path().join("nobody.sock")).await.unwrap_err();
        assert!(matches!(err, UdsError::Connect { .. }), "{err:?}");
    }
}
