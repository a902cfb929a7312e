//! Watch responses: a chunked HTTP body of newline-delimited JSON `WatchEvent`s (`ADDED`,
//! `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`), fed from the store's change broadcast.
//!
//! As upstream: a watch from a `resourceVersion` older than the kept history is answered with
//! HTTP 200 and a single `ERROR` event carrying a 410 `Expired` Status (clients relist);
//! `timeoutSeconds` ends the stream; `allowWatchBookmarks` adds periodic `BOOKMARK`s carrying
//! the latest `resourceVersion` the stream is current at; `sendInitialEvents=true` sends the
//! current state as `ADDED` events followed by a bookmark annotated
//! `k8s.io/initial-events-end: "true"`. A watcher that falls too far behind has its stream
//! closed, as a real API server drops slow watchers.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::resources::{ResId, ResourceDef};
use crate::selector::Selectors;
use crate::status::ApiError;
use crate::store::{self, WatchStart};

/// Events buffered between the watch task and the HTTP body before the task waits.
const BODY_BUFFER: usize = 64;

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Resource watched.
    pub resource: ResId,
    /// Version requested (objects are served under it).
    pub version: String,
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// How often bookmarks are sent.
    pub bookmark_interval: Duration,
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({ "type": event_type, "object": object }).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(def: &ResourceDef, version: &str, revision: u64, initial_end: bool) -> Value {
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if initial_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({
        "kind": def.kind,
        "apiVersion": def.api_version(version),
        "metadata": metadata,
    })
}

fn streaming(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The response to a watch that could not start because its `resourceVersion` is too old (or
/// any other error that upstream reports inside the stream).
pub fn error_stream(error: &ApiError) -> Response {
    let (tx, rx) = mpsc::channel(1);
    // The receiver is alive: this cannot fail.
    let _ = tx.try_send(line("ERROR", &error.to_status()));
    drop(tx);
    streaming(rx)
}

/// Starts streaming a watch that the store has set up.
pub fn stream(def: ResourceDef, params: WatchParams, start: WatchStart) -> Response {
    let (tx, rx) = mpsc::channel(BODY_BUFFER);
    tokio::spawn(pump(tx, def, params, start));
    streaming(rx)
}

async fn pump(tx: mpsc::Sender<Bytes>, def: ResourceDef, params: WatchParams, start: WatchStart) {
    let WatchStart {
        initial,
        mut receiver,
        revision,
    } = start;
    let present = |object: &Value| store::present(&def, &params.version, object);
    for (kind, object) in initial {
        if tx
            .send(line(kind.event_type(), &present(&object)))
            .await
            .is_err()
        {
            return;
        }
    }
    if params.send_initial_events {
        let end = bookmark(&def, &params.version, revision, true);
        if tx.send(line("BOOKMARK", &end)).await.is_err() {
            return;
        }
    }
    let deadline = params.timeout.map(|t| Instant::now() + t);
    let mut ticker = tokio::time::interval_at(
        Instant::now() + params.bookmark_interval,
        params.bookmark_interval,
    );
    let mut current = revision;
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Ok(change) => {
                    current = current.max(change.revision);
                    let projected = store::project(
                        &change,
                        params.resource,
                        params.namespace.as_deref(),
                        &params.selectors,
                    );
                    if let Some((kind, object)) = projected
                        && tx.send(line(kind.event_type(), &present(&object))).await.is_err()
                    {
                        return;
                    }
                }
                // Too slow, or the store is gone: end the stream; the client re-watches.
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick(), if params.bookmarks => {
                let mark = bookmark(&def, &params.version, current, false);
                if tx.send(line("BOOKMARK", &mark)).await.is_err() {
                    return;
                }
            }
            () = until(deadline) => return,
            () = tx.closed() => return,
        }
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
